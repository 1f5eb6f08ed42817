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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole test session: 2 CPUs, no dashboard, a small object store, 127.0.0.1."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'cnnwidgets[ray]')")
    # a loaded machine starts Ray's agents and workers slowly: give them minutes, not seconds
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    os.environ.setdefault("RAY_worker_register_timeout_seconds", "180")
    for attempt in range(3):  # the raylet has 30 s to start, which a loaded machine can miss
        if ray.is_initialized():
            break
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=256 * 1024**2,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                logging_level="warning",
            )
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()
