"""Keyboard and labels in JupyterLab: a dropdown and a button operated from the keyboard change the picture;
every image has a text alternative and every control a name."""

from .harness import pixels, wait_pixels_change

RESULT = ".cnnw-filter-designer .cnnw-fd-result img"

# the accessible name of each control: its label, aria-label, title or text
NAMES_JS = """
root => [...root.querySelectorAll('select, input, button, textarea')]
  .filter(el => el.getClientRects().length)
  .map(el => {
    const box = el.closest('.widget-inline-hbox, .widget-toggle-buttons, .widget-hbox, .widget-vbox') || el.parentElement;
    const label = box && box.querySelector('.widget-label');
    return (el.getAttribute('aria-label') || el.title || el.textContent || (label && label.textContent) || '').trim();
  })
"""


def test_dropdown_and_buttons_work_from_the_keyboard(lab, page):
    lab.write_notebook(
        "keyboard.ipynb",
        ["from cnnwidgets import FilterDesigner, datasets", 'fd = FilterDesigner(datasets.sample("camera")); fd'],
    )
    lab.run_notebook(page, "keyboard.ipynb")
    lab.wait_idle(page)
    assert lab.errors(page) == []
    before = pixels(page, RESULT)

    page.wait_for_function(
        "() => [...document.querySelectorAll('.cnnw-filter-designer .cnnw-panel .cnnw-alt')]"
        ".every(e => e.textContent.includes('pixels'))"
    )
    titles = page.eval_on_selector_all(
        ".cnnw-filter-designer .cnnw-panel .cnnw-alt", "els => els.map(e => e.textContent)"
    )
    assert titles and all("pixels" in t for t in titles), titles
    names = page.locator(".cnnw-filter-designer").first.evaluate(NAMES_JS)
    assert names and all(names), names

    # a toggle button: Tab to it, Space presses it
    ideal = page.locator(".cnnw-filter-designer .widget-toggle-button", has_text="ideal").first
    ideal.focus()
    page.keyboard.press("Space")
    after = wait_pixels_change(page, RESULT, before)
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "ideal"

    # a dropdown: open the noise tab, focus the select, choose by typing
    page.locator(".cnnw-fd-tabs .lm-TabBar-tab").filter(has_text="noise").click()
    select = page.locator(".cnnw-fd-noise select")
    select.focus()
    first = select.input_value()
    page.keyboard.type("g")  # type-ahead on the focused dropdown: "gaussian"
    page.wait_for_function("([s, v]) => document.querySelector(s).value !== v", arg=[".cnnw-fd-noise select", first])
    wait_pixels_change(page, RESULT, after)
