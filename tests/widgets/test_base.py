"""The widget base: one binding mechanism (bind + per-thread quiet), errors in the status line."""

import threading

import ipywidgets as W
import traitlets as T

from cnnwidgets.widgets._base import WidgetBase


class _Probe(WidgetBase):
    level = T.Float(0.5)
    name = T.Enum(("a", "b"), "a")

    def __init__(self):
        self.slider = W.FloatSlider(min=0.0, max=1.0)
        self.choice = W.Dropdown(options=["a", "b"])
        self.bind(self.slider, "level")
        self.bind(self.choice, "name")
        super().__init__([self.slider, self.choice])

    def _render(self):
        pass


def test_bind_is_two_way_and_registers_the_control():
    w = _Probe()
    assert w.controls == {"level": w.slider, "name": w.choice}
    assert w.slider.value == 0.5
    w.level = 0.25
    assert w.slider.value == 0.25
    w.slider.value = 0.75
    assert w.level == 0.75


def test_a_value_the_control_cannot_show_is_kept_and_reported():
    w = _Probe()
    w.level = 3.0  # beyond the slider: the slider clamps, the trait keeps the value
    assert w.level == 3.0 and w.slider.value == 1.0
    w.choice.options = ["a"]
    w.name = "b"  # the dropdown has no "b"
    assert w.name == "b" and w.status_kind == "error" and "name" in w.status


def test_a_control_value_the_trait_rejects_shows_in_the_status_line():
    w = _Probe()
    w.choice.options = ["a", "b", "c"]
    w.choice.value = "c"
    assert w.name == "a" and w.status_kind == "error" and "name" in w.status


def test_quiet_is_per_thread():
    w = _Probe()
    seen = []
    with w.quiet():
        assert w.is_quiet()
        t = threading.Thread(target=lambda: seen.append(w.is_quiet()))
        t.start()
        t.join()
        w.slider.value = 0.1  # a change made by code inside quiet() is not user input
    assert seen == [False] and not w.is_quiet()
    assert w.level == 0.5
