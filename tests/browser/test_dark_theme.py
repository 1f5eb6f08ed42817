"""JupyterLab Dark: every widget's text, the histogram, the gallery's score bars and borders stay readable.

The test writes JupyterLab's theme setting (the same file Settings → Theme writes), reloads the notebook, and for
light and dark compares each text colour with the background behind it (WCAG contrast ratio), reads the histogram's
canvas background, and screenshots each widget in both themes side by side.
"""

import json
import os
import shutil

from .harness import ARTIFACTS, DOCS_IMAGES, pixels

WIDGETS = {
    "filter_designer": ".cnnw-filter-designer",
    "threshold_segmenter": ".cnnw-threshold-segmenter",
    "searchbox": ".cnnw-searchbox",
}

CELLS = [
    "from cnnwidgets import FilterDesigner, SearchBox, ThresholdSegmenter, datasets",
    """
import tempfile
from pathlib import Path
from PIL import Image
from cnnwidgets.index import ImageIndex
folder = Path(tempfile.mkdtemp()) / "samples"
folder.mkdir()
for name in ("chelsea", "coffee", "rocket", "coins"):
    Image.fromarray(datasets.sample(name, mode="rgb")).save(folder / f"{name}.png")
index = ImageIndex.build(folder, descriptors=("cnn",), progress=False)
""",
    'fd = FilterDesigner(datasets.sample("camera")); fd',
    'ts = ThresholdSegmenter(datasets.sample("coins")); ts',
    'box = SearchBox(index, text="coffee", k=4); box',
]

# Contrast ratio (WCAG 2) between each visible text element's colour and the first opaque background behind it.
CONTRASTS_JS = """
root => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  const texts = root.querySelectorAll('label, .widget-label, .widget-readout, button, .cnnw-gallery-score, '
    + '.cnnw-gallery-name, .cnnw-gallery-bar-name, .cnnw-gallery-tags, .widget-html-content span, svg text, b, .lm-TabBar-tabLabel');
  for (const el of texts) {
    if (!el.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    const fg = rgb(el instanceof SVGElement ? style.fill : style.color).slice(0, 3);
    const bg = background(el);
    const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
    out.push({text: el.textContent.trim().slice(0, 30), ratio: Math.max(a, b) / Math.min(a, b), fg, bg});
  }
  return out;
}
"""

CANVAS_CORNER_JS = "c => Array.from(c.getContext('2d').getImageData(1, 1, 1, 1).data.slice(0, 3))"


def _settings_file(lab):
    return lab.root / ".jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"


def _set_theme(lab, theme):
    folder = _settings_file(lab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))


def _render(lab, page):
    lab.run_notebook(page, "theme.ipynb")
    lab.wait_idle(page)
    assert lab.errors(page) == []
    page.wait_for_selector(".cnnw-searchbox .cnnw-gallery-item img", state="visible")
    pixels(page, ".cnnw-filter-designer .cnnw-fd-result img")


def _check_theme(page, dark: bool) -> dict:
    assert page.get_attribute("body", "data-jp-theme-light") == ("false" if dark else "true")
    shots = {}
    for name, selector in WIDGETS.items():
        root = page.locator(selector).first
        root.scroll_into_view_if_needed()
        found = root.evaluate(CONTRASTS_JS)
        assert len(found) >= 3, (name, found)
        poor = [f for f in found if f["ratio"] < 3]
        assert not poor, (name, "dark" if dark else "light", poor)
        # the text colour differs from the background it sits on, in the way the theme says
        fg_light = [sum(f["fg"]) / 3 > 128 for f in found]
        assert sum(fg_light) > len(found) / 2 if dark else sum(fg_light) < len(found) / 2, (name, found)
        page.set_viewport_size({"width": 1400, "height": 1400})
        path = ARTIFACTS / f"theme_{'dark' if dark else 'light'}_{name}.png"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.add_style_tag(content=".Toastify { display: none !important; }")
        root.screenshot(path=str(path))
        shots[name] = path
    canvas = page.locator(".cnnw-threshold-segmenter canvas.cnnw-histogram-canvas").first
    canvas.scroll_into_view_if_needed()
    corner = canvas.evaluate(CANVAS_CORNER_JS)
    assert (sum(corner) / 3 < 100) if dark else (sum(corner) / 3 > 200), corner
    bar = page.locator(".cnnw-searchbox .cnnw-gallery-bar-fill").first
    track = page.locator(".cnnw-searchbox .cnnw-gallery-bar-track").first
    assert bar.evaluate("e => getComputedStyle(e).backgroundColor") != track.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    return shots


def _side_by_side(light, dark, path):
    from PIL import Image

    a, b = Image.open(light).convert("RGB"), Image.open(dark).convert("RGB")
    out = Image.new("RGB", (a.width + b.width + 16, max(a.height, b.height)), (128, 128, 128))
    out.paste(a, (0, 0))
    out.paste(b, (a.width + 16, 0))
    out.save(path)
    if os.environ.get("CNNWIDGETS_DOCS_IMAGES") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)


def test_widgets_are_readable_in_light_and_dark_themes(lab, page):
    lab.write_notebook("theme.ipynb", CELLS)
    try:
        _set_theme(lab, "JupyterLab Light")
        _render(lab, page)
        light = _check_theme(page, dark=False)
        _set_theme(lab, "JupyterLab Dark")
        _render(lab, page)
        dark = _check_theme(page, dark=True)
    finally:
        (_settings_file(lab) / "themes.jupyterlab-settings").unlink(missing_ok=True)
    for name in WIDGETS:
        _side_by_side(light[name], dark[name], ARTIFACTS / f"theme_light_dark_{name}.png")
