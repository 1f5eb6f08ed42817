"""What every widget shares: a status line, ``result`` and ``code``, latest-value-wins updates,
image panels and an upload control. No maths here.

Controls
--------
Every control is bound to its trait with :meth:`WidgetBase.bind`, the one binding mechanism: the trait is the
truth, the control shows it, a user's change to the control sets the trait. Changes that code makes to
controls run inside :meth:`WidgetBase.quiet` (tracked per thread), so they are not taken for user input; a value a
control cannot take, or a trait rejects, shows in the status line.

Engine calls
------------
A widget describes what it computes as a :class:`cnnwidgets.engine.calls.Recipe` (:meth:`WidgetBase.recipe`): the
same object is applied to the preview, applied to the full image (the widget's ``compute_full``) and rendered as
``code``, so the three cannot disagree.

Updates
-------
Subclasses implement :meth:`WidgetBase._render`, which reads the traits, calls the engine and
fills the panels. Trait observers call :meth:`WidgetBase.request_update`. Inside a running
Jupyter kernel the render runs on one worker thread: requests that arrive while it is busy
collapse into one, so a dragged slider never queues stale work and the kernel keeps reading
messages. Outside a kernel (plain scripts, pytest) renders run synchronously, so setting a
trait and then reading ``result`` is deterministic. :meth:`WidgetBase.wait` blocks until the
latest request is drawn, in both cases.

Errors
------
A wrong argument or trait value raises a short :class:`TraitTypeError` or :class:`TraitValueError` (subclasses of
both :class:`traitlets.TraitError` and the built-in ``TypeError`` / ``ValueError``): one line under 300 characters
that names the parameter and says what it got (type, shape, dtype), never an array's contents. An unknown keyword
to a constructor is a ``TypeError`` naming it. Image traits (:class:`ImageSource`) check the kind of source on
assignment; a source that is of the right kind but cannot be decoded shows in the status line.
"""

from __future__ import annotations

import contextlib
import difflib
import html
import os
import threading
import time
import traceback

import ipywidgets as W
import numpy as np
import traitlets as T

from ..io import ImageLoadError, load_image, to_png_bytes

# Status line colours: JupyterLab's theme variables (so the line reads in light and dark themes), with fallbacks
# for front ends without them.
_STATUS_COLOURS = {
    "error": "var(--jp-error-color1, #b00020)",
    "busy": "var(--jp-ui-font-color2, #555)",
    "info": "var(--jp-success-color1, #2e7d32)",
    "plain": "var(--jp-ui-font-color1, #333)",
}

__all__ = [
    "WidgetBase",
    "ImagePanel",
    "ImageSource",
    "TraitTypeError",
    "TraitValueError",
    "in_kernel",
    "figure_png",
    "describe",
    "check_image",
    "load_source",
]

MAX_MESSAGE = 300
"""Error messages of the widgets stay below this many characters."""


class TraitTypeError(T.TraitError, TypeError):
    """A widget argument or trait value of the wrong type; the message names the parameter and what it got."""


class TraitValueError(T.TraitError, ValueError):
    """A widget argument or trait value of the right type but not allowed (a choice not offered, a bad shape)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_repr(value, limit: int = 40) -> str:
    """``repr`` of a str or number, cut to about ``limit`` characters (a long value is cut before repr)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value)} characters)"
    try:
        return _clip(repr(value), limit)
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
        return f"the numpy {value.dtype} {_short_repr(value.item())}"
    if isinstance(value, (int, float, complex)):
        return f"the {type(value).__name__} {_short_repr(value)}"
    if isinstance(value, str):
        return f"the str {_short_repr(value)}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {type(value).__name__} of length {len(value)}"
    if mod.startswith("PIL") and hasattr(value, "mode") and hasattr(value, "size"):
        return f"a PIL image, mode {value.mode}, size {value.size}"
    if isinstance(value, os.PathLike):
        return f"the path {_short_repr(os.fspath(value))}"
    return _clip(f"an object of type {mod + '.' if mod and mod != 'builtins' else ''}{type(value).__qualname__}", 80)


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
            raise TraitValueError(_clip(f"{label}: {got} is a folder, not an image file", MAX_MESSAGE))
        if not exists and not (samples and _is_sample(value)):
            what = "no such file or sample name" if samples else "no such file"
            hint = "; see cnnwidgets.datasets.list_samples()" if samples else ""
            raise TraitValueError(_clip(f"{label}: {what}: {got}{hint}", MAX_MESSAGE))
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
    raise TraitTypeError(_clip(f"{label}: expected {kinds}; got {got}", MAX_MESSAGE))


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


def _short_trait_error(obj, name: str, value, exc: Exception):
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
            choices = _clip(", ".join(repr(v) for v in trait.values), 160)
            kinds = {type(v) for v in trait.values}
            cls = TraitValueError if type(value) in kinds else TraitTypeError
            return cls(_clip(f"{label} must be one of {choices}; got {got}", MAX_MESSAGE))
        klass = getattr(trait, "klass", None)
        if isinstance(klass, type) and isinstance(value, klass):  # a list (dict, …) with a wrong element
            orig = str(exc)
            orig = orig.replace(f"The '{name}' trait of a {type(obj).__name__} instance ", f"{label} ")
            if label in orig and "\n" not in orig and "array(" not in orig and len(orig) < MAX_MESSAGE:
                return TraitTypeError(orig)
            return TraitTypeError(
                f"{label}: an element of {got} has the wrong type (expected {_clip(trait.info(), 80)})"
            )
        cls = (
            TraitValueError if isinstance(trait, (T.Int, T.Float)) and _in_range_error(trait, value) else TraitTypeError
        )
        info = _clip(trait.info().replace("a unicode string", "a str"), 120)
        hint = " (pass array.tolist())" if isinstance(value, np.ndarray) and isinstance(trait, T.List) else ""
        return cls(_clip(f"{label} must be {info}; got {got}{hint}", MAX_MESSAGE))
    validators = getattr(obj, "_trait_validators", {})
    # the type is right, so a @validate refused the value
    if isinstance(exc, T.TraitError) and (name in validators or hasattr(obj, f"_{name}_validate")):
        msg = str(exc)
        return TraitValueError(_clip(msg if name in msg else f"{label}: {msg}", MAX_MESSAGE))
    return None


def in_kernel() -> bool:
    """True when running inside an IPython kernel (a notebook), where updates run in the background."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class ImagePanel(W.VBox):
    """A titled image shown from a NumPy array, sent to the browser as PNG bytes.

    Parameters
    ----------
    title : str
        Caption above the image.
    width : int
        Display width in CSS pixels (the image keeps its aspect ratio).
    format : {"png", "jpeg"}
        Encoding sent to the browser. JPEG (quality 90) encodes photographs several times faster than PNG;
        keep PNG for masks, labels and anything that must stay exact.
    """

    def __init__(self, title: str = "", *, width: int = 256, format: str = "png", **kwargs):
        if format not in ("png", "jpeg"):
            raise ValueError(f"format must be 'png' or 'jpeg', got {format!r}")
        self.format = format
        self._title_text = title
        self.title = W.HTML(f"<b>{html.escape(title)}</b>")
        self.image = W.Image(format=format, layout=W.Layout(width=f"{width}px", height="auto", object_fit="contain"))
        self.array = None
        super().__init__([self.title, self.image], **kwargs)
        self.add_class("cnnw-panel")
        self._describe()

    def show(self, array, *, rescale: bool = False):
        """Display an H×W or H×W×C array (any dtype :func:`cnnwidgets.io.to_uint8` takes)."""
        from ..io import to_uint8

        arr = np.asarray(array)
        if rescale:
            arr = to_uint8(arr, rescale=True)
        self.array = arr
        if self.format == "jpeg":
            from ..io import to_jpeg_bytes

            self.image.value = to_jpeg_bytes(arr)
        else:
            self.image.value = to_png_bytes(arr)
        self._describe()

    def set_title(self, title: str):
        self._title_text = title
        self._describe()

    def _describe(self):
        """The image's text alternative, in the title line for screen readers (not shown): what the picture is."""
        if self.array is None:
            self.alt = f"{self._title_text or 'image'} (not computed yet)"
        else:
            h, w = self.array.shape[:2]
            kind = "colour" if self.array.ndim == 3 and self.array.shape[2] >= 3 else "grey-level"
            self.alt = f"{self._title_text or 'image'}: {kind} image, {w} by {h} pixels"
        self.title.value = (
            f"<b>{html.escape(self._title_text)}</b><span class='cnnw-alt' style='position:absolute;left:-10000px;"
            f"width:1px;height:1px;overflow:hidden'>{html.escape(self.alt)}</span>"
        )


def _label(control, name: str) -> None:
    """Give a control without a visible label a text one (its ``tooltip``, the accessible name): the trait's name."""
    if (
        isinstance(control, W.DOMWidget)
        and not isinstance(control, W.Box)
        and not getattr(control, "description", "")
        and not control.tooltip
    ):
        control.tooltip = name.replace("_", " ")


def figure_png(fig, *, dpi: int = 80) -> bytes:
    """Render a Matplotlib figure to PNG bytes and close it (Agg backend, no pyplot state)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class WidgetBase(W.VBox):
    """Base class of the cnnwidgets widgets.

    Traits
    ------
    status : str
        The status line's text ("" when all is well).
    code : str
        The engine call that reproduces what is on screen.
    result : object
        The latest computed result (NumPy array, labels, hits, …).
    """

    status = T.Unicode("")
    code = T.Unicode("")
    result = T.Any(None, allow_none=True)

    #: Run renders on a worker thread when inside a kernel; set False to force synchronous renders.
    background = staticmethod(in_kernel)

    def __init__(self, children=(), *, show_code: bool = False, **kwargs):
        self._base_state()
        self._code_view = W.HTML("", layout=W.Layout(display=None if show_code else "none"))
        self._lock = threading.Lock()
        self._requested = 0
        self._drawn = 0
        self._worker = None
        self._idle = threading.Event()
        self._idle.set()
        self.check_keywords(kwargs)
        super().__init__(list(children) + ([self._code_view] if show_code else []) + [self._status_line], **kwargs)
        self.add_class("cnnw-bench")

    # ----------------------------------------------------------------- argument errors
    def __setattr__(self, name, value):
        try:
            super().__setattr__(name, value)
        except (TraitTypeError, TraitValueError):
            raise
        except (T.TraitError, TypeError, ValueError) as exc:  # Enum's check of an array raises a ValueError
            short = _short_trait_error(self, name, value, exc)
            if short is None:
                raise
            raise short from None

    @contextlib.contextmanager
    def hold_trait_notifications(self):
        """As :meth:`traitlets.HasTraits.hold_trait_notifications`; a value refused when the hold ends (by a
        ``@validate``) raises a short :class:`TraitValueError`."""
        try:
            with super().hold_trait_notifications():
                yield
        except (TraitTypeError, TraitValueError):
            raise
        except T.TraitError as exc:
            raise TraitValueError(_clip(f"{type(self).__name__}: {exc}", MAX_MESSAGE)) from None

    @classmethod
    def check_keywords(cls, kwargs) -> None:
        """Raise a short ``TypeError`` naming the first keyword of ``kwargs`` that is not a trait of the widget."""
        for key in kwargs:
            if not (isinstance(key, str) and not key.startswith("_") and cls.class_traits().get(key) is not None):
                names = [n for n in cls.class_trait_names() if not n.startswith("_")]
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {_short_repr(key)}{hint}")

    def set_traits_from(self, kwargs, *, hold: bool = True) -> None:
        """Set constructor keywords as traits (checked with :meth:`check_keywords` first).

        With ``hold`` the observers run once, after all are set; a bad value raises and sets none of them.
        """
        self.check_keywords(kwargs)
        with self.hold_trait_notifications() if hold else contextlib.nullcontext():
            for key, value in kwargs.items():
                setattr(self, key, value)

    def _base_state(self):
        """Create the status line, the control registry and the quiet guard (once; before or in __init__)."""
        if "_status_line" in self.__dict__:
            return
        self._status_line = W.HTML("", layout=W.Layout(min_height="1.5em"))
        self._status_kind = "info"
        self._quiet_depth = threading.local()
        #: trait name (or binding name) → the control bound to it with :meth:`bind`
        self.controls = {}

    # ----------------------------------------------------------------- status and code
    @property
    def status_kind(self) -> str:
        """Kind of the status line's message: "info", "busy" or "error"."""
        self._base_state()
        return self._status_kind

    def set_status(self, message: str, kind: str = "info"):
        """Show a message in the status line; ``kind`` is "info", "busy" or "error"."""
        self._base_state()
        colour = _STATUS_COLOURS.get(kind, _STATUS_COLOURS["plain"])
        self.status = message
        self._status_kind = kind
        self._status_line.value = f'<span style="color:{colour}">{html.escape(message)}</span>' if message else ""

    # ----------------------------------------------------------------- controls ↔ traits
    @contextlib.contextmanager
    def quiet(self):
        """Within this block, control changes made by the current thread are not taken as user input.

        Tracked per thread: a value the user picks on the kernel thread while a render thread rebuilds a
        control still counts.
        """
        self._base_state()
        depth = getattr(self._quiet_depth, "n", 0)
        self._quiet_depth.n = depth + 1
        try:
            yield
        finally:
            self._quiet_depth.n = depth

    def is_quiet(self) -> bool:
        """True inside :meth:`quiet` on the current thread."""
        self._base_state()
        return getattr(self._quiet_depth, "n", 0) > 0

    def bind(self, control, trait, *, to_control=None, from_control=None, name: str | None = None, attr="value"):
        """Bind ``control.<attr>`` to one trait (or several): the one way controls and traits meet.

        Parameters
        ----------
        control : ipywidgets.Widget
        trait : str or tuple of str
            The trait(s) the control shows.
        to_control : callable, optional
            ``f(widget) -> value`` for the control (default: the trait's value).
        from_control : callable, optional
            ``f(control value) -> {trait: value}`` (default: ``{trait: value}``).
        name : str, optional
            Key in :attr:`controls` (default: the first trait's name).
        attr : str
            The control's attribute (default ``"value"``).

        Notes
        -----
        The trait is the truth. A trait value the control cannot take is kept, and the status line says so;
        a control value the trait rejects is reported the same way and left in the control for the user to
        correct. Nothing is dropped silently.
        """
        traits = (trait,) if isinstance(trait, str) else tuple(trait)
        key = name or traits[0]
        self._base_state()
        self.controls[key] = control
        _label(control, key)

        def push(change=None):
            value = to_control(self) if to_control is not None else getattr(self, traits[0])
            with self.quiet():
                try:
                    if getattr(control, attr) != value:
                        setattr(control, attr, value)
                except (T.TraitError, ValueError, TypeError) as exc:
                    self.set_status(f"{key}: the control cannot show {value!r} ({exc}); the value is kept", "error")

        def pull(change):
            if self.is_quiet():
                return
            new = change["new"]
            try:
                updates = from_control(new) if from_control is not None else {traits[0]: new}
                with self.hold_trait_notifications():
                    for t, v in updates.items():
                        if getattr(self, t) != v:
                            setattr(self, t, v)
            except (T.TraitError, ValueError, TypeError) as exc:  # the control keeps what the user typed
                self.set_status(str(exc) if str(exc).startswith(f"{key}:") else f"{key}: {exc}", "error")

        control.observe(pull, names=attr)
        self.observe(push, names=list(traits))
        push()
        return control

    # ----------------------------------------------------------------- engine calls
    def recipe(self):
        """The :class:`cnnwidgets.engine.calls.Recipe` of the current state, at full resolution."""
        raise NotImplementedError

    def run_full(self, recipe, image):
        """Run ``recipe`` on the full-resolution ``image``; sets ``code`` and ``result`` from it, returns the result."""
        out = recipe(image)
        self.code = recipe.code()
        self.result = out
        return out

    @T.observe("code")
    def _show_code(self, change):
        self._code_view.value = f"<pre style='font-size:11px;margin:0'>{html.escape(change['new'])}</pre>"

    # ----------------------------------------------------------------- updates
    def _render(self):  # pragma: no cover - abstract
        """Compute from the current traits and fill the panels. Runs under error capture."""
        raise NotImplementedError

    def request_update(self, change=None):
        """Ask for a re-render with the current traits; the latest request wins."""
        with self._lock:
            self._requested += 1
            self._idle.clear()
            use_thread = self.background() if callable(self.background) else bool(self.background)
            if use_thread:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._drain, daemon=True)
                    self._worker.start()
                return
        self._drain()

    def _drain(self):
        while True:
            with self._lock:
                target = self._requested
                if target == self._drawn:
                    self._idle.set()
                    self._worker = None if threading.current_thread() is self._worker else self._worker
                    return
            self._render_safely()
            with self._lock:
                self._drawn = target

    def _render_safely(self):
        start = time.perf_counter()
        try:
            self._render()
        except Exception as exc:  # shown to the user; the widget keeps working
            shown = getattr(exc, "error", exc)  # a failed recipe step: its own error
            self.set_status(f"{type(shown).__name__}: {shown}", "error")
            self.last_traceback = traceback.format_exc()
        else:
            self.last_render_seconds = time.perf_counter() - start
            if self._status_kind == "error":
                self.set_status("")

    def wait(self, timeout: float = 60.0) -> WidgetBase:
        """Block until the latest requested update is drawn; returns the widget.

        Raises
        ------
        TimeoutError
            If rendering takes longer than ``timeout`` seconds.
        """
        if not self._idle.wait(timeout):
            raise TimeoutError(f"{type(self).__name__} did not finish updating within {timeout} s")
        return self

    # ----------------------------------------------------------------- full resolution
    def _full_resolution_button(self) -> W.Button:
        """A "Full resolution" button that runs ``self.compute_full()`` and reports in the status line.

        For widgets that draw a display-size preview while controls move; ``compute_full`` must set and
        return ``result`` for the whole image.
        """
        button = W.Button(
            description="Full resolution", icon="expand", tooltip="compute the full-resolution result into .result"
        )

        def clicked(_):
            self.set_status("computing full resolution …", "busy")
            try:
                out = self.compute_full()
            except Exception as exc:
                self.set_status(f"{type(exc).__name__}: {exc}", "error")
                return
            size = f" {out.shape[1]}×{out.shape[0]}" if hasattr(out, "shape") else ""
            self.set_status(f"full-resolution result{size} is in .result")

        button.on_click(clicked)
        return button

    # ----------------------------------------------------------------- input helpers
    def _upload_control(self, on_image, description: str = "Upload image") -> W.FileUpload:
        """A file-upload button that loads the file with :func:`load_image` and calls ``on_image(array)``.

        A bad file shows its name and the reason in the status line.
        """
        upload = W.FileUpload(accept="image/*", multiple=False, description=description)

        def changed(change):
            files = change["new"]
            if not files:
                return
            f = files[0]
            name = f.get("name", "upload")
            try:
                arr = load_image(bytes(f["content"]), mode="keep")
            except Exception as exc:
                self.set_status(f"{name}: {getattr(exc, 'reason', exc)}", "error")
                return
            self.set_status(f"loaded {name} ({arr.shape[1]}×{arr.shape[0]})")
            on_image(arr)

        upload.observe(changed, names="value")
        return upload
