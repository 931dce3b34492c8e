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
is too large for any valid request to this model (413); its body must arrive within
`read_timeout` seconds (408). `Admission` says how many requests the server takes at once (429
beyond). Parsing, the model and encoding the answer run in worker threads, at most `max_running`
at a time, never on the event loop; a request whose client has gone by then is dropped.
With `allowed_hosts`, requests naming another host in their Host header are refused (403): a
server on this machine's loopback address is then out of reach of DNS rebinding (a web page whose
name the attacker points at 127.0.0.1 and reads the answers of). API answers are never cached
(Cache-Control: no-store): they hold the client's images and codes.

With `studio=True` the app also serves the studio (serving/http/studio.py): a page at / and
/studio and its JSON API under /studio/api/, its POSTs under the same limits; `projections`:
(name, ProjectionFile) pairs its page opens without an upload.
"""

import asyncio
import contextlib
import html
import ipaddress
import json
import logging
import os
import re
import time
import zlib

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from serving import contract, rest
from serving.http.monitoring import CONTENT_TYPE, PredictMetrics
from serving.http.served import ServedModel

log = logging.getLogger(__name__)

MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:predict|/metadata)?$")


# The server's limits by default (python -m serving.http's options say what each is).
MAX_BATCH, MAX_BODY_MB, READ_TIMEOUT, MAX_REQUESTS, MAX_RUNNING = 256, 16.0, 15.0, 64, os.cpu_count() or 1


# The Host names a server bound to a loopback address answers by default (with any port).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
API_HEADERS = {"Cache-Control": "no-store"}


class Admission:
    """How many requests the server takes at once: `max_requests` whose body is in (waiting for a
    worker or at work), and, counted apart, `max_requests` whose body is still arriving, from
    anyone. Once that many are arriving, up to as many again are taken from addresses sending fewer
    than `max_requests` // 8 bodies (IPv6: per /64 network), so that clients trickling bodies in
    from a few addresses (64 connections sending a byte every few seconds held every place) do not
    shut the others out, while one address (a benchmark, a proxy in front) may still use every
    place of a server that is not full. Beyond these: 429."""

    def __init__(self, max_requests: int):
        self.max_requests, self.per_client = max_requests, max(1, max_requests // 8)
        self.in_progress, self.arriving = 0, {}

    @contextlib.contextmanager
    def receiving(self, client: str):
        """While a body from `client` (its address) arrives."""
        key, total = client_network(client), sum(self.arriving.values())
        if total >= self.max_requests and (self.arriving.get(key, 0) >= self.per_client or total >= 2 * self.max_requests):
            bodies = "1 request body is" if total == 1 else f"{total} request bodies are"
            raise rest.RequestError(429, f"{bodies} arriving, {self.arriving.get(key, 0)} of them from this address "
                                         f"({client}); retry shortly", headers=RETRY_AFTER)
        self.arriving[key] = self.arriving.get(key, 0) + 1
        try:
            yield
        finally:
            self.arriving[key] -= 1
            if not self.arriving[key]:
                del self.arriving[key]

    @contextlib.contextmanager
    def working(self):
        """While a request whose body is in waits for a worker or is at work."""
        if self.in_progress >= self.max_requests:
            raise rest.RequestError(429, f"{self.max_requests} requests in progress; retry shortly", headers=RETRY_AFTER)
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1


# On every 429: clients that retried at once, 100 of them against --max-requests 64, got 18.7
# answers/s where waiting 0.5 s first got 317/s (the refusals took the event loop's time).
RETRY_AFTER = {"Retry-After": "1"}


def client_network(address: str) -> str:
    """What Admission counts bodies by: an IPv4 address, or an IPv6 address's /64 network (one
    host commonly has a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    if ip.ipv4_mapped:  # an IPv4 client of a dual-stack socket
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def create_app(served: ServedModel, max_batch=MAX_BATCH, max_body_bytes=int(MAX_BODY_MB * 1024 * 1024),
               read_timeout=READ_TIMEOUT, max_requests=MAX_REQUESTS, max_running=MAX_RUNNING, studio=False,
               projections=(), allowed_hosts=None, aligner=None) -> Starlette:
    """`allowed_hosts`: the names a request's Host header may give (any port), None for any;
    `aligner`: what the studio makes uploads into (--align-faces, --align-digits), or None."""
    name = served.model.metadata["model_name"]
    predict_metrics = PredictMetrics(name)
    running = asyncio.Semaphore(max_running)
    admission = Admission(max_requests)

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

    async def limited(request, max_body: int, work, limit_is=None, queue=None):
        """work(body bytes) in a worker thread, under the server's limits: `admission`'s 429s, a
        body above `max_body` bytes 413 (`limit_is` says what that limit is; by default
        --max-body-mb) or not in within `read_timeout` 408, at most `max_running` at work (and one
        at a time of those holding `queue`, an asyncio.Semaphore, when given); 499 when the client
        has gone before its turn came; 503 when the server stops before it is answered."""
        limit_is = limit_is or BODY_LIMIT_OPTION
        try:
            with admission.receiving(request.client.host if request.client else ""):
                raw = await read_body(request, max_body, read_timeout, limit_is)
            encoding = request.headers.get("content-encoding", "")
            with admission.working():
                async with queue or contextlib.nullcontext(), running:
                    if await request.is_disconnected():
                        raise rest.RequestError(499, "client disconnected before its request ran")
                    return await run_in_threadpool(lambda: work(unzipped(raw, encoding, max_body, limit_is)))
        except asyncio.CancelledError:  # uvicorn's stop, past --drain-seconds: a 500 and a traceback in the log
            raise rest.RequestError(503, "the server stopped before answering this request (its --drain-seconds "
                                         "had passed); send it again", headers=RETRY_AFTER) from None

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
        if requested.lstrip("0") != str(model.version).lstrip("0"):  # not int(): 5,000 digits raise
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
        return Response(answer, media_type="application/json", headers=API_HEADERS)

    def model_info(request, model, action) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise rest.RequestError(405, f"{request.url.path} takes GET", headers={"Allow": "GET, HEAD"})
        return JSONResponse(metadata(model) if action == "/metadata" else status(model), headers=API_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        served.start()
        try:
            yield
        finally:
            served.stop()

    async def prometheus(request):
        return Response(predict_metrics.exposition(), media_type=CONTENT_TYPE, headers=API_HEADERS)

    # Every method reaches `models`, so that a predict with another than POST is answered 405 and
    # counted (Starlette adds HEAD to a route with GET).
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [Route("/v1/models", models, methods=methods),
              Route("/v1/models/{path:path}", models, methods=methods),
              Route("/monitoring/prometheus/metrics", prometheus, methods=["GET"])]
    if studio:  # the browser page and its JSON API (serving/http/studio.py), under the same limits
        from serving.http.studio import studio_routes

        routes += studio_routes(served, limited, max_batch=max_batch, max_body_bytes=max_body_bytes, projections=projections,
                                aligner=aligner)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(HostCheck, allowed_hosts=allowed_hosts)] if allowed_hosts is not None else [],
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


def byte_size(count: int) -> str:
    """27,021,063 bytes (25.8 MB): the MB of --max-body-mb, 2^20 bytes."""
    return f"{count:,} bytes ({count / 2**20:.3g} MB)"


async def read_body(request, max_body_bytes, timeout, limit_is) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise rest.RequestError(413, f"request body of {byte_size(int(declared))} exceeds the limit of "
                                     f"{byte_size(max_body_bytes)} ({limit_is})")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout) as deadline:
            start = asyncio.get_running_loop().time()
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise rest.RequestError(413, f"request body exceeds the limit of {byte_size(max_body_bytes)} ({limit_is})")
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
            raise rest.RequestError(413, f"request body exceeds the limit of {byte_size(max_bytes)} once unzipped ({limit_is})")
        if not member.eof:
            raise rest.RequestError(400, "the gzip body ends early")
        parts.append(part)
        raw = member.unused_data
    return b"".join(parts)


def host_name(host_header: str) -> str:
    """The name of a Host header without its port, lower case: [::1]:8501 -> ::1, Localhost:80 -> localhost."""
    host = host_header.strip().lower()
    if host.startswith("["):
        inside, _, after = host[1:].partition("]")
        return inside if not after or after.startswith(":") else host  # "[::1]evil.com" stays as it is
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """ASGI middleware: 403 for a request whose Host header names none of `allowed_hosts` (any
    port); a request without one (HTTP/1.0) passes, browsers always send it."""

    def __init__(self, app, allowed_hosts):
        self.app, self.allowed, self.logged = app, {host_name(host) for host in allowed_hosts}, set()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"host")
            name = host_name(header.decode("latin-1")) if header is not None else None
            if name is not None and name not in self.allowed:
                if len(self.logged) < 20 and name not in self.logged:  # once per name: a page may send thousands
                    self.logged.add(name)
                    log.warning("refused requests for host %r (allowed: %s; --allowed-hosts adds names)",
                                name[:100], ", ".join(sorted(self.allowed)))
                message = (f"this server answers requests for {', '.join(sorted(self.allowed))}, not {name[:100]!r}; "
                           "behind a proxy that sends its own Host, start it with --allowed-hosts NAME")
                accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
                if scope["method"] == "GET" and "text/html" in accept:  # a person opening the page in a browser
                    response = HTMLResponse(refused_host_page(message, header.decode("latin-1"), self.allowed),
                                            status_code=403, headers=API_HEADERS)
                else:
                    response = JSONResponse({"error": message}, status_code=403, headers=API_HEADERS)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refused_host_page(message: str, host_header: str, allowed: set[str]) -> str:
    """The 403 as a page, with the address that works (an ssh alias or the machine's name in the
    address bar, where the server answers localhost only)."""
    port = host_header.rsplit(":", 1)[1] if re.fullmatch(r"[^:]+:\d+|\[.*\]:\d+", host_header) else None
    name = "localhost" if "localhost" in allowed else sorted(allowed)[0]
    address = html.escape(f"http://{name}{':' + port if port else ''}/")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not this address</title></head>"
            f"<body style=\"font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto\">"
            f"<h1>Not this address</h1><p>Open <a href=\"{address}\">{address}</a> instead (over ssh: "
            f"<code>ssh -L PORT:localhost:PORT HOST</code>, then that address on your own machine).</p>"
            f"<p>{html.escape(message[0].upper() + message[1:])}.</p></body></html>")


async def request_error(request, exc: rest.RequestError):
    # After a 408 the rest of the body may still come: close rather than read it as a next request.
    headers = {**API_HEADERS, **exc.headers, **({"Connection": "close"} if exc.status == 408 else {})}
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)


async def http_error(request, exc: HTTPException):
    return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code,
                        headers=API_HEADERS)


async def server_error(request, exc: Exception):
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500, headers=API_HEADERS)
