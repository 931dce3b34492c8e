"""The studio's routes: the page (serving/studio/, plain files: index.html, studio.js, studio.css)
and its JSON API (serving/http/studio_api.py), for `python -m serving.http --studio`.

    GET  /  and  /studio                 the page (/studio/ redirects to /studio; the page itself adds
                                         the slash to a proxy prefix's URL that lacks it)
    GET  /studio/studio.js, studio.css   its script and style sheet
    GET  /studio/api/info                the model as the page needs it
    POST /studio/api/sample              {"seed": 3, "truncation_psi": 0.7}
    POST /studio/api/upload              the bytes of a PNG, JPEG, WebP or BMP file (any Content-Type), or of
                                         a projection.npz (?index=K picks its image, default 0)
    POST /studio/api/projection          {"file": 0, "index": 3}: a projection file the server was started with
    POST /studio/api/edit                {"w": [...], "edits": [{"direction": "3_to_8", "strength": 1.5}], "layers": "all"}
    POST /studio/api/mix                 {"destination_w": [...], "source_w": [...], "layers": "coarse"}
    POST /studio/api/interpolate         {"w_a": [...], "w_b": [...], "steps": 8}

The page names its files and the API by relative URLs (studio/studio.js, studio/api/...), and
/studio/ redirects by a relative Location, so that the studio also works behind a proxy that serves
this server under a path prefix (JupyterHub's /user/NAME/proxy/8501/, code-server's /proxy/8501/;
both forward the browser's Host, which the server then needs in --allowed-hosts).

Answers are JSON, never cached; errors {"error": "..."} with a 4xx status (the app's handlers).
Every POST goes through the app's `limited` (requests in progress, body size and read timeout,
worker threads): uploads may be up to `max_body_bytes`, JSON bodies up to JSON_BODY_BYTES;
uploads are decoded one at a time.

The page sends the version it was loaded with (header X-Model-Version) and which load of it
(X-Model-Load, PROCESS-N: a version exported again with --overwrite keeps its number, and so does
a server restarted on other files). When the server has moved to another version or load, or
restarted, since, its requests are answered 409 with a message to reload
the page: the page's latent codes came from the old encoder, and its sliders name the old
version's directions.
"""

import asyncio
import base64
import hashlib
import itertools
import json
import logging
import re
import secrets
from pathlib import Path

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from serving import projection_file, rest
from serving.http.app import API_HEADERS, require_json
from serving.http.studio_api import Studio

ASSETS = Path(__file__).resolve().parents[1] / "studio"
PAGE = "index.html"
FILES = {"studio.js": "text/javascript; charset=utf-8", "studio.css": "text/css; charset=utf-8"}
log = logging.getLogger(__name__)
VERSION_HEADER = "X-Model-Version"
LOAD_HEADER = "X-Model-Load"
JSON_BODY_BYTES = 1024 * 1024  # a w+ of 18 x 512 numbers is ~200 kB of JSON, and a mix sends two
SERVED_AT = b'<meta name="alae-served-at" content="%s">'
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def fitting_projections(projections, model) -> list:
    """The (name, ProjectionFile) pairs that fit `model`, a newly served version (the others are
    logged, once per version, and left out of the page's list: opening one was a 400)."""
    fitting = []
    for name, projection in projections:
        problem = ("this export has no per-layer styles graph (decode_styles)" if "decode_styles" not in model.signatures
                   else projection_file.fitting_problem(projection, model.num_styles or 1, model.latent_dim, model.image_shape,
                                                        model.noise_shapes, "this model"))
        if problem:
            log.warning("--projections %s is left out of the studio for version %s of %s: %s", name, model.version,
                        model.metadata["model_name"], problem)
        else:
            fitting.append((name, projection))
    return fitting


def page_headers(page: bytes) -> dict:
    """Headers of the page and its files. Nothing leaves this server: no scripts, styles, fonts or
    images from elsewhere; the one inline script allowed is the page's own (by its hash), which
    adds the trailing slash that a proxy's prefix needs before the page's relative URLs load."""
    inline = [base64.b64encode(hashlib.sha256(script).digest()).decode() for script in INLINE_SCRIPT.findall(page)]
    scripts = " ".join(["'self'", *(f"'sha256-{digest}'" for digest in inline)])
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src {scripts}; "
                                   "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def studio_routes(served, limited, max_batch: int, max_body_bytes: int, projections=(), aligner=None) -> list[Route]:
    """The studio's routes over the served model (serving/http/served.py); `limited(request,
    max_body, work)` is the app's admission (serving/http/app.py); `projections`: (name,
    ProjectionFile) pairs the page may open without uploading them; `aligner`: the uploads' aligner
    (--align-faces, --align-digits), or None."""
    # The served models one after the other, as PROCESS-N: a page loaded before a restart of the
    # server (the same name and version, maybe other files) is told by the first part.
    process, loads = secrets.token_hex(4), itertools.count(1)
    latest = (Studio(served.model, max_batch, projections, aligner), f"{process}-{next(loads)}")

    def studio_for(request) -> tuple[Studio, int]:
        """The served model's Studio and its load number; 409 for a page loaded with another model."""
        nonlocal latest
        if latest[0].model is not served.model:
            latest = (Studio(served.model, max_batch, fitting_projections(projections, served.model), aligner),
                      f"{process}-{next(loads)}")
        studio, load = latest
        version, name = str(studio.model.version), studio.model.metadata["model_name"]
        page_version, page_load = request.headers.get(VERSION_HEADER), request.headers.get(LOAD_HEADER)
        if page_version is not None and page_version != version:
            raise rest.RequestError(409, f"the server now serves version {version} of {name} (this page was loaded with "
                                         f"version {page_version}): reload the page")
        if page_load is not None and not page_load.startswith(f"{process}-"):
            raise rest.RequestError(409, f"the server restarted since this page was loaded; it serves version {version} "
                                         f"of {name}: reload the page")
        if page_load is not None and page_load != load:
            raise rest.RequestError(409, f"the server now serves new files of version {version} of {name} (exported "
                                         "again since this page was loaded): reload the page")
        return latest

    assets = {name: (ASSETS / name).read_bytes() for name in (PAGE, *FILES)}  # missing files fail at start
    headers = page_headers(assets[PAGE])
    json_limit = min(JSON_BODY_BYTES, max_body_bytes)

    def page_at(path: str):
        """The page as served at `path`, / or /studio: its first script reads which (see index.html)."""
        body = assets[PAGE].replace(SERVED_AT % b"/", SERVED_AT % path.encode())

        async def page(request):
            return Response(body, media_type="text/html; charset=utf-8", headers=headers)

        return page

    async def to_page(request):  # relative, so that it stays under a proxy's prefix (Starlette's own is absolute)
        return RedirectResponse("../studio", status_code=308)

    async def asset(request):
        name = request.path_params["name"]
        if name not in FILES:
            raise rest.RequestError(404, f"no such file: {request.url.path}")
        return Response(assets[name], media_type=FILES[name], headers=headers)

    async def info(request):
        studio, load = studio_for(request)
        return JSONResponse({**studio.info(), "load": load, "max_upload_bytes": max_body_bytes}, headers=API_HEADERS)

    def json_endpoint(action):
        async def endpoint(request):
            require_json(request, action)
            handler = getattr(studio_for(request)[0], action)

            def work(raw: bytes) -> bytes:
                return answer(handler(rest.parse_json(raw)))

            limit_is = "the studio's limit for JSON requests" if json_limit < max_body_bytes else None
            return Response(await limited(request, json_limit, work, limit_is), media_type="application/json",
                            headers=API_HEADERS)

        return endpoint

    # Decoding an upload may take a second and hundreds of MB (a 40-megapixel PNG): one at a time,
    # so that a few of them cannot stall every other request.
    decoding = asyncio.Semaphore(1)

    async def upload(request):
        studio = studio_for(request)[0]
        index = request.query_params.get("index")

        def work(raw: bytes) -> bytes:
            return answer(studio.upload(raw, index))

        return Response(await limited(request, max_body_bytes, work, queue=decoding), media_type="application/json",
                        headers=API_HEADERS)

    return [
        Route("/", page_at("/"), methods=["GET"]),
        Route("/studio", page_at("/studio"), methods=["GET"]),
        Route("/studio/", to_page, methods=["GET"]),
        Route("/studio/api/info", info, methods=["GET"]),
        Route("/studio/api/sample", json_endpoint("sample"), methods=["POST"]),
        Route("/studio/api/upload", upload, methods=["POST"]),
        Route("/studio/api/projection", json_endpoint("projection"), methods=["POST"]),
        Route("/studio/api/edit", json_endpoint("edit"), methods=["POST"]),
        Route("/studio/api/mix", json_endpoint("mix"), methods=["POST"]),
        Route("/studio/api/interpolate", json_endpoint("interpolate"), methods=["POST"]),
        Route("/studio/{name}", asset, methods=["GET"]),
    ]


def answer(result: dict) -> bytes:
    return json.dumps(result, allow_nan=False).encode()
