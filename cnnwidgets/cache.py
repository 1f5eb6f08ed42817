"""Where cnnwidgets caches files: one rule for the per-user cache folder and the class's read-only shared caches.

Every cached file of the package lives under :func:`cache_dir`: the ONNX exports of models (``onnx/``), the indexes
of folders searched from the JupyterLab extension (``indexes/``) and the bundled samples written for the launcher
(``samples/``). The folder is private to its user (mode 0o700 when this module creates it): on a shared classroom
server, a student's indexes name the student's files.

A teacher can prepare one cache for a whole class and share it read-only: ``CNNWIDGETS_SHARED_CACHE`` lists such
folders (separated by ``os.pathsep``). Readers look in the user's own cache first, then in each shared one; nothing
is ever written into a shared cache.

This module uses the standard library only, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["CACHE_ENV_VAR", "SHARED_CACHE_ENV_VAR", "cache_dir", "private_dir", "shared_dirs", "find"]

CACHE_ENV_VAR = "CNNWIDGETS_CACHE_DIR"
SHARED_CACHE_ENV_VAR = "CNNWIDGETS_SHARED_CACHE"


def cache_dir() -> Path:
    """The per-user cache folder: ``$CNNWIDGETS_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnwidgets``, else
    ``~/.cache/cnnwidgets``. It may not exist yet (see :func:`private_dir`)."""
    explicit = os.environ.get(CACHE_ENV_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "cnnwidgets"


def private_dir(*parts: str) -> Path:
    """``cache_dir() / parts``, created if missing; a cache folder this call creates is readable by its user only.

    Parameters
    ----------
    *parts : str
        Sub-folders, such as ``"onnx"`` or ``"indexes"``.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    OSError
        If the folder cannot be created (a read-only home, a full disk).
    """
    root = cache_dir()
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another kernel made it meanwhile
            root.mkdir(mode=0o700)
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shared_dirs(*parts: str) -> list[Path]:
    """The existing folders ``<shared cache> / parts`` of ``$CNNWIDGETS_SHARED_CACHE``, in the order it lists them.

    Parameters
    ----------
    *parts : str
        Sub-folders, such as ``"onnx"``.

    Returns
    -------
    list of pathlib.Path
        Folders to read from, never to write into. Empty when the variable is unset.
    """
    out = []
    for entry in os.environ.get(SHARED_CACHE_ENV_VAR, "").split(os.pathsep):
        entry = entry.strip()
        if not entry:
            continue
        folder = Path(entry).expanduser().joinpath(*parts)
        if folder.is_dir() and folder not in out:
            out.append(folder)
    return out


def find(*parts: str) -> Path | None:
    """The first existing ``<cache> / parts``: the user's own cache, then each shared one; None if none has it.

    Parameters
    ----------
    *parts : str
        A path inside a cache, such as ``("onnx", "model.json")``.

    Returns
    -------
    pathlib.Path or None
    """
    for root in [cache_dir(), *shared_dirs()]:
        path = root.joinpath(*parts)
        if path.exists():
            return path
    return None
