"""LayerVisualizer: what a trained network sees, layer by layer.

The maths lives in :mod:`cnnwidgets.engine.models` and :mod:`cnnwidgets.engine.layers`;
this module only wires traits to panels. One forward pass (capturing every layer) and one
Grad-CAM run per (model, image); switching layers or maps reuses them.
"""

from __future__ import annotations

import hashlib
import html

import ipywidgets as W
import numpy as np
import traitlets as T

from ..datasets import list_samples
from ..engine import layers as L
from ..engine import models as M
from ..engine.calls import IMAGE, Call, Literal, Recipe, RecipeCache, Ref, Step
from ..io import to_png_bytes
from ._base import WidgetBase, param
from ._inputs import ImageSource, load_source
from ._panels import ImagePanel, figure_png
from .browser_widgets import ClickImage

__all__ = ["LayerVisualizer"]

_MOSAIC_SIDE = 480  # feature-map mosaics are upscaled (nearest) to about this many pixels
_HISTOGRAM_BINS = 60
_CAM_ALPHA = 0.45  # weight of the Grad-CAM heatmap over the input
_CACHED_STEPS = 32  # step outputs kept: the forward pass and Grad-CAM of the image, the pictures of recent layers


class LayerVisualizer(WidgetBase):
    """Choose a model and a layer; see its feature maps, kernels, activation histogram,
    the Grad-CAM overlay of the top class and the top-k prediction.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, or a sample name, optional
        Default: the ``chelsea`` sample. The image comes first, as in the other image widgets:
        ``LayerVisualizer(photo, model="tiny_cnn")``.
    model : str, keyword-only
        A name from :func:`cnnwidgets.engine.models.list_models` (default ``"efficientnet_lite0"``).
    **kwargs
        Initial values of the traits below.

    Raises
    ------
    TypeError, ValueError
        A keyword that is no trait, a trait value of the wrong type or not allowed, or an ``image`` that is no
        image source (a short message naming the parameter). An unknown model name, or an image that cannot be
        decoded, shows in the status line instead.

    Traits
    ------
    model : str
    layer : str
        Dotted layer name (:func:`cnnwidgets.engine.layers.layer_names`); "" picks the first conv layer.
    image : object
        Array, path, bytes, PIL image, or the name of a bundled sample.
    channel : int
        The feature map shown enlarged; clicking a map in the mosaic sets it.
    per_map : bool
        Normalise each feature map on its own (True) or all together (False).
    max_maps : int
        At most this many feature maps in the mosaic.
    topk : int
        Classes in the prediction chart.

    ``result`` is a dict: ``layer``, ``shape``, ``channel``, and the outputs of the steps of :meth:`recipe`
    (``code`` is that recipe): ``activation`` (the layer's output for the image), ``maps``, ``mosaic`` (float32
    [0, 1]), ``kernels`` and ``kernel_mosaic`` (conv layers only), ``histogram``, ``topk`` ([(label, p), …]),
    ``cam`` (:class:`cnnwidgets.engine.layers.GradCAM`) and ``overlay``.
    """

    model = param(T.Unicode("efficientnet_lite0"))  # its menu and the layer's are bound in __init__
    layer = param(T.Unicode(""))
    image = ImageSource()
    channel = param(T.Int(0))
    per_map = param(T.Bool(True), W.Checkbox, feeds=L.tile, description="normalise each map", indent=False)
    max_maps = param(T.Int(64), feeds=L.tile)
    topk = param(T.Int(5), feeds=L.top_classes, keyword="k")

    def __init__(self, image=None, *, model: str = "efficientnet_lite0", **kwargs):
        self.check_keywords(kwargs)
        if isinstance(image, str) and image in M.list_models() and image not in list_samples():
            raise TypeError(f"LayerVisualizer: {image!r} is a model name; the image comes first, pass model={image!r}")
        self._steps = RecipeCache(_CACHED_STEPS)
        self._forward_shown = None
        self._geometry = None
        self._array = None
        self._array_key = None

        self._c_model = W.Dropdown(options=M.list_models(), description="model", layout=W.Layout(width="260px"))
        self._c_layer = W.Dropdown(options=[], description="layer", layout=W.Layout(width="340px"))
        self._c_layer.add_class("cnnw-layer-select")
        self._c_sample = W.Dropdown(
            options=["—"] + list_samples(), value="—", description="sample", layout=W.Layout(width="220px")
        )
        upload = self._upload_control(self._uploaded)

        self.input_panel = ImagePanel("input (as the model sees it)", width=224)
        self.cam_panel = ImagePanel("Grad-CAM", width=224)
        self.mosaic = ClickImage(width=_MOSAIC_SIDE)
        self.mosaic.add_class("cnnw-mosaic")
        self._mosaic_title = W.HTML("<b>feature maps</b>")
        self.map_panel = ImagePanel("map", width=224)
        self.kernel_panel = ImagePanel("kernels", width=224)
        self.hist = W.Image(format="png", layout=W.Layout(width="300px"))
        self.bars = W.Image(format="png", layout=W.Layout(width="300px"))
        self.hist.add_class("cnnw-lv-histogram")
        self.bars.add_class("cnnw-topk")

        controls = W.HBox([self._c_model, self._c_layer, self._c_sample, upload])
        left = W.VBox([self._mosaic_title, self.mosaic])
        right = W.VBox([self.map_panel, self.kernel_panel])
        bottom = W.HBox([self.input_panel, self.cam_panel, W.VBox([self.bars, self.hist])])
        super().__init__([controls, W.HBox([left, right]), bottom])
        self.add_class("cnnw-layer-visualizer")

        c_model, c_layer = self._c_model, self._c_layer
        self.bind(c_model, "model", to_control=lambda w: w.model if w.model in c_model.options else c_model.value)
        # the layer list is filled by the render, which also sets the value (inside quiet())
        self.bind(
            c_layer,
            "layer",
            to_control=lambda w: w.layer if w.layer in c_layer.options else c_layer.value,
            from_control=lambda v: {"layer": v} if v else {},
        )
        controls.children += (self.make_controls()["per_map"],)
        self._c_sample.observe(self._sample_picked, names="value")
        self.mosaic.observe(self._mosaic_clicked, names="click")
        self.observe(self._changed, names=[*self.parameters(), "image"])

        with self.hold_trait_notifications():
            self.set_traits_from(kwargs)
            self.model = model
            self.image = "chelsea" if image is None else image

    # ----------------------------------------------------------------- controls → traits
    def _uploaded(self, array):
        self.image = array

    def _sample_picked(self, change):
        if change["new"] != "—":
            self.image = change["new"]

    def _mosaic_clicked(self, change):
        click = change["new"]
        info = self._geometry
        if not click or info is None:
            return
        shape, map_shape, count, cols = info
        i = L.tile_index(
            shape, map_shape, int(click[0] * shape[0]), int(click[1] * shape[1]), columns=cols, count=count
        )
        if i is not None:
            self.channel = i

    @T.validate("max_maps", "topk")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise T.TraitError(f"{proposal['trait'].name} must be ≥ 1, got {proposal['value']}")
        return proposal["value"]

    def _changed(self, change):
        if change["name"] == "image":
            self._array_key = None
        if change["name"] == "model":
            self._steps = RecipeCache(_CACHED_STEPS)  # one model at a time: the last one's forward pass goes
        if change["name"] in ("layer", "model") and self.channel != 0:
            with self.quiet():
                self.channel = 0
        if not self.is_quiet():
            self.request_update()

    # ----------------------------------------------------------------- computing
    def _load(self):
        if self._array_key is None:
            arr = load_source(self.image, mode="rgb")
            self._array = arr
            self._array_key = hashlib.sha1(arr.tobytes()).hexdigest()[:16] + str(arr.shape)
            self._steps = RecipeCache(_CACHED_STEPS)  # one image at a time: the forward pass of the last one goes
        return self._array, self._array_key

    def _layer(self, net) -> tuple[str, list[str]]:
        """The layer shown (the trait's, or the first conv layer) and the model's layer names."""
        names = L.layer_names(net)
        if self.layer in names:
            return self.layer, names
        return next((n for n in names if L.layer_kind(net.get_submodule(n)) == "conv"), names[0]), names

    def recipe(self) -> Recipe:
        """The model, one forward pass, the layer's activation and its pictures, top-k and Grad-CAM.

        Steps: ``model``, ``forward`` (every layer, :func:`~cnnwidgets.engine.layers.capture`), ``activation``,
        ``maps``, ``mosaic``, ``kernels`` and ``kernel_mosaic`` (conv layers only), ``histogram``, ``topk``,
        ``cam`` and ``overlay``. The forward pass and Grad-CAM do not depend on the layer, so switching layers
        reuses them.
        """
        name = self.model
        if name not in M.list_models():
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(M.list_models())}")
        net = M.shared_model(name)
        layer, _ = self._layer(net)
        steps = [
            Step("model", Call(M.shared_model, data=Literal(name))),
            Step("forward", Call(L.capture, Ref(IMAGE), data="model", output=True)),
            Step("activation", Call(L.layer_output, layer, data="forward")),
            Step("maps", Call(L.as_maps, data="activation")),
        ]
        steps.append(Step("mosaic", Call(L.tile, data="maps", **self.keywords(L.tile))))
        if L.layer_kind(net.get_submodule(layer)) == "conv":
            steps.append(Step("kernels", Call(L.kernels, layer, data="model")))
            steps.append(Step("kernel_mosaic", Call(L.kernel_mosaic, data="kernels")))
        steps += [
            Step("histogram", Call(L.histogram, data="activation", bins=_HISTOGRAM_BINS)),
            Step("topk", Call(L.top_classes, Ref("forward.logits"), data="model", **self.keywords(L.top_classes))),
            Step("cam", Call(L.grad_cam, Ref(IMAGE), data="model")),
            Step("overlay", Call(L.heatmap_overlay, Ref("cam.heatmap"), data="cam.image", alpha=_CAM_ALPHA)),
        ]
        return Recipe(tuple(steps))

    def _run(self, recipe: Recipe) -> dict:
        arr, key = self._load()
        return recipe.run(arr, input_keys={IMAGE: key}, cache=self._steps)

    def _render(self):
        name = self.model
        recipe = self.recipe()
        net = M.shared_model(name)
        layer, names = self._layer(net)
        with self.quiet():
            if list(self._c_layer.options) != names:
                self._c_layer.options = names
            self._c_layer.value = layer
            self.layer = layer

        forward_key = ("forward", name, self._load()[1])
        if forward_key != self._forward_shown:
            self.set_status(f"running {name} …", "busy")
        env = self._run(recipe)
        self._forward_shown = forward_key
        act, maps, mosaic = env["activation"], env["maps"], env["mosaic"]
        shown = min(len(maps), self.max_maps)
        cols = int(np.ceil(np.sqrt(shown)))
        self._geometry = (mosaic.shape, maps.shape[1:], shown, cols)
        self.mosaic.value = to_png_bytes(
            np.clip(np.rint(L.enlarge(mosaic, _MOSAIC_SIDE) * 255), 0, 255).astype(np.uint8)
        )
        self._mosaic_title.value = (
            f"<b>{html.escape(layer)}</b> — output {' × '.join(map(str, act.shape))}"
            f" ({shown} of {len(maps)} maps shown; click one to enlarge)"
        )

        ch = min(max(self.channel, 0), len(maps) - 1)
        self.map_panel.set_title(f"map {ch}")
        self.map_panel.show(L.enlarge(L.normalize(maps[ch]), 224))

        kern = env.get("kernels")
        if kern is not None:
            picture = env["kernel_mosaic"]
            title = f"kernels {' × '.join(map(str, kern.shape))}"
            if kern.shape[2:] == (1, 1):  # 1×1 kernels: the weight matrix, laid out wide
                title += " (weight matrix, out × in)"
                if picture.shape[0] > picture.shape[1]:
                    picture, title = picture.T, title.replace("out × in", "in × out")
            self.kernel_panel.set_title(title)
            self.kernel_panel.show(L.enlarge(picture, 224))
            self.kernel_panel.layout.display = None
        else:
            self.kernel_panel.layout.display = "none"

        self.hist.value = self._hist_png(env["histogram"], layer)
        top, cam = env["topk"], env["cam"]
        self.bars.value = self._bars_png(top)
        self.input_panel.show(cam.image if cam.image.shape[2] == 3 else np.repeat(cam.image, 3, axis=2))
        self.cam_panel.set_title(f"Grad-CAM: {cam.label} ({cam.probability:.0%}) at {cam.layer}")
        self.cam_panel.show(env["overlay"])

        self.code = recipe.code(result=False)
        self.result = {
            "layer": layer,
            "shape": tuple(act.shape),
            "channel": ch,
            "kernels": None,
            **{step.name: env[step.name] for step in recipe.steps if step.name not in ("model", "forward")},
        }
        self.set_status(f"{name}: {len(names)} layers; top-1 {top[0][0]} ({top[0][1]:.0%})")

    @staticmethod
    def _hist_png(hist, layer):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 2.2))
        ax = fig.add_subplot()
        ax.stairs(hist.counts, hist.edges, fill=True, color="#3b6ea8")
        ax.set_yscale("log")
        ax.set_title(f"activations of {layer}", fontsize=9)
        ax.tick_params(labelsize=8)
        return figure_png(fig)

    @staticmethod
    def _bars_png(top):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 0.45 * len(top) + 0.6))
        ax = fig.add_subplot()
        labels = [t[0] for t in top][::-1]
        ax.barh(range(len(top)), [t[1] for t in top][::-1], color="#e07b39")
        ax.set_yticks(range(len(top)), labels, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_title("top-k prediction", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        return figure_png(fig)
