"""The Streamlit explorer in a real browser: `genmodels serve` plus headless Chromium.

Skipped only when no Chromium is installed (Debian package ``chromium``; ``.ci/run`` installs
it). The screenshot is kept in the test's directory and copied to
/tmp/genmodels_browser_screenshot.png for a look.
"""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels.apps.export import load_generative_model
from genmodels.apps.generation import generate
from genmodels.apps.streamlit_app import display_png
from tests.genmodels.apps.devtools import Browser, chromium_path, wait_for
from tests.genmodels.apps.model_files import dcgan_ckpt, one_thread  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")

SCREENSHOT_COPY = Path("/tmp/genmodels_browser_screenshot.png")
IMAGES = "[...document.querySelectorAll('[data-testid=\"stImage\"] img')].filter(i => i.complete && i.naturalWidth > 0)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@pytest.fixture()
def chromium() -> str:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`, which .ci/run installs)")
    return executable


@pytest.fixture()
def streamlit_url(dcgan_ckpt, tmp_path):
    """``genmodels serve --ckpt`` (the real command) on a free loopback port."""
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    # Its own process group, so everything it starts is stopped with it.
    process = subprocess.Popen(
        [sys.executable, "-m", "genmodels", "serve", "--ckpt", str(dcgan_ckpt), "--port", str(port), "--device", "cpu", "--threads", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url) or process.poll() is not None, 120, what="the Streamlit server")
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # Streamlit's graceful shutdown can be slow; nothing to save
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.browser
def test_clicking_generate_shows_the_grid(chromium, streamlit_url, dcgan_ckpt, tmp_path):
    browser = Browser(chromium, tmp_path / "chromium-profile")
    try:
        browser.open(streamlit_url)
        has_button = "[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Generate')"
        wait_for(lambda: browser.evaluate(has_button), 120, what="the Generate button")
        assert browser.evaluate(f"{IMAGES}.length") == 0
        browser.click("button", "Generate")
        wait_for(lambda: browser.evaluate(f"{IMAGES}.length"), 120, what="the generated grid")
        wait_for(lambda: browser.evaluate("document.querySelectorAll('[data-testid=\"stSlider\"]').length >= 5"), 60,
                 what="the direction sliders")  # fmt: skip
        idle = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"  # the script run has finished
        wait_for(lambda: browser.evaluate(idle), 60, what="the app to finish running")
        shown = browser.fetch_bytes(f"{IMAGES}[0].src")
        screenshot = browser.screenshot(tmp_path / "explorer.png")
    finally:
        browser.close()
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    # The page shows the grid of seed 0, 16 images (the sidebar's defaults), pixel for pixel.
    expected = display_png(generate(load_generative_model(dcgan_ckpt), 16, 0))
    shown_pixels, expected_pixels = (np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in (shown, expected))
    assert np.array_equal(shown_pixels, expected_pixels)
    with Image.open(screenshot) as image:
        assert image.width >= 1000 and len(set(image.convert("L").getdata())) > 50  # a rendered page, not a blank one
