"""The FastAPI generation API in-process (fastapi.testclient): outputs, bounds and error messages."""

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from genmodels.apps.api import create_app
from genmodels.apps.generation import generate, grid_png, interpolation_frames
from tests.genmodels.apps.model_files import one_thread, tiny_cgan, tiny_dcgan  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dcgan():
    return tiny_dcgan()


@pytest.fixture(scope="module")
def client(dcgan):
    return TestClient(create_app(dcgan, "dcgan.ckpt"))


@pytest.fixture(scope="module")
def cgan_client():
    return TestClient(create_app(tiny_cgan(), "cgan.ckpt"))


def test_health_and_openapi_schema(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "DCGAN" and health["image_shape"] == [1, 16, 16]
    assert health["limits"]["max_n"] == 64 and health["latent_space"] == "z"
    schema = client.get("/openapi.json").json()
    assert {"/generate", "/interpolate", "/health"} <= set(schema["paths"])
    n_field = schema["components"]["schemas"]["GenerateRequest"]["properties"]["n"]
    assert (n_field["minimum"], n_field["maximum"]) == (1, 64)


def test_generate_png_is_the_seeds_grid(client, dcgan):
    body = {"n": 9, "seed": 11}
    first, second = client.post("/generate", json=body), client.post("/generate", json=body)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.content == second.content == grid_png(generate(dcgan, 9, 11))
    assert client.post("/generate", json={"n": 9, "seed": 12}).content != first.content


def test_generate_json_returns_one_png_per_image_with_labels(cgan_client):
    response = cgan_client.post("/generate", json={"n": 4, "seed": 1, "condition": [2, 5], "format": "json"})
    assert response.status_code == 200
    payload = response.json()
    assert payload["labels"] == [2, 5, 2, 5]
    images = [Image.open(io.BytesIO(base64.b64decode(data))) for data in payload["images"]]
    assert len(images) == 4 and images[0].size == (16, 16)


def test_truncation_changes_the_images(client, dcgan):
    response = client.post("/generate", json={"n": 4, "seed": 0, "truncation": 0.3})
    assert response.content == grid_png(generate(dcgan, 4, 0, truncation=0.3))
    assert response.content != client.post("/generate", json={"n": 4, "seed": 0}).content


def test_interpolate_png_and_json(client, dcgan):
    body = {"seed_a": 1, "seed_b": 2, "steps": 5, "n": 2}
    strip = client.post("/interpolate", json=body)
    frames = interpolation_frames(dcgan, 1, 2, 5, 2)
    assert strip.content == grid_png(frames.transpose(0, 1).reshape(-1, 1, 16, 16), nrow=5)
    payload = client.post("/interpolate", json={**body, "format": "json"}).json()
    assert len(payload["frames"]) == 5 and len(payload["frames"][0]) == 2


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/generate", {"n": 10000}, 422, "n: Input should be less than or equal to 64"),
        ("/generate", {"n": 0}, 422, "n: Input should be greater than or equal to 1"),
        ("/generate", {"seed": -1}, 422, "seed: Input should be greater than or equal to 0"),
        ("/generate", {"seed": 2**40}, 422, "seed: Input should be less than or equal to 2147483647"),
        ("/generate", {"n": "lots"}, 422, "n: Input should be a valid integer"),
        ("/generate", {"truncation": -1}, 422, "truncation: Input should be greater than 0"),
        ("/generate", {"format": "gif"}, 422, "format: Input should be 'png' or 'json'"),
        ("/generate", {"colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ("/generate", {"condition": 3}, 422, "DCGAN is unconditional"),
        ("/interpolate", {"steps": 1}, 422, "steps: Input should be greater than or equal to 2"),
        ("/interpolate", {"steps": 32, "n": 64}, 422, "steps * n must be <= 256"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(client, path, body, status, message):
    response = client.post(path, json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert client.post("/generate", json={"n": 1}).status_code == 200


def test_unknown_class_malformed_json_and_oversized_bodies(cgan_client):
    unknown = cgan_client.post("/generate", json={"n": 2, "condition": 12})
    assert unknown.status_code == 422 and "unknown class 12" in unknown.json()["detail"]
    assert "classes 0..9" in unknown.json()["detail"]
    malformed = cgan_client.post("/generate", content=b'{"n": 4,', headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and "not valid JSON" in malformed.json()["detail"]
    huge = cgan_client.post("/generate", content=b" " * 70000, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "larger than 65536 bytes" in huge.json()["detail"]
    assert cgan_client.post("/generate", json={"n": 2, "condition": 9}).status_code == 200


@pytest.mark.parametrize("path", ["/generate", "/interpolate"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_422_not_a_500(client, path, value):
    # Python's json accepts these tokens; they must be refused like any other bad value.
    response = client.post(path, content=f'{{"truncation": {value}}}'.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: truncation:")


def test_a_422_never_echoes_the_request_body(client):
    marker = "x" * 60000  # under the 64 KiB limit, so it reaches validation
    response = client.post("/generate", json={"n": marker})
    assert response.status_code == 422 and "n: Input should be a valid integer" in response.json()["detail"]
    assert marker[:100] not in response.text and len(response.content) < 2000
    malformed = client.post("/generate", content=b'{"n": "' + marker.encode(), headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and marker[:100] not in malformed.text and len(malformed.content) < 2000
