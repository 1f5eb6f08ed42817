import os

import pytest

# Tests compute on the CPU unless CNNWIDGETS_DEVICE says otherwise, with few threads on small machines.
os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
