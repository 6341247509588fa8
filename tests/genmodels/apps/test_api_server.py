"""The API over real HTTP (uvicorn on loopback) under concurrent load, and `genmodels serve`'s wiring.

uvicorn runs in a thread of the test process: a child process would spend most of the test
importing torch again. `scripts/load_test_api.py --ckpt` runs the real ``genmodels serve --api``
child process; the browser test runs the real ``genmodels serve`` for Streamlit.
"""

import importlib.util
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn

from genmodels.apps import serve
from genmodels.apps.api import create_app
from genmodels.apps.export import load_generative_model
from genmodels.commands import main
from tests.genmodels.apps.model_files import REPO, dcgan_ckpt, one_thread  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


def load_test_module():
    spec = importlib.util.spec_from_file_location("load_test_api", REPO / "scripts" / "load_test_api.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def api_url(dcgan_ckpt):
    load_test = load_test_module()
    port = load_test.free_port()
    config = uvicorn.Config(create_app(load_generative_model(dcgan_ckpt)), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        load_test.wait_healthy(url, timeout=30)
        yield load_test, url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_api_survives_concurrent_load_and_bad_requests(api_url):
    load_test, url = api_url
    stats = load_test.run_load(url, clients=20, duration=1.5, n=4)
    assert stats.errors == [] and len(stats.latencies) >= 20
    assert 0 < stats.percentile(50) <= stats.percentile(99) <= max(stats.latencies)
    assert "p99 ms" in load_test.format_table([stats])
    for body in ({"n": 10000}, {"seed": -1}, {"condition": 3}):
        response = httpx.post(f"{url}/generate", json=body, timeout=30)
        assert response.status_code == 422 and response.json()["detail"]
    malformed = httpx.post(f"{url}/generate", content=b"{nope", headers={"content-type": "application/json"}, timeout=30)
    assert malformed.status_code == 422 and "not valid JSON" in malformed.json()["detail"]
    assert httpx.post(f"{url}/generate", json={"n": 2}, timeout=30).status_code == 200


def test_serve_binds_loopback_and_runs_streamlit_headless_without_telemetry(dcgan_ckpt, monkeypatch):
    calls = {}
    monkeypatch.setattr(serve, "run_api", lambda model, name, host, port, level: calls.update(api=(type(model).__name__, host, port)))
    monkeypatch.setattr(serve, "run_streamlit", lambda arguments: calls.update(streamlit=arguments))
    main(["serve", "--ckpt", str(dcgan_ckpt), "--api", "--device", "cpu"])
    assert calls["api"] == ("DCGAN", "127.0.0.1", 8000)
    main(["serve", "--ckpt", str(dcgan_ckpt), "--port", "8600", "--device", "cpu"])
    command = " ".join(calls["streamlit"])
    for option in ("run ", "--server.address 127.0.0.1", "--server.port 8600", "--server.headless true",
                   "--browser.gatherUsageStats false", f"-- --ckpt {dcgan_ckpt.resolve()}"):  # fmt: skip
        assert option in command
    assert str(serve.STREAMLIT_APP) in calls["streamlit"]


def test_load_test_percentiles():
    stats = load_test_module().LoadStats(clients=1, seconds=2.0, latencies=[float(i) for i in range(1, 101)])
    assert (stats.percentile(50), stats.percentile(99), stats.rate) == (50.0, 99.0, 50.0)


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def _send_chunked(port: int, total_bytes: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """POST a chunked body of ``total_bytes`` (no Content-Length); stop sending once the server answers.

    Returns the response bytes and how many body bytes were sent before the answer came.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    piece = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
    sent, response = 0, b""
    try:
        while sent < total_bytes:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break
            if writable:
                sock.sendall(piece)
                sent += chunk
        else:
            sock.sendall(b"0\r\n\r\n")
        while not response.endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            response += data
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return response, sent


def test_chunked_upload_is_cut_off_at_the_limit_and_memory_stays_flat(dcgan_ckpt, tmp_path):
    # The real `genmodels serve --api` in its own process, so its peak RSS (VmHWM) is its own.
    load_test = load_test_module()
    port = load_test.free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "genmodels", "serve", "--ckpt", str(dcgan_ckpt), "--api",
                               "--port", str(port), "--device", "cpu", "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        load_test.wait_healthy(url, timeout=120)
        assert httpx.post(f"{url}/generate", json={"n": 2}, timeout=30).status_code == 200  # warm
        _send_chunked(port, 256 * 1024)  # and one refusal, so both paths are warm
        before = _peak_rss_kib(server.pid)
        response, sent = _send_chunked(port, 64 * 1024 * 1024)
        after = _peak_rss_kib(server.pid)
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"larger than 65536 bytes" in response
        assert sent < 16 * 1024 * 1024  # the server answered long before the 64 MiB were sent
        assert after - before < 16 * 1024, (before, after)  # KiB: a body read whole would add >= 64 MiB
        assert httpx.post(f"{url}/generate", json={"n": 2}, timeout=30).status_code == 200  # still serving
    finally:
        server.terminate()
        server.wait(timeout=30)
