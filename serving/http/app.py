"""The Starlette app: TF-Serving's REST URLs over the served version of an exported ALAE
(serving/http/served.py: the newest, followed while the app runs), with the same signatures as
the export's SavedModel (`serving.contract`, from the export's metadata).

    GET  /v1/models/NAME[/versions/N]             model status
    GET  /v1/models/NAME[/versions/N]/metadata    signature defs
    POST /v1/models/NAME[/versions/N]:predict     predict (serving.rest)
    GET  /monitoring/prometheus/metrics           predict counts and latency (serving/http/monitoring.py)

Each request is answered by the version served when it starts (its limits are that version's).
Every error is a 4xx (or 500) answer {"error": "..."}; the server keeps serving. A predict body
is read as JSON whatever its Content-Type, as TF-Serving reads it (`curl -d` sends
application/x-www-form-urlencoded), and gunzipped first when its Content-Encoding names gzip, as
TF-Serving's HTTP server does by default (the limits below then hold for the body as sent and as
unzipped). A predict request is refused before its body is read when it
is too large for any valid request to this model (413) or beyond `max_requests` in progress
(429); its body must arrive
within `read_timeout` seconds (408). Parsing, the model and encoding the answer run in worker
threads, at most `max_running` at a time, never on the event loop.

With `studio=True` the app also serves the studio (serving/http/studio.py): a page at / and
/studio and its JSON API under /studio/api/, its POSTs under the same limits; `projections`:
(name, ProjectionFile) pairs its page opens without an upload.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import zlib

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving import contract, rest
from serving.http.monitoring import CONTENT_TYPE, PredictMetrics
from serving.http.served import ServedModel

log = logging.getLogger(__name__)

MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:predict|/metadata)?$")


# The server's limits by default (python -m serving.http's options say what each is).
MAX_BATCH, MAX_BODY_MB, READ_TIMEOUT, MAX_REQUESTS, MAX_RUNNING = 256, 16.0, 15.0, 64, os.cpu_count() or 1


def create_app(served: ServedModel, max_batch=MAX_BATCH, max_body_bytes=int(MAX_BODY_MB * 1024 * 1024),
               read_timeout=READ_TIMEOUT, max_requests=MAX_REQUESTS, max_running=MAX_RUNNING, studio=False,
               projections=()) -> Starlette:
    name = served.model.metadata["model_name"]
    predict_metrics = PredictMetrics(name)
    running = asyncio.Semaphore(max_running)
    in_progress = 0

    def status(model):
        version = str(model.version)
        return {"model_version_status": [{"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(model):
        # every signature of the export's SavedModel, from its metadata
        defs = {key: rest.signature_def(signature) for key, signature in model.signatures.items()}
        defs["serving_default"] = defs[contract.DEFAULT_SIGNATURE]
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": {"signature_def": defs}},
        }

    async def limited(request, max_body: int, work, limit_is=None):
        """work(body bytes) in a worker thread, under the server's limits: beyond `max_requests` in
        progress 429, a body above `max_body` bytes 413 (`limit_is` says what that limit is; by
        default --max-body-mb) or not in within `read_timeout` 408, at most `max_running` at work."""
        nonlocal in_progress
        if in_progress >= max_requests:
            raise rest.RequestError(429, f"{max_requests} requests in progress; retry shortly")
        in_progress += 1
        limit_is = limit_is or BODY_LIMIT_OPTION
        try:
            raw = await read_body(request, max_body, read_timeout, limit_is)
            encoding = request.headers.get("content-encoding", "")
            async with running:
                return await run_in_threadpool(lambda: work(unzipped(raw, encoding, max_body, limit_is)))
        finally:
            in_progress -= 1

    async def models(request):
        started = time.perf_counter()
        model = served.model
        path = request.path_params.get("path", "")
        if not path:  # TF-Serving's answer to /v1/models and /v1/models/
            raise rest.RequestError(400, "Missing model name in request.")
        match = MODEL_PATH.match(path)
        if match is None:
            raise rest.RequestError(404, f"no such resource: {request.url.path}")
        if match["name"] != name:
            raise rest.RequestError(404, f"model {match['name']!r} not found; this server serves {name!r}")
        if match["action"] != ":predict":
            check_version(match["version"], model)
            return model_info(request, model, match["action"])
        try:  # a predict is counted and timed, answered or refused
            check_version(match["version"], model)
            response = await predict(request, model)
        except Exception as exc:
            predict_metrics.record(exc.status if isinstance(exc, rest.RequestError) else 500, time.perf_counter() - started)
            raise
        predict_metrics.record(200, time.perf_counter() - started)
        return response

    def check_version(requested, model) -> None:
        """404 unless the request names no version or the served one (as a number: 0001 is 1); a
        version that is not a number is malformed (400), as in TF-Serving."""
        if requested is None:
            return
        if not (requested.isascii() and requested.isdigit()):
            raise rest.RequestError(400, f"Malformed request: a version is a number, got {requested!r}")
        if int(requested) != model.version:
            raise rest.RequestError(404, f"version {requested} of {name} not found; this server serves version {model.version}")

    async def predict(request, model) -> Response:
        if request.method != "POST":
            raise rest.RequestError(405, "predict takes POST", headers={"Allow": "POST"})
        largest = rest.largest_valid_body(model.signatures, max_batch)
        max_lists = rest.largest_valid_nesting(model.signatures, max_batch)
        body_limit = min(max_body_bytes, largest)
        limit_is = "the most a compact JSON request of this server's largest batch needs" if largest < max_body_bytes else None

        def predict_answer(raw: bytes) -> bytes:
            """The answer to a predict body (in a worker thread: every step is CPU work on the whole body)."""
            signature, inputs, rows = rest.parse_predict(rest.parse_json(raw, max_lists, max_batch), model.signatures, max_batch)
            try:
                outputs = model.run_signature(signature, inputs)
            except ValueError as exc:  # the model's own checks (float images far outside [-1, 1], overflowing outputs)
                raise rest.RequestError(400, str(exc)) from None
            return json.dumps(rest.predict_response(outputs, rows), allow_nan=False).encode()

        answer = await limited(request, body_limit, predict_answer, limit_is)
        return Response(answer, media_type="application/json")

    def model_info(request, model, action) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise rest.RequestError(405, f"{request.url.path} takes GET", headers={"Allow": "GET, HEAD"})
        return JSONResponse(metadata(model) if action == "/metadata" else status(model))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        served.start()
        try:
            yield
        finally:
            served.stop()

    async def prometheus(request):
        return Response(predict_metrics.exposition(), media_type=CONTENT_TYPE)

    # Every method reaches `models`, so that a predict with another than POST is answered 405 and
    # counted (Starlette adds HEAD to a route with GET).
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [Route("/v1/models", models, methods=methods),
              Route("/v1/models/{path:path}", models, methods=methods),
              Route("/monitoring/prometheus/metrics", prometheus, methods=["GET"])]
    if studio:  # the browser page and its JSON API (serving/http/studio.py), under the same limits
        from serving.http.studio import studio_routes

        routes += studio_routes(served, limited, max_batch=max_batch, max_body_bytes=max_body_bytes, projections=projections)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={rest.RequestError: request_error, HTTPException: http_error, Exception: server_error},
    )


BODY_LIMIT_OPTION = "the server's --max-body-mb; start it with a larger one for larger requests"


def require_json(request, what) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise rest.RequestError(415, f"{what} takes Content-Type: application/json, got {media_type or 'none'}")


# A body must arrive within the read timeout, plus one second per MIN_BODY_RATE bytes received:
# a slow but steady upload (a photo over a tunnel) goes through, a trickle does not. Nor does a
# pause longer than the read timeout, whatever came before (16 MB sent at once bought 256 s of
# silence in a request slot).
MIN_BODY_RATE = 64 * 1024
# gzip members one body may hold: a client's gzip writes one, concatenated files a few; each
# member after the first cost a copy of the rest of the body (497k empty members: 83 s of CPU).
MAX_GZIP_MEMBERS = 16


async def read_body(request, max_body_bytes, timeout, limit_is) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise rest.RequestError(413, f"request body of {int(declared)} bytes exceeds the limit of {max_body_bytes} ({limit_is})")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout) as deadline:
            start = asyncio.get_running_loop().time()
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise rest.RequestError(413, f"request body exceeds the limit of {max_body_bytes} bytes ({limit_is})")
                chunks.append(chunk)
                now = asyncio.get_running_loop().time()
                deadline.reschedule(min(start + timeout + size / MIN_BODY_RATE, now + timeout))
    except ClientDisconnect:  # counted as TF-Serving counts a cancelled request; nobody reads the answer
        raise rest.RequestError(499, "client disconnected before sending the whole body") from None
    except TimeoutError:
        raise rest.RequestError(408, f"request body not received in time ({size} bytes in; the server's "
                                     f"--read-timeout of {timeout:g} s, plus 1 s per {MIN_BODY_RATE // 1024} kB "
                                     f"received, and no pause longer than {timeout:g} s)") from None
    return b"".join(chunks)


def unzipped(raw: bytes, content_encoding: str, max_bytes: int, limit_is: str) -> bytes:
    """The body as sent, or gunzipped (every gzip member in turn) when `content_encoding` names
    gzip; refused (413) as soon as the unzipped body grows beyond `max_bytes`."""
    if "gzip" not in content_encoding.lower():
        return raw
    parts, size = [], 0
    while raw:
        if len(parts) == MAX_GZIP_MEMBERS:
            raise rest.RequestError(400, f"the gzip body holds more than {MAX_GZIP_MEMBERS} members")
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = member.decompress(raw, max_bytes + 1 - size)
        except zlib.error as exc:
            raise rest.RequestError(400, f"the body is not gzip data, though its Content-Encoding says so ({exc})") from None
        size += len(part)
        if size > max_bytes:  # it stopped at max_bytes + 1: there is more
            raise rest.RequestError(413, f"request body exceeds the limit of {max_bytes} bytes once unzipped ({limit_is})")
        if not member.eof:
            raise rest.RequestError(400, "the gzip body ends early")
        parts.append(part)
        raw = member.unused_data
    return b"".join(parts)


async def request_error(request, exc: rest.RequestError):
    # After a 408 the rest of the body may still come: close rather than read it as a next request.
    headers = {**exc.headers, "Connection": "close"} if exc.status == 408 else exc.headers
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)


async def http_error(request, exc: HTTPException):
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code)


async def server_error(request, exc: Exception):
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
