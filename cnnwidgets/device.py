"""The one place that decides where computation runs.

Every module asks here for the torch device and for FAISS GPU use; nothing else
reads ``CNNWIDGETS_DEVICE`` or probes CUDA.

Policy
------
1. The environment variable ``CNNWIDGETS_DEVICE`` wins (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
2. Otherwise CUDA when torch sees a GPU.
3. Otherwise the CPU.

That is :func:`get_device`, the torch device of models, training and text encoders (it imports torch: its
answer is a ``torch.device``).

The classical engine (enhance, segment, the classical descriptors) asks :func:`compute_device` instead, which
decides by the input and imports no torch for NumPy work on the CPU:

1. A torch tensor is computed with torch, on the device ``CNNWIDGETS_DEVICE`` names when it is set, else on the
   tensor's own device; the result is a tensor on the input's device.
2. NumPy arrays and PIL images are computed with NumPy/SciPy (OpenCV where faster) on the CPU, unless
   ``CNNWIDGETS_DEVICE`` names another device than the CPU (``"cuda"``, ``"cuda:1"``, ``"mps"``): then torch is
   imported and computes there, and the result comes back as NumPy. CUDA is not probed for NumPy input (the
   probe imports torch, some 500 MB, and a display-size image gains nothing from the round trip).

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
    "compute_device",
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


def _names_cpu(choice: str) -> bool:
    c = choice.strip().lower()
    return c == "cpu" or c.startswith("cpu:")


def compute_device(array=None):
    """Where the classical engine computes on ``array``: ``None`` for NumPy on the CPU, else a ``torch.device``.

    Parameters
    ----------
    array : object, optional
        The engine function's input: a torch tensor (recognised by its type's module, without importing torch),
        or anything else (NumPy, PIL, None: NumPy work).

    Returns
    -------
    torch.device or None
        For a tensor: the device ``CNNWIDGETS_DEVICE`` names, else the tensor's own. For anything else: None
        (NumPy on the CPU) unless ``CNNWIDGETS_DEVICE`` names a device other than the CPU.

    Raises
    ------
    ValueError
        As :func:`get_device`, when ``CNNWIDGETS_DEVICE`` names an invalid or unavailable device.
    """
    choice = os.environ.get(ENV_VAR, "").strip()
    if type(array).__module__.startswith("torch"):
        return get_device() if choice else array.device
    if not choice or _names_cpu(choice):
        return None
    dev = get_device()  # a non-CPU device is named: torch has to answer (and validates the name)
    return None if dev.type == "cpu" else dev


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
    """One line saying which device, FAISS mode and CPU thread count are in use, for status lines.

    Before torch is imported (a session of the classical widgets), it says so instead of importing it to ask.
    """
    choice = os.environ.get(ENV_VAR, "").strip()
    if "torch" not in sys.modules and (not choice or _names_cpu(choice)):
        return (
            f"classical engine: NumPy on the CPU; torch not loaded (models choose CUDA or the CPU when they load); "
            f"CPU threads: {cpu_threads()}"
        )
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


_in_force: list = []  # thread counts of the open threads() blocks, innermost last


def cpu_threads() -> int:
    """Threads each CPU library computes with: inside a :func:`threads` block its count, else ``CNNWIDGETS_THREADS``,
    else ``OMP_NUM_THREADS``, else the cores.

    Raises
    ------
    ValueError
        If ``CNNWIDGETS_THREADS`` is set to anything but a positive integer.
    """
    if _in_force:
        return _in_force[-1]
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
# and torch, whose thread pools are set once it is imported
_POLICY_MODULES = (*_BLAS_MODULES, "torch")


def apply_thread_policy() -> int:
    """Set torch, FAISS, BLAS and OpenCV thread counts from :func:`cpu_threads`; return the count.

    torch intra-op, FAISS/OpenMP and every BLAS library loaded in the process (OpenBLAS of numpy, SciPy, OpenCV,
    FAISS, through ``threadpoolctl``) get :func:`cpu_threads`; OpenCV gets one thread (it runs inside decode and
    descriptor threads that already use the cores); torch's inter-op pool one (where it can still be set).
    ONNX Runtime sessions read :func:`cpu_threads` when they are made. torch's pools are set when torch is
    imported (this imports no torch). Acts only when the count changed since the last call, or torch or a
    module that brings its own BLAS was imported since.
    """
    n = cpu_threads()
    state = (n, frozenset(m for m in _POLICY_MODULES if m in sys.modules))
    if _applied and _applied[0] == state:
        return n
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
        with contextlib.suppress(RuntimeError):  # only possible before torch's first parallel work
            torch.set_num_interop_threads(1)
    faiss = sys.modules.get("faiss")  # set once it is imported (the state above notices it): importing it here
    if faiss is not None:  # would load FAISS and its CUDA libraries into kernels that never search
        with contextlib.suppress(AttributeError):
            faiss.omp_set_num_threads(n)
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
    _applied[:] = [(n, frozenset(m for m in _POLICY_MODULES if m in sys.modules))]
    return n


@contextlib.contextmanager
def threads(n: int | None = None):
    """Compute with ``n`` threads inside the block: torch's intra-op pool (if torch is loaded), FAISS/OpenMP (if
    FAISS is loaded) and every loaded BLAS library; the counts they had are restored after it. Inside the block
    :func:`cpu_threads` is ``n``, so ONNX Runtime sessions and decode pools made there use ``n`` threads too.

    The one place besides :func:`apply_thread_policy` that sets thread counts: training, FAISS training on small
    samples and the Ray actor use it. The counts are process-wide, like the libraries' own settings.

    Parameters
    ----------
    n : int, optional
        A positive number of threads; :func:`cpu_threads` when omitted.

    Yields
    ------
    int
        The thread count in force.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.
    """
    if n is None:
        n = cpu_threads()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads: n must be a positive integer, got {n!r}")
    torch = sys.modules.get("torch")
    faiss = sys.modules.get("faiss")
    old_torch = torch.get_num_threads() if torch is not None else None
    old_faiss = faiss.omp_get_max_threads() if faiss is not None else None
    limits = None
    try:
        import threadpoolctl

        limits = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass
    if torch is not None:
        torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    _in_force.append(n)
    try:
        yield n
    finally:
        _in_force.pop()
        if torch is not None:
            torch.set_num_threads(old_torch)
        if faiss is not None:
            faiss.omp_set_num_threads(old_faiss)
        if limits is not None:
            limits.restore_original_limits()
