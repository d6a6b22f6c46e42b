"""A real headless browser for the explorer: Debian's Chromium driven by Selenium.

Shared by ``tests/analytics/test_explore.py`` and ``benchmarks/explore.py``. Panel renders
inside shadow roots, so the page is read with JavaScript that walks them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # .ci/run installs them

# every element, through every shadow root; the page's text without style sheets; each
# petzarr pane's image (loaded, and its place on the screen)
PAGE = """
const all = (root) => [...root.querySelectorAll('*')].flatMap(
    (e) => e.shadowRoot ? [e, ...all(e.shadowRoot)] : [e]);
const els = all(document);
const text = [];
const walk = (node) => {
  for (const c of node.childNodes) {
    if (c.nodeType === 3) text.push(c.textContent);
    else if (c.nodeType === 1 && !['STYLE', 'SCRIPT'].includes(c.tagName)) walk(c);
  }
  if (node.shadowRoot) walk(node.shadowRoot);
};
walk(document.body);
// Bokeh hides an inactive tab's panel by opacity 0 (and visibility, which its inner
// shadow roots override): look up the chain, across shadow hosts
const shown = (e) => {
  for (let n = e; n; n = n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentElement) {
    const css = getComputedStyle(n);
    if (css.display === 'none' || css.opacity === '0') return false;
  }
  return true;
};
const images = {};
for (const e of els.filter((e) => e.tagName === 'IMG')) {
  const host = e.getRootNode().host;
  const name = host ? [...host.classList].find((c) => c.startsWith('petzarr-')) : undefined;
  const r = e.getBoundingClientRect();
  if (name) images[name] = {loaded: e.complete && e.naturalWidth > 0,
                            box: [r.left, r.top, r.width, r.height],
                            visible: shown(e)};
}
return {ready: !!(window.Bokeh && Bokeh.documents.length), text: text.join(' '), images,
        tabs: els.filter((e) => e.classList.contains('bk-tab')).map((e) => e.textContent),
        selects: els.filter((e) => e.tagName === 'SELECT').map((e) => e.value)};
"""
CLICK_TAB = """
const all = (root) => [...root.querySelectorAll('*')].flatMap(
    (e) => e.shadowRoot ? [e, ...all(e.shadowRoot)] : [e]);
const tab = all(document).find((e) => e.classList.contains('bk-tab')
                                     && e.textContent.trim() === arguments[0]);
if (tab) tab.click();
return !!tab;
"""


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """A headless Chromium window of ``width`` x ``height`` CSS pixels."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def rendered(driver: webdriver.Chrome, images: tuple[str, ...], timeout: float = 30) -> dict:
    """The page once Bokeh has a document and every named image is loaded and on screen."""
    end = time.monotonic() + timeout
    while True:
        page: dict[str, Any] = driver.execute_script(PAGE)
        shown = [page["images"].get(n, {}) for n in images]
        if page["ready"] and all(i.get("loaded") and i["visible"] for i in shown):
            return page
        if time.monotonic() > end:
            raise AssertionError(f"not rendered in {timeout} s: {page['images']}")
        time.sleep(0.05)


def click_tab(driver: webdriver.Chrome, title: str) -> bool:
    """Click the tab titled ``title``; False when there is none."""
    return bool(driver.execute_script(CLICK_TAB, title))


SCROLL_TO = """
const all = (root) => [...root.querySelectorAll('*')].flatMap(
    (e) => e.shadowRoot ? [e, ...all(e.shadowRoot)] : [e]);
const host = all(document).find((e) => e.classList.contains(arguments[0]));
if (host) host.scrollIntoView({block: 'center'});
return !!host;
"""


FIND_IMAGE = """
const all = (root) => [...root.querySelectorAll('*')].flatMap(
    (e) => e.shadowRoot ? [e, ...all(e.shadowRoot)] : [e]);
return all(document).find((e) => e.tagName === 'IMG' && e.getRootNode().host
                          && e.getRootNode().host.classList.contains(arguments[0]));
"""


def scroll_to(driver: webdriver.Chrome, name: str) -> dict:
    """Scroll the petzarr pane ``name`` into the window's middle; the page read again."""
    assert driver.execute_script(SCROLL_TO, name), f"no {name} on the page"
    return rendered(driver, (name,))


def screenshot(driver: webdriver.Chrome, out: Path) -> np.ndarray:
    """Save the window to ``out`` (PNG); its pixels (RGB, float64)."""
    driver.save_screenshot(str(out))
    return np.asarray(Image.open(out).convert("RGB"), np.float64)


def crop(driver: webdriver.Chrome, shot: np.ndarray, page: dict, name: str) -> np.ndarray:
    """The named petzarr image's part of a screenshot (device pixels)."""
    scale = shot.shape[1] / driver.execute_script("return window.innerWidth")
    left, top, width, height = (int(v * scale) for v in page["images"][name]["box"])
    return shot[top : top + height, left : left + width]
