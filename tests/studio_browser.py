"""The studio page in a real headless Chromium, driven by selenium (Debian's chromium and
chromium-driver): shared by tests/test_studio_browser.py and benchmarks/studio_latency.py.

`missing_browser()` says why no browser can run here (None when one can); `chromium()` starts
one with a fresh profile; the other helpers wait for the page and read what it shows.
"""

import contextlib
import json
import os
import shutil
import tempfile
import time

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STUDIO_CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking flags Chromium tries to reach Google's services at start and
# fails on a closed network.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")


def missing_browser() -> str | None:
    """Why the browser cannot run here, in one line; None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"no {path} (apt-get install -y {package})"
    return None


@contextlib.contextmanager
def chromium(width=1400, height=1000, scrollbars=False):
    """A selenium WebDriver on headless Chromium with a fresh profile; always quit. `scrollbars`:
    the page's scrollbar takes its width from the page, as in a person's browser (hidden by default,
    so that screenshots and widths do not depend on the page's length)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="studio-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = [flag for flag in FLAGS if not (scrollbars and flag == "--hide-scrollbars")]
    for flag in (*flags, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, what, timeout=60.0):
    """Poll `condition(driver)` until it returns a truthy value (returned); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}; page error box: {error_text(driver)!r}")
        time.sleep(0.02)


def settled(driver) -> dict | None:
    """The page's state once nothing is in flight: {subject, edits} of the shown edit."""
    return driver.execute_script(
        "const s = window.studio; return s && s.pending === 0 && s.rendered.subject !== null ? s.rendered : null;")


def wait_until_settled(driver, what="the page to settle", timeout=60.0) -> dict:
    return wait_for(driver, settled, what, timeout)


def error_text(driver) -> str:
    return driver.execute_script(
        "const e = document.getElementById('error'); return e && !e.hidden ? document.getElementById('error-text').textContent : '';")


def shown_edits(driver) -> list:
    return json.loads(settled(driver)["edits"])


def image_pixels(driver, element_id):
    """The shown image's pixels at its own size, as decoded by the browser: uint8 [H, W, 4] (RGBA)."""
    import numpy as np

    width, height, data = driver.execute_script(
        """const img = document.getElementById(arguments[0]);
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        return [canvas.width, canvas.height, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];""",
        element_id)
    return np.asarray(data, dtype=np.uint8).reshape(height, width, 4)
