"""Kernel side of the JupyterLab extension: what a bench tab runs in its own kernel.

The extension (TypeScript in ``labextension/``) computes nothing. For each tab it starts a kernel in the
server's root folder and runs one fixed line::

    from cnnwidgets.lab import open_bench; open_bench("<base64 of a JSON object>")

The JSON object is the request: ``{"widget": "filter_designer", "path": "photos/cat.jpg"}`` (a path relative
to the server's root, as the file browser names it), or ``{"widget": "layer_visualizer", "sample": "chelsea"}``
from the launcher. File names therefore reach Python as data: the source line only ever holds base64
characters, and the path is decoded with :func:`json.loads`. Paths that resolve outside the root (``..``,
absolute paths, symbolic links leading out) are refused with :class:`RefusedPath`.

"Search images in this folder" keeps its index in a per-user cache folder (:func:`cache_dir`), one
sub-folder per resolved folder path, and reuses it while it is up to date (same files, sizes and
modification times); nothing is written into the user's folder. Kernels that share an entry take turns through
its lock, and a damaged entry is reported in one warning and built again (:func:`folder_index`).

"Open as notebook" (:func:`open_as_notebook`) writes a notebook next to the image holding the tab's
``code`` and an assert cell that checks that running it reproduces the tab's ``result``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .cache import cache_dir, private_dir, shared_dirs
from .registry import BENCHES, widget_class

__all__ = [
    "WIDGETS",
    "BenchRequest",
    "RefusedPath",
    "decode_payload",
    "parse_request",
    "resolve_inside",
    "cache_dir",
    "index_folder_for",
    "folder_index",
    "open_bench",
    "open_as_notebook",
    "notebook_for",
    "sample_grid",
]

#: Widget kind → its row of the widget registry, for the kinds a tab opens (label, input, default sample, …).
WIDGETS = BENCHES
#: Bundled samples indexed for the launcher's search box.
SEARCH_SAMPLES = ("chelsea", "coffee", "astronaut", "rocket", "coins", "camera", "horse", "moon")

_PAYLOAD_LIMIT = 64 * 1024

log = logging.getLogger(__name__)


class RefusedPath(ValueError):
    """A request names a path outside the server's root (or one that cannot be a bench's input)."""


@dataclass(frozen=True)
class BenchRequest:
    """A decoded, checked request of the extension.

    Attributes
    ----------
    widget : str
        A key of :data:`WIDGETS`.
    root : pathlib.Path
        The server's root folder (resolved).
    path : pathlib.Path or None
        The resolved image or folder, inside ``root``; None for launcher tabs.
    rel : str or None
        ``path`` relative to ``root`` with "/" separators, as the file browser names it.
    sample : str or None
        Bundled sample name for tabs opened without a file.
    cwd : str
        Folder (relative to ``root``) where "Open as notebook" writes when there is no file.
    """

    widget: str
    root: Path
    path: Path | None = None
    rel: str | None = None
    sample: str | None = None
    cwd: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The tab title: "Filter designer — photo.jpg"."""
        name = WIDGETS[self.widget].label
        if self.path is not None:
            return f"{name} — {self.path.name}"
        return f"{name} — {self.sample}" if self.sample else name


def decode_payload(payload) -> dict:
    """The request object from what the extension sends: base64 of UTF-8 JSON, a JSON string, or a dict.

    Raises
    ------
    ValueError
        If it is not a JSON object (or too long to be a request).
    """
    if isinstance(payload, dict):
        return dict(payload)
    if isinstance(payload, bytes):
        payload = payload.decode("ascii", "replace")
    if not isinstance(payload, str):
        raise ValueError(f"payload must be a string or a dict, not {type(payload).__name__}")
    if len(payload) > _PAYLOAD_LIMIT:
        raise ValueError(f"payload of {len(payload)} characters is too long for a request")
    text = payload.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8", "surrogatepass")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"payload is neither JSON nor base64 of JSON ({exc})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"payload must be a JSON object, got {type(obj).__name__}")
    return obj


def _clean_rel(rel: str, what: str) -> str:
    if not isinstance(rel, str):
        raise ValueError(f"{what} must be a string, not {type(rel).__name__}")
    if "\x00" in rel:
        raise RefusedPath(f"{what} {rel!r} contains a NUL character: refused")
    rel = rel.replace("\\", "/") if os.sep == "\\" else rel
    pure = PurePosixPath(rel)
    if pure.is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        raise RefusedPath(f"{rel!r} is an absolute path; only files under the server's root can be opened")
    if ".." in pure.parts:
        raise RefusedPath(f"{rel!r} leads outside the server's root folder: refused")
    return rel


def resolve_inside(rel: str, root, *, kind: str = "any") -> Path:
    """``root / rel`` resolved (symbolic links followed); refused when it is not inside ``root``.

    Parameters
    ----------
    rel : str
        Path relative to ``root`` ("/" separators).
    root : str or pathlib.Path
    kind : {"any", "file", "dir"}

    Raises
    ------
    RefusedPath
        Absolute paths, ``..`` segments, links leading out of ``root``, or the wrong kind of entry.
    FileNotFoundError
        If nothing is there.
    """
    rel = _clean_rel(rel, "path")
    root = Path(root).resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise RefusedPath(f"{rel!r} resolves to {target}, outside the server's root folder {root}: refused")
    if not target.exists():
        raise FileNotFoundError(f"{rel!r}: no such file or folder under {root}")
    if kind == "file" and not target.is_file():
        raise RefusedPath(f"{rel!r} is not a file")
    if kind == "dir" and not target.is_dir():
        raise RefusedPath(f"{rel!r} is not a folder")
    return target


def parse_request(payload, *, root=None) -> BenchRequest:
    """Decode and check a request (see :func:`decode_payload`); ``root`` defaults to the working directory.

    Raises
    ------
    ValueError
        Unknown widget, missing or ill-typed fields, unknown sample.
    RefusedPath
        A path outside the server's root.
    FileNotFoundError
        A path that does not exist.
    """
    from .datasets import IMAGE_EXTENSIONS, list_samples

    obj = decode_payload(payload)
    widget = obj.get("widget")
    if widget not in WIDGETS:
        raise ValueError(f"unknown widget {widget!r}; expected one of {', '.join(WIDGETS)}")
    root = Path(os.getcwd() if root is None else root).resolve()
    kind = WIDGETS[widget]
    rel, path, sample = obj.get("path"), None, obj.get("sample")
    cwd = obj.get("cwd") or ""
    cwd = _clean_rel(cwd, "cwd") if cwd else ""
    if sample is not None and (not isinstance(sample, str) or sample not in list_samples()):
        raise ValueError(f"unknown sample {sample!r}")
    if kind.on == "image":
        if rel is None and sample is None:
            if kind.sample is None:
                raise ValueError(f"{widget} needs an image path")
            sample = kind.sample
        if rel is not None:
            path = resolve_inside(rel, root, kind="file")
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise RefusedPath(
                    f"{rel!r} is not an image file (expected one of {', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
    elif kind.on == "folder":
        path = resolve_inside(rel if rel is not None else cwd, root, kind="dir")
    if path is not None:
        rel = path.relative_to(root).as_posix() if path != root else ""
    return BenchRequest(widget=widget, root=root, path=path, rel=rel, sample=sample, cwd=cwd)


# ---------------------------------------------------------------------------------------------- index cache
def index_folder_for(folder) -> Path:
    """Where the index of ``folder`` is cached: ``cache_dir()/indexes/<sha256 of the resolved path>[:20]``."""
    key = hashlib.sha256(str(Path(folder).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return cache_dir() / "indexes" / key


def _scan(folder: Path) -> dict[str, tuple[int, int]]:
    """Image files under ``folder`` (recursive, hidden entries skipped, as ImageIndex.build walks it)."""
    from .datasets import IMAGE_EXTENSIONS

    out = {}
    for p in folder.rglob("*"):
        if p.suffix.lower() not in IMAGE_EXTENSIONS or any(s.startswith(".") for s in p.relative_to(folder).parts):
            continue
        try:
            if p.is_file():
                st = p.stat()
                out[str(p.resolve())] = (st.st_size, st.st_mtime_ns)
        except OSError:
            continue
    return out


def _stale(index, files: dict) -> tuple[list, list]:
    """(changed or new files, files gone) of a loaded index against a folder scan."""
    known = {p: (fp[0], fp[1]) for p, fp in zip(index.paths, index.fingerprints)}
    skipped = {p for p, _ in getattr(index, "skipped", [])}
    changed = [p for p, sm in files.items() if p not in skipped and known.get(p) != tuple(sm)]
    gone = [p for p in known if p not in files]
    return changed, gone


@dataclass
class FolderIndex:
    """An index of a folder with how it was obtained ("loaded", "shared", "updated" or "built") and the seconds it took."""

    index: object
    folder: Path
    cache: Path
    how: str
    seconds: float
    changed: int = 0

    def describe(self) -> str:
        n = len(self.index)
        if self.how == "loaded":
            return f"index of {n} images loaded from the cache (up to date) in {self.seconds:.1f} s"
        if self.how == "shared":
            return f"index of {n} images loaded from the class's shared cache in {self.seconds:.1f} s"
        if self.how == "updated":
            return f"index updated ({self.changed} new or changed files) — {n} images, {self.seconds:.1f} s"
        return f"{n} images indexed in {self.seconds:.1f} s"


def _cached(cache: Path, descriptors, progress: bool):
    """(the cached index of ``descriptors`` or None, why it cannot be used or None): nothing cached is no problem."""
    from .index import ImageIndex, IndexLoadError

    if not (cache / "manifest.json").exists():
        return None, None
    try:
        index = ImageIndex.load(cache, progress=progress)
    except (IndexLoadError, OSError, ValueError, KeyError) as exc:  # damaged, or from another version
        return None, " ".join(str(exc).split())  # one line
    if set(index.descriptors) != set(descriptors):
        return None, None
    return index, None


def folder_index(folder, *, progress: bool = True, descriptors=("cnn", "color")) -> FolderIndex:
    """The index of ``folder`` from the per-user cache, updated or built (and saved there) when needed.

    Up to date means: the same image files, each with the same size and modification time as when indexed.
    Changed and new files are indexed, removed ones dropped; nothing is written into ``folder``, which may be
    read-only.

    Kernels sharing the cache (two tabs, two users of one folder) take turns: building, updating and saving hold
    the cache entry's lock (:func:`cnnwidgets.index.storage.locked`), and a kernel that waited for it loads what
    the other one saved instead of indexing again. A damaged entry (a truncated or altered file, a manifest that
    is not JSON) is never used: one warning names the file and what is wrong, and the index is built again.
    """
    from .index import ImageIndex, storage

    folder = Path(folder).resolve()
    cache = index_folder_for(folder)
    start = time.perf_counter()
    files = _scan(folder)
    index, problem = _cached(cache, descriptors, progress)
    if index is not None and _stale(index, files) == ([], []):
        return FolderIndex(index, folder, cache, "loaded", time.perf_counter() - start)
    if index is None and problem is None:  # the class's read-only shared cache, when it holds this folder up to date
        for shared in shared_dirs("indexes", cache.name):
            found, _ = _cached(shared, descriptors, progress)
            if found is not None and _stale(found, files) == ([], []):
                return FolderIndex(found, folder, shared, "shared", time.perf_counter() - start)
    private_dir("indexes")
    with storage.locked(cache) as held:
        if held:  # another kernel may have built, updated or repaired the entry while this one waited
            index, problem = _cached(cache, descriptors, progress)
        if problem:
            log.warning("cached index of %s not used, building it again: %s", folder, problem)
        if index is not None:
            changed, gone = _stale(index, files)
            if not changed and not gone:
                return FolderIndex(index, folder, cache, "loaded", time.perf_counter() - start)
            if gone:
                index.remove(gone)
            if changed:
                index.add(changed)
            index.save(cache)
            return FolderIndex(index, folder, cache, "updated", time.perf_counter() - start, len(changed))
        index = ImageIndex.build(sorted(files), descriptors=descriptors, progress=progress)
        index.save(cache)
        return FolderIndex(index, folder, cache, "built", time.perf_counter() - start, len(files))


# ---------------------------------------------------------------------------------------------- the tab
_STATE: dict = {}


def _note(text: str, kind: str = "info"):
    import ipywidgets as W

    colour = {"info": "#2e7d32", "busy": "#555", "error": "#b00020"}[kind]
    note = W.HTML(f'<span style="color:{colour};font-size:12px">{html.escape(text)}</span>')
    note.add_class("cnnw-lab-note")
    return note


def _make_widget(req: BenchRequest):
    """(the widget of ``req``, what its notes and notebook need to know): as the registry's row of its kind says."""
    from IPython.display import clear_output, display

    kind, cls = WIDGETS[req.widget], widget_class(req.widget)
    if kind.takes == "image":  # the image widgets take the image first
        if req.path is not None:
            return cls(str(req.path)), {}
        from .datasets import sample

        return cls(sample(req.sample, mode=kind.mode)), {}
    if kind.takes is None:
        return cls(), {}
    # search boxes: the index may need building, with a progress bar in the tab meanwhile
    if kind.on == "none":
        folder = private_dir("samples")
        _write_samples(folder)
    else:
        folder = req.path if kind.on == "folder" else req.path.parent
    display(_note(f"indexing {folder.name or folder} (or loading its index from the cache) …", "busy"))
    got = folder_index(folder, progress=True)
    clear_output()
    box = cls(got.index, k=12)
    if kind.on == "image":
        box.more_like_this(str(req.path))
    return box, {"folder": got.folder, "note": got.describe(), "how": got.how}


def _write_samples(folder: Path):
    from .datasets import sample
    from .files import atomic_write
    from .io import to_png_bytes

    for name in SEARCH_SAMPLES:
        p = folder / f"{name}.png"
        if not p.exists():  # two kernels may write the same file: each its own temporary one
            atomic_write(p, to_png_bytes(sample(name, mode="rgb")))


def open_bench(payload, *, root=None):
    """Open the widget a request asks for in this kernel's output (what an extension tab runs).

    Parameters
    ----------
    payload : str or dict
        Base64 of the JSON request (see the module docstring), or the decoded dict.
    root : path, optional
        The server's root folder; the kernel's working directory by default (tab kernels start there).

    Returns
    -------
    ipywidgets.Widget
        The widget, also displayed (with a note line above it for search boxes).
    """
    from IPython.display import display

    req = parse_request(payload, root=root)
    widget, extra = _make_widget(req)
    _STATE.clear()
    _STATE.update(request=req, widget=widget, extra=extra)
    if extra.get("note"):
        display(_note(extra["note"]))
        widget.add_class("cnnw-lab-how-" + extra["how"])
    widget.add_class("cnnw-lab-bench")
    display(widget)
    return None


class Reply(dict):
    """A dict that IPython shows as ``application/json`` (read back by the extension)."""

    def _repr_json_(self):
        return dict(self)


def open_as_notebook() -> Reply:
    """Write the notebook that reproduces the tab's current state next to its image; returns ``{"path": ...}``.

    The path is relative to the server's root, so the extension can open it.
    """
    from .files import atomic_write

    req: BenchRequest = _STATE.get("request")
    widget = _STATE.get("widget")
    if req is None or widget is None:
        raise RuntimeError("no bench is open in this kernel")
    if hasattr(widget, "wait"):
        widget.wait(120)
    if hasattr(widget, "compute_full") and getattr(widget, "source", None) is not None:
        widget.compute_full()  # the code reproduces the full-resolution result
    if req.path is None:
        folder = resolve_inside(req.cwd, req.root, kind="dir") if req.cwd else req.root
        stem = req.sample or req.widget
    elif req.path.is_dir():
        folder, stem = req.path.parent, req.path.name or "root"
    else:
        folder, stem = req.path.parent, req.path.stem
    nb = notebook_for(widget, req, folder=folder, extra=_STATE.get("extra", {}))
    target = _free_name(folder, f"{stem}-{req.widget}")
    atomic_write(target, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return Reply(path=target.relative_to(req.root).as_posix())


def _free_name(folder: Path, stem: str) -> Path:
    safe = "".join(c if c not in "/\\\x00" else "_" for c in stem)
    p = folder / f"{safe}.ipynb"
    n = 1
    while p.exists():
        p = folder / f"{safe}-{n}.ipynb"
        n += 1
    return p


# ---------------------------------------------------------------------------------------------- notebooks
def sample_grid(array, n: int = 12) -> np.ndarray:
    """``array`` (H×W or H×W×C) sampled on an n×n grid of rows and columns, as float64: a compact fingerprint."""
    a = np.asarray(array)
    if a.ndim == 0:
        return a.astype(np.float64)
    rows = np.unique(np.linspace(0, a.shape[0] - 1, min(n, a.shape[0])).round().astype(int))
    if a.ndim == 1:
        return a[rows].astype(np.float64)
    cols = np.unique(np.linspace(0, a.shape[1] - 1, min(n, a.shape[1])).round().astype(int))
    return a[np.ix_(rows, cols)].astype(np.float64)


def _literal(values) -> str:
    return json.dumps(np.round(np.asarray(values, dtype=np.float64), 6).tolist())


def _array_check(name: str, value) -> list[str]:
    a = np.asarray(value)
    return [
        f"assert np.asarray({name}).shape == {tuple(a.shape)!r}, np.asarray({name}).shape",
        f"expected = np.array({_literal(sample_grid(a))})",
        f"assert np.allclose(sample_grid({name}), expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))",
    ]


def _first_cells(widget, req: BenchRequest, folder: Path, extra: dict) -> list[str]:
    """The code cells before the widget's code: its input, as the tab read it, with paths relative to ``folder``."""
    kind = WIDGETS[req.widget]
    if kind.takes == "image":
        if req.path is not None:
            rel = os.path.relpath(req.path, folder)
            src = f"from cnnwidgets.io import load_image\n\nimage = load_image({rel!r}, mode={kind.mode!r})"
        else:
            src = f"from cnnwidgets.datasets import sample\n\nimage = sample({req.sample!r}, mode={kind.mode!r})"
        if kind.setup:
            size = max(widget.working_image.shape[:2]) if "{size}" in kind.setup else None
            src += "\n" + kind.first_lines(size=size)
        return [src]
    if kind.takes == "index":
        rel = os.path.relpath(extra.get("folder", req.path), folder)
        return [
            "from cnnwidgets.lab import folder_index\n\n"
            f"# the index is kept in {index_folder_for(extra.get('folder', folder))} (built there if missing)\n"
            f"index = folder_index({rel!r}).index"
        ]
    return []


def _checks(check: str | None, result) -> list[str]:
    """The assert lines that a notebook's last cell holds for ``result`` (see :class:`cnnwidgets.registry.WidgetKind`)."""
    if check == "array":
        return _array_check("result", result)
    if check == "topk":
        top = [[str(t), float(p)] for t, p in result["topk"]]
        return [
            f"expected_top = {json.dumps(top)}",
            "assert [t for t, _ in top] == [t for t, _ in expected_top], top",
            "assert np.allclose([p for _, p in top], [p for _, p in expected_top], atol=1e-4)",
            *_array_check("mosaic", result["mosaic"]),
        ]
    if check == "hits":
        hits = [[h.path, float(h.score)] for h in (result or [])]
        return [
            f"expected = {json.dumps(hits, ensure_ascii=False)}",
            "assert [h.path for h in result] == [p for p, _ in expected], [h.path for h in result]",
            "assert np.allclose([h.score for h in result], [s for _, s in expected], atol=1e-4)",
        ]
    if check == "regions":
        boxes = [list(r.bbox) for r in result["regions"]]
        labels = [top[0][0] for top in result["recognise"]]
        return [
            f"assert [list(r.bbox) for r in regions] == {boxes!r}",
            f"assert [top[0][0] for top in recognised] == {json.dumps(labels)}",
        ]
    if check == "conv":
        return [
            *_array_check("conv.output", result["conv"].output),
            *_array_check("activated", result["activated"]),
            *_array_check("pool.output", result["pool"].output),
        ]
    return []  # a result that differs from run to run (training) is not asserted


def notebook_for(widget, req: BenchRequest, *, folder: Path, extra: dict | None = None) -> dict:
    """The nbformat-4 notebook (a dict) holding ``widget.code`` for request ``req`` and an assert cell
    that checks the code reproduces ``widget.result``; image paths are relative to ``folder``."""
    kind = WIDGETS[req.widget]
    code = widget.code
    if kind.takes == "index":  # a search box's code is the search: its hits are the result
        code = "result = " + code if code else "result = []"
    cells = [
        (
            "markdown",
            f"# {req.label}\n\nWritten by the cnnwidgets JupyterLab extension (“Open as notebook”): the code "
            "below reproduces what the tab showed, and the last cell checks that it does.",
        ),
        *[("code", src) for src in _first_cells(widget, req, folder, extra or {})],
        ("code", code),
    ]
    checks = _checks(kind.check, widget.result)
    if checks:
        cells.append(
            (
                "code",
                "# the tab's result, sampled on a grid: running the cells above reproduces it\n"
                "import numpy as np\nfrom cnnwidgets.lab import sample_grid\n\n" + "\n".join(checks),
            )
        )
    return {
        "cells": [
            {"cell_type": cell_type, "id": f"cnnw-{i}", "metadata": {}, "source": src}
            | ({"execution_count": None, "outputs": []} if cell_type == "code" else {})
            for i, (cell_type, src) in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
