"""The Starlette app: TF-Serving's REST URLs over one ALAEOnnx model, with the same signatures
as the export's SavedModel (`serving.contract`, from the export's metadata).

    GET  /v1/models/NAME[/versions/N]             model status
    GET  /v1/models/NAME[/versions/N]/metadata    signature defs
    POST /v1/models/NAME[/versions/N]:predict     predict (serving.rest)

Every error is a 4xx (or 500) answer {"error": "..."}; the server keeps serving.
"""

import logging
import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving import contract, rest
from serving.onnx_model import ALAEOnnx

log = logging.getLogger(__name__)

MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:predict|/metadata)?$")


def create_app(model: ALAEOnnx, max_batch=256, max_body_bytes=16 * 1024 * 1024) -> Starlette:
    name, version = model.metadata["model_name"], str(model.metadata["version"])
    signatures = model.signatures  # every signature of the export's SavedModel, from its metadata

    def status():
        return {"model_version_status": [{"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata():
        defs = {key: rest.signature_def(signature) for key, signature in signatures.items()}
        defs["serving_default"] = defs[contract.DEFAULT_SIGNATURE]
        return {
            "model_spec": {"name": name, "signature_name": "", "version": version},
            "metadata": {"signature_def": {"signature_def": defs}},
        }

    async def predict(request):
        body = rest.parse_json(await read_body(request, max_body_bytes))
        signature, inputs, rows = rest.parse_predict(body, signatures, max_batch)
        try:
            outputs = await run_in_threadpool(model.run_signature, signature, inputs)
        except ValueError as exc:  # the model's own checks (e.g. float images far outside [-1, 1])
            raise rest.RequestError(400, str(exc)) from None
        return rest.predict_response(outputs, rows)

    async def models(request):
        match = MODEL_PATH.match(request.path_params["path"])
        if match is None:
            raise rest.RequestError(404, f"no such resource: {request.url.path}")
        if match["name"] != name:
            raise rest.RequestError(404, f"model {match['name']!r} not found; this server serves {name!r}")
        if match["version"] not in (None, version):
            raise rest.RequestError(404, f"version {match['version']} of {name} not found; this server serves version {version}")
        action = match["action"]
        if action == ":predict":
            if request.method != "POST":
                raise rest.RequestError(405, "predict takes POST")
            return JSONResponse(await predict(request))
        if request.method != "GET":
            raise rest.RequestError(405, f"{request.url.path} takes GET")
        return JSONResponse(metadata() if action == "/metadata" else status())

    return Starlette(
        routes=[Route("/v1/models/{path:path}", models, methods=["GET", "POST"])],
        exception_handlers={rest.RequestError: request_error, HTTPException: http_error, Exception: server_error},
    )


async def read_body(request, max_body_bytes) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise rest.RequestError(413, f"request body of {int(declared)} bytes exceeds the limit of {max_body_bytes}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise rest.RequestError(413, f"request body exceeds the limit of {max_body_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise rest.RequestError(400, "client disconnected before sending the whole body") from None
    return b"".join(chunks)


async def request_error(request, exc: rest.RequestError):
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def http_error(request, exc: HTTPException):
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code)


async def server_error(request, exc: Exception):
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
