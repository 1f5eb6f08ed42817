"""The one place that decides where computation runs.

Every module asks here for the torch device and for FAISS GPU use; nothing else
reads ``CNNWIDGETS_DEVICE`` or probes CUDA.

Policy
------
1. The environment variable ``CNNWIDGETS_DEVICE`` wins (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
2. Otherwise CUDA when torch sees a GPU.
3. Otherwise the CPU.

FAISS uses a GPU only when the chosen torch device is CUDA *and* the installed
FAISS build reports at least one GPU.

Threads
-------
One thread count, :func:`cpu_threads`, serves every CPU library: torch's intra-op pool, ONNX Runtime sessions,
FAISS (OpenMP) and the BLAS libraries loaded in the process (numpy's, SciPy's, OpenCV's and FAISS's OpenBLAS, set
through ``threadpoolctl``) compute with that many threads; OpenCV, which runs beside them on decode threads, with
one; torch's inter-op pool with one. So the libraries never stack their pools on the same cores.

1. The environment variable ``CNNWIDGETS_THREADS`` wins (a positive integer).
2. Otherwise ``OMP_NUM_THREADS`` when it is set (the usual way to quiet a shared machine).
3. Otherwise the cores this process may run on.

:func:`apply_thread_policy` sets it (the engine calls it before inference and index builds; it is cheap to
call again, and acts again only when the count changed).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

ENV_VAR = "CNNWIDGETS_DEVICE"
THREADS_ENV_VAR = "CNNWIDGETS_THREADS"

__all__ = [
    "ENV_VAR",
    "THREADS_ENV_VAR",
    "get_device",
    "faiss_gpu_available",
    "describe",
    "cpu_cores",
    "cpu_threads",
    "apply_thread_policy",
]


def get_device(device=None):
    """Return the torch device to compute on.

    Parameters
    ----------
    device : str or torch.device, optional
        An explicit choice; it wins over the environment and the defaults.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested device string is not a valid torch device, or asks for
        CUDA on a machine without it.
    """
    import torch

    choice = device if device is not None else os.environ.get(ENV_VAR, "").strip() or None
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{ENV_VAR}/device={choice!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was requested but CUDA is not available on this machine")
    return dev


@functools.lru_cache(maxsize=1)
def _faiss_num_gpus() -> int:
    try:
        import faiss
    except ImportError:
        return 0
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def faiss_gpu_available() -> bool:
    """Whether FAISS indexes should live on a GPU.

    True only when :func:`get_device` picks CUDA and FAISS was built with GPU
    support and sees at least one GPU.
    """
    try:
        if get_device().type != "cuda":
            return False
    except ValueError:
        return False
    return _faiss_num_gpus() > 0


def describe() -> str:
    """One line saying which device, FAISS mode and CPU thread count are in use, for status lines."""
    dev = get_device()
    return f"torch device: {dev}; FAISS GPU: {'yes' if faiss_gpu_available() else 'no'}; CPU threads: {cpu_threads()}"


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _positive_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a positive integer") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r} is not a positive integer")
    return value


def cpu_threads() -> int:
    """Threads each CPU library computes with: ``CNNWIDGETS_THREADS``, else ``OMP_NUM_THREADS``, else the cores.

    Raises
    ------
    ValueError
        If ``CNNWIDGETS_THREADS`` is set to anything but a positive integer.
    """
    explicit = _positive_int(THREADS_ENV_VAR)
    if explicit is not None:
        return explicit
    try:
        omp = _positive_int("OMP_NUM_THREADS")
    except ValueError:
        omp = None
    return omp if omp is not None else cpu_cores()


_applied: list = []  # what was last applied: (thread count, BLAS-carrying modules then loaded), one entry

# modules whose import loads a BLAS library of its own: when one appears, the BLAS limit is applied again
_BLAS_MODULES = ("numpy", "scipy", "cv2", "faiss", "sklearn")


def apply_thread_policy() -> int:
    """Set torch, FAISS, BLAS and OpenCV thread counts from :func:`cpu_threads`; return the count.

    torch intra-op, FAISS/OpenMP and every BLAS library loaded in the process (OpenBLAS of numpy, SciPy, OpenCV,
    FAISS, through ``threadpoolctl``) get :func:`cpu_threads`; OpenCV gets one thread (it runs inside decode and
    descriptor threads that already use the cores); torch's inter-op pool one (where it can still be set).
    ONNX Runtime sessions read :func:`cpu_threads` when they are made. Acts only when the count changed since
    the last call, or a module that brings its own BLAS was imported since.
    """
    n = cpu_threads()
    state = (n, frozenset(m for m in _BLAS_MODULES if m in sys.modules))
    if _applied and _applied[0] == state:
        return n
    import torch

    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # only possible before torch's first parallel work
        torch.set_num_interop_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except (ImportError, AttributeError):
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass
    _applied[:] = [(n, frozenset(m for m in _BLAS_MODULES if m in sys.modules))]
    return n
