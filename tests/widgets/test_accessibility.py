"""Accessibility basics: every control has a label, every image panel a text alternative saying what it shows."""

import html

import ipywidgets as W
import numpy as np
import pytest

from cnnwidgets import ConvolutionPlayground, FilterDesigner, SearchBox, ThresholdSegmenter, datasets
from cnnwidgets.index import ImageIndex
from cnnwidgets.widgets._panels import ImagePanel


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _search_box():
    paths = [f"/set/{n}.png" for n in ("a", "b", "c")]
    return SearchBox(ImageIndex.from_vectors(paths, {"cnn": np.eye(3, 8, dtype=np.float32)}), k=2)


WIDGETS = {
    "FilterDesigner": lambda: FilterDesigner(datasets.sample("camera")),
    "ThresholdSegmenter": lambda: ThresholdSegmenter(datasets.sample("coins")),
    "ConvolutionPlayground": ConvolutionPlayground,
    "SearchBox": _search_box,
}


@pytest.mark.parametrize("name", sorted(WIDGETS))
def test_every_control_has_a_label(name):
    widget = WIDGETS[name]()
    assert widget.controls
    for key, control in widget.controls.items():
        if not isinstance(control, W.DOMWidget) or isinstance(control, W.Box):
            continue  # a box (tabs, a kernel grid) is named by the labels of the controls inside it
        label = getattr(control, "description", "") or control.tooltip
        assert label, (name, key)


def test_image_panels_describe_what_they_show():
    panel = ImagePanel("filter mask")
    assert panel.alt == "filter mask (not computed yet)"
    panel.show(np.zeros((20, 30), np.uint8))
    assert panel.alt == "filter mask: grey-level image, 30 by 20 pixels"
    panel.set_title("result")
    panel.show(np.zeros((20, 30, 3), np.uint8))
    assert panel.alt == "result: colour image, 30 by 20 pixels"


def test_every_image_of_a_widget_has_a_text_alternative():
    w = FilterDesigner(datasets.sample("camera"))
    w.wait()
    panels = [c for c in _walk(w) if isinstance(c, ImagePanel)]
    assert len(panels) >= 3
    assert all("pixels" in p.alt and p.alt in html.unescape(p.title.value) for p in panels), [p.alt for p in panels]
