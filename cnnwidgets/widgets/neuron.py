"""NeuronPlayground: one neuron with two inputs, and a small MLP trained live, on 2-D toy data.

Thin front end over :mod:`cnnwidgets.engine.neurons`: the neuron's weights, bias and activation are traits;
the decision boundary is redrawn as they move, with the formulas and their current numbers. Start trains the
MLP on a background thread (inside a kernel) and redraws its boundary and loss curve as the epochs pass.
"""

from __future__ import annotations

import functools
import html
import threading
import time

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import neurons
from ..engine.calls import Call, Recipe, Step
from ._base import WidgetBase, clean_float, param, slider
from ._panels import ImagePanel, RunButtons, figure_png
from ._plots import line_plot_svg

__all__ = ["NeuronPlayground"]

_GRID = 70  # grid points per side of a decision surface
_PANEL_WIDTH = 320
_REDRAW_SECONDS = (
    0.5  # pause between the end of one redraw of the MLP's boundary and the next (and after the last epoch)
)
_FORMULAS = {
    "step": "a = step(z) = 1 if z > 0 else 0",
    "sigmoid": "a = σ(z) = 1 / (1 + e^(−z))",
    "tanh": "a = tanh(z)",
    "relu": "a = max(0, z)",
    "linear": "a = z",
}


_SLIDER = {"continuous_update": True, "layout": {"width": "320px"}, "style": {"description_width": "70px"}}

_slider = functools.partial(slider, **_SLIDER)  # a slider in this widget's width (a call's options win)


def _n(value: float) -> str:
    """A number for a formula: two decimals, negative ones in parentheses."""
    return f"({value:.2f})" if value < 0 else f"{value:.2f}"


def boundary_figure(surface, extent, data, *, title: str = "", boundary: float = 0.5):
    """A Matplotlib figure: ``surface`` (R×R, top row = largest x2) as colours, its ``boundary`` level as a line,
    and the labelled points of ``data`` (:class:`~cnnwidgets.engine.neurons.ToyData`) on top."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.4, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(surface, extent=extent, cmap="RdBu_r", alpha=0.55, aspect="auto", interpolation="bilinear")
    ys = np.linspace(extent[3], extent[2], surface.shape[0])
    xs = np.linspace(extent[0], extent[1], surface.shape[1])
    if surface.min() < boundary < surface.max():
        ax.contour(xs, ys, surface, levels=[boundary], colors="k", linewidths=1.5)
    for label, colour in ((0, "#1f4e9c"), (1, "#b2182b")):
        pts = data.points[data.labels == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=9, c=colour, edgecolors="white", linewidths=0.3, label=f"class {label}")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


class NeuronPlayground(WidgetBase):
    """One neuron and a small multilayer perceptron on XOR, moons or circles.

    Parameters
    ----------
    **kwargs
        Initial values of the traits below.

    Traits
    ------
    dataset : {"xor", "moons", "circles"}
    points, noise, seed
        As in :func:`cnnwidgets.engine.neurons.toy_data` (``n``, ``noise``, ``seed``).
    w1, w2, bias : float
        The neuron's weights and bias: ``z = w1 x1 + w2 x2 + b``.
    activation : {"step", "sigmoid", "tanh", "relu", "linear"}
        The neuron's activation ``a = f(z)``.
    layers, units : int
        Hidden layers of the MLP and units per layer.
    mlp_activation : {"tanh", "relu", "sigmoid"}
    epochs : int
    lr : float
        Adam learning rate.
    running : bool
        True while the MLP trains (read it, don't set it).
    result : dict
        ``data`` (ToyData), ``neuron`` (NeuronOutput on the data), ``history`` (MLPHistory of the last run, None
        before the first Start; it belongs to the data it was trained on).
    code : str
        The engine calls that reproduce ``data``, ``neuron`` and ``history``.
    """

    dataset = param(
        T.Enum(neurons.TOY_DATA, "xor"),
        W.Dropdown,
        feeds=neurons.toy_data,
        keyword="kind",
        description="data",
        layout={"width": "200px"},
    )
    points = param(T.Int(200))
    noise = _slider(0.1, 0.0, 0.5, 0.02, feeds=neurons.toy_data)
    seed = param(T.Int(0), W.IntText, feeds=(neurons.toy_data, neurons.train_mlp), layout={"width": "160px"})
    w1 = _slider(1.0, -5, 5, 0.1, description="w₁")
    w2 = _slider(1.0, -5, 5, 0.1, description="w₂")
    bias = _slider(0.0, -5, 5, 0.1, feeds=neurons.neuron, description="b")
    activation = param(T.Enum(neurons.ACTIVATIONS, "sigmoid"), W.Dropdown, feeds=neurons.neuron, style=_SLIDER["style"])
    layers = _slider(1, 1, 3)
    units = _slider(8, 1, 16)
    mlp_activation = param(
        T.Enum(("tanh", "relu", "sigmoid"), "tanh"),
        W.Dropdown,
        feeds=neurons.train_mlp,
        keyword="activation",
        description="activation",
        style=_SLIDER["style"],
    )
    epochs = param(T.Int(300), W.BoundedIntText, feeds=neurons.train_mlp, min=1, max=5000, layout={"width": "160px"})
    lr = _slider(0.05, 0.005, 0.5, 0.005, feeds=neurons.train_mlp)
    running = T.Bool(False)

    def __init__(self, **kwargs):
        self._history = None
        self._pictured = None  # the data and neuron calls the pictures show
        self._trainer = None
        c = self.make_controls()
        c["dataset"].add_class("cnnw-neuron-data")
        c["w1"].add_class("cnnw-neuron-w1")
        self.formula = W.HTML("")
        self.formula.add_class("cnnw-neuron-formula")
        self.neuron_panel = ImagePanel("one neuron: decision boundary z = 0", width=_PANEL_WIDTH)
        self.neuron_panel.add_class("cnnw-neuron-panel")

        self._buttons = RunButtons("neuron", self.start, self.stop)
        self.mlp_panel = ImagePanel("MLP: press Start", width=_PANEL_WIDTH)
        self.mlp_panel.add_class("cnnw-neuron-mlp")
        self.loss_curve = W.HTML("", layout=W.Layout(width=f"{_PANEL_WIDTH}px"))
        self.loss_curve.add_class("cnnw-neuron-loss")
        self.mlp_info = W.HTML("")
        self.mlp_info.add_class("cnnw-neuron-mlp-info")

        neuron_box = W.VBox(
            [W.HTML("<b>one neuron, two inputs</b>"), c["w1"], c["w2"], c["bias"], c["activation"], self.formula]
            + [self.neuron_panel]
        )
        mlp_box = W.VBox(
            [
                W.HTML("<b>multilayer perceptron</b>: 2 inputs → hidden layers → 1 output"),
                c["layers"],
                c["units"],
                c["mlp_activation"],
                W.HBox([c["epochs"], self._buttons.start, self._buttons.stop]),
                c["lr"],
                self.mlp_info,
                self.mlp_panel,
                self.loss_curve,
            ]
        )
        top = W.HBox([c["dataset"], c["noise"], c["seed"]])
        super().__init__([top, W.HBox([neuron_box, mlp_box])], show_code=True)
        self.add_class("cnnw-neuron-playground")
        self.set_traits_from(kwargs)
        self.observe(self._parameter_changed, names=self.parameters())
        self.request_update()

    # ----------------------------------------------------------------- engine calls
    def data_call(self) -> Call:
        return Call(neurons.toy_data, data=int(self.points), **self.keywords(neurons.toy_data))

    def neuron_call(self) -> Call:
        return Call(
            neurons.neuron,
            data="data",
            weights=[clean_float(self.w1), clean_float(self.w2)],
            **self.keywords(neurons.neuron),
        )

    def mlp_call(self) -> Call:
        return Call(
            neurons.train_mlp,
            data="data",
            hidden=[int(self.units)] * int(self.layers),
            **self.keywords(neurons.train_mlp),
        )

    def recipe(self) -> Recipe:
        """Data, the neuron on it, and the MLP's training: what ``result`` and ``code`` hold."""
        return Recipe(
            (Step("data", self.data_call()), Step("neuron", self.neuron_call()), Step("history", self.mlp_call()))
        )

    def _update_code(self):
        self.code = self.recipe().code(result=False)

    def _parameter_changed(self, change=None):
        """Redraw when the data's or the neuron's call changed; a parameter that reaches only the MLP's training
        changes the code, and the pictures stay."""
        if (self.data_call(), self.neuron_call()) != self._pictured:
            self.request_update()
        else:
            self._update_code()

    # ----------------------------------------------------------------- the neuron
    def _render(self):
        data = self.data_call().apply(None)
        out = self.neuron_call()({"data": data})
        grid, extent = neurons.grid_points(data, resolution=_GRID)
        surface_out = self.neuron_call()({"data": grid})
        surface = surface_out.a.reshape(_GRID, _GRID)
        level = {"step": 0.5, "sigmoid": 0.5}.get(self.activation, 0.0)
        title = f"accuracy {out.accuracy:.2f} — a = f(w·x + b)"
        self.neuron_panel.image.value = figure_png(boundary_figure(surface, extent, data, title=title, boundary=level))
        self.formula.value = self._formula_html(data, out)
        history = self._history if self._history is not None and self._history[0] == self.data_call() else None
        self._pictured = (self.data_call(), self.neuron_call())
        self._data = data
        self._update_code()
        self.result = {"data": data, "neuron": out, "history": None if history is None else history[1]}

    def _formula_html(self, data, out) -> str:
        w1, w2, b = float(self.w1), float(self.w2), float(self.bias)
        x1, x2 = (float(v) for v in data.points[0])
        lines = [
            "z = w₁·x₁ + w₂·x₂ + b",
            f"  = {_n(w1)}·x₁ + {_n(w2)}·x₂ + {_n(b)}",
            _FORMULAS[self.activation],
            f"first point x = ({x1:.2f}, {x2:.2f}), class {int(data.labels[0])}:",
            f"  z = {_n(w1)}·{_n(x1)} + {_n(w2)}·{_n(x2)} + {_n(b)} = {float(out.z[0]):.3f}",
            f"  a = f(z) = {float(out.a[0]):.3f} → class {int(out.predicted[0])}",
            f"accuracy on all {len(data.labels)} points: {out.accuracy:.3f}",
        ]
        return "<pre style='font-size:12px;margin:0'>" + html.escape("\n".join(lines)) + "</pre>"

    # ----------------------------------------------------------------- the MLP
    def start(self) -> NeuronPlayground:
        """Train the MLP on the current data (ignored while a run is going); in a kernel it runs in the background."""
        if self.running:
            return self
        self.running = True
        self._buttons.begin()
        use_thread = self.background() if callable(self.background) else bool(self.background)
        if use_thread:
            self._trainer = threading.Thread(target=self._train, daemon=True)
            self._trainer.start()
        else:
            self._train()
        return self

    def stop(self):
        """Ask the running training to end after the current epoch."""
        self._buttons.request_stop()

    def _train(self):
        try:
            self.wait()
            key = self.data_call()
            data = key.apply(None)
            call = self.mlp_call()
            grid, extent = neurons.grid_points(data, resolution=_GRID)
            losses, last_draw = [], [0.0]

            def draw(model, title):
                surface = neurons.mlp_probability(model, grid).reshape(_GRID, _GRID)
                self.mlp_panel.image.value = figure_png(boundary_figure(surface, extent, data, title=title))
                self.mlp_panel.set_title(f"MLP {call.keywords()['hidden']}: boundary p = 0.5")
                top = float(f"{max(losses) * 1.05:.2g}") if losses else 1.0
                self.loss_curve.value = line_plot_svg(
                    np.arange(1, len(losses) + 1) if len(losses) > 1 else [0, 1],
                    losses if len(losses) > 1 else [0, 0],
                    width=_PANEL_WIDTH - 10,
                    x_label="epoch — training loss (binary cross-entropy)",
                    y_range=(0.0, top),
                )

            def on_epoch(m):
                losses.append(m["loss"])
                self.mlp_info.value = (
                    f"<span style='font-family:monospace'>epoch {m['epoch']}/{m['epochs']} · loss {m['loss']:.4f}"
                    f" · accuracy {m['accuracy']:.3f}</span>"
                )
                if time.perf_counter() - last_draw[0] >= _REDRAW_SECONDS:
                    draw(m["model"], f"epoch {m['epoch']}: accuracy {m['accuracy']:.2f}")
                    last_draw[0] = time.perf_counter()

            self.set_status("training…", "busy")
            kw = call.keywords()
            history = neurons.train_mlp(data, callback=on_epoch, stop=self._buttons.stop_event, **kw)
            draw(history.model, f"{len(history.losses)} epochs: accuracy {history.accuracy:.2f}")
            self._history = (key, history)
            self.set_status(
                ("stopped" if history.stopped else "done")
                + f": {len(history.losses)} epochs in {history.seconds:.1f} s, accuracy {history.accuracy:.3f}"
            )
            result = dict(self.result or {})
            if key == self.data_call():
                result["history"] = history
            self.result = result
        except Exception as exc:  # shown to the user; the widget keeps working
            self.set_status(f"{type(exc).__name__}: {exc}", "error")
        finally:
            self.running = False
            self._buttons.end()
