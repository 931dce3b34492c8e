"""Inference latency of an export: TF SavedModel vs ONNX Runtime, and HTTP load.

Latency mode (default): encode, generate and reconstruct (encode then decode) at each batch
size, per backend:
  tf_savedmodel  the SavedModel signature, called eagerly with tensors made beforehand
  onnxruntime    the ONNX graphs through InferenceSession.run (reconstruct: encode.onnx then decode.onnx)
  onnx_app       serving.onnx_model.ALAEOnnx (ONNX Runtime plus input checks)
  onnxruntime_int8, onnx_app_int8: the same on the int8 files (an export made with --onnx-int8;
                 in the default list when the export has them)
  official_eager with --official CHECKOUT --torch-python PY: the official MNIST code's own E,
                 F + G and G(E(x)) (podgorskiy/ALAE branch mnist_ref, model_z_gan.Model, eval mode, no_grad)
                 in PyTorch eager, timed in a child process; each other backend's speed-up over
                 it is printed and kept in the JSON. Use an export of an MNIST MLP run.
With --shared-thread-pool, every ONNX backend runs on ONNX Runtime's one global thread pool
(serving.onnx_model.share_one_thread_pool) instead of a pool per session: run it with and without.

    python benchmarks/inference_latency.py --export exports

HTTP mode: N concurrent clients (one keep-alive connection each) POST to a TF-Serving style
REST endpoint for a bounded time and request count. Without --url it starts
`python -m serving.http` on a free loopback port and stops it afterwards.

    python benchmarks/inference_latency.py --http --export exports --clients 32 --seconds 30

Prints a table, then one JSON object on the last line.
"""

import argparse
import functools
import http.client
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from serving import contract, layout  # noqa: E402
from serving.client import NoDelayHTTPConnection  # noqa: E402
from serving.command_line import CommandParser, number, python_with  # noqa: E402


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/inference_latency.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, required=True, help="EXPORT directory written by python -m export")
    parser.add_argument("--name", help="model name when EXPORT holds several")
    parser.add_argument("--batch-sizes", default="1,64", help="comma-separated batch sizes (default: 1,64)")
    parser.add_argument("--iterations", type=int, default=500, help="timed calls per case (default: 500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls per case first (default: 50)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating rounds: every backend (and the official code) is timed once per round, and "
                             "the rows pool all rounds' calls, so drift of a shared machine hits all alike (default: 1)")
    parser.add_argument("--backends", help="comma-separated backends (default: tf_savedmodel,onnxruntime,onnx_app, "
                        "and onnxruntime_int8,onnx_app_int8 when the export has int8 files)")
    parser.add_argument("--threads", type=number(int, 0), help="ONNX Runtime intra-op threads (default: ONNX Runtime's choice)")
    parser.add_argument("--shared-thread-pool", action="store_true",
                        help="the ONNX backends on one global thread pool of --threads threads (share_one_thread_pool)")
    parser.add_argument("--official", type=Path, help="a checkout of podgorskiy/ALAE at branch mnist_ref: adds official_eager")
    parser.add_argument("--torch-python", type=python_with("torch", "yacs"), help="with --official: a python with torch and yacs")
    http_group = parser.add_argument_group("HTTP load mode")
    http_group.add_argument("--http", action="store_true", help="measure an HTTP server under load instead")
    http_group.add_argument("--url", help="server base URL (default: start python -m serving.http on a free port)")
    http_group.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    http_group.add_argument("--seconds", type=float, default=30.0, help="load duration (default: 30)")
    http_group.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many requests in total")
    http_group.add_argument("--signature", default="generate_uint8", help="signature to call (default: generate_uint8)")
    http_group.add_argument("--batch", type=int, default=1, help="rows per request (default: 1)")
    args = parser.parse_args(argv)
    args.export = args.export.resolve()  # the children (server, official code) run in the repository, not here
    args.official = args.official and args.official.resolve()
    for flag in ("iterations", "rounds", "clients", "max_requests", "batch"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.warmup < 0 or not args.seconds > 0:
        parser.error("--warmup must be 0 or more and --seconds positive")
    if args.url:
        try:
            url_host_port(args.url)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes takes comma-separated whole numbers, got {args.batch_sizes!r}")
    if min(args.batch_sizes) < 1:
        parser.error(f"--batch-sizes must be at least 1, got {min(args.batch_sizes)}")
    unknown = [name for name in (args.backends or "").split(",") if name and name not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)} (the official code "
                     "is timed with --official)")
    if args.official and not args.torch_python:
        parser.error("--official needs --torch-python (a python with torch and yacs)")
    if args.official and not (args.official / "model_z_gan.py").is_file():
        parser.error(f"{args.official} has no model_z_gan.py: pass a checkout of podgorskiy/ALAE at branch mnist_ref")
    try:
        version_dir = layout.find_onnx_version_dir(args.export, args.name)
        args.metadata = layout.read_metadata(version_dir)
    except (FileNotFoundError, ValueError) as exc:  # no such export, or no model of that name in it
        parser.error(str(exc))
    has_int8 = layout.INT8 in args.metadata.get("onnx_variants", [])
    if not has_int8 and (asked := [name for name in (args.backends or "").split(",") if name.endswith("_int8")]):
        parser.error(f"{', '.join(asked)}: the export has no int8 files (export with --onnx-int8)")
    signatures = contract.signatures_from_metadata(args.metadata)
    for variant in args.metadata.get("onnx_variants", [layout.FLOAT32]):
        missing = [name for name in contract.onnx_graphs(signatures) if not (version_dir / layout.onnx_file(name, variant)).is_file()]
        if missing:
            parser.error(f"{version_dir} lacks {', '.join(layout.onnx_file(name, variant) for name in missing)}, "
                         "which its metadata lists: the export is incomplete; export the run again")
    if args.http and args.signature not in signatures:
        parser.error(f"--signature {args.signature}: the export has no such signature; choose from {', '.join(signatures)}")
    return args


def url_host_port(url: str) -> tuple[str, int]:
    """(host, port) of an http:// base URL, port 80 when it names none; ValueError for anything else."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:  # a port that is not a number, or out of range
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path.strip("/"):
        raise ValueError(f"--url takes a server's base URL such as http://127.0.0.1:8501, got {url!r}")
    return parts.hostname, port


BACKENDS = ("tf_savedmodel", "onnxruntime", "onnx_app", "onnxruntime_int8", "onnx_app_int8")


def summarize(seconds: list[float], batch: int) -> dict:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 4),
        "images_per_sec": round(batch * len(ordered) / sum(ordered), 1),
        "calls": len(ordered),
    }


def time_calls(call, warmup, iterations) -> list[float]:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


OPS = ("encode", "generate", "reconstruct")


def case_inputs(metadata, batch) -> dict:
    signatures = contract.signatures_from_metadata(metadata)
    return {name: contract.example_inputs(signatures[name], batch) for name in OPS}


def backend_calls(backend, export_dir, name, metadata, threads, shared_thread_pool=False):
    """{op: function(inputs) -> None} for one backend."""
    if backend == "tf_savedmodel":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        loaded = tf.saved_model.load(str(layout.saved_model_dir(export_dir, metadata["model_name"], metadata["version"])))

        def tf_call(op):
            signature = loaded.signatures[op]
            return lambda tensors: signature(**tensors)

        return {op: tf_call(op) for op in OPS}, lambda inputs: {k: tf.constant(v) for k, v in inputs.items()}
    from serving.onnx_model import ALAEOnnx, default_providers

    variant = layout.INT8 if backend.endswith("_int8") else layout.FLOAT32
    if backend.removesuffix("_int8") == "onnx_app":
        model = ALAEOnnx(export_dir, name=name, threads=None if shared_thread_pool else threads, variant=variant)
        return {
            "encode": lambda inputs: model.encode(inputs["images"]),
            "generate": lambda inputs: model.generate(inputs["z"], truncation_psi=inputs["truncation_psi"]),
            "reconstruct": lambda inputs: model.reconstruct(inputs["images"]),
        }, dict
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if shared_thread_pool:
        options.use_per_session_threads = False
    elif threads:
        options.intra_op_num_threads = threads
    directory = layout.find_onnx_version_dir(export_dir, name)
    encode, generate, decode = (onnxruntime.InferenceSession(str(directory / layout.onnx_file(graph, variant)), options,
                                                             providers=default_providers())
                                for graph in ("encode", "generate", "decode"))
    return {"encode": lambda inputs: encode.run(None, inputs),
            "generate": lambda inputs: generate.run(None, inputs),
            "reconstruct": lambda inputs: decode.run(None, {"w": encode.run(None, inputs)[0]})}, dict


def latency(args) -> dict:
    metadata, batches = args.metadata, args.batch_sizes
    int8 = ["onnxruntime_int8", "onnx_app_int8"] if layout.INT8 in metadata.get("onnx_variants", []) else []
    backends = args.backends.split(",") if args.backends else ["tf_savedmodel", "onnxruntime", "onnx_app", *int8]
    if args.shared_thread_pool:
        from serving.onnx_model import share_one_thread_pool

        share_one_thread_pool(args.threads)
    cases = []  # (backend, op, batch, call)
    for backend in backends:
        calls, prepare = backend_calls(backend, args.export, args.name, metadata, args.threads, args.shared_thread_pool)
        for batch in batches:
            inputs = {op: prepare(values) for op, values in case_inputs(metadata, batch).items()}
            cases += [(backend, op, batch, functools.partial(call, inputs[op])) for op, call in calls.items()]
    seconds = {}  # (backend, op, batch) -> every timed call's seconds, over all rounds
    extras = {}
    for round_index in range(args.rounds):
        if args.rounds > 1:
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
        for backend, op, batch, call in cases:
            seconds.setdefault((backend, op, batch), []).extend(time_calls(call, args.warmup, args.iterations))
        if args.official:
            official = official_seconds(args, batches)
            for row in official["results"]:
                seconds.setdefault(("official_eager", row["op"], row["batch"]), []).extend(row["seconds"])
            extras["official_eager"] = {"torch": official["torch"], "torch_threads": official["threads"]}
    results = []
    for (backend, op, batch), timed in seconds.items():
        stats = summarize(timed, batch)
        results.append({"backend": backend, "op": op, "batch": batch, **stats, **extras.get(backend, {})})
        print(f"{backend:16s} {op:11s} batch {batch:3d}: median {stats['median_ms']:8.4f} ms  "
              f"p99 {stats['p99_ms']:8.4f} ms  {stats['images_per_sec']:10.1f} images/s", flush=True)
    if args.official:
        add_speedups(results)
    from serving.onnx_model import default_providers

    return {"benchmark": "inference_latency", "model": metadata["model_name"], "version": metadata["version"],
            "training_step": metadata["training_step"], "iterations": args.iterations, "rounds": args.rounds,
            "threads": args.threads, "shared_thread_pool": args.shared_thread_pool, "onnx_providers": default_providers(),
            "results": results}


OFFICIAL_INFERENCE = r"""
warmup, iterations, batches = int(sys.argv[2]), int(sys.argv[3]), [int(b) for b in sys.argv[4].split(",")]
torch.set_grad_enabled(False)
model = build(truncation_psi=m.TRUNCATIOM_PSI, truncation_cutoff=m.TRUNCATIOM_CUTOFF)
model.eval()
lod = m.LAYER_COUNT - 1
results = []
for batch in batches:
    x, z = torch.rand(batch, 1, 28, 28), torch.randn(batch, m.LATENT_SPACE_SIZE)
    calls = {"encode": lambda: model.encoder(x, lod, 1.0), "generate": lambda: model.generate(lod, 1.0, z=z, noise=True),
             "reconstruct": lambda: model.decoder(model.encoder(x, lod, 1.0), lod, 1.0, noise=True)}  # as Z_GAN.py
    for op, call in calls.items():
        results.append({"op": op, "batch": batch, "seconds": time_calls(call, warmup, iterations)})
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))
"""


def official_seconds(args, batches) -> dict:
    """One round of the official code's E, generate and G(E(x)), timed in a torch child process:
    {"torch", "threads", "results": [{"op", "batch", "seconds"}]}."""
    from compare_official import OFFICIAL_MODEL  # benchmarks/, this script's own directory

    code = OFFICIAL_MODEL + inspect.getsource(time_calls) + OFFICIAL_INFERENCE  # the same timing loop as ours
    done = subprocess.run([args.torch_python, "-c", code, str(args.official.resolve()),
                           str(args.warmup), str(args.iterations), ",".join(map(str, batches))],
                          cwd=args.official, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: the official code failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_speedups(results) -> None:
    """speedup_vs_official = the official median / this row's median, for the same op and batch."""
    official = {(r["op"], r["batch"]): r["median_ms"] for r in results if r["backend"] == "official_eager"}
    for row in results:
        if row["backend"] != "official_eager" and (row["op"], row["batch"]) in official:
            row["speedup_vs_official"] = round(official[row["op"], row["batch"]] / row["median_ms"], 2)
            print(f"{row['backend']:16s} {row['op']:9s} batch {row['batch']:3d}: {row['speedup_vs_official']:.2f}x the official")


def start_server(args):
    command = [sys.executable, "-m", "serving.http", "--model", str(args.export), "--port", "0"]
    if args.name:
        command += ["--name", args.name]
    if args.threads:
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        sys.exit(f"error: the server did not start ({line.strip() or 'no output'})")
    return process, line.split(" at ")[1].split("/v1/")[0]


def load_client(host, port, path, body, deadline, budget, lock, record):
    connection = NoDelayHTTPConnection(host, port, timeout=30)
    while time.perf_counter() < deadline:
        with lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        start = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            record(time.perf_counter() - start, response.status)
        except (OSError, http.client.HTTPException) as exc:
            record(time.perf_counter() - start, type(exc).__name__)
            connection.close()
            connection = NoDelayHTTPConnection(host, port, timeout=30)
    connection.close()


def http_load(args) -> dict:
    metadata = args.metadata
    server, url = (None, args.url.rstrip("/")) if args.url else start_server(args)
    try:
        signature = contract.signatures_from_metadata(metadata)[args.signature]
        inputs = contract.example_inputs(signature, args.batch)
        body = json.dumps({"signature_name": args.signature, "inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
        host, port = url_host_port(url)
        path = f"/v1/models/{metadata['model_name']}:predict"
        latencies, outcomes, lock = [], {}, threading.Lock()

        def record(seconds, outcome):
            with lock:
                latencies.append(seconds)
                outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1

        started = time.perf_counter()
        deadline, budget = started + args.seconds, [args.max_requests]
        threads = [threading.Thread(target=load_client, args=(host, port, path, body, deadline, budget, lock, record))
                   for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    ordered = sorted(latencies)
    errors = sum(count for outcome, count in outcomes.items() if outcome != "200")
    result = {
        "benchmark": "inference_http_load", "url": url, "signature": args.signature, "batch": args.batch,
        "clients": args.clients, "seconds": round(elapsed, 2), "requests": len(ordered), "errors": errors,
        "outcomes": outcomes, "requests_per_sec": round(len(ordered) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1e3, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 3),
    }
    print(f"{args.clients} clients, {elapsed:.1f} s: {result['requests']} requests ({result['requests_per_sec']} req/s), "
          f"{errors} errors, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms", flush=True)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    result = http_load(args) if args.http else latency(args)
    result.update({"cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()})
    print(json.dumps(result))
    if args.http and result["errors"] == result["requests"]:
        print(f"error: no request to {result['url']} succeeded ({result['outcomes']})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
