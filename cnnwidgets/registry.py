"""The widget registry: every widget kind once, read by the package, the kernel side of the extension and its TypeScript.

One row per kind (:data:`KINDS`) says which class it opens (a lazy ``"module:Class"`` reference, so reading the
table imports no widget and no torch), what an extension tab opens it on, the sample it shows without a file,
its labels in JupyterLab, and how "Open as notebook" writes its first cells and its check. From it come:

- the public widget classes, imported on first use (:data:`CLASSES`, read by ``cnnwidgets`` and
  ``cnnwidgets.widgets``);
- the kinds an extension tab opens (:data:`BENCHES`, read by :mod:`cnnwidgets.lab`);
- ``labextension/src/registry.generated.ts``, the extension's copy of the table and of
  :data:`cnnwidgets.datasets.IMAGE_EXTENSIONS`, written by :func:`typescript`
  (``make`` writes it before building the extension; a test checks the committed file is up to date).

Adding a widget means its module under ``cnnwidgets/widgets/`` and one row here.
"""

from __future__ import annotations

import importlib

__all__ = ["WidgetKind", "KINDS", "BENCHES", "CLASSES", "widget_class", "typescript"]

_WIDGETS = "cnnwidgets.widgets."


class WidgetKind:
    """One widget kind.

    Parameters
    ----------
    kind : str
        The name a request uses ("filter_designer").
    cls : str
        ``"module:Class"`` of the widget class.
    label : str or None
        The extension tab's title; None for a widget the extension does not open.
    on : {"image", "folder", "none"}
        What a tab opens it on: an image file, a folder, or nothing (a bundled sample or no input).
    takes : {"image", "index", None}
        What the class is built on: the image (its first argument), the index of a folder (the folder, the
        image's folder, or the bundled samples for ``on="none"``; an image is then searched for), or nothing.
    sample : str or None
        The bundled sample a tab shows when opened without a file; None: an image kind that needs a file.
    mode : {"keep", "rgb", "opaque"}
        How the image is read (:func:`cnnwidgets.io.load_image`'s ``mode``), in the tab and in its notebook.
    menu : str or None
        The entry in the file browser's "cnnwidgets" menu of images (and Open With), or None.
    launcher : bool
        Whether the launcher (and the command palette) has a card opening it on its sample.
    setup : str
        Notebook lines after the image is read, a :meth:`str.format` template with ``{size}`` (the largest side
        of the widget's ``working_image``).
    check : {"array", "topk", "hits", "regions", "conv", None}
        What the notebook's last cell asserts of the widget's ``result``: the array, the top-k labels and the
        mosaic, the search hits, the regions and their labels, the convolution's stages; None: nothing
        (a result that differs from run to run).
    """

    __slots__ = ("kind", "cls", "label", "on", "takes", "sample", "mode", "menu", "launcher", "setup", "check")

    def __init__(
        self,
        kind,
        cls,
        *,
        label=None,
        on="none",
        takes=None,
        sample=None,
        mode="keep",
        menu=None,
        launcher=False,
        setup="",
        check=None,
    ):
        if on not in ("image", "folder", "none") or takes not in ("image", "index", None):
            raise ValueError(f"{kind}: on={on!r}, takes={takes!r}")
        self.kind, self.cls, self.label, self.on, self.takes = kind, cls, label, on, takes
        self.sample, self.mode, self.menu, self.launcher = sample, mode, menu, launcher
        self.setup, self.check = setup, check

    @property
    def class_name(self) -> str:
        """The class's name: ``"FilterDesigner"``."""
        return self.cls.partition(":")[2]

    def first_lines(self, *, size: int | None = None) -> str:
        """:attr:`setup` filled in with the size the widget works at."""
        return self.setup.format(size=size)

    def __repr__(self) -> str:
        return f"WidgetKind({self.kind!r}, {self.cls!r}, on={self.on!r}, label={self.label!r})"


#: Every widget kind, in the order of the extension's menus and launcher cards.
KINDS: dict[str, WidgetKind] = {
    k.kind: k
    for k in [
        WidgetKind(
            "filter_designer",
            _WIDGETS + "filter_designer:FilterDesigner",
            label="Filter designer",
            on="image",
            takes="image",
            sample="astronaut",
            menu="Filter designer",
            launcher=True,
            mode="opaque",
            check="array",
        ),
        WidgetKind(
            "threshold_segmenter",
            _WIDGETS + "threshold_segmenter:ThresholdSegmenter",
            label="Threshold segmenter",
            on="image",
            takes="image",
            sample="coins",
            menu="Threshold segmenter",
            launcher=True,
            check="array",
        ),
        WidgetKind(
            "layer_visualizer",
            _WIDGETS + "layer_visualizer:LayerVisualizer",
            label="Layer visualizer",
            on="image",
            takes="image",
            sample="chelsea",
            mode="rgb",
            menu="Layer visualizer (classify)",
            launcher=True,
            check="topk",
        ),
        WidgetKind(
            "find_similar",
            _WIDGETS + "search_box:SearchBox",
            label="Find similar images",
            on="image",
            takes="index",
            menu="Find similar images",
            check="hits",
        ),
        WidgetKind(
            "pipeline",
            _WIDGETS + "pipeline:Pipeline",
            label="Pipeline",
            on="image",
            takes="image",
            sample="coins",
            menu="Open in pipeline",
            launcher=True,
            check="regions",
            mode="opaque",
            setup="from cnnwidgets.io import resize_to_fit\n\nimage = resize_to_fit(image, {size})  # the size the Pipeline runs at",
        ),
        WidgetKind(
            "search_folder",
            _WIDGETS + "search_box:SearchBox",
            label="Search images",
            on="folder",
            takes="index",
            check="hits",
        ),
        WidgetKind(
            "convolution_playground",
            _WIDGETS + "playground:ConvolutionPlayground",
            label="Convolution playground",
            launcher=True,
            check="conv",
        ),
        WidgetKind(
            "training_dashboard",
            _WIDGETS + "training:TrainingDashboard",
            label="Training dashboard",
            launcher=True,
        ),
        WidgetKind(
            "search_samples",
            _WIDGETS + "search_box:SearchBox",
            label="Search box",
            takes="index",
            launcher=True,
            check="hits",
        ),
        WidgetKind("neuron_playground", _WIDGETS + "neuron:NeuronPlayground"),
    ]
}

#: The kinds an extension tab opens (those with a tab label).
BENCHES: dict[str, WidgetKind] = {k: w for k, w in KINDS.items() if w.label is not None}

#: Public widget class name → the module that defines it.
CLASSES: dict[str, str] = {w.class_name: w.cls.partition(":")[0] for w in KINDS.values()}


def widget_class(kind: str) -> type:
    """The class of widget kind ``kind`` (its module is imported now)."""
    module, _, name = KINDS[kind].cls.partition(":")
    return getattr(importlib.import_module(module), name)


def typescript() -> str:
    """``labextension/src/registry.generated.ts``: :data:`BENCHES` and the image extensions, for the extension."""
    import json

    from .datasets import IMAGE_EXTENSIONS

    table = {
        k: {"label": w.label, "on": w.on, "sample": w.sample, "menu": w.menu, "launcher": w.launcher}
        for k, w in BENCHES.items()
    }
    return f"""\
// Written by `make` (cnnwidgets.registry.typescript()) from cnnwidgets/registry.py (the one widget table);
// edit that table, not this file. tests/test_lab.py checks that the two agree.

/** What a tab opens a widget on: an image file, a folder, or nothing (a bundled sample, or no input). */
export type BenchInput = 'image' | 'folder' | 'none';

/** A widget kind the extension opens in a tab. */
export interface IWidgetKind {{
  /** the tab's title */
  label: string;
  on: BenchInput;
  /** the bundled sample shown when the tab opens without a file (null: an image kind that needs a file) */
  sample: string | null;
  /** its entry in the file browser's menu of images (and Open With), or null */
  menu: string | null;
  /** whether the launcher and the command palette open it on its sample */
  launcher: boolean;
}}

/** Widget kinds (the requests' `widget`), in the order of the menus and launcher cards. */
export const WIDGETS: {{ readonly [kind: string]: IWidgetKind }} = {json.dumps(table, indent=2)};

/** The file extensions cnnwidgets reads as images (cnnwidgets.datasets.IMAGE_EXTENSIONS). */
export const IMAGE_EXTENSIONS: readonly string[] = {json.dumps(sorted(IMAGE_EXTENSIONS))};
"""
