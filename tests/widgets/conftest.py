"""What a user's hand does to a widget, through ipywidgets' public API: find a control in it, drop a file on it."""

import datetime
import io

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image


def descendants(widget):
    """``widget`` and every widget inside it (through ``children``), depth first."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from descendants(child)


def find_control(widget, kind, **attrs):
    """The first widget of type ``kind`` inside ``widget`` whose attributes have the values ``attrs``."""
    for w in descendants(widget):
        if isinstance(w, kind) and all(getattr(w, k, None) == v for k, v in attrs.items()):
            return w
    raise LookupError(f"no {kind.__name__} with {attrs} in {type(widget).__name__}")


def find_panel(widget, title: str):
    """The image panel inside ``widget`` whose title holds ``title``."""
    for w in descendants(widget):
        if hasattr(w, "array") and title in getattr(getattr(w, "title", None), "value", ""):
            return w
    raise LookupError(f"no image panel titled {title!r} in {type(widget).__name__}")


def drop_file(widget, content, name: str = "upload.png"):
    """Send ``content`` (an image array, written as PNG, or raw bytes) to the first file-upload control of
    ``widget``, as the browser sends a dropped file."""
    if isinstance(content, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(content).save(buf, format="PNG")
        content = buf.getvalue()
    upload = widget if isinstance(widget, W.FileUpload) else find_control(widget, W.FileUpload)
    upload.value = [
        {
            "name": name,
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime(2024, 1, 1),
        }
    ]


@pytest.fixture
def control():
    """:func:`find_control`: ``control(widget, kind, **attrs)``."""
    return find_control


@pytest.fixture
def panel():
    """:func:`find_panel`: ``panel(widget, title)``."""
    return find_panel


@pytest.fixture
def drop():
    """:func:`drop_file`: ``drop(widget, image_or_bytes, name)``."""
    return drop_file
