"""The API over real HTTP (uvicorn on loopback) under concurrent load, and `genmodels serve`'s wiring.

uvicorn runs in a thread of the test process: a child process would spend most of the test
importing torch again. `scripts/load_test_api.py --ckpt` runs the real ``genmodels serve --api``
child process; the browser test runs the real ``genmodels serve`` for Streamlit.
"""

import importlib.util
import sys
import threading

import httpx
import pytest
import uvicorn

from genmodels.apps import serve
from genmodels.apps.api import create_app
from genmodels.apps.export import load_generative_model
from genmodels.cli import main
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
