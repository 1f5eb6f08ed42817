"""cnnwidgets.labtabs: several extension tabs on one kernel (open, close, Open as notebook per tab; OOM count)."""

import pytest
from test_lab import b64, photos_root

from cnnwidgets import lab, labtabs

HOSTILE = "x'); import os; os.system('touch PWNED'); ('.png"


@pytest.fixture
def root(tmp_path):
    return photos_root(tmp_path, HOSTILE)


@pytest.fixture(autouse=True)
def no_tabs():
    labtabs._TABS.clear()
    labtabs._CREATED.clear()
    yield
    for tab in list(labtabs._TABS):
        labtabs.close_tab(b64({"tab": tab}))


def widgets_of(widget) -> list:
    return labtabs._reachable([widget])


def test_tabs_share_a_kernel_and_close_their_own_widgets(root):
    labtabs.open_tab(b64({"tab": "a", "request": {"widget": "filter_designer", "path": "photos/cat.png"}}), root=root)
    fd = labtabs._TABS["a"]["widget"]
    labtabs.open_tab(
        b64({"tab": "b", "request": {"widget": "threshold_segmenter", "path": f"photos/{HOSTILE}"}}), root=root
    )
    ts = labtabs._TABS["b"]["widget"]
    assert labtabs.open_tabs() == ["a", "b"] and type(fd).__name__ == "FilterDesigner" and fd is not ts
    assert not (root / "PWNED").exists() and not list(root.rglob("PWNED"))
    held = widgets_of(fd)
    assert len(held) > 5 and all(w.comm is not None for w in held)

    # Open as notebook of tab "a" while "b" opened last: the notebook is tab a's
    reply = labtabs.tab_notebook(b64({"tab": "a"}))
    assert reply["path"] == "photos/cat-filter_designer.ipynb" and (root / reply["path"]).exists()

    n = labtabs.close_tab(b64({"tab": "a"}))
    assert n >= len(held) and all(w.comm is None for w in held)  # the widget, all it holds, what it dropped
    assert labtabs.open_tabs() == ["b"] and all(w.comm is not None for w in widgets_of(ts))
    with pytest.raises(RuntimeError, match="not open in this kernel"):
        labtabs.tab_notebook(b64({"tab": "a"}))
    assert labtabs.close_tab(b64({"tab": "a"})) == 0  # twice: nothing left to close


def test_close_by_model_id_keeps_widgets_of_other_tabs(root):
    import ipywidgets as W

    labtabs.open_tab(b64({"tab": "a", "request": {"widget": "filter_designer", "sample": "camera"}}), root=root)
    other = labtabs._TABS["a"]["widget"]
    note = W.HTML("a note the tab showed")
    # model ids: a stray widget of the tab's output is closed, one held by another tab is not, junk is ignored
    models = [note.model_id, other.model_id, "../../etc", 3]
    held = widgets_of(note)  # the note, its layout and style
    assert labtabs.close_tab(b64({"tab": "gone", "models": models})) == len(held) == 3
    assert all(w.comm is None for w in held) and other.comm is not None


def test_failed_open_remembers_nothing(root):
    with pytest.raises(lab.RefusedPath):
        labtabs.open_tab(b64({"tab": "a", "request": {"widget": "filter_designer", "path": "../x.png"}}), root=root)
    assert labtabs.open_tabs() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"tab": "a'); import os; ('", "request": {"widget": "filter_designer"}},
        {"tab": "", "request": {"widget": "filter_designer"}},
        {"tab": 3, "request": {"widget": "filter_designer"}},
        {"tab": "a", "request": "filter_designer"},
    ],
)
def test_bad_tab_payloads_are_refused(payload, root):
    with pytest.raises(ValueError):
        labtabs.open_tab(b64(payload), root=root)


def fake_system(tmp_path, cgroup: str, files: dict):
    proc, sysfs = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup)
    for rel, text in files.items():
        (sysfs / rel).parent.mkdir(parents=True, exist_ok=True)
        (sysfs / rel).write_text(text)
    return {"proc": proc, "sysfs": sysfs}


def test_oom_kills_from_cgroup_v2_and_v1(tmp_path):
    v2 = fake_system(
        tmp_path / "v2",
        "0::/user.slice/jupyter\n",
        {"fs/cgroup/user.slice/jupyter/memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n"},
    )
    assert labtabs.oom_kills(**v2) == 2
    v1 = fake_system(
        tmp_path / "v1",
        "9:name=systemd:/\n4:memory:/docker/abc\n0::/\n",
        {"fs/cgroup/memory/docker/abc/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"},
    )
    assert labtabs.oom_kills(**v1) == 1
    none = fake_system(tmp_path / "none", "0::/\n", {})
    assert labtabs.oom_kills(**none) is None
    facts = labtabs.kernel_facts()
    assert facts["pid"] > 0 and facts["tabs"] == 0 and (facts["rss_mib"] is None or facts["rss_mib"] > 1)


def test_closing_a_tab_brings_the_widget_count_back(root):
    labtabs.open_tab(b64({"tab": "a", "request": {"widget": "threshold_segmenter", "sample": "coins"}}), root=root)
    before = labtabs.kernel_facts()["widgets"]
    for _ in range(3):
        labtabs.open_tab(
            b64({"tab": "b", "request": {"widget": "filter_designer", "path": "photos/cat.png"}}), root=root
        )
        labtabs._TABS["b"]["widget"].wait()
        assert labtabs.kernel_facts()["widgets"] > before
        labtabs.close_tab(b64({"tab": "b"}))
        assert labtabs.kernel_facts() == {**labtabs.kernel_facts(), "widgets": before, "tabs": 1}
