"""Offline sample images and labelled sets, and a reader for a user's own folder.

Nothing here downloads: samples come from the images that scikit-image ships,
digits from scikit-learn, shapes are drawn on the fly.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from .io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image

__all__ = [
    "ImageSet",
    "list_samples",
    "sample",
    "digits",
    "shapes",
    "ImageFolder",
    "IMAGE_EXTENSIONS",
    "SHAPE_CLASSES",
]

# scikit-image sample images that ship inside the wheel (no pooch download), with a one-line description.
_SAMPLES = {
    "astronaut": "Eileen Collins, colour portrait (512×512×3)",
    "brick": "brick wall texture, gray (512×512)",
    "camera": "cameraman, gray (512×512)",
    "cat": "the cat Chelsea, colour (300×451×3)",
    "chelsea": "the cat Chelsea, colour (300×451×3)",
    "checkerboard": "checkerboard, gray (200×200)",
    "clock": "clock with motion blur, gray (300×400)",
    "coffee": "cup of espresso, colour (400×600×3)",
    "coins": "Greek coins on a dark background, gray (303×384)",
    "colorwheel": "colour wheel (370×371×3)",
    "grass": "grass texture, gray (512×512)",
    "gravel": "gravel texture, gray (512×512)",
    "horse": "binary horse silhouette (328×400)",
    "hubble_deep_field": "Hubble deep field, colour (872×1000×3)",
    "immunohistochemistry": "stained tissue, colour (512×512×3)",
    "logo": "scikit-image logo, RGBA (500×500×4)",
    "microaneurysms": "retina close-up, gray (102×102)",
    "moon": "lunar surface, low contrast gray (512×512)",
    "page": "scanned page with uneven lighting, gray (191×384)",
    "rocket": "rocket on its launch pad, colour (427×640×3)",
    "text": "text on a gradient, gray (172×448)",
}

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")


class ImageSet(NamedTuple):
    """A labelled set of images.

    Attributes
    ----------
    images : numpy.ndarray
        N×H×W (gray) or N×H×W×3 (colour), uint8.
    labels : numpy.ndarray
        N int64 class indices.
    classes : tuple of str
        Class names; ``classes[labels[i]]`` names image ``i``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple


def list_samples() -> list[str]:
    """Names accepted by :func:`sample`, sorted."""
    return sorted(_SAMPLES)


def sample(name: str, *, mode: str = "keep") -> np.ndarray:
    """Return one bundled sample image.

    Parameters
    ----------
    name : str
        One of :func:`list_samples` (``"chelsea"``, ``"coffee"``, ``"camera"``, ``"coins"``, …).
    mode : {"keep", "rgb", "gray", "opaque"}
        ``"keep"`` returns the image as scikit-image stores it (gray H×W or colour H×W×3 uint8,
        ``logo`` H×W×4); see :func:`cnnwidgets.io.load_image` for the others.

    Returns
    -------
    numpy.ndarray
        uint8, a fresh copy.
    """
    if name not in _SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of: {', '.join(list_samples())}")
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    return load_image(img, mode=mode)


def digits() -> ImageSet:
    """scikit-learn's handwritten digits as images.

    Returns
    -------
    ImageSet
        1,797 images of 8×8 uint8 (0–255, scaled from scikit-learn's 0–16), labels 0–9,
        classes ``("0", …, "9")``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return ImageSet(images, d.target.astype(np.int64), tuple(str(i) for i in range(10)))


def shapes(n: int = 500, seed: int = 0, *, size: int = 32, classes=SHAPE_CLASSES) -> ImageSet:
    """Generate a labelled set of coloured shapes on coloured backgrounds.

    Each image holds one filled shape (circle, square, triangle or cross) of random colour,
    size, position and rotation on a random background with mild noise; shape and background
    colours always differ clearly, so the class is decided by form alone.

    Parameters
    ----------
    n : int
        Number of images; classes are balanced (round robin) then shuffled.
    seed : int
        Seed for NumPy's generator; the same seed gives the same set.
    size : int
        Side of the square images in pixels (≥ 16).
    classes : sequence of str
        A subset of :data:`SHAPE_CLASSES`.

    Returns
    -------
    ImageSet
        images N×size×size×3 uint8, labels N int64.
    """
    import cv2

    if size < 16:
        raise ValueError("shapes: size must be at least 16 pixels")
    unknown = set(classes) - set(SHAPE_CLASSES)
    if unknown:
        raise ValueError(f"shapes: unknown classes {sorted(unknown)}; choose from {SHAPE_CLASSES}")
    classes = tuple(classes)
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    rng.shuffle(labels)
    images = np.empty((n, size, size, 3), np.uint8)
    for i, lab in enumerate(labels):
        bg = rng.integers(0, 256, 3)
        fg = rng.integers(0, 256, 3)
        while np.abs(fg.astype(int) - bg.astype(int)).sum() < 200:
            fg = rng.integers(0, 256, 3)
        img = np.empty((size, size, 3), np.uint8)
        img[:] = bg
        r = rng.uniform(0.22, 0.36) * size
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        angle = rng.uniform(0, 2 * np.pi)
        color = tuple(int(c) for c in fg)
        kind = classes[lab]
        if kind == "circle":
            cv2.circle(
                img, (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)), color, -1, cv2.LINE_AA, shift=4
            )
        else:
            if kind == "square":
                pts = [(np.cos(angle + k * np.pi / 2), np.sin(angle + k * np.pi / 2)) for k in range(4)]
                pts = np.array(pts) * r * 0.95
            elif kind == "triangle":
                pts = (
                    np.array([(np.cos(angle + k * 2 * np.pi / 3), np.sin(angle + k * 2 * np.pi / 3)) for k in range(3)])
                    * r
                    * 1.1
                )
            else:  # cross: a plus sign of two bars
                a, b = 1.0, 0.33
                base = np.array(
                    [
                        (-b, -a),
                        (b, -a),
                        (b, -b),
                        (a, -b),
                        (a, b),
                        (b, b),
                        (b, a),
                        (-b, a),
                        (-b, b),
                        (-a, b),
                        (-a, -b),
                        (-b, -b),
                    ]
                )
                rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
                pts = base @ rot.T * r
            poly = np.round((pts + [cx, cy]) * 16).astype(np.int32)
            cv2.fillPoly(img, [poly], color, cv2.LINE_AA, shift=4)
        noise = rng.normal(0, 6, img.shape)
        images[i] = np.clip(img + noise, 0, 255).astype(np.uint8)
    return ImageSet(images, labels.astype(np.int64), classes)


class ImageFolder:
    """The images in a user's folder, with labels from class subfolders when there are any.

    Files are found recursively by extension. When the folder's direct subfolders hold the
    images, each subfolder is a class (``root/cat/x.jpg`` → class ``"cat"``); images lying
    directly in ``root`` then get the label -1. Every file's header is checked on
    construction; unreadable files are skipped and listed in :attr:`skipped`, never fatal.

    Parameters
    ----------
    root : str or pathlib.Path
    mode : {"rgb", "gray", "keep"}
        How :meth:`__getitem__` loads images.
    max_pixels : int
        Larger images are skipped (see :func:`cnnwidgets.io.load_image`).
    progress : bool
        Show a progress bar while checking files.

    Attributes
    ----------
    paths : list of pathlib.Path
        Readable image files, sorted.
    labels : list of int
        Class index per path (-1 when unlabelled).
    classes : list of str
        Subfolder names, sorted; empty when the folder has no class subfolders.
    skipped : list of (pathlib.Path, str)
        Files that were skipped and why.
    """

    def __init__(self, root, *, mode: str = "rgb", max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True):
        from .io import open_header

        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: not a folder" if self.root.exists() else f"{self.root}: folder not found")
        self.mode = mode
        candidates = sorted(
            p
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(p, self.root)
        )
        subdirs = sorted(
            {p.relative_to(self.root).parts[0] for p in candidates if len(p.relative_to(self.root).parts) > 1}
        )
        self.classes = subdirs
        index = {c: i for i, c in enumerate(subdirs)}
        self.paths, self.labels, self.skipped = [], [], []
        for p in _progress(candidates, progress, f"checking {self.root.name}"):
            try:
                data = p.read_bytes()
                if not data:
                    raise ImageLoadError(p, "file is empty (zero bytes)")
                open_header(data, p, max_pixels)
            except ImageLoadError as exc:
                self.skipped.append((p, exc.reason))
                continue
            except OSError as exc:
                self.skipped.append((p, f"cannot read file: {exc}"))
                continue
            parts = p.relative_to(self.root).parts
            self.paths.append(p)
            self.labels.append(index[parts[0]] if len(parts) > 1 else -1)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        """Return ``(image, label)``; the image as :func:`cnnwidgets.io.load_image` gives it."""
        return load_image(self.paths[i], mode=self.mode, max_pixels=self.max_pixels), self.labels[i]

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}: {len(self)} images, {len(self.classes)} classes, {len(self.skipped)} skipped)"

    def report(self) -> str:
        """A readable summary, with one line per skipped file."""
        lines = [repr(self)]
        lines += [f"  skipped {p}: {why}" for p, why in self.skipped]
        return "\n".join(lines)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _progress(items, enabled: bool, desc: str):
    if not enabled or len(items) < 200:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file")
