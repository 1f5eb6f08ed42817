"""cnnwidgets.io against Pillow/OpenCV references and a corpus of hostile files."""

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cnnwidgets.datasets import sample
from cnnwidgets.io import ImageLoadError, load_image, resize_to_fit, to_float, to_jpeg_bytes, to_png_bytes, to_uint8


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    """A syntactically valid PNG header that claims a huge size, followed by a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def chelsea():
    return sample("chelsea")


@pytest.fixture
def corpus(tmp_path, chelsea):
    """Write the hostile corpus to disk; return name → path."""
    pil = Image.fromarray(chelsea)
    files = {}

    def put(name, data):
        p = tmp_path / name
        p.write_bytes(data)
        files[name] = p

    jpeg = _jpeg_bytes(pil, quality=90)
    png = _png_bytes(pil)
    put("truncated.jpg", jpeg[: len(jpeg) // 2])
    put("truncated.png", png[: len(png) // 2])
    put("empty.png", b"")
    put("text.jpg", b"this is not an image, just text with an image extension\n" * 20)
    put("one.png", _png_bytes(Image.new("RGB", (1, 1), (10, 200, 30))))
    gray16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    put("gray16.png", cv2.imencode(".png", gray16)[1].tobytes())
    rgb16 = np.stack([gray16, gray16[::-1], 65535 - gray16], axis=2)
    put("rgb16.png", cv2.imencode(".png", rgb16[:, :, ::-1])[1].tobytes())  # OpenCV writes BGR
    put("cmyk.jpg", _jpeg_bytes(pil.convert("CMYK"), quality=95))
    pal = Image.new("P", (40, 30))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pal_px = np.zeros((30, 40), np.uint8)
    pal_px[:, 20:] = 1
    pal.putdata(pal_px.ravel().tolist())
    put("palette_transparent.png", _png_bytes(pal, transparency=0))
    frames = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    put("animated.gif", buf.getvalue())
    put("bomb.png", _png_claiming(50000, 50000))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    put("exif_rot.jpg", _jpeg_bytes(pil, exif=exif.tobytes()))
    put(
        "la.png",
        _png_bytes(Image.fromarray(np.dstack([np.full((8, 8), 100, np.uint8), np.full((8, 8), 0, np.uint8)]), "LA")),
    )
    return files


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated.jpg", "truncated or corrupt"),
        ("truncated.png", "truncated or corrupt"),
        ("empty.png", "zero bytes"),
        ("text.jpg", "not an image"),
        ("bomb.png", "megapixels"),
    ],
)
def test_hostile_files_raise_named_errors(corpus, name, reason):
    start = time.perf_counter()
    with pytest.raises(ImageLoadError) as info:
        load_image(corpus[name])
    assert time.perf_counter() - start < 5, "hostile input must fail fast"
    msg = str(info.value)
    assert str(corpus[name]) in msg and reason in msg
    assert isinstance(info.value, ValueError)


def test_bomb_refused_from_bytes_and_file_object(corpus):
    data = corpus["bomb.png"].read_bytes()
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(data)
    with open(corpus["bomb.png"], "rb") as fh, pytest.raises(ImageLoadError, match=str(corpus["bomb.png"])):
        load_image(fh)


def test_max_pixels_is_settable(corpus, chelsea):
    h, w = chelsea.shape[:2]
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(_png_bytes(Image.fromarray(chelsea)), max_pixels=h * w - 1)
    assert load_image(_png_bytes(Image.fromarray(chelsea)), max_pixels=h * w).shape == (h, w, 3)
    with pytest.raises(ImageLoadError):
        load_image(Image.fromarray(chelsea), max_pixels=100)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="nope.png: file not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


def test_one_pixel(corpus):
    out = load_image(corpus["one.png"])
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [10, 200, 30]


def test_sixteen_bit_gray(corpus):
    ref = cv2.imread(str(corpus["gray16.png"]), cv2.IMREAD_UNCHANGED)
    keep = load_image(corpus["gray16.png"], mode="keep")
    assert keep.dtype == np.uint16 and np.array_equal(keep, ref)
    gray = load_image(corpus["gray16.png"], mode="gray")
    assert gray.dtype == np.uint8
    assert np.abs(gray.astype(int) - np.round(ref / 257.0)).max() <= 1
    assert load_image(corpus["gray16.png"]).shape == ref.shape + (3,)


def test_sixteen_bit_rgb_keeps_depth_and_channel_order(corpus):
    ref = cv2.imread(str(corpus["rgb16.png"]), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    keep = load_image(corpus["rgb16.png"], mode="keep")
    assert keep.dtype == np.uint16 and np.array_equal(keep, ref)
    rgb = load_image(corpus["rgb16.png"])
    assert rgb.dtype == np.uint8 and np.abs(rgb.astype(int) - np.round(ref / 257.0)).max() <= 1


def test_cmyk_jpeg_matches_pillow_conversion(corpus):
    ref = np.array(Image.open(corpus["cmyk.jpg"]).convert("RGB"))
    out = load_image(corpus["cmyk.jpg"])
    assert out.shape == ref.shape and np.array_equal(out, ref)


def test_palette_with_transparency(corpus):
    keep = load_image(corpus["palette_transparent.png"], mode="keep")
    assert keep.shape == (30, 40, 4)
    assert keep[0, 0, 3] == 0 and keep[0, 39].tolist() == [0, 0, 255, 255]
    rgb = load_image(corpus["palette_transparent.png"])
    assert rgb[0, 0].tolist() == [255, 255, 255], "transparent pixels composite over white"
    assert rgb[0, 39].tolist() == [0, 0, 255]


def test_la_image(corpus):
    assert load_image(corpus["la.png"], mode="keep").shape == (8, 8, 2)
    assert load_image(corpus["la.png"], mode="gray")[0, 0] == 255  # fully transparent → white


def test_animated_gif_gives_first_frame(corpus):
    out = load_image(corpus["animated.gif"])
    assert out.shape == (24, 32, 3)
    assert out[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_applied(corpus, chelsea):
    out = load_image(corpus["exif_rot.jpg"])
    h, w = chelsea.shape[:2]
    assert out.shape == (w, h, 3)
    ref = np.rot90(chelsea, k=-1)  # orientation 6: rotate 90° clockwise
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 6


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "file", "pil", "numpy", "tensor"])
def test_every_source_kind(kind, tmp_path, chelsea):
    p = tmp_path / "c.png"
    Image.fromarray(chelsea).save(p)
    src = {
        "path": p,
        "str": str(p),
        "bytes": p.read_bytes(),
        "file": open(p, "rb"),  # noqa: SIM115 - load_image reads the open file
        "pil": Image.open(p),
        "numpy": chelsea,
        "tensor": torch.from_numpy(chelsea).permute(2, 0, 1).float() / 255.0,
    }[kind]
    out = load_image(src)
    assert out.dtype == np.uint8 and np.array_equal(out, chelsea)
    if kind == "file":
        src.seek(0)
    gray = load_image(src, mode="gray")
    assert np.array_equal(gray, np.array(Image.fromarray(chelsea).convert("L")))
    if kind == "file":
        src.close()


def test_arrays_are_copied_not_viewed(chelsea):
    out = load_image(chelsea, mode="keep")
    assert out is not chelsea and not np.shares_memory(out, chelsea)


@pytest.mark.parametrize(
    "arr, reason",
    [
        (np.zeros((4, 4, 2), np.uint8), "unsupported array shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "unsupported array shape"),
        (np.zeros((4, 4), np.complex64), "unsupported dtype"),
        (np.full((4, 4), np.nan, np.float32), "NaN"),
        (np.full((4, 4), -3, np.int16), "negative"),
        (np.zeros((0, 4), np.uint8), "no pixels"),
    ],
)
def test_bad_arrays(arr, reason):
    with pytest.raises(ImageLoadError, match=reason) as info:
        load_image(arr)
    assert "numpy array" in str(info.value)


def test_bad_tensor_and_type():
    with pytest.raises(ImageLoadError, match="batch has 2"):
        load_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ImageLoadError, match="unsupported source type"):
        load_image(12345)


def test_array_conversions():
    b = np.array([[True, False]])
    assert load_image(b, mode="gray").tolist() == [[255, 0]]
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert load_image(f, mode="gray").tolist() == [[0, 128, 255]]
    u16 = np.array([[0, 65535]], np.uint16)
    assert load_image(u16, mode="gray").tolist() == [[0, 255]]
    assert load_image(u16, mode="keep").dtype == np.uint16


def test_float_tiff_keep(tmp_path):
    data = np.linspace(0, 1, 20 * 10, dtype=np.float32).reshape(10, 20)
    p = tmp_path / "f.tif"
    Image.fromarray(data, mode="F").save(p)
    keep = load_image(p, mode="keep")
    assert keep.dtype == np.float32 and np.allclose(keep, data)
    assert load_image(p, mode="gray")[-1, -1] == 255


def test_png_and_jpeg_bytes_round_trip(chelsea):
    png = to_png_bytes(chelsea)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.array(Image.open(io.BytesIO(png))), chelsea)
    mask = chelsea[:, :, 0] > 128
    assert np.array_equal(np.array(Image.open(io.BytesIO(to_png_bytes(mask)))), mask.astype(np.uint8) * 255)
    jpg = to_jpeg_bytes(chelsea)
    back = np.array(Image.open(io.BytesIO(jpg)))
    assert back.shape == chelsea.shape and np.abs(back.astype(int) - chelsea).mean() < 4


def test_to_float_and_to_uint8():
    u8 = np.array([0, 128, 255], np.uint8)
    assert np.allclose(to_float(u8), [0, 128 / 255, 1])
    assert to_float(np.array([0, 65535], np.uint16)).tolist() == [0.0, 1.0]
    assert to_uint8(np.array([-1.0, 0.5, 2.0])).tolist() == [0, 128, 255]
    assert to_uint8(np.array([2.0, 4.0, 6.0]), rescale=True).tolist() == [0, 128, 255]
    assert to_uint8(np.full(3, 7.0), rescale=True).tolist() == [0, 0, 0]
    t = torch.tensor([0, 255], dtype=torch.uint8)
    assert torch.is_tensor(to_float(t)) and to_float(t).tolist() == [0.0, 1.0]
    assert torch.is_tensor(to_uint8(torch.tensor([0.0, 1.0])))


def test_resize_to_fit(chelsea):
    small = resize_to_fit(chelsea, 200)
    assert max(small.shape[:2]) == 200 and small.dtype == np.uint8
    assert resize_to_fit(chelsea, 5000) is chelsea
    assert resize_to_fit(chelsea[:, :, 0] > 100, 100).dtype == bool


@pytest.mark.parametrize(
    "source",
    ["x" * 5000, "line one\nline two", "/no/such/" + "deep/" * 60 + "photo.png", np.zeros((64, 64, 7), np.uint8)],
)
def test_errors_are_one_short_line_without_contents(source):
    with pytest.raises(ImageLoadError) as info:
        load_image(source)
    msg = str(info.value)
    assert len(msg) < 300 and "\n" not in msg and "0, 0, 0" not in msg and "[[" not in msg, msg
    if isinstance(source, str) and source.endswith(".png"):
        assert msg.startswith("…") and "photo.png: file not found" in msg  # a long path keeps its end


def test_error_can_name_the_parameter():
    err = ImageLoadError(np.zeros((2, 2, 2)), "unsupported array shape", name="image")
    assert str(err).startswith("image: <numpy array: shape (2, 2, 2), dtype float64>: unsupported")
    assert err.name == "image" and err.reason == "unsupported array shape"


def test_opaque_mode_keeps_images_without_alpha_and_composites_alpha_over_white(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.array([0, 64, 128, 255])[:, None]
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    for source in (rgba, path):
        out = load_image(source, mode="opaque")
        assert out.shape == (4, 5, 3) and np.array_equal(out, load_image(source, mode="rgb"))
    assert np.array_equal(out[0], np.full((5, 3), 255))  # transparent: white
    gray16 = (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)
    kept = load_image(gray16, mode="opaque")
    assert kept.dtype == np.uint16 and np.array_equal(kept, gray16)
