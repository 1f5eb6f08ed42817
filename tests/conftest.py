import os
import tempfile

import pytest

# Tests compute on the CPU unless CNNWIDGETS_DEVICE says otherwise, with few threads on small machines.
os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
# ONNX exports go to a folder of this test session, never to the user's cache.
os.environ.setdefault("CNNWIDGETS_CACHE_DIR", tempfile.mkdtemp(prefix="cnnwidgets-test-cache-"))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
