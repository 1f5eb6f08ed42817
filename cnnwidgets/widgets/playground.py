"""ConvolutionPlayground: convolution, activation and pooling worked out step by step.

The arithmetic lives in :mod:`cnnwidgets.engine.layers` (``conv2d_steps``, ``activate``,
``activation_grad``, ``pool2d_steps``); this module only shows it.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import layers as L
from ..engine.calls import Call, Recipe, Step
from ._base import WidgetBase, param, slider
from ._panels import figure_png

_NARROW = {"width": "140px"}

__all__ = ["ConvolutionPlayground", "parse_grid", "format_grid"]

DEFAULT_IMAGE = [[3, 0, 1, 2], [1, 5, 8, 9], [2, 7, 2, 5], [0, 1, 3, 1]]
DEFAULT_KERNEL = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]
DEFAULT_POOL_INPUT = [[1, 3, 2, 1], [0, 4, 6, 2], [3, 1, 0, 0], [5, 2, 1, 7]]

_CELL = "border:1px solid var(--jp-border-color1,#999);padding:2px 6px;text-align:right;font-family:monospace;min-width:2.5em"
_HIGHLIGHT = "background:#ffe08a;color:#000"  # a fixed pair: readable in light and dark themes
_DONE = "background:#d7ecd9;color:#000"


def parse_grid(text: str, *, name: str = "grid") -> list[list[float]]:
    """Parse rows separated by ``;`` or newlines, numbers by spaces or commas, into a rectangular list."""
    rows = [r for r in (row.replace(",", " ").split() for row in text.replace(";", "\n").splitlines()) if r]
    if not rows:
        raise ValueError(f"{name}: empty; write rows like '1 0 -1; 2 0 -2'")
    try:
        grid = [[float(v) for v in r] for r in rows]
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if len({len(r) for r in grid}) != 1:
        raise ValueError(f"{name}: rows have different lengths {[len(r) for r in grid]}")
    return grid


def _num(v: float) -> str:
    return f"{v:g}" if abs(v - round(v)) > 1e-9 or abs(v) >= 1e6 else str(int(round(v)))


def format_grid(grid) -> str:
    """Inverse of :func:`parse_grid`."""
    return "; ".join(" ".join(_num(float(v)) for v in row) for row in grid)


def _table(a, *, highlight=None, done=None, fmt=_num, css_class="") -> str:
    """HTML table of a 2-D array; ``highlight``/``done`` are boolean masks."""
    rows = []
    for i, row in enumerate(np.asarray(a, dtype=float)):
        cells = []
        for j, v in enumerate(row):
            style = _CELL
            if highlight is not None and highlight[i, j]:
                style += ";" + _HIGHLIGHT
            elif done is not None and done[i, j]:
                style += ";" + _DONE
            cells.append(f'<td style="{style}">{html.escape(fmt(v))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css_class}" style="border-collapse:collapse;margin:4px">' + "".join(rows) + "</table>"


def _block(title: str, body: str) -> str:
    return f'<div style="display:inline-block;vertical-align:top;margin-right:14px"><b>{html.escape(title)}</b>{body}</div>'


class ConvolutionPlayground(WidgetBase):
    """Convolution, activation and pooling on tiny arrays, one step at a time.

    Traits
    ------
    image, kernel : list of lists of float
        The input (default 4×4) and the kernel (default 3×3); edit them in the text boxes
        as ``"1 0 -1; 1 0 -1; 1 0 -1"``.
    stride, padding : int
    step : int
        Which sliding-window position is explained (0-based, row by row).
    activation : {"relu", "prelu", "elu", "sigmoid", "tanh"}
    alpha : float
        PReLU slope / ELU α.
    x : float
        The point where f(x) and f'(x) are read off.
    pool_input : list of lists of float
        The map to pool (non-negative for stochastic pooling).
    pool_mode : {"max", "mean", "stochastic"}
    pool_size : int
    seed : int
        Seed of stochastic pooling.
    pool_step : int

    ``result`` is a dict with ``conv`` (:class:`cnnwidgets.engine.layers.ConvSteps`),
    ``activated`` (the activation applied to the convolution output), ``fx``/``dfx`` at ``x``,
    and ``pool`` (:class:`cnnwidgets.engine.layers.PoolSteps`).
    """

    # grids and window steps: their text boxes and sliders are bound in __init__
    image = param(T.List(T.List(T.Float()), default_value=DEFAULT_IMAGE))
    kernel = param(T.List(T.List(T.Float()), default_value=DEFAULT_KERNEL))
    stride = param(T.Int(1), W.BoundedIntText, feeds=L.conv2d_steps, min=1, max=4, layout=_NARROW)
    padding = param(T.Int(0), W.BoundedIntText, feeds=L.conv2d_steps, min=0, max=3, layout=_NARROW)
    step = param(T.Int(0))
    activation = param(T.Enum(sorted(L.ACTIVATIONS), default_value="relu"), W.Dropdown)
    alpha = slider(0.25, 0.0, 2.0, 0.05)
    x = slider(-1.0, -5, 5, 0.1)
    pool_input = param(T.List(T.List(T.Float()), default_value=DEFAULT_POOL_INPUT))
    pool_mode = param(
        T.Enum(["max", "mean", "stochastic"], default_value="max"),
        W.Dropdown,
        feeds=L.pool2d_steps,
        keyword="mode",
        description="pooling",
    )
    pool_size = param(
        T.Int(2),
        W.BoundedIntText,
        feeds=L.pool2d_steps,
        keyword="size",
        description="size",
        min=1,
        max=4,
        layout=_NARROW,
    )
    seed = param(T.Int(0), W.BoundedIntText, feeds=L.pool2d_steps, min=0, max=10**6, layout={"width": "160px"})
    pool_step = param(T.Int(0))

    def __init__(self, **kwargs):
        self._t_image = W.Text(description="image", layout=W.Layout(width="340px"), continuous_update=False)
        self._t_kernel = W.Text(description="kernel", layout=W.Layout(width="340px"), continuous_update=False)
        c = self.make_controls()
        self._s_step = W.IntSlider(value=0, min=0, max=3, description="step")
        self._s_step.add_class("cnnw-conv-step")
        self.conv_view = W.HTML()
        self.conv_view.add_class("cnnw-conv-view")

        self.act_plot = W.Image(format="png", layout=W.Layout(width="360px"))
        self.act_view = W.HTML()

        self._t_pool = W.Text(description="map", layout=W.Layout(width="340px"), continuous_update=False)
        self._s_pstep = W.IntSlider(value=0, min=0, max=3, description="window")
        self.pool_view = W.HTML()
        self.pool_view.add_class("cnnw-pool-view")

        conv_tab = W.VBox(
            [
                W.HBox([self._t_image, self._t_kernel]),
                W.HBox([c["stride"], c["padding"], self._s_step]),
                self.conv_view,
            ]
        )
        act_tab = W.VBox([W.HBox([c["activation"], c["alpha"], c["x"]]), W.HBox([self.act_plot, self.act_view])])
        pool_tab = W.VBox(
            [W.HBox([self._t_pool, c["pool_mode"]]), W.HBox([c["pool_size"], c["seed"], self._s_pstep]), self.pool_view]
        )
        self.tabs = W.Tab([conv_tab, act_tab, pool_tab])
        for i, t in enumerate(("convolution", "activation", "pooling")):
            self.tabs.set_title(i, t)
        super().__init__([self.tabs])
        self.add_class("cnnw-playground")

        for box, trait in ((self._t_image, "image"), (self._t_kernel, "kernel"), (self._t_pool, "pool_input")):
            self.bind(
                box,
                trait,
                to_control=lambda w, t=trait: format_grid(getattr(w, t)),
                from_control=lambda v, t=trait: {t: parse_grid(v, name=t)},
            )
        for control, trait in ((self._s_step, "step"), (self._s_pstep, "pool_step")):
            self.bind(control, trait, to_control=lambda w, c=control, t=trait: _within_max(c, getattr(w, t)))
        self.observe(self._changed, names=self.parameters())
        self.set_traits_from(kwargs)
        if not kwargs:
            self.request_update()

    # ----------------------------------------------------------------- controls ↔ traits
    def _counts(self, image=None, kernel=None, stride=None, padding=None, pool_input=None, pool_size=None):
        """Number of convolution windows and of pooling windows for the current (or given) settings."""
        img = np.array(self.image if image is None else image)
        k = np.array(self.kernel if kernel is None else kernel)
        s = self.stride if stride is None else stride
        p = self.padding if padding is None else padding
        pin = np.array(self.pool_input if pool_input is None else pool_input)
        ps = self.pool_size if pool_size is None else pool_size
        if img.ndim != 2 or k.ndim != 2 or pin.ndim != 2:
            return 1, 1
        conv = max(0, (img.shape[0] + 2 * p - k.shape[0]) // s + 1) * max(
            0, (img.shape[1] + 2 * p - k.shape[1]) // s + 1
        )
        pool = max(0, (pin.shape[0] - ps) // ps + 1) * max(0, (pin.shape[1] - ps) // ps + 1)
        return max(conv, 1), max(pool, 1)

    @T.validate("step", "pool_step")
    def _clamp_step(self, proposal):
        n_conv, n_pool = self._counts()
        n = n_conv if proposal["trait"].name == "step" else n_pool
        return min(max(int(proposal["value"]), 0), n - 1)

    @T.validate("image", "kernel", "pool_input")
    def _rectangular(self, proposal):
        grid = proposal["value"]
        if not grid or len({len(r) for r in grid}) != 1 or not grid[0]:
            raise T.TraitError(f"{proposal['trait'].name} must be a non-empty rectangular list of rows")
        return grid

    def _changed(self, change):
        if change["name"] in ("image", "kernel", "stride", "padding", "pool_input", "pool_size"):
            n_conv, n_pool = self._counts()
            self._s_step.max, self._s_pstep.max = n_conv - 1, n_pool - 1
            if self.step > n_conv - 1:
                self.step = n_conv - 1
            if self.pool_step > n_pool - 1:
                self.pool_step = n_pool - 1
        self.request_update()

    # ----------------------------------------------------------------- rendering
    def recipe(self) -> Recipe:
        """Convolution, activation of its output, and pooling: what ``result`` and ``code`` come from."""
        alpha = {"alpha": self.alpha} if self.activation in ("prelu", "elu") else {}
        conv = Call(L.conv2d_steps, self.kernel, data=self.image, **self.keywords(L.conv2d_steps))
        pool = Call(L.pool2d_steps, data=self.pool_input, **self.keywords(L.pool2d_steps))
        return Recipe(
            (
                Step("conv", conv),
                Step("activated", Call(L.activate, self.activation, data="conv.output", **alpha)),
                Step("pool", pool),
            )
        )

    def _render(self):
        recipe = self.recipe()
        env = recipe.run(None)
        conv, activated, pool = env["conv"], env["activated"], env["pool"]
        step = min(max(self.step, 0), len(conv.steps) - 1)
        pstep = min(max(self.pool_step, 0), len(pool.steps) - 1)

        self.conv_view.value = self._conv_html(conv, step)
        fx = float(L.activate(np.array([self.x]), self.activation, alpha=self.alpha)[0])
        dfx = float(L.activation_grad(np.array([self.x]), self.activation, alpha=self.alpha)[0])
        self.act_plot.value = self._act_png(fx, dfx)
        self.act_view.value = (
            _block(f"f(x) = {self.activation}", f"<div>f({self.x:g}) = {fx:.4g}<br>f′({self.x:g}) = {dfx:.4g}</div>")
            + _block("convolution output", _table(conv.output))
            + _block(f"after {self.activation}", _table(activated, fmt=lambda v: f"{v:.3g}"))
        )
        self.pool_view.value = self._pool_html(pool, pstep)

        self.code = recipe.code(result=False)
        self.result = {
            "conv": conv,
            "activated": activated,
            "fx": fx,
            "dfx": dfx,
            "pool": pool,
            "step": conv.steps[step],
            "pool_step": pool.steps[pstep],
        }
        self.set_status(
            f"convolution step {step + 1} of {len(conv.steps)}: output[{conv.steps[step].row}, "
            f"{conv.steps[step].col}] = {conv.steps[step].value:g}"
        )

    def _conv_html(self, conv, step):
        s = conv.steps[step]
        kh, kw = conv.kernel.shape
        win = np.zeros(conv.padded.shape, bool)
        win[s.top : s.top + kh, s.left : s.left + kw] = True
        done = np.zeros(conv.output.shape, bool)
        for t in conv.steps[:step]:
            done[t.row, t.col] = True
        here = np.zeros(conv.output.shape, bool)
        here[s.row, s.col] = True
        shown = np.where(done | here, conv.output, np.nan)
        paren = lambda v: f"({_num(v)})" if v < 0 else _num(v)  # noqa: E731
        terms = " + ".join(f"{paren(a)}·{paren(k)}" for a, k in zip(s.window.ravel(), conv.kernel.ravel()))
        title = "input (zero-padded)" if self.padding else "input"
        return (
            _block(title, _table(conv.padded, highlight=win))
            + _block("kernel", _table(conv.kernel))
            + _block("window × kernel", _table(s.products))
            + _block("output", _table(shown, highlight=here, done=done, fmt=lambda v: "" if np.isnan(v) else _num(v)))
            + f"<div style='font-family:monospace;margin:4px'>output[{s.row}, {s.col}] = {html.escape(terms)}"
            f" = <b>{_num(s.value)}</b></div>"
        )

    def _pool_html(self, pool, pstep):
        s = pool.steps[pstep]
        a = np.array(self.pool_input, dtype=float)
        size = self.pool_size
        win = np.zeros(a.shape, bool)
        win[s.top : s.top + size, s.left : s.left + size] = True
        here = np.zeros(pool.output.shape, bool)
        here[s.row, s.col] = True
        parts = [_block("input", _table(a, highlight=win)), _block("output", _table(pool.output, highlight=here))]
        if self.pool_mode == "stochastic" and s.probabilities is not None:
            parts.append(_block("p = a / Σa", _table(s.probabilities, fmt=lambda v: f"{v:.2f}")))
        if self.pool_mode == "max":
            how = f"max of the window = {_num(s.value)}"
        elif self.pool_mode == "mean":
            how = f"mean = ({' + '.join(_num(v) for v in s.window.ravel())}) / {s.window.size} = {s.value:.4g}"
        elif s.chosen is None:
            how = "all-zero window → 0"
        else:
            how = f"sampled position {s.chosen} (p = {s.probabilities[s.chosen]:.2f}) → {_num(s.value)}"
        return (
            "".join(parts)
            + f"<div style='font-family:monospace;margin:4px'>window {pstep + 1}: {html.escape(how)}</div>"
        )

    def _act_png(self, fx, dfx):
        from matplotlib.figure import Figure

        xs = np.linspace(-5, 5, 401)
        fig = Figure(figsize=(4.2, 2.6))
        ax = fig.add_subplot()
        ax.plot(xs, L.activate(xs, self.activation, alpha=self.alpha), label="f(x)")
        ax.plot(xs, L.activation_grad(xs, self.activation, alpha=self.alpha), "--", label="f′(x)")
        ax.plot([self.x], [fx], "o", color="C0")
        ax.plot([self.x], [dfx], "o", color="C1")
        ax.axhline(0, color="#aaa", lw=0.5)
        ax.axvline(0, color="#aaa", lw=0.5)
        ax.legend(fontsize=8)
        ax.set_title(self.activation, fontsize=9)
        ax.tick_params(labelsize=8)
        return figure_png(fig)


def _within_max(slider, value: int) -> int:
    """Raise a step slider's maximum so it can show ``value``; returns ``value``."""
    if slider.max < value:
        slider.max = value
    return value
