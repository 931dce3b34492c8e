"""python -m serving.http --model EXPORT [--host 127.0.0.1] [--port 8501] [--allowed-hosts NAME ...] [--studio [--projections FILE ...]]"""

import argparse
import ipaddress
import logging
import signal
import socket
import sys
import warnings
from pathlib import Path

from serving.command_line import CommandParser, install_extra, number

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
# Under Kubernetes' default grace period (30 s from its SIGTERM to its SIGKILL); docker stop waits
# 10 s unless given -t.
DRAIN_SECONDS = 25.0


def _without_tensorflow() -> str:
    """The http extra's packages as one pip command, for an install kept free of TensorFlow (which
    the extra brings along with the alae_tf distribution), read from the installed metadata."""
    from importlib import metadata

    try:
        requirements = metadata.requires("alae_tf") or ()
    except metadata.PackageNotFoundError:
        return ""
    extra = [r.split(";")[0].strip() for r in requirements if r.replace("'", '"').endswith('extra == "http"')]
    return f", or without TensorFlow: pip install {' '.join(extra)}" if extra else ""


try:
    import uvicorn

    from serving import projection_file
    from serving.digits import DigitAligner
    from serving.faces import CROPS, FaceAligner, FacesUnavailable
    from serving.http import app as limits
    from serving.http.app import create_app
    from serving.http.served import ServedModel
    from serving.http.timeouts import h11_protocol_with_read_limits
    from serving.layout import FLOAT32, ONNX_VARIANTS
except ModuleNotFoundError as missing:  # the http extra is not installed: one line, not a traceback
    if missing.name.split(".")[0] not in ("uvicorn", "starlette", "onnxruntime", "PIL", "h11"):
        raise
    print(f"error: python -m serving.http needs the {missing.name} package: {install_extra('http')}{_without_tensorflow()}",
          file=sys.stderr)
    sys.exit(2)
except KeyboardInterrupt:  # Ctrl-C in the half second these take: one line, as alae_tf's commands say it
    print("\ninterrupted (Ctrl-C) while starting: nothing was done", file=sys.stderr)
    sys.exit(130)


def _port(text):
    value = number(int, 0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m serving.http",
        description="Serve an exported ALAE on ONNX Runtime with TF-Serving's REST API "
        "(POST /v1/models/NAME:predict, GET /v1/models/NAME and /metadata).",
        epilog="examples:\n"
        "  python -m serving.http --model exports                                # http://127.0.0.1:8501\n"
        "  python -m serving.http --model exports --studio --port 8080           # and the browser studio\n"
        "  curl http://127.0.0.1:8501/v1/models/alae_mnist/metadata        # its signatures\n"
        "  (serving/README.md: predict requests with curl or serving.client.RestClient)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True,
                        help="EXPORT directory of python -m export or EXPORT/onnx/NAME (serves the newest version and "
                        "follows newer exports), or a version directory (serves that version only)")
    parser.add_argument("--name", help="model to serve when EXPORT holds several")
    parser.add_argument("--onnx-variant", choices=ONNX_VARIANTS, default=FLOAT32,
                        help="which ONNX files to run: float32 (default) or int8 (an export made with --onnx-int8)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--allowed-hosts", nargs="+", default=[], metavar="NAME",
                        help="host names requests may name in their Host header besides localhost, 127.0.0.1, ::1 and "
                        "--host (others get 403); bound to a loopback address (the default) only those are answered, which "
                        "keeps web pages out by DNS rebinding; give the name a proxy in front sends, or '*' for any "
                        "(bound to another address: any, unless names are given)")
    parser.add_argument("--port", type=_port, default=8501, help="port (default: 8501, TF-Serving's REST port; 0 picks a free one)")
    parser.add_argument("--max-batch", type=number(int, 1), default=limits.MAX_BATCH,
                        help=f"largest batch one request may carry (default: {limits.MAX_BATCH})")
    parser.add_argument("--max-body-mb", type=number(float, 0, inclusive=False), default=limits.MAX_BODY_MB,
                        help=f"largest request body in MiB (default: {limits.MAX_BODY_MB:g}; less when --max-batch examples "
                        "of the model need less)")
    parser.add_argument("--read-timeout", type=number(float, 0, inclusive=False), default=limits.READ_TIMEOUT,
                        help="seconds a client has for a request's headers, and again for its body, plus 1 s per 64 kB of "
                        f"the body received, with no pause longer than this (default: {limits.READ_TIMEOUT:g})")
    parser.add_argument("--max-requests", type=number(int, 1), default=limits.MAX_REQUESTS,
                        help="requests in progress at once (body in, waiting for a worker or at work), and again "
                        "requests whose body is still arriving (once that many are, as many more from addresses sending "
                        f"fewer than 1/8 of them); more are answered 429 (default: {limits.MAX_REQUESTS})")
    parser.add_argument("--max-running", type=number(int, 1), default=limits.MAX_RUNNING,
                        help="predict requests parsed, run and answered at once; the others wait (default: the CPU count)")
    parser.add_argument("--studio", action="store_true",
                        help="also serve the studio, a page in the browser at / and /studio (sample or upload an image, "
                        "see its reconstruction, edit it along the export's directions, style-mix, interpolate, "
                        "download), and its JSON API under /studio/api/; the limits above apply to it too")
    parser.add_argument("--projections", nargs="+", type=Path, default=[], metavar="FILE",
                        help="with --studio: projection.npz files of python -m alae_tf.project that the page opens "
                        "from this machine, without uploading them (read at start)")
    alignment = parser.add_mutually_exclusive_group()
    alignment.add_argument("--align-faces", choices=sorted(CROPS), metavar="CROP",
                           help="with --studio: cut each uploaded photo to its largest face, upright, as the face models' "
                           "training images were (ffhq: the FFHQ and CelebA-HQ crop; celeba: the official CelebA 128x128 "
                           "model's), instead of its centre crop; an upload without a face is refused. Needs the faces "
                           'extra (pip install -e ".[faces]"); python -m alae_tf.align_faces does the same to files')
    alignment.add_argument("--align-digits", action="store_true",
                           help="with --studio: frame each uploaded photo of a handwritten digit, and each drawing, as "
                           "MNIST's digits are (light strokes on black, boxed in 20/28 of the side, centred by their mass) "
                           "instead of resizing it whole; an upload without strokes is refused. For MNIST models; "
                           "python -m alae_tf.align_digits does the same to files")
    parser.add_argument("--poll-seconds", type=number(float, 0), default=1.0,
                        help="how often to look for a newer version of the model, as tensorflow_model_server's "
                        "--file_system_poll_wait_seconds (default: 1; 0: serve the version found at start only)")
    parser.add_argument("--drain-seconds", type=number(float, 0), default=DRAIN_SECONDS,
                        help="on SIGTERM or Ctrl-C: seconds the requests under way have to be answered, new connections "
                        f"being refused, before the rest are cut off (default: {DRAIN_SECONDS:g}; a second Ctrl-C stops at once)")
    parser.add_argument("--threads", type=number(int, 0), default=1,
                        help="ONNX Runtime intra-op threads per request (default: 1; concurrent requests then "
                        "share the cores, which served 1.3x the requests of all-core runs on a 2-core CPU, 2026-11-23; 0: all cores)")
    args = parser.parse_args(argv)
    if args.projections and not args.studio:
        parser.error("--projections goes with --studio")
    for given, option in ((args.align_faces, "--align-faces"), (args.align_digits, "--align-digits")):
        if given and not args.studio:
            parser.error(f"{option} goes with --studio")
    return args


def allowed_hosts(host: str, names: list[str]) -> tuple[str, ...] | None:
    """The Host names the server answers (create_app's allowed_hosts): None for any."""
    if "*" in names:
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if not (loopback or names):
        return None
    return (*limits.LOOPBACK_HOSTS, host, *names)


def read_projections(paths, model) -> list:
    """(name, ProjectionFile) per file (a file given twice: once), checked to fit `model`; ValueError
    naming the file and the problem. The name, as the page shows it, is the file's folder and name
    (not the server's whole path), with more of its path where two would read alike."""
    if paths and "decode_styles" not in model.signatures:
        raise ValueError("--projections: this export has no per-layer styles graph (decode_styles) to decode them; "
                         "export the run again")
    files = list(dict.fromkeys(Path(path).resolve() for path in paths))
    projections = []
    for file in files:
        try:
            projection = projection_file.read_fitting(file, model.num_styles or 1, model.latent_dim, model.image_shape,
                                                      model.noise_shapes, model.metadata["model_name"])
        except projection_file.ProjectionFileError as exc:
            raise ValueError(str(exc)) from None
        projections.append(projection)
    return list(zip(distinct_names(files), projections))


def distinct_names(files: list[Path]) -> list[str]:
    """The last two parts of each absolute path, more where two would be alike: every default
    projection is RUN/projections/projection.npz (two runs' read alike in the page's list)."""
    depths = [2] * len(files)
    while True:
        names = ["/".join(file.parts[-min(depth, len(file.parts) - 1):]) for file, depth in zip(files, depths)]
        alike = [i for i, name in enumerate(names) if names.count(name) > 1 and depths[i] < len(files[i].parts) - 1]
        if not alike:
            return names
        for i in alike:
            depths[i] += 1


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stopped_by_sigterm)  # uvicorn calls it again once it has drained
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        served = ServedModel(args.model, name=args.name, variant=args.onnx_variant, threads=args.threads,
                             poll_seconds=args.poll_seconds)
        projections = read_projections(args.projections, served.model)
        aligner = FaceAligner(args.align_faces) if args.align_faces else DigitAligner() if args.align_digits else None
    except (FileNotFoundError, ValueError, FacesUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = served.model
    app = create_app(served, max_batch=args.max_batch, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                     read_timeout=args.read_timeout, max_requests=args.max_requests, max_running=args.max_running,
                     studio=args.studio, projections=projections,
                     allowed_hosts=allowed_hosts(args.host, args.allowed_hosts), aligner=aligner)
    # Bind and listen first: --port 0 can then report its port, and connections queue from the
    # moment the line below is printed.
    # proto IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that declare it, and
    # without it every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(2048)
    except OSError as exc:
        print(f"error: cannot bind {args.host}:{args.port} ({exc.strerror})", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=args.drain_seconds,
                                    http=h11_protocol_with_read_limits(args.read_timeout)))
    server.hold_ctrl_c()
    print(f"serving {model.metadata['model_name']} version {model.version} ({args.onnx_variant} ONNX files) "
          f"at http://{_url_host(host)}:{port}/v1/models/{model.metadata['model_name']}", flush=True)
    if served.watching:
        print(f"watching {served.model_dir} for newer versions every {args.poll_seconds:g} s", flush=True)
    else:
        why = "--poll-seconds 0" if args.poll_seconds == 0 else "a version directory was given"
        print(f"serving version {model.version} only ({why})", flush=True)
    if args.studio:
        print(studio_line(host, port, args.allowed_hosts), flush=True)
        print(uploads_line(aligner, model.image_shape[2]), flush=True)
        for path, (name, projection) in zip(args.projections, projections):
            print(f"the studio opens {path} as {name} ({len(projection)} projected image(s))", flush=True)
    server.run(sockets=[sock])
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, taking a Ctrl-C held since the start lines were printed once it has
    started: one raised while asyncio built its event loop left a half-made loop whose clean-up
    printed an AttributeError traceback (a test that stops the server as soon as it reads those
    lines, once in a full test run). Blocking SIGINT in the main thread did not hold it (seen again
    on 2026-12-07): the kernel gives a process's signal to any thread that does not block it, and
    OpenBLAS and ONNX Runtime start threads at import, so the handler holds it instead."""

    def hold_ctrl_c(self):
        self._starting, self._ctrl_c_held = True, False
        signal.signal(signal.SIGINT, self._hold_or_raise)

    def _hold_or_raise(self, signum, frame):
        if self._starting:
            self._ctrl_c_held = True
        else:  # Python's own: uvicorn puts this handler back after its shutdown and raises the signal again
            raise KeyboardInterrupt

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)  # uvicorn's handlers are in place since serve() began
        self._starting = False
        if self._ctrl_c_held:
            self.handle_exit(signal.SIGINT, None)

    def handle_exit(self, sig, frame):
        """The first SIGTERM or Ctrl-C says what happens next: the drain took up to --drain-seconds unsaid."""
        if not self.should_exit:
            under_way = len(self.server_state.tasks)
            print(f"stopping ({SIGNAL_NAMES.get(sig, sig)}): new connections are refused; {under_way} request(s) under "
                  f"way get their answers within {self.config.timeout_graceful_shutdown:g} s (Ctrl-C again: stop at once)",
                  file=sys.stderr, flush=True)
        super().handle_exit(sig, frame)


def _stopped_by_sigterm(signum, frame):
    """SIGTERM's last word and exit code (143, as a shell reports a SIGTERM), as Ctrl-C's below: it ended
    the process with neither."""
    print("stopped (SIGTERM)", file=sys.stderr, flush=True)
    sys.exit(128 + signal.SIGTERM)


def studio_line(host: str, port: int, allowed_names=()) -> str:
    """Where to open the studio, said for a person: a wildcard address is no place to browse to
    (the machine's name is, unless --allowed-hosts names others: the server refuses any other name),
    and a loopback one is reached from another machine through an SSH tunnel."""
    if ipaddress.ip_address(host).is_unspecified:
        name = allowed_names[0] if allowed_names and "*" not in allowed_names else socket.gethostname()
        return f"studio at http://{_url_host(name)}:{port}/studio (listening on every address of this machine)"
    address = _url_host(host)
    if ipaddress.ip_address(host).is_loopback:
        return (f"studio at http://{address}:{port}/studio (this machine only; from another one: "
                f"ssh -L {port}:{address}:{port} {socket.gethostname()}, then open that address there)")
    return f"studio at http://{address}:{port}/studio"


def uploads_line(aligner, channels: int) -> str:
    """What the studio does to an uploaded image, and the option that would do otherwise."""
    if aligner is not None:
        return f"the studio's uploads: {aligner.description}"
    if channels == 1:
        return ("the studio's uploads and drawings are centre-cropped and resized whole (--align-digits frames a "
                "handwritten digit as MNIST's digits are)")
    return "the studio's uploads are centre-cropped and resized (--align-faces cuts a photo to its face instead)"


def _url_host(name: str) -> str:
    """A host name or address as a URL holds it (an IPv6 address in brackets)."""
    return f"[{name}]" if ":" in name else name


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: uvicorn shuts down, then raises it again
        # A Ctrl-C before uvicorn's event loop ran leaves its serve() coroutine unawaited, which
        # Python would report after our line (seen once in three test runs)
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        print("stopped (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
