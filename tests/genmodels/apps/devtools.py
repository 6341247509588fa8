"""A headless Chromium driven through the DevTools protocol (a websocket), for browser tests.

Enough of the protocol to open a page, wait for a JavaScript condition, click an element with
real mouse events, fetch an image the page shows and take a screenshot. Chromium is Debian's
``chromium`` package; it picks its own debugging port and writes it to ``DevToolsActivePort`` in
the (fresh) profile directory, so parallel tests never collide on a port.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import websocket

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1200",
    "--remote-debugging-port=0",
]


def chromium_path() -> Optional[str]:
    """Debian's chromium (or chromium-browser) on PATH, else None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def wait_for(condition: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll ``condition()`` until it returns something truthy; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Browser:
    """One headless Chromium process with one page, controlled over the DevTools protocol."""

    def __init__(self, executable: str, profile_dir: Path, timeout: float = 30.0) -> None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = profile_dir.parent / "chromium.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        port_file = profile_dir / "DevToolsActivePort"
        wait_for(lambda: port_file.is_file() and port_file.read_text().strip(), timeout, what="Chromium's DevTools port")
        port = int(port_file.read_text().split()[0])
        pages = wait_for(lambda: self._pages(port), timeout, what="a Chromium page target")
        # suppress_origin: Chromium refuses DevTools websockets that send an Origin header.
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)

    @staticmethod
    def _pages(port: int) -> list[dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                return [t for t in json.load(response) if t.get("type") == "page"]
        except OSError:
            return []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events arriving meanwhile are dropped)."""
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def click(self, css_selector: str, text: str) -> None:
        """Click, with mouse events at its centre, the element matching ``css_selector`` whose text is ``text``."""
        finder = f"[...document.querySelectorAll({json.dumps(css_selector)})].find(e => e.innerText.trim() === {json.dumps(text)})"
        centre = "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];"
        box = self.evaluate(f"(() => {{ const e = {finder}; if (!e) return null; {centre} }})()")
        if box is None:
            raise RuntimeError(f"no {css_selector} with text {text!r} on the page")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def fetch_bytes(self, url_expression: str) -> bytes:
        """The bytes behind a URL computed in the page (fetched by the page, same origin)."""
        script = (
            f"fetch({url_expression}).then(r => r.arrayBuffer()).then(b => {{ let s = ''; "
            "new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); return btoa(s); })"
        )
        return base64.b64decode(self.evaluate(script))

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._log.close()
