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
