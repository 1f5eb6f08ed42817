"""Load, convert and encode images.

Every widget and engine module goes through these helpers, so an image can be
given as a path, bytes, a file object, a NumPy array, a PIL image or a torch
tensor, and bad input always gives an :class:`ImageLoadError` that names the
source and the reason.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageLoadError",
    "DEFAULT_MAX_PIXELS",
    "load_image",
    "to_float",
    "to_uint8",
    "to_png_bytes",
    "to_jpeg_bytes",
    "resize_to_fit",
    "describe_source",
]

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused before their pixels are decoded."""

_MODES = ("rgb", "gray", "keep", "opaque")
_PIL_LIMIT_LOCK = threading.Lock()


class ImageLoadError(ValueError):
    """An image could not be loaded; the message names the source and the reason.

    The message is one short line (under 300 characters): a long path is shortened and an array is described by
    its shape and dtype, never its contents. ``name``, when given, is the parameter the source was passed as
    (``"image"``) and starts the message.
    """

    def __init__(self, source, reason: str, *, name: str | None = None):
        self.source = describe_source(source)
        self.reason = clip_text(" ".join(str(reason).split()), 160)
        self.name = name
        super().__init__(f"{name + ': ' if name else ''}{self.source}: {self.reason}")


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the last of them "…" where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_source(source) -> str:
    """A short human-readable name for an image source, used in error messages."""
    if isinstance(source, str) and source.startswith("<"):
        return clip_text(source, 120)
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        if "\n" in text or len(text) > 4096:  # not a path: its start, quoted
            return repr(text) if len(text) <= 40 else repr(text[:40]) + f"… ({len(text)} characters)"
        return text if len(text) <= 120 else "…" + text[-119:]  # a long path: its end, where the file name is
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<bytes: {len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<numpy array: shape {source.shape}, dtype {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image: mode {source.mode}, size {source.size}>"
    mod = type(source).__module__ or ""
    if mod.startswith("torch"):
        return f"<torch tensor: shape {tuple(source.shape)}, dtype {source.dtype}>"
    name = getattr(source, "name", None)
    if isinstance(name, (str, os.PathLike)):
        return describe_source(name) if not str(name).startswith("<") else clip_text(str(name), 120)
    if hasattr(source, "read"):
        return f"<file object {type(source).__name__}>"
    return f"<{type(source).__name__}>"


# ----------------------------------------------------------------------------- loading


def load_image(source, *, mode: str = "rgb", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image from almost anything and return a NumPy array.

    Parameters
    ----------
    source : str, pathlib.Path, bytes, file object, numpy.ndarray, PIL.Image.Image or torch.Tensor
        Paths and bytes are decoded with Pillow (OpenCV for 16-bit colour PNG/TIFF).
        Arrays are H×W, H×W×1, H×W×3 or H×W×4 (bool, unsigned integers, or float in [0, 1]).
        Tensors are H×W, C×H×W or 1×C×H×W (C in 1, 3, 4), uint8 or float in [0, 1].
    mode : {"rgb", "gray", "keep", "opaque"}
        ``"rgb"`` gives H×W×3 uint8, ``"gray"`` gives H×W uint8 (ITU-R 601 luma),
        ``"keep"`` gives the data as stored: 16-bit stays uint16, alpha is kept, float stays float32;
        ``"opaque"`` is ``"keep"`` for an image without alpha and ``"rgb"`` (alpha over white) for one with it
        (what the enhancement widgets work on).
    max_pixels : int or None
        Refuse images with more pixels than this, checked from the header before any pixel is decoded.
        ``None`` lifts the limit.

    Returns
    -------
    numpy.ndarray
        A new array (never a view of the input). EXIF orientation is applied; palette, CMYK,
        LA/RGBA (alpha composited over white for ``"rgb"``/``"gray"``), 16-bit and float images
        are converted; animated images give their first frame.

    Raises
    ------
    ImageLoadError
        Missing file, zero bytes, not an image, truncated or corrupt data, unsupported array
        shape or dtype, or more pixels than ``max_pixels``.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {clip_text(repr(mode), 60)}")
    if mode == "opaque":
        arr = load_image(source, mode="keep", max_pixels=max_pixels)
        return load_image(arr, mode="rgb") if arr.ndim == 3 and arr.shape[2] == 4 else arr
    if isinstance(source, np.ndarray):
        return _convert_array(_validate_array(source, source), mode, source)
    if isinstance(source, Image.Image):
        _check_pixels(source, source.size, max_pixels)
        return _from_pil(source, mode, source)
    if type(source).__module__.startswith("torch"):
        return _convert_array(_tensor_to_array(source), mode, source)
    if isinstance(source, (str, os.PathLike)):
        data = _read_path(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        try:
            data = source.read()
        except Exception as exc:  # a closed or unreadable stream
            raise ImageLoadError(source, f"cannot read from file object: {exc}") from None
        if isinstance(data, str):
            raise ImageLoadError(source, "file object is in text mode; open it with 'rb'")
    else:
        raise ImageLoadError(
            source,
            "unsupported source type; give a path, bytes, a file object, a NumPy array, a PIL image or a torch tensor",
        )
    return _decode_bytes(data, mode, source, max_pixels)


def _read_path(path) -> bytes:
    try:
        p = Path(path).expanduser()
        exists, is_dir = p.exists(), p.is_dir()
    except (OSError, ValueError) as exc:  # a name the OS refuses (too long, a NUL byte): not a file
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a valid path"
        raise ImageLoadError(path, f"file not found ({reason.lower()})") from None
    if not exists:
        raise ImageLoadError(path, "file not found")
    if is_dir:
        raise ImageLoadError(path, "is a directory, not an image file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file: {exc.strerror or exc}") from None


def _check_pixels(source, size, max_pixels):
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageLoadError(
            source,
            f"image is {w}×{h} = {w * h / 1e6:.1f} megapixels, above the limit of {max_pixels / 1e6:.1f} "
            "megapixels (a possible decompression bomb); pass max_pixels= to raise the limit",
        )


def open_header(data: bytes, source, max_pixels):
    """Open an image lazily (header only) with our own pixel limit instead of Pillow's global one."""
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(_io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageLoadError(source, "not an image (unrecognised file format)") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ImageLoadError(source, f"corrupt image header: {exc}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    _check_pixels(source, img.size, max_pixels)
    return img


def _decode_bytes(data: bytes, mode: str, source, max_pixels) -> np.ndarray:
    if len(data) == 0:
        raise ImageLoadError(source, "file is empty (zero bytes)")
    img = open_header(data, source, max_pixels)
    if _is_16bit_color_png(data) or (img.format == "TIFF" and img.mode in ("RGB", "RGBA") and _tiff_is_16bit(img)):
        arr = _decode_with_opencv(data, source)
        return _convert_array(arr, mode, source)
    try:
        img.seek(0)
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageLoadError(source, f"truncated or corrupt image data: {exc}") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - guarded by _check_pixels
        raise ImageLoadError(source, str(exc)) from None
    return _from_pil(img, mode, source)


def _is_16bit_color_png(data: bytes) -> bool:
    # PNG IHDR: signature (8) + length (4) + "IHDR" (4) + width (4) + height (4) + bit depth (1) + colour type (1)
    return (
        data[:8] == b"\x89PNG\r\n\x1a\n"
        and len(data) > 26
        and data[12:16] == b"IHDR"
        and data[24] == 16
        and data[25] in (2, 6)
    )


def _tiff_is_16bit(img) -> bool:
    bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
    return bits is not None and any(b == 16 for b in (bits if isinstance(bits, tuple) else (bits,)))


def _decode_with_opencv(data: bytes, source) -> np.ndarray:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageLoadError(source, "truncated or corrupt image data (OpenCV could not decode it)")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def _from_pil(img: Image.Image, mode: str, source) -> np.ndarray:
    with contextlib.suppress(Exception):  # malformed EXIF: keep the pixels as stored
        img = ImageOps.exif_transpose(img)
    m = img.mode
    if m == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif m == "PA":
        img = img.convert("RGBA")
    elif m == "CMYK" or m == "YCbCr" or m == "LAB" or m == "HSV":
        img = img.convert("RGB")
    elif m == "1":
        img = img.convert("L")
    elif m == "La":
        img = img.convert("LA")
    elif m == "RGBa":
        img = img.convert("RGBA")
    m = img.mode
    if m in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.array(img, dtype=np.uint16)
    elif m == "I":
        raw = np.array(img)
        if raw.min() >= 0 and raw.max() <= 65535:
            arr = raw.astype(np.uint16)
        else:
            arr = raw.astype(np.float32)
            arr = (arr - arr.min()) / max(float(arr.max() - arr.min()), 1.0)
    elif m == "F":
        arr = np.array(img, dtype=np.float32)
    elif m in ("L", "LA", "RGB", "RGBA"):
        arr = np.array(img)
    else:
        try:
            arr = np.array(img.convert("RGB"))
        except Exception as exc:
            raise ImageLoadError(source, f"unsupported image mode {m!r}: {exc}") from None
    return _convert_array(arr, mode, source, owned=True)


def _validate_array(arr: np.ndarray, source) -> np.ndarray:
    if arr.dtype.kind not in "buif":
        raise ImageLoadError(source, f"unsupported dtype {arr.dtype}; use bool, unsigned integers or float")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageLoadError(source, f"unsupported array shape {arr.shape}; expected H×W, H×W×1, H×W×3 or H×W×4")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageLoadError(source, f"image has no pixels (shape {arr.shape})")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageLoadError(source, "float image contains NaN or infinity")
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype.kind == "i":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise ImageLoadError(source, f"integer image has negative values (min {lo}); use unsigned or float data")
        if hi > 65535:
            raise ImageLoadError(source, f"integer image values up to {hi} do not fit 16 bits")
        arr = arr.astype(np.uint8 if hi <= 255 else np.uint16)
    elif arr.dtype.kind == "u" and arr.dtype.itemsize > 2:
        hi = int(arr.max())
        if hi > 65535:
            raise ImageLoadError(source, f"integer image values up to {hi} do not fit 16 bits")
        arr = arr.astype(np.uint16)
    return arr


def _tensor_to_array(t) -> np.ndarray:
    source = t
    t = t.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ImageLoadError(source, f"tensor batch has {t.shape[0]} images; give one (1×C×H×W) or index it")
        t = t[0]
    if t.ndim == 3:
        if t.shape[0] in (1, 3, 4) and t.shape[-1] not in (3, 4):
            t = t.permute(1, 2, 0)
        elif t.shape[-1] not in (1, 3, 4):
            raise ImageLoadError(
                source, f"unsupported tensor shape {tuple(source.shape)}; expected C×H×W with C in 1, 3, 4"
            )
    elif t.ndim != 2:
        raise ImageLoadError(source, f"unsupported tensor shape {tuple(source.shape)}; expected H×W, C×H×W or 1×C×H×W")
    if t.is_complex():
        raise ImageLoadError(source, f"unsupported dtype {t.dtype}")
    if t.is_floating_point():
        t = t.float()
    arr = t.cpu().numpy()
    return _validate_array(arr, source)


def _convert_array(arr: np.ndarray, mode: str, source, owned: bool = False) -> np.ndarray:
    """Convert a validated array (H×W or H×W×{3,4}) to the requested mode; always returns a new array."""
    if mode == "keep":
        if arr.dtype == bool:
            return arr.astype(np.uint8) * 255
        return arr if owned else arr.copy()
    u8 = to_uint8(arr)
    if u8.ndim == 3 and u8.shape[2] == 4:
        u8 = _composite_over_white(u8)
    elif u8.ndim == 3 and u8.shape[2] == 2:  # gray + alpha from LA
        u8 = _composite_over_white(np.concatenate([np.repeat(u8[..., :1], 3, axis=2), u8[..., 1:]], axis=2))
    if mode == "rgb":
        out = np.repeat(u8[:, :, None], 3, axis=2) if u8.ndim == 2 else u8
    else:
        out = u8 if u8.ndim == 2 else _rgb_to_gray(u8)
    if out is arr:
        out = out.copy()
    return np.ascontiguousarray(out)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32)
    return np.clip(rgb * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def _rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601-2 luma, as Pillow's convert("L")
    w = np.array([299, 587, 114], dtype=np.uint32)
    return ((rgb.astype(np.uint32) @ w + 500) // 1000).astype(np.uint8)


# ----------------------------------------------------------------------------- conversion


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def to_float(image):
    """Convert an image to float32 in [0, 1], keeping its shape and kind.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        Any shape. bool → {0, 1}; uint8 → /255; uint16 → /65535; other unsigned or signed integers
        are divided by their dtype's maximum; float data is returned as float32 unchanged (not clipped).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, same shape, same kind as the input.
    """
    if _is_tensor(image):
        import torch

        if image.dtype == torch.bool:
            return image.float()
        if image.is_floating_point():
            return image.float()
        scale = {torch.uint8: 255.0, torch.int16: 32767.0, torch.int32: 2147483647.0}.get(image.dtype)
        if image.dtype == getattr(torch, "uint16", None):
            scale = 65535.0
        if scale is None:
            raise ValueError(f"to_float: unsupported tensor dtype {image.dtype}")
        return image.float() / scale
    arr = np.asarray(image)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind in "ui":
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    raise ValueError(f"to_float: unsupported dtype {arr.dtype}")


def to_uint8(image, *, rescale: bool = False):
    """Convert an image to uint8 in [0, 255], keeping its shape and kind.

    Parameters
    ----------
    image : numpy.ndarray or torch.Tensor
        bool → {0, 255}; uint16 → rounded /257; float → clipped to [0, 1] then ×255 and rounded.
    rescale : bool
        Stretch the data's own min..max to 0..255 first (for spectra, activations, gradients).
        A constant image becomes all zeros.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        uint8, same shape, same kind as the input.
    """
    if _is_tensor(image):
        import torch

        return torch.from_numpy(to_uint8(image.detach().cpu().numpy(), rescale=rescale)).to(image.device)
    arr = np.asarray(image)
    if rescale:
        f = arr.astype(np.float32)
        lo, hi = float(f.min()), float(f.max())
        f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        return (f * 255.0 + 0.5).astype(np.uint8)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if arr.dtype.kind == "f":
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.dtype.kind in "ui":
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ValueError(f"to_uint8: unsupported dtype {arr.dtype}")


def _display_array(image) -> np.ndarray:
    """An H×W, H×W×3 or H×W×4 uint8 array for encoding."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] in (1, 3, 4):
        arr = image[:, :, 0] if image.shape[2] == 1 else image
    elif isinstance(image, np.ndarray) and image.ndim == 2:
        arr = image
    else:
        arr = load_image(image, mode="keep", max_pixels=None)
    if arr.dtype.kind not in "buif":
        raise ImageLoadError(image, f"cannot encode dtype {arr.dtype}")
    return to_uint8(arr)


def to_png_bytes(image, *, compression: int = 1) -> bytes:
    """Encode an image as PNG bytes for the browser.

    Parameters
    ----------
    image : any source :func:`load_image` accepts, or a bool mask
        H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA); converted with :func:`to_uint8`.
    compression : int
        zlib level 0–9; the default 1 favours speed for live widgets.

    Returns
    -------
    bytes
    """
    import cv2

    arr = _display_array(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:  # pragma: no cover
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def to_jpeg_bytes(image, *, quality: int = 90) -> bytes:
    """Encode an image as JPEG bytes (alpha composited over white); see :func:`to_png_bytes`."""
    import cv2

    arr = _display_array(image)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = _composite_over_white(arr)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(arr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def resize_to_fit(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Shrink an image so that its long side is at most ``max_side`` (never enlarges).

    Parameters
    ----------
    image : numpy.ndarray
        H×W or H×W×C, any dtype OpenCV resizes (uint8, uint16, float32, bool).
    max_side : int

    Returns
    -------
    numpy.ndarray
        Same dtype and channel count; the input itself when it already fits.
    """
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if image.dtype == bool:
        return cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
