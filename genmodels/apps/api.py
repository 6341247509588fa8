"""HTTP generation API (FastAPI), started by ``genmodels serve --ckpt PATH --api``.

Endpoints (schema at ``/openapi.json``, interactive docs at ``/docs``):

- ``GET /health``: status and what the model accepts (classes, latent space, limits).
- ``POST /generate`` ``{"n": 16, "seed": 0, "condition": null, "truncation": null, "format": "png"}``:
  a PNG grid, or with ``"format": "json"`` one base64 PNG per image. ``condition`` is a class
  label, a list of labels (cycled over the images) or ``"all"``; ``truncation`` is psi
  (`genmodels.apps.latent`). The same request always returns the same images.
- ``POST /interpolate`` ``{"seed_a": 0, "seed_b": 1, "steps": 8, "n": 1, ...}``: the path between
  two seeds, as a PNG (one row per path) or JSON frames.

Every input is bounded: n <= 64, seeds in [0, 2^31 - 1], steps <= 32, at most 256 images per
interpolation, known class labels only, finite numbers only (no NaN/Infinity), no unknown
fields, bodies up to 64 KiB. The body limit counts the bytes actually received (`BodyLimit`), so
a chunked upload without Content-Length is cut off at the limit too, and memory stays bounded. A
bad request gets a 4xx whose ``detail`` is one readable sentence (plus pydantic's ``errors``
list for 422s, without the submitted values: the body is never echoed), and the server goes on
serving.

One generation runs at a time (a lock): a single call already uses every core torch is given, so
concurrent calls would only compete; requests wait in the server's thread pool. The server binds
to 127.0.0.1 unless told otherwise: there is no authentication.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any, Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from genmodels.apps.generation import condition_labels, generate, grid_png, image_pngs, interpolation_frames, num_classes
from genmodels.apps.latent import MAX_SEED, latent_space

__all__ = ["create_app", "BodyLimit", "GenerateRequest", "InterpolateRequest", "LIMITS"]

LIMITS = {"max_n": 64, "max_seed": MAX_SEED, "max_steps": 32, "max_interpolation_images": 256, "max_body_bytes": 65536}

Label = StrictInt
ConditionField = Optional[Union[Label, list[Label], Literal["all"]]]


class GenerateRequest(BaseModel):
    """Body of ``POST /generate``."""

    model_config = ConfigDict(extra="forbid")

    n: StrictInt = Field(16, ge=1, le=LIMITS["max_n"], description="number of images")
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED, description="the same seed gives the same images")
    condition: ConditionField = Field(None, description="class label, list of labels (cycled) or 'all'")
    truncation: Optional[float] = Field(
        None, gt=0, le=10, allow_inf_nan=False, description="psi: resample |z| > psi (Z), or pull w toward the mean (W)"
    )
    format: Literal["png", "json"] = Field("png", description="png: one grid; json: base64 PNG per image")
    nrow: Optional[StrictInt] = Field(None, ge=1, le=LIMITS["max_n"], description="images per grid row")


class InterpolateRequest(BaseModel):
    """Body of ``POST /interpolate``."""

    model_config = ConfigDict(extra="forbid")

    seed_a: StrictInt = Field(0, ge=0, le=MAX_SEED)
    seed_b: StrictInt = Field(1, ge=0, le=MAX_SEED)
    steps: StrictInt = Field(8, ge=2, le=LIMITS["max_steps"], description="frames, both ends included")
    n: StrictInt = Field(1, ge=1, le=LIMITS["max_n"], description="paths walked side by side")
    condition: ConditionField = None
    truncation: Optional[float] = Field(None, gt=0, le=10, allow_inf_nan=False)
    format: Literal["png", "json"] = "png"


class UnprocessableRequest(ValueError):
    """A well-formed request the model cannot serve (unknown class, too many images, ...)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _describe(errors: list[dict[str, Any]]) -> str:
    """One sentence out of pydantic's error list."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _error(status: int, detail: str, errors: Optional[list[Any]] = None) -> JSONResponse:
    content: dict[str, Any] = {"detail": detail}
    if errors is not None:
        # Without "input": the submitted value (up to the whole body) is never sent back, and a
        # NaN in it could not even be written as JSON.
        errors = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in errors]
        content["errors"] = jsonable_encoder(errors, custom_encoder={Exception: str})
    return JSONResponse(status_code=status, content=content)


def _too_large_body() -> bytes:
    return json.dumps({"detail": f"the request body is larger than {LIMITS['max_body_bytes']} bytes"}).encode()


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body, counted as it arrives.

    A Content-Length above the limit is refused before anything is read; otherwise the bytes
    are counted chunk by chunk (a chunked upload has no Content-Length), and at the first chunk
    past the limit the client gets a 413, the application sees a disconnect, and nothing more
    is read. Anything the application tries to send after that is dropped.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        state = {"received": 0, "refused": False, "started": False}

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["refused"]:
                return
            state["started"] = True
            await send(message)

        async def counting_receive() -> dict[str, Any]:
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["refused"] = True
                    if not state["started"]:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise  # a real error: the server's own handling (500) applies

    @staticmethod
    async def _refuse(send: Any) -> None:
        body = _too_large_body()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def create_app(model: Any, checkpoint: str = "") -> FastAPI:
    """The FastAPI app serving ``model`` (already in eval mode on its device)."""
    app = FastAPI(
        title="genmodels generation API",
        version="1",
        description=f"Images from {type(model).__name__}{f' ({checkpoint})' if checkpoint else ''}. See /health for limits.",
    )
    lock = threading.Lock()
    space = latent_space(model)

    app.add_middleware(BodyLimit, max_bytes=LIMITS["max_body_bytes"])

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe(list(exc.errors())), list(exc.errors()))

    @app.exception_handler(UnprocessableRequest)
    async def unprocessable(request: Request, exc: UnprocessableRequest) -> JSONResponse:
        return _error(422, str(exc))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": type(model).__name__,
            "checkpoint": checkpoint,
            "iteration": int(model.iteration),
            "image_shape": [int(s) for s in model.image_shape],
            "num_classes": num_classes(model),
            "latent_space": space.kind if space is not None else None,
            "limits": LIMITS,
        }

    def checked_labels(condition: Any, n: int) -> Any:
        try:
            return condition_labels(model, condition, n)
        except ValueError as err:
            raise UnprocessableRequest(f"condition: {err}") from None

    def run(function: Any, *args: Any) -> Any:
        try:
            with lock:
                return function(*args)
        except ValueError as err:  # e.g. truncation or interpolation on a model without latents
            raise UnprocessableRequest(str(err)) from None

    @app.post("/generate", responses={200: {"content": {"image/png": {}, "application/json": {}}}})
    def generate_images(request: GenerateRequest) -> Response:
        labels = checked_labels(request.condition, request.n)
        images = run(generate, model, request.n, request.seed, labels, request.truncation)
        headers = {"X-Seed": str(request.seed)}
        if request.format == "png":
            return Response(grid_png(images, nrow=request.nrow), media_type="image/png", headers=headers)
        return JSONResponse(
            {
                "seed": request.seed,
                "n": request.n,
                "image_shape": [int(s) for s in model.image_shape],
                "labels": None if labels is None else labels.tolist(),
                "truncation": request.truncation,
                "images": [_b64(data) for data in image_pngs(images)],
            },
            headers=headers,
        )

    @app.post("/interpolate", responses={200: {"content": {"image/png": {}, "application/json": {}}}})
    def interpolate(request: InterpolateRequest) -> Response:
        if request.steps * request.n > LIMITS["max_interpolation_images"]:
            raise UnprocessableRequest(
                f"steps * n must be <= {LIMITS['max_interpolation_images']} images, got {request.steps} * {request.n}"
            )
        labels = checked_labels(request.condition, request.n)
        frames = run(
            interpolation_frames, model, request.seed_a, request.seed_b, request.steps, request.n, labels, request.truncation
        )
        if request.format == "png":
            rows = frames.transpose(0, 1).reshape(-1, *frames.shape[2:])
            return Response(grid_png(rows, nrow=request.steps), media_type="image/png")
        return JSONResponse(
            {
                "seed_a": request.seed_a,
                "seed_b": request.seed_b,
                "steps": request.steps,
                "frames": [[_b64(data) for data in image_pngs(frame)] for frame in frames],
            }
        )

    return app
