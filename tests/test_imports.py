"""Import hygiene: the engine never pulls in the widget stack, and the package imports fast."""

import subprocess
import sys

import pytest

ENGINE_MODULES = ["cnnwidgets", "cnnwidgets.engine", "cnnwidgets.io", "cnnwidgets.datasets", "cnnwidgets.device"]


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_does_not_import_widgets(module):
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "import cnnwidgets.engine as e\n"
        "for name in e.__all__:\n"
        "    try: importlib.import_module('cnnwidgets.engine.' + name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != 'cnnwidgets.engine.' + name: raise\n"
        "bad = [m for m in ('ipywidgets', 'traitlets', 'IPython', 'anywidget') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_every_public_name_resolves():
    """Every name in ``cnnwidgets.__all__``, widgets included, and every engine module's ``__all__``."""
    import importlib

    import cnnwidgets
    import cnnwidgets.engine as engine

    for name in cnnwidgets.__all__:
        value = getattr(cnnwidgets, name)
        assert value is not None, name
        if name != "__version__":
            assert callable(value), name
    for module in engine.__all__:
        mod = importlib.import_module(f"cnnwidgets.engine.{module}")
        for name in getattr(mod, "__all__", []):
            assert hasattr(mod, name), f"cnnwidgets.engine.{module}.{name}"
    with pytest.raises(AttributeError):
        _ = cnnwidgets.no_such_name
