"""Kernel side of the extension's shared bench kernel: several tabs, one kernel, one widget each.

By default the extension's tabs of one JupyterLab page share one kernel (see ``docs/extension.md``). Each tab
runs fixed lines whose only variable part is base64 text (UTF-8 JSON, decoded with :func:`json.loads`)::

    from cnnwidgets.labtabs import open_tab; open_tab("<base64 of {"tab": ..., "request": {...}}>")
    from cnnwidgets.labtabs import close_tab; close_tab("<base64 of {"tab": ..., "models": [...]}>")
    from cnnwidgets.labtabs import tab_notebook; _cnnw_reply = tab_notebook("<base64 of {"tab": ...}>")

:func:`open_tab` opens the request with :func:`cnnwidgets.lab.open_bench` and remembers what it opened under
the tab's id; :func:`close_tab` closes that widget and every widget it holds (so their comms, images and caches
are freed) when the tab closes while other tabs keep the kernel; :func:`tab_notebook` is "Open as notebook" for
one tab. :func:`kernel_facts` tells the extension the kernel's process id, memory and the memory cgroup's count
of out-of-memory kills, so a tab can say "the kernel ran out of memory" when a memory limit ended the kernel.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

from . import lab

__all__ = ["open_tab", "close_tab", "tab_notebook", "open_tabs", "kernel_facts", "oom_kills"]

_TAB_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

#: tab id → what :func:`cnnwidgets.lab.open_bench` opened for it (request, widget, extra)
_TABS: dict[str, dict] = {}
#: tab id → model ids of the widgets made while it opened (notes, widgets its widget made but does not hold)
_CREATED: dict[str, list[str]] = {}


def _tab_of(obj: dict) -> str:
    tab = obj.get("tab")
    if not isinstance(tab, str) or not _TAB_ID.match(tab):
        raise ValueError(f"tab id must be 1 to 100 letters, digits, '-' or '_', not {tab!r:.60}")
    return tab


def open_tab(payload, *, root=None) -> None:
    """Open ``payload["request"]`` (a :func:`cnnwidgets.lab.parse_request` request) for the tab ``payload["tab"]``.

    The widget is displayed in the calling cell's output (the tab's output area), as by
    :func:`cnnwidgets.lab.open_bench`. A tab that opens again replaces (and closes) what it had.
    """
    obj = lab.decode_payload(payload)
    tab = _tab_of(obj)
    request = obj.get("request")
    if not isinstance(request, dict):
        raise ValueError("the payload's 'request' must be a JSON object")
    from ipywidgets.widgets.widget import _instances

    existing = set(_instances)
    lab.open_bench(request, root=root)
    previous = _TABS.pop(tab, None), _CREATED.pop(tab, [])
    _TABS[tab] = dict(lab._STATE)
    _CREATED[tab] = [k for k in _instances if k not in existing]
    if previous[0] is not None:
        _close_widgets([previous[0].get("widget")] + [_instances[k] for k in previous[1] if k in _instances])


def open_tabs() -> list[str]:
    """The ids of the tabs whose widgets are open in this kernel."""
    return list(_TABS)


def tab_notebook(payload) -> lab.Reply:
    """Open as notebook for the tab ``payload["tab"]``: :func:`cnnwidgets.lab.open_as_notebook` on its widget."""
    tab = _tab_of(lab.decode_payload(payload))
    state = _TABS.get(tab)
    if state is None:
        raise RuntimeError("this tab's bench is not open in this kernel")
    lab._STATE.clear()
    lab._STATE.update(state)
    return lab.open_as_notebook()


def close_tab(payload) -> int:
    """Close what the tab ``payload["tab"]`` opened, and the widgets ``payload["models"]`` (model ids) it showed.

    What it opened: its widget, all the widgets that one holds, and every widget made while it opened (a note
    above a search box, a control its widget made and dropped). Widgets reachable from another open tab are kept. A widget with a ``stop`` method (training) is stopped
    first. Returns the number of widgets closed.
    """
    obj = lab.decode_payload(payload)
    tab = _tab_of(obj)
    state = _TABS.pop(tab, None)
    roots = [state.get("widget")] if state else []
    models = obj.get("models") or []
    if not isinstance(models, list):
        raise ValueError("the payload's 'models' must be a list of widget model ids")
    from ipywidgets.widgets.widget import _instances

    for model_id in _CREATED.pop(tab, []) + models:
        if isinstance(model_id, str) and _MODEL_ID.match(model_id) and model_id in _instances:
            roots.append(_instances[model_id])
    if lab._STATE.get("widget") is (state or {}).get("widget"):
        lab._STATE.clear()  # a closed tab leaves no widget behind
    return _close_widgets(roots)


def _reachable(roots) -> list:
    """The widgets ``roots`` hold, themselves included, each once: in their synced traits (children, layouts,
    styles, …) and in their attributes (controls kept aside, a hidden code view), one level into lists and dicts."""
    import ipywidgets as W

    seen: dict[int, W.Widget] = {}
    stack = [w for w in roots if isinstance(w, W.Widget)]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen[id(w)] = w
        held = list(vars(w).values()) + list(getattr(w, "_trait_values", {}).values())
        for value in held:
            values = (
                value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
            )
            stack.extend(v for v in values if isinstance(v, W.Widget) and id(v) not in seen)
    return list(seen.values())


def _close_widgets(roots) -> int:
    keep = {id(w) for w in _reachable([s.get("widget") for s in _TABS.values()])}
    closed = 0
    for w in _reachable(roots):
        if id(w) in keep:
            continue
        stop = getattr(type(w), "stop", None)
        if callable(stop) and type(w).__module__.startswith("cnnwidgets."):
            with contextlib.suppress(Exception):  # closing goes on; the widget is being thrown away
                w.stop()
        if w.comm is not None:
            w.close()
            closed += 1
    return closed


# ---------------------------------------------------------------------------------------------- kernel facts
def _status_kib(field: str, proc: Path) -> int | None:
    try:
        for line in (proc / "self" / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _memory_cgroup(proc: Path, sysfs: Path) -> Path | None:
    """The folder of this process's memory cgroup (v2 unified or v1 "memory" controller), when it is visible."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    v1 = v2 = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    candidates = []
    if v2 is not None:
        candidates += [sysfs / "fs" / "cgroup" / v2.lstrip("/"), sysfs / "fs" / "cgroup" / "unified" / v2.lstrip("/")]
    if v1 is not None:
        candidates += [sysfs / "fs" / "cgroup" / "memory" / v1.lstrip("/"), sysfs / "fs" / "cgroup" / "memory"]
    for folder in candidates:
        if (folder / "memory.events").is_file() or (folder / "memory.oom_control").is_file():
            return folder
    return None


def oom_kills(*, proc="/proc", sysfs="/sys") -> int | None:
    """How many processes the memory cgroup of this process has had killed for memory (None when unknown).

    Reads ``oom_kill`` from ``memory.events`` (cgroup v2) or ``memory.oom_control`` (cgroup v1). A kernel
    restarted after its predecessor died runs in the same cgroup, so a count higher than the one the
    predecessor reported means that a memory limit ended it.
    """
    folder = _memory_cgroup(Path(proc), Path(sysfs))
    if folder is None:
        return None
    for name in ("memory.events", "memory.oom_control"):
        try:
            text = (folder / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                try:
                    return int(value)
                except ValueError:
                    return None
    return None


def kernel_facts() -> lab.Reply:
    """``{"pid", "rss_mib", "peak_mib", "oom_kills", "tabs", "widgets"}`` of this kernel (JSON for the extension).

    ``widgets`` counts the live ipywidgets (0 before any is made): it comes back to where it was when a tab
    closes while others stay.
    """
    rss, peak = _status_kib("VmRSS", Path("/proc")), _status_kib("VmHWM", Path("/proc"))
    registry = sys.modules.get("ipywidgets.widgets.widget")
    return lab.Reply(
        pid=os.getpid(),
        rss_mib=None if rss is None else round(rss / 1024, 1),
        peak_mib=None if peak is None else round(peak / 1024, 1),
        oom_kills=oom_kills(),
        tabs=len(_TABS),
        widgets=len(registry._instances) if registry is not None else 0,
    )
