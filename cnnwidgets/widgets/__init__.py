"""Thin ipywidgets/anywidget front ends over :mod:`cnnwidgets.engine`; imported on first use."""

import importlib

_WIDGETS = {
    "FilterDesigner": "filter_designer",
    "ThresholdSegmenter": "threshold_segmenter",
    "LayerVisualizer": "layer_visualizer",
    "ConvolutionPlayground": "playground",
    "TrainingDashboard": "training",
    "SearchBox": "search_box",
    "Pipeline": "pipeline",
    "NeuronPlayground": "neuron",
}

__all__ = sorted(_WIDGETS)


def __getattr__(name: str):
    module = _WIDGETS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
