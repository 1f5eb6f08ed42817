"""What every widget shares: a status line, ``result`` and ``code``, latest-value-wins updates,
image panels and an upload control. No maths here.

Controls
--------
A parameter is declared once, as a class attribute made by :func:`param`: its trait, the control that shows it
and the engine functions whose keyword it is. :meth:`WidgetBase.make_controls` makes and binds those controls,
:meth:`WidgetBase.keywords` gives a recipe's keyword arguments, :meth:`WidgetBase.parameters` their names.
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
import inspect
import itertools
import threading
import time
import traceback

import ipywidgets as W
import traitlets as T

from ..io import load_image
from ._inputs import MAX_MESSAGE, TraitTypeError, TraitValueError, clip_text, short_repr, short_trait_error

# Status line colours: JupyterLab's theme variables (so the line reads in light and dark themes), with fallbacks
# for front ends without them.
_STATUS_COLOURS = {
    "error": "var(--jp-error-color1, #b00020)",
    "busy": "var(--jp-ui-font-color2, #555)",
    "info": "var(--jp-success-color1, #2e7d32)",
    "plain": "var(--jp-ui-font-color1, #333)",
}

__all__ = ["WidgetBase", "in_kernel", "param", "slider", "clean_float"]


def clean_float(value: float) -> float:
    """A slider's float with 12 significant digits, so ``0.15000000000000002`` runs and reads as ``0.15``."""
    return float(f"{float(value):.12g}")


_DECLARED = itertools.count()  # the order parameters are declared in


def param(trait: T.TraitType, control=None, *, feeds=(), keyword: str | None = None, **options) -> T.TraitType:
    """A widget parameter, declared once: the trait, the control that shows it and the keyword it feeds.

    Parameters
    ----------
    trait : traitlets.TraitType
        The trait (its type, default and bounds): the truth.
    control : type, optional
        An ipywidgets control class; :meth:`WidgetBase.make_controls` makes it with ``description`` (default: the
        trait's name) and ``options``, and binds it to the trait. None: the parameter has no control of its own.
    feeds : callable or tuple of callables
        The engine functions whose keyword argument the parameter is (:meth:`WidgetBase.keywords`).
    keyword : str, optional
        The keyword's name when it is not the trait's (the trait ``kmeans_seed`` feeds ``seed``).
    **options
        Keyword arguments of the control (``min``, ``max``, ``step``, ``layout`` as a dict, …).

    Returns
    -------
    traitlets.TraitType
        ``trait``, tagged with the declaration.
    """
    feeds = feeds if isinstance(feeds, tuple) else (feeds,)
    return trait.tag(parameter=next(_DECLARED), control=control, control_options=options, feeds=feeds, keyword=keyword)


def slider(default: float, low: float, high: float, step: float | None = None, **declaration) -> T.TraitType:
    """A parameter shown as a slider: :func:`param` of an ``Int`` trait and ``IntSlider`` for an int ``default``,
    of a ``Float`` trait and ``FloatSlider`` otherwise, from ``low`` to ``high`` in steps of ``step``; steps finer
    than 0.01 read out with three decimals.

    Parameters
    ----------
    default, low, high, step : float
        The trait's default; the control's ``min``, ``max`` and ``step`` (None: the control's default step).
    **declaration
        ``feeds``, ``keyword`` and the control's other options, as in :func:`param`.
    """
    whole = isinstance(default, int) and not isinstance(default, bool)
    trait, control = (T.Int(default), W.IntSlider) if whole else (T.Float(default), W.FloatSlider)
    bounds = {"min": low, "max": high} | ({} if step is None else {"step": step})
    if not whole and step is not None and step < 0.01:
        declaration.setdefault("readout_format", ".3f")
    return param(trait, control, **bounds, **declaration)


def in_kernel() -> bool:
    """True when running inside an IPython kernel (a notebook), where updates run in the background."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _label(control, name: str) -> None:
    """Give a control without a visible label a text one (its ``tooltip``, the accessible name): the trait's name."""
    if (
        isinstance(control, W.DOMWidget)
        and not isinstance(control, W.Box)
        and not getattr(control, "description", "")
        and not control.tooltip
    ):
        control.tooltip = name.replace("_", " ")


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
            short = short_trait_error(self, name, value, exc)
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
            raise TraitValueError(clip_text(f"{type(self).__name__}: {exc}", MAX_MESSAGE)) from None

    @classmethod
    def check_keywords(cls, kwargs) -> None:
        """Raise a short ``TypeError`` naming the first keyword of ``kwargs`` that is not a trait of the widget."""
        for key in kwargs:
            if not (isinstance(key, str) and not key.startswith("_") and cls.class_traits().get(key) is not None):
                names = [n for n in cls.class_trait_names() if not n.startswith("_")]
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {short_repr(key)}{hint}")

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

    # ----------------------------------------------------------------- declared parameters
    def parameters(self) -> list[str]:
        """The names of the parameters declared with :func:`param`, in the order they were declared."""
        declared = self.traits(parameter=lambda order: order is not None)
        return sorted(declared, key=lambda name: declared[name].metadata["parameter"])

    def make_controls(self) -> dict:
        """Make and bind the control of every declared parameter that has one; returns ``{name: control}``
        (also in :attr:`controls`). A choice's ``options`` default to its trait's values."""
        made = {}
        for name in self.parameters():
            trait = self.traits()[name]
            make = trait.metadata.get("control")
            if make is None:
                continue
            options = {"description": name, **trait.metadata["control_options"]}
            if isinstance(trait, T.Enum) and "options" not in options:
                options["options"] = list(trait.values)
            made[name] = self.bind(make(**options), name)
        return made

    def keywords(self, fn) -> dict:
        """``{keyword: value}`` of the parameters declared to feed the engine function ``fn``, in the order of its
        signature: the keyword arguments of its call in a recipe (floats through :func:`clean_float`)."""
        out = {}
        for name in self.parameters():
            meta = self.traits()[name].metadata
            if fn in meta["feeds"]:
                value = getattr(self, name)
                out[meta["keyword"] or name] = clean_float(value) if type(value) is float else value
        order = list(inspect.signature(fn).parameters)
        return dict(sorted(out.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))

    # ----------------------------------------------------------------- engine calls
    def recipe(self):
        """The :class:`cnnwidgets.engine.calls.Recipe` of the current state, at full resolution."""
        raise NotImplementedError

    def run_full(self, recipe, image):
        """Run the steps of ``recipe`` that its result needs on the full-resolution ``image`` (not the pictures
        drawn from it); sets ``code`` and ``result`` from it, returns the result."""
        out = recipe.upto(recipe.output)(image)
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
