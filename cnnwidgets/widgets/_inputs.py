"""Widget arguments: the image sources a widget takes, and the short errors a wrong argument or trait value raises.

An image trait (:class:`ImageSource`) checks the kind of source on assignment (:func:`check_image`); a wrong
argument raises :class:`TraitTypeError` or :class:`TraitValueError`, one line under :data:`MAX_MESSAGE` characters
that names the parameter and says what it got (type, shape, dtype), never an array's contents.
"""

from __future__ import annotations

import os

import numpy as np
import traitlets as T

from ..io import ImageLoadError, clip_text, load_image

__all__ = ["TraitTypeError", "TraitValueError", "ImageSource", "describe", "check_image", "load_source", "MAX_MESSAGE"]

MAX_MESSAGE = 300
"""Error messages of the widgets stay below this many characters."""


class TraitTypeError(T.TraitError, TypeError):
    """A widget argument or trait value of the wrong type; the message names the parameter and what it got."""


class TraitValueError(T.TraitError, ValueError):
    """A widget argument or trait value of the right type but not allowed (a choice not offered, a bad shape)."""


def short_repr(value, limit: int = 40) -> str:
    """``repr`` of a str or number, cut to about ``limit`` characters (a long value is cut before repr)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value)} characters)"
    try:
        return clip_text(repr(value), limit)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"


def describe(value) -> str:
    """What ``value`` is in a few words (type, shape, dtype, length), never its contents.

    Examples: ``"a numpy array of shape (32, 32, 3), dtype uint8"``, ``"the str 'abc'"``, ``"a list of length 4"``.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}, dtype {value.dtype}"
    mod = type(value).__module__ or ""
    if mod.startswith("torch") and hasattr(value, "shape"):
        return f"a torch tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, np.generic):
        return f"the numpy {value.dtype} {short_repr(value.item())}"
    if isinstance(value, (int, float, complex)):
        return f"the {type(value).__name__} {short_repr(value)}"
    if isinstance(value, str):
        return f"the str {short_repr(value)}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {type(value).__name__} of length {len(value)}"
    if mod.startswith("PIL") and hasattr(value, "mode") and hasattr(value, "size"):
        return f"a PIL image, mode {value.mode}, size {value.size}"
    if isinstance(value, os.PathLike):
        return f"the path {short_repr(os.fspath(value))}"
    return clip_text(
        f"an object of type {mod + '.' if mod and mod != 'builtins' else ''}{type(value).__qualname__}", 80
    )


def _path_exists(value) -> bool | None:
    """True for an existing file, None for a folder, False otherwise (also for names the OS refuses)."""
    try:
        p = os.path.expanduser(os.fspath(value))
        if os.path.isdir(p):
            return None
        return os.path.exists(p)
    except (OSError, ValueError, TypeError):  # too long, NUL bytes, …
        return False


def _is_sample(value) -> bool:
    from ..datasets import list_samples

    return isinstance(value, str) and value in list_samples()


_IMAGE_KINDS = "a path, a sample name, bytes, a file object, a NumPy array, a PIL image or a torch tensor"


def check_image(value, *, name: str = "image", owner: str = "", samples: bool = True) -> None:
    """Check that ``value`` is a kind of image source a widget can load, cheaply (nothing is decoded).

    Checks the type, an array's or tensor's shape and dtype, that a path exists (or, with ``samples``, names a
    bundled sample) and that bytes are not empty. Decoding errors (corrupt files, NaN pixels) are found later,
    when the widget loads the image.

    Raises
    ------
    TraitTypeError
        Not an image source at all, or an array of a dtype that is not an image's.
    TraitValueError
        A missing file, a folder, empty bytes, or an array or tensor of a shape that is no image's
        (the message names ``name`` and gives the shape and dtype).
    """
    if value is None:
        return
    label = f"{owner}.{name}" if owner else name
    got = describe(value)
    if isinstance(value, (str, os.PathLike)):
        exists = _path_exists(value)
        if exists is None:
            raise TraitValueError(clip_text(f"{label}: {got} is a folder, not an image file", MAX_MESSAGE))
        if not exists and not (samples and _is_sample(value)):
            what = "no such file or sample name" if samples else "no such file"
            hint = "; see cnnwidgets.datasets.list_samples()" if samples else ""
            raise TraitValueError(clip_text(f"{label}: {what}: {got}{hint}", MAX_MESSAGE))
        return
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise TraitValueError(f"{label}: got empty {type(value).__name__}")
        return
    is_tensor = (type(value).__module__ or "").startswith("torch") and hasattr(value, "shape")
    if isinstance(value, np.ndarray) or is_tensor:
        shape = tuple(value.shape)
        dtype = str(value.dtype)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "buif":
                raise TraitTypeError(f"{label}: expected an array of bool, unsigned integers or floats; got {got}")
            channels_ok = len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))
            hw = shape[:2]
        else:
            if "complex" in dtype:
                raise TraitTypeError(f"{label}: expected a real-valued tensor; got {got}")
            core = shape[1:] if len(shape) == 4 and shape[0] == 1 else shape
            channels_ok = len(core) == 2 or (len(core) == 3 and (core[0] in (1, 3, 4) or core[-1] in (1, 3, 4)))
            hw = core[1:] if len(core) == 3 and core[0] in (1, 3, 4) and core[-1] not in (1, 3, 4) else core[:2]
        if not channels_ok:
            expected = "H×W, H×W×1, H×W×3 or H×W×4" if isinstance(value, np.ndarray) else "H×W, C×H×W or 1×C×H×W"
            raise TraitValueError(f"{label}: expected an image of shape {expected}; got {got}")
        if 0 in hw:
            raise TraitValueError(f"{label}: the image has no pixels; got {got}")
        return
    if (type(value).__module__ or "").startswith("PIL") and hasattr(value, "size"):
        if 0 in tuple(value.size):
            raise TraitValueError(f"{label}: the image has no pixels; got {got}")
        return
    if hasattr(value, "read"):
        return
    kinds = _IMAGE_KINDS if samples else _IMAGE_KINDS.replace(", a sample name", "")
    raise TraitTypeError(clip_text(f"{label}: expected {kinds}; got {got}", MAX_MESSAGE))


def load_source(value, *, mode: str = "keep", name: str = "image") -> np.ndarray:
    """:func:`cnnwidgets.io.load_image` that also takes the name of a bundled sample (when no such file exists).

    Raises
    ------
    cnnwidgets.io.ImageLoadError
        As ``load_image``; the message starts with ``name``.
    """
    if isinstance(value, str) and _path_exists(value) is False and _is_sample(value):
        from ..datasets import sample

        return sample(value, mode=mode)
    try:
        return load_image(value, mode=mode)
    except ImageLoadError as exc:
        raise ImageLoadError(value, exc.reason, name=name) from None


class ImageSource(T.Any):
    """A trait holding an image source (see :func:`check_image`), checked when it is set; ``None`` allowed.

    The value is kept as given (a path stays a path); the widget loads it with :func:`load_source`.
    """

    info_text = "an image source: " + _IMAGE_KINDS

    def __init__(self, default_value=None, *, samples: bool = True, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(default_value, **kwargs)
        self.samples = samples

    def validate(self, obj, value):
        check_image(value, name=self.name, owner=type(obj).__name__, samples=self.samples)
        return value


def _in_range_error(trait, value) -> bool:
    """True when ``value`` has the type ``trait`` takes, so its refusal is about the value (a bound)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if isinstance(trait, T.Int) else isinstance(value, (int, float))


def short_trait_error(obj, name: str, value, exc: Exception):
    """A short :class:`TraitTypeError` / :class:`TraitValueError` for ``exc``, raised by setting ``obj.name``; None
    when the error did not come from that trait (an observer's own error passes unchanged)."""
    trait = obj.traits().get(name)
    if trait is None:
        return None
    label = f"{type(obj).__name__}.{name}"
    if trait.read_only and isinstance(exc, T.TraitError) and "read-only" in str(exc):
        return TraitTypeError(f"{label} is read-only: it is computed by the widget; read it, don't set it")
    try:
        if not (value is None and trait.allow_none) and hasattr(trait, "validate"):
            trait.validate(obj, value)
    except Exception:  # the trait's own check refused the value
        got = describe(value)
        if isinstance(trait, T.Enum):
            choices = clip_text(", ".join(repr(v) for v in trait.values), 160)
            kinds = {type(v) for v in trait.values}
            cls = TraitValueError if type(value) in kinds else TraitTypeError
            return cls(clip_text(f"{label} must be one of {choices}; got {got}", MAX_MESSAGE))
        klass = getattr(trait, "klass", None)
        if isinstance(klass, type) and isinstance(value, klass):  # a list (dict, …) with a wrong element
            orig = str(exc)
            orig = orig.replace(f"The '{name}' trait of a {type(obj).__name__} instance ", f"{label} ")
            if label in orig and "\n" not in orig and "array(" not in orig and len(orig) < MAX_MESSAGE:
                return TraitTypeError(orig)
            return TraitTypeError(
                f"{label}: an element of {got} has the wrong type (expected {clip_text(trait.info(), 80)})"
            )
        cls = (
            TraitValueError if isinstance(trait, (T.Int, T.Float)) and _in_range_error(trait, value) else TraitTypeError
        )
        info = clip_text(trait.info().replace("a unicode string", "a str"), 120)
        hint = " (pass array.tolist())" if isinstance(value, np.ndarray) and isinstance(trait, T.List) else ""
        return cls(clip_text(f"{label} must be {info}; got {got}{hint}", MAX_MESSAGE))
    validators = getattr(obj, "_trait_validators", {})
    # the type is right, so a @validate refused the value
    if isinstance(exc, T.TraitError) and (name in validators or hasattr(obj, f"_{name}_validate")):
        msg = str(exc)
        return TraitValueError(clip_text(msg if name in msg else f"{label}: {msg}", MAX_MESSAGE))
    return None
