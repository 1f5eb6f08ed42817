"""TrainingDashboard: train a small CNN with Start/Stop, live loss and accuracy curves, and a confusion matrix.

The training loop is :func:`cnnwidgets.engine.train.fit`; this module only wires traits, buttons and plots.
"""

from __future__ import annotations

import copy
import html

import ipywidgets as W
import numpy as np
import traitlets as T

from .. import datasets
from ..engine import models, train
from ..engine.calls import NO_DATA, Call, Literal, Recipe, Ref, Step
from ._base import WidgetBase, param
from ._inputs import TraitTypeError, TraitValueError, describe
from ._panels import ImagePanel, RunButtons, figure_png

__all__ = ["TrainingDashboard", "curves_figure", "confusion_figure"]

_DATASETS = ("digits", "shapes")


def curves_figure(history_epochs: list, *, epochs: int | None = None):
    """Matplotlib figure of training/validation loss and accuracy per epoch (empty axes before the first epoch)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.2, 2.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    x = [e["epoch"] for e in history_epochs]
    for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(x, [e[key] for e in history_epochs], "o-", color="#1f77b4", label="train")
        val = [(e["epoch"], e[f"val_{key}"]) for e in history_epochs if e.get(f"val_{key}") is not None]
        if val:
            ax.plot(*zip(*val), "s-", color="#d62728", label="validation")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_xlim(0.5, max(epochs or 1, len(x), 1) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if x:
            ax.legend(fontsize=8)
    ax_acc.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, classes, *, title: str = "confusion matrix"):
    """Matplotlib figure of a K×K confusion matrix (rows true class, columns predicted) with counts."""
    from matplotlib.figure import Figure

    k = len(matrix)
    side = min(6.0, 1.6 + 0.38 * k)
    fig = Figure(figsize=(side, side))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ticks = range(k)
    ax.set_xticks(
        ticks, [str(c) for c in classes], fontsize=8, rotation=45 if max(len(str(c)) for c in classes) > 3 else 0
    )
    ax.set_yticks(ticks, [str(c) for c in classes], fontsize=8)
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    ax.set_title(title, fontsize=10)
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                fontsize=7 if k > 8 else 8,
                color="white" if matrix[i, j] > top / 2 else "black",
            )
    fig.tight_layout()
    return fig


class TrainingDashboard(WidgetBase):
    """Train a classifier on a labelled set and watch it learn.

    Start trains from the initial weights; Stop ends training after the current batch. Inside a
    notebook the training runs on a background thread, so the buttons and the curves stay live;
    outside one (scripts, tests) :meth:`start` returns when training is done.

    Parameters
    ----------
    model : str or torch.nn.Module
        A registry name (``"tiny_cnn"``, ``"lenet5"``): a fresh model is created at every Start with
        ``num_classes`` and ``in_chans`` fitted to the dataset, seeded by ``seed``; or a model object,
        which is trained in place and reset to the weights it had when the dashboard was made at every Start.
    dataset : {"digits", "shapes"} or labelled dataset
        A bundled set by name or anything :func:`cnnwidgets.engine.train.fit` accepts.
    **kwargs
        Initial values of the traits below.

    Traits
    ------
    epochs : int
        Passes over the training data.
    lr : float
        Learning rate (Adam).
    batch_size : int
    seed : int
        Seeds the weights (for registry names), the validation split and the shuffling.
    val : float
        Fraction of the dataset held out for the validation curve and the confusion matrix (0 for none;
        the confusion matrix is then computed on the training set).
    schedule : {"cosine", "constant"}
        Learning-rate schedule.
    threads : int or None
        CPU threads torch uses while training (see :func:`~cnnwidgets.engine.train.fit`); the small
        teaching networks train fastest on one. None keeps torch's setting.
    running : bool
        True while training (read it, don't set it).
    result : History
        The last run (:class:`cnnwidgets.engine.train.History`); None before the first.
    code : str
        The engine call that reproduces the run.
    """

    epochs = param(T.Int(4), W.BoundedIntText, feeds=train.fit, min=1, max=500, layout={"width": "150px"})
    lr = param(
        T.Float(5e-3),
        W.FloatLogSlider,
        feeds=train.fit,
        min=-4,
        max=-0.5,
        step=0.1,
        readout_format=".1e",
        continuous_update=False,
        layout={"width": "300px"},
    )
    batch_size = param(T.Int(32), feeds=train.fit)
    seed = param(T.Int(0), feeds=(models.create_model, train.fit))
    val = param(T.Float(0.2), feeds=train.fit)  # 0: no validation split
    schedule = param(T.Enum(("cosine", "constant"), "cosine"), feeds=train.fit)
    threads = param(T.Int(1, allow_none=True), feeds=train.fit)
    running = T.Bool(False)

    def __init__(self, model="tiny_cnn", dataset="digits", **kwargs):
        from ..engine.train import as_imageset

        self.check_keywords(kwargs)
        if not isinstance(model, str) and not callable(getattr(model, "state_dict", None)):
            raise TraitTypeError(
                f"TrainingDashboard: model must be a registry name or a torch.nn.Module; got {describe(model)}"
            )
        self._net_name = model if isinstance(model, str) else None
        self._set_name = dataset if isinstance(dataset, str) else None
        if isinstance(dataset, str):
            if dataset not in _DATASETS:
                raise TraitValueError(
                    f"TrainingDashboard: dataset must be one of {_DATASETS} or a labelled dataset; got {describe(dataset)}"
                )
            dataset = getattr(datasets, dataset)()
        try:
            self.dataset = as_imageset(dataset)
        except (TypeError, ValueError) as exc:
            msg = " ".join(str(exc).split())
            if len(msg) > 200 or "[[" in msg or "array(" in msg:
                msg = f"dataset: cannot read {describe(dataset)} as a labelled dataset"
            raise (ValueError if isinstance(exc, ValueError) else TypeError)(f"TrainingDashboard: {msg}") from None
        self.classes = self.dataset.classes
        self.model = None if self._net_name is not None else model
        self._initial_state = None if self._net_name is not None else copy.deepcopy(model.state_dict())

        self._buttons = RunButtons("train", self.start, self.stop)
        self._bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="220px"))
        self._metrics = W.HTML("")
        self._metrics.add_class("cnnw-train-metrics")
        self.curves = ImagePanel("loss and accuracy", width=620)
        self.curves.add_class("cnnw-train-curves")
        self.confusion = ImagePanel("confusion matrix", width=300)
        self.confusion.add_class("cnnw-train-confusion")
        controls = W.HBox([self._buttons.start, self._buttons.stop, self._bar])
        super().__init__([controls, self._metrics, W.HBox([self.curves, self.confusion])], show_code=True, **kwargs)
        self.add_class("cnnw-training")
        made = self.make_controls()
        controls.children = (made["epochs"], made["lr"], *controls.children)
        self.observe(self._update_code, names=self.parameters())
        self._update_code()
        if self._net_name is not None:
            self._run(train_it=False)  # a bad name fails here, not at the first Start
        self._draw_curves([])
        self.set_status(f"{len(self.dataset.labels)} images, {len(self.classes)} classes — press Start")

    # ----------------------------------------------------------------- code and model
    def _fit_kwargs(self) -> dict:
        kw = self.keywords(train.fit)
        return kw | {
            "val": kw["val"] if kw["val"] > 0 else None,
            "schedule": "cosine" if kw["schedule"] == "cosine" else None,
        }

    def _model_kwargs(self) -> dict:
        images = self.dataset.images
        first = images[0]
        chans = 1 if np.asarray(first).ndim == 2 else 3
        return {"pretrained": False, "num_classes": len(self.classes), "in_chans": chans}

    def recipe(self) -> Recipe:
        """The run as a recipe: ``dataset`` (a bundled set, or the one given), ``model`` (a fresh seeded model, or
        the one given) and ``history = train.fit(model, dataset, ...)``."""
        steps = []
        if self._set_name is not None:
            steps.append(Step("dataset", Call(getattr(datasets, self._set_name), data=NO_DATA)))
        if self._net_name is not None:
            make = Call(
                models.create_model,
                data=Literal(self._net_name),
                **self._model_kwargs(),
                **self.keywords(models.create_model),
            )
            steps.append(Step("model", make))
        steps.append(Step("history", Call(train.fit, Ref("dataset"), data="model", **self._fit_kwargs())))
        return Recipe(tuple(steps))

    def _given(self) -> dict:
        """The recipe's inputs that the dashboard was given as objects: ``{name: what it is}``."""
        given = {}
        if self._set_name is None:
            given["dataset"] = "the labelled set given to the dashboard"
        if self._net_name is None:
            given["model"] = "the dashboard's model, from the weights it had when the dashboard was made"
        return given

    def _update_code(self, change=None):
        self.code = self.recipe().code(result=False, given=self._given())

    def _run(self, *, train_it: bool, hooks=None) -> dict:
        """Run the recipe on the dashboard's dataset (loaded once, when it was made) and, for a given model, on
        that model reset to its initial weights; without ``train_it`` only the model is made."""
        if self._net_name is None:
            self.model.load_state_dict(self._initial_state)
        steps = [s for s in self.recipe().steps if s.name != "dataset" and (train_it or s.name == "model")]
        env = Recipe(tuple(steps)).run(None, inputs={"dataset": self.dataset, "model": self.model}, hooks=hooks)
        self.model = env["model"]
        return env

    # ----------------------------------------------------------------- buttons
    def start(self) -> TrainingDashboard:
        """Train from the initial weights with the current traits (ignored while a run is going)."""
        if self.running:
            return self
        self.running = True
        self._buttons.begin()
        self.set_status("starting…", "busy")
        self.request_update()
        return self

    def stop(self):
        """Ask the running training to end after the current batch."""
        self._buttons.request_stop()
        if self.running:
            self.set_status("stopping after this batch…", "busy")

    # ----------------------------------------------------------------- drawing
    def _draw_curves(self, epochs_done):
        self.curves.image.value = figure_png(curves_figure(epochs_done, epochs=int(self.epochs)))

    def _on_epoch(self, metrics):
        done = self._epochs_so_far
        done.append(metrics)
        self._draw_curves(done)
        self._bar.max = metrics["epochs"]
        self._bar.value = metrics["epoch"]
        self._metrics.value = _metrics_html(metrics)
        self.set_status(f"epoch {metrics['epoch']}/{metrics['epochs']}", "busy")

    def _render(self):
        if not self.running:
            return
        try:
            self._epochs_so_far = []
            self._bar.value = 0
            self._bar.max = int(self.epochs)
            self._draw_curves([])
            self.confusion.image.value = b""
            hooks = {train.fit: {"callback": self._on_epoch, "stop": self._buttons.stop_event, "progress": False}}
            made = self._run(train_it=True, hooks=hooks)
            model, history = made["model"], made["history"]
            if history.confusion is not None:
                matrix, where = history.confusion, "validation set"
            else:
                matrix, where = train.evaluate_classifier(model, self.dataset)["confusion"], "training set"
            self.confusion.image.value = figure_png(confusion_figure(matrix, self.classes, title=""))
            self.confusion.set_title(f"confusion matrix — {where}")
            self.result = history
            last = history.final
            summary = f"{len(history.epochs)} epoch(s) in {history.seconds:.1f} s"
            if last.get("val_accuracy") is not None:
                summary += f", validation accuracy {last['val_accuracy']:.3f}"
            elif last:
                summary += f", training accuracy {last['accuracy']:.3f}"
            self.set_status(("stopped: " if history.stopped else "done: ") + summary)
        finally:
            self.running = False
            self._buttons.end()


def _metrics_html(m: dict) -> str:
    parts = [f"epoch {m['epoch']}/{m['epochs']}", f"loss {m['loss']:.4f}", f"accuracy {m['accuracy']:.3f}"]
    if m.get("val_accuracy") is not None:
        parts += [f"val loss {m['val_loss']:.4f}", f"val accuracy {m['val_accuracy']:.3f}"]
    parts.append(f"{m['seconds']:.1f} s")
    return "<span style='font-family:monospace'>" + html.escape(" · ".join(parts)) + "</span>"
