import pytest
import torch

from cnnwidgets import device


def test_env_var_wins(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cpu")
    assert device.get_device() == torch.device("cpu")


def test_explicit_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cuda" if not torch.cuda.is_available() else "cpu")
    assert device.get_device("cpu") == torch.device("cpu")


def test_default_follows_cuda(monkeypatch):
    monkeypatch.delenv(device.ENV_VAR, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.get_device().type == expected


def test_bad_device_string(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "banana")
    with pytest.raises(ValueError, match="banana"):
        device.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_requested_without_cuda(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        device.get_device()
    assert device.faiss_gpu_available() is False


def test_faiss_gpu_follows_torch_device(monkeypatch):
    import faiss

    monkeypatch.setenv(device.ENV_VAR, "cpu")
    assert device.faiss_gpu_available() is False
    monkeypatch.delenv(device.ENV_VAR)
    want = torch.cuda.is_available() and faiss.get_num_gpus() > 0
    assert device.faiss_gpu_available() is want
    assert "torch device" in device.describe()


def test_thread_policy_env_override(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(device.THREADS_ENV_VAR, raising=False)
    assert device.cpu_threads() == device.cpu_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device.cpu_threads() == 1
    monkeypatch.setenv(device.THREADS_ENV_VAR, "3")
    assert device.cpu_threads() == 3  # CNNWIDGETS_THREADS wins over OMP_NUM_THREADS
    old = torch.get_num_threads()
    try:
        monkeypatch.setenv(device.THREADS_ENV_VAR, "1")
        assert device.apply_thread_policy() == 1
        assert torch.get_num_threads() == 1
        import faiss

        assert faiss.omp_get_max_threads() == 1
    finally:
        monkeypatch.delenv(device.THREADS_ENV_VAR)
        monkeypatch.delenv("OMP_NUM_THREADS")
        device.apply_thread_policy()
        torch.set_num_threads(old)
    monkeypatch.setenv(device.THREADS_ENV_VAR, "zero")
    with pytest.raises(ValueError, match=device.THREADS_ENV_VAR):
        device.cpu_threads()


def test_thread_policy_sets_blas_threads(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS)

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    assert blas_threads(), "no BLAS library found in the process"
    old = torch.get_num_threads()
    try:
        for n in (1, 2):
            monkeypatch.setenv(device.THREADS_ENV_VAR, str(n))
            assert device.apply_thread_policy() == n
            assert set(blas_threads().values()) == {n}, blas_threads()
            a = np.random.default_rng(0).standard_normal((300, 300))
            assert np.allclose(a @ np.linalg.inv(a), np.eye(300), atol=1e-8)  # BLAS still computes right
        threadpoolctl.threadpool_limits(limits=2, user_api="blas")  # changed behind the policy's back
        monkeypatch.setenv(device.THREADS_ENV_VAR, "1")
        assert device.apply_thread_policy() == 1
        assert set(blas_threads().values()) == {1}
    finally:
        monkeypatch.delenv(device.THREADS_ENV_VAR)
        device.apply_thread_policy()
        torch.set_num_threads(old)


def test_blas_loaded_after_the_policy_follows_it_at_the_next_call():
    pytest.importorskip("threadpoolctl")
    import os
    import subprocess
    import sys

    code = (
        "import threadpoolctl\n"
        "from cnnwidgets import device\n"
        "device.apply_thread_policy()\n"
        "import scipy.linalg\n"
        "device.apply_thread_policy()\n"
        "print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}))\n"
        "print(sum('scipy' in i['filepath'] for i in threadpoolctl.threadpool_info()))\n"
    )
    env = {**os.environ, device.THREADS_ENV_VAR: "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    threads, scipy_libs = out.stdout.split()
    assert threads == "[1]" and int(scipy_libs) >= 1


def test_describe_does_not_import_torch_to_answer():
    import subprocess
    import sys

    code = "import sys; from cnnwidgets import device; print(device.describe()); print('torch' in sys.modules)"
    for choice in (None, "cpu"):
        env = {k: v for k, v in __import__("os").environ.items() if k != device.ENV_VAR}
        env.update({device.ENV_VAR: choice} if choice else {})
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
        line, imported = out.strip().splitlines()
        assert imported == "False" and "NumPy on the CPU" in line and "CPU threads" in line


def test_threads_sets_and_restores_torch_faiss_and_blas():
    import faiss
    import threadpoolctl
    import torch

    from cnnwidgets import device

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    with device.threads(1) as n:
        assert n == 1
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
        blas = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(t == 1 for t in blas)
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
    with pytest.raises(ValueError, match="positive integer"), device.threads(0):
        pass


def test_threads_is_what_cpu_threads_says_inside_the_block(monkeypatch):
    """ONNX Runtime sessions and decode pools made inside a ``threads`` block (the Ray actor's) read its count."""
    from cnnwidgets import device

    monkeypatch.setenv(device.THREADS_ENV_VAR, "3")
    with device.threads(1):
        assert device.cpu_threads() == 1
        with device.threads(2):
            assert device.cpu_threads() == 2
        assert device.cpu_threads() == 1
    assert device.cpu_threads() == 3


def test_only_device_sets_thread_counts():
    """Thread counts are set in cnnwidgets.device alone (``threads`` and ``apply_thread_policy``)."""
    from pathlib import Path

    import cnnwidgets

    root = Path(cnnwidgets.__file__).parent
    setters = ("set_num_threads(", "omp_set_num_threads(", "threadpool_limits(", "environ[THREADS_ENV_VAR]")
    found = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in root.rglob("*.py")
        if path.name != "device.py"
        for line in path.read_text(encoding="utf-8").splitlines()
        if any(s in line for s in setters) and not line.lstrip().startswith(("#", '"', "``"))
    ]
    assert not found, found
