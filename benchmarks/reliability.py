"""Reliability as an operator meets it: kill -9 during training, damaged run
directories, fuzzed and hostile HTTP clients. Prints counts, then JSON on the last line.

    python benchmarks/reliability.py                          # every part (~15 min on a 2-core EPYC, 2026-12-02)
    python benchmarks/reliability.py --parts fuzz,hol,slow --export EXPORT

Parts:
  kill     trains a tiny run (8x8 images, checkpoint every 10 steps) in a subprocess, kills it with
           SIGKILL at --kills random moments and re-runs the same command each time: resumes that
           continue training / attempts, kills that hit a checkpoint write, steps lost per kill
           (at most one checkpoint interval), log.csv one row per step, every checkpoint intact
  stop     starts a new MNIST run (grids every 10 steps, a row per step) --stops times and stops it
           with SIGINT (Ctrl-C), SIGTERM or SIGHUP, by turns, at a random moment of its first ~2 s:
           exit codes (130 / 143 / 129 expected; negative: killed by a signal, e.g. -11 for a crash),
           whether the saved checkpoint is the last logged step, and resumes that continue it
  corrupt  damages copies of a trained tiny run (one variant each) and runs train, evaluate and
           export on each: exit codes, warning/error lines, tracebacks
  fuzz     --requests fuzzed requests to python -m serving.http (valid ones, extreme floats,
           wrong shapes, dtypes, types, content types, malformed JSON, ...): counts per status class
  hol      other clients' p50/p99 latency and throughput without and with one client sending
           10 bodies of 15 MB
  slow     seconds until the server closes a connection that sends partial headers, a partial
           body or nothing; whether a normal request still gets through 300 such connections
The server parts use --export, or build one from a 20-step MNIST run (hidden 64) first.
"""

import argparse
import collections
import contextlib
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from serving import contract, layout  # noqa: E402
from serving.client import NoDelayHTTPConnection  # noqa: E402
from serving.command_line import CommandParser, folder_to_write  # noqa: E402

PARTS = ("kill", "stop", "corrupt", "fuzz", "hol", "slow")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
CHECKPOINT_EVERY = 10
TINY_RUN = f"""
preset: tiny
data: {{dataset: folder}}
model: {{image_shape: [8, 8, 1], latent_dim: 6, mapping_layers: 2, hidden_dim: 16, disc_hidden: 6}}
train: {{batch_size: 8, steps: 30, checkpoint_every: {CHECKPOINT_EVERY}, sample_every: 100000, log_every: 1,
        ema_half_life_images: 20.0}}
"""
MNIST_RUN = """
preset: mnist_small
model: {hidden_dim: 64, mapping_layers: 2}
train: {steps: 20, checkpoint_every: 10, sample_every: 10, log_every: 5}
"""
RESUMING = re.compile(r"resuming at step (\d+)")


def parse_args(argv=None):
    parser = CommandParser(prog="python benchmarks/reliability.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts (default: {','.join(PARTS)})")
    parser.add_argument("--kills", type=int, default=10, help="kill -9 moments (default: 10)")
    parser.add_argument("--stops", type=int, default=21, help="Ctrl-C / SIGTERM / SIGHUP stops (default: 21)")
    parser.add_argument("--requests", type=int, default=1200, help="fuzzed requests (default: 1200)")
    parser.add_argument("--export", type=Path, help="EXPORT directory to serve (default: build one)")
    parser.add_argument("--workdir", type=folder_to_write, help="keep the runs and exports here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and fuzzed requests drawn (default: 0)")
    args = parser.parse_args(argv)
    if min(args.kills, args.stops, args.requests) < 1:
        parser.error("--kills, --stops and --requests must be at least 1")
    args.export = args.export and args.export.resolve()  # the children run in the repository, not here
    args.workdir = args.workdir and args.workdir.resolve()
    args.parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not args.parts:
        parser.error(f"--parts names none; choose from {', '.join(PARTS)}")
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; available: {', '.join(PARTS)}")
    return args


# --- tiny runs -------------------------------------------------------------------------------------


def tiny_setup(work: Path) -> tuple[Path, Path]:
    """(config file, image folder) of the tiny run: 256 random 8x8 grayscale PNGs."""
    from PIL import Image

    images, config = work / "images", work / "tiny.yaml"
    if not images.is_dir():
        images.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(256):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(images / f"{i:03d}.png")
    config.write_text(TINY_RUN)
    return config, images


def train_flags(config: Path, images: Path, out: Path, steps: int) -> list[str]:
    return ["--config", str(config), "--data-path", str(images), "--out", str(out), "--steps", str(steps), "--verbose", "0"]


def logged_steps(run: Path) -> list[int]:
    path = run / "log.csv"
    if not path.is_file():
        return []
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:] if line.split(",")[0].isdigit()]


# --- Ctrl-C, SIGTERM and SIGHUP -----------------------------------------------------------------------


def stop_part(work: Path, stops: int, rng: random.Random) -> dict:
    """Python raised KeyboardInterrupt wherever the trainer was; inside TensorFlow's eager dispatch
    (the grids) that crashed it with SIGSEGV about once in 60 stops (alae_tf/stop_signals.py). The
    trainer is started with Ctrl-C's default action, also when this script runs as a background job."""
    config, run = work / "mnist.yaml", work / "stop_run"
    config.write_text(MNIST_RUN)

    def train_command(steps):
        return [sys.executable, "-m", "alae_tf.train", "--config", str(config), "--out", str(run), "--steps", str(steps),
                "--checkpoint-every", "1000000", "--log-every", "1", "--verbose", "0"]

    codes, killed, saved_last_logged, resumed = collections.Counter(), 0, 0, 0
    for attempt in range(stops):
        shutil.rmtree(run, ignore_errors=True)
        signum = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[attempt % 3]
        with tempfile.TemporaryFile("w+") as stdout:
            process = subprocess.Popen(train_command(10**6), cwd=REPO, env=ENV, stdout=stdout, stderr=subprocess.DEVNULL,
                                       text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            wait_for_training(process, stdout, run)
            time.sleep(rng.uniform(0.0, 2.0))
            process.send_signal(signum)
            process.wait(timeout=600)
            stdout.seek(0)
            saved = re.search(r"interrupted: saved step (\d+)", stdout.read())
        codes[f"{signal.Signals(signum).name} -> {process.returncode}"] += 1
        killed += process.returncode < 0
        print(f"stop {attempt + 1}/{stops}: {signal.Signals(signum).name} -> exit {process.returncode}", flush=True)
        if saved and (run / "checkpoints" / f"ckpt-{saved[1]}.index").is_file():
            saved_last_logged += logged_steps(run)[-1] == int(saved[1])
            again = subprocess.run(train_command(int(saved[1]) + 2), cwd=REPO, env=ENV, capture_output=True, text=True,
                                   timeout=600)
            resumed += again.returncode == 0 and resumed_step(again.stdout) == int(saved[1])
    return {"stops": stops, "exit_codes": dict(sorted(codes.items())),
            "killed_by_a_signal": killed,
            "saved_step_is_last_logged": saved_last_logged, "resumed": resumed}


# --- kill -9 ----------------------------------------------------------------------------------------


def kill_part(work: Path, kills: int, rng: random.Random) -> dict:
    config, images = tiny_setup(work)
    run = work / "kill_run"
    shutil.rmtree(run, ignore_errors=True)
    command = [sys.executable, "-m", "alae_tf.train", *train_flags(config, images, run, 10**6)]
    attempts = []
    for attempt in range(kills):
        # Every other kill waits for a checkpoint write to begin (its ckpt-N_temp/ folder appears).
        attempts.append(train_until_killed(command, run, rng, during_write=attempt % 2 == 1))
    final_step = max(logged_steps(run), default=0) + 20
    final = subprocess.run([sys.executable, "-m", "alae_tf.train", *train_flags(config, images, run, final_step)],
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    starts = [attempt["started_at"] for attempt in attempts[1:]] + [resumed_step(final.stdout)]
    lost = [max(0, attempt["last_logged"] - start) for attempt, start in zip(attempts, starts)]
    resumed = sum(start is not None and start >= attempt["last_logged"] - CHECKPOINT_EVERY
                  for attempt, start in zip(attempts, starts))
    steps = logged_steps(run)
    return {
        "kills": kills,
        "resumed": resumed,
        "kills_during_checkpoint_write": sum(attempt["mid_write"] for attempt in attempts),
        "steps_lost": lost,
        "max_steps_lost": max(lost),
        "checkpoint_interval": CHECKPOINT_EVERY,
        "final_exit_code": final.returncode,
        "final_step": final_step,
        "log_rows_one_per_step": steps == list(range(1, final_step + 1)),
        "damaged_checkpoints": damaged_checkpoints(run),
    }


def train_until_killed(command, run: Path, rng: random.Random, during_write: bool) -> dict:
    """Start training, wait until it logs a step past its start, then kill -9 it after a random
    delay, or `during_write` at a random moment of the next checkpoint write."""
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=stdout, stderr=subprocess.DEVNULL, text=True)
        started_at = wait_for_training(process, stdout, run)
        time.sleep(rng.uniform(0.0, 1.5))
        if during_write:
            wait_for_checkpoint_write(run)
            time.sleep(rng.uniform(0.0, 0.005))
        process.send_signal(signal.SIGKILL)
        process.wait()
    return {"started_at": started_at, "last_logged": max(logged_steps(run), default=0),
            "mid_write": any((run / "checkpoints").glob("*_temp"))}


def wait_for_checkpoint_write(run: Path, timeout=120) -> None:
    deadline = time.time() + timeout
    while not any((run / "checkpoints").glob("*_temp")) and time.time() < deadline:
        time.sleep(0.0005)


def wait_for_training(process, stdout, run: Path, timeout=300) -> int | None:
    """The step the process resumed at, once it has logged a later one."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        stdout.seek(0)
        printed = stdout.read()
        if "training steps" in printed:
            start = resumed_step(printed) or 0
            if max(logged_steps(run), default=0) > start:
                return resumed_step(printed)
        time.sleep(0.05)
    raise RuntimeError(f"training did not start within {timeout} s (exit code {process.poll()})")


def resumed_step(printed: str) -> int | None:
    match = RESUMING.search(printed)
    return int(match[1]) if match else None


def damaged_checkpoints(run: Path) -> int:
    from alae_tf.run_dir import RunDir, checkpoint_paths, checkpoint_problem

    return sum(checkpoint_problem(path) is not None for path in checkpoint_paths(RunDir(run)))


# --- damaged run directories --------------------------------------------------------------------


def newest(run: Path) -> str:
    return str(run / "checkpoints" / "ckpt-30")


def truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def flip_byte(path):
    raw = bytearray(Path(path).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(raw))


def nonfinite_newest(run: Path):
    from alae_tf.run_dir import load_run, model_checkpoint

    _, model = load_run(run, newest(run))
    weight = model.generator.trainable_variables[0]
    weight.assign(np.full(weight.shape, np.nan, np.float32))
    model_checkpoint(model).write(newest(run))


def leftovers(run: Path):
    (run / "checkpoints" / "ckpt-40_temp").mkdir()
    (run / "config.yaml.partial").write_text("preset: half")
    with (run / "log.csv").open("a") as log:
        log.write("31,1.0,2.0,3.0,4.0\n32,1.0,2.")  # rows past the newest checkpoint, the last one torn


DAMAGES = {  # name -> (damage, can the run continue from an older checkpoint?)
    "newest .data truncated": (lambda run: truncate(newest(run) + ".data-00000-of-00001"), True),
    "newest .data bit flip": (lambda run: flip_byte(newest(run) + ".data-00000-of-00001"), True),
    "newest .index garbage": (lambda run: Path(newest(run) + ".index").write_bytes(os.urandom(4096)), True),
    "newest .data missing": (lambda run: os.remove(newest(run) + ".data-00000-of-00001"), True),
    "newest non-finite": (nonfinite_newest, True),
    "state file binary garbage": (lambda run: (run / "checkpoints" / "checkpoint").write_bytes(os.urandom(300)), True),
    "state file text garbage": (lambda run: (run / "checkpoints" / "checkpoint").write_text("model_checkpoint_path: {{"), True),
    "killed-save leftovers, torn log row": (leftovers, True),
    "every checkpoint damaged": (lambda run: [truncate(p) for p in (run / "checkpoints").glob("*.data-*")], False),
    "config.yaml binary garbage": (lambda run: (run / "config.yaml").write_bytes(os.urandom(500)), False),
    "config.yaml cut in half": (lambda run: truncate(run / "config.yaml"), False),
}


def corrupt_part(work: Path) -> dict:
    from alae_tf import evaluate, train

    config, images = tiny_setup(work)
    base = work / "corrupt_base"
    if not (base / "checkpoints" / "ckpt-30.index").is_file():
        shutil.rmtree(base, ignore_errors=True)
        assert call(train.main, train_flags(config, images, base, 30))["exit_code"] == 0
    results = {}
    for name, (damage, recoverable) in DAMAGES.items():
        run = work / "corrupt" / name.replace(" ", "_").replace(",", "")
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(base, run)
        damage(run)
        files_before = sorted(p.name for p in (run / "checkpoints").iterdir())
        results[name] = {  # training last: it writes a new checkpoint the others would then read
            "recoverable": recoverable,
            "evaluate": call(evaluate.main, ["--run", str(run), "--metrics", "reconstruction"]),
            "export": call(export_main, ["--run", str(run), "--out", str(run / "export"), "--name", "tiny"]),
            "train": call(train.main, train_flags(config, images, run, 40)),
        }
        if not recoverable:
            results[name]["checkpoints_kept"] = files_before == sorted(p.name for p in (run / "checkpoints").iterdir())
        if name == "killed-save leftovers, torn log row":
            results[name]["log_rows_one_per_step"] = logged_steps(run) == list(range(1, 41))
            results[name]["leftovers_removed"] = not (run / "checkpoints" / "ckpt-40_temp").exists()
    return results


def export_main(argv):
    import export.__main__ as export_cli

    return export_cli.main(argv)


def call(main, argv) -> dict:
    """Run a CLI's main in this process: exit code, its warning/error lines, whether it raised."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code, traceback = main(argv), False
        except Exception as exc:  # what the user would see as a traceback
            code, traceback = 1, True
            print(f"{type(exc).__name__}: {exc}", file=stderr)
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith(("error:", "warning:"))]
    return {"exit_code": code, "traceback": traceback, "lines": lines,
            "resumed_at": resumed_step(stdout.getvalue())}


# --- the HTTP server ----------------------------------------------------------------------------


def build_export(work: Path) -> Path:
    run, out = work / "mnist_run", work / "mnist_export"
    if not layout.versions(out / layout.ONNX / "small"):
        (work / "mnist.yaml").write_text(MNIST_RUN)
        for command in (["alae_tf.train", "--config", str(work / "mnist.yaml"), "--out", str(run), "--verbose", "0"],
                        ["export", "--run", str(run), "--out", str(out), "--name", "small"]):
            subprocess.run([sys.executable, "-m", *command], cwd=REPO, env=ENV, check=True, capture_output=True)
    return out


@contextlib.contextmanager
def http_server(export: Path):
    """(host, port, model name) of python -m serving.http on a free port. Its log goes to a file: a
    pipe nobody reads fills up and then blocks the server."""
    command = [sys.executable, "-m", "serving.http", "--model", str(export), "--port", "0"]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=log, text=True)
        line = process.stdout.readline()
        if not line.startswith("serving "):
            process.kill()
            log.seek(0)
            raise RuntimeError(f"the server did not start: {line}{log.read()[-2000:]}")
        host, port = line.split("http://")[1].split("/")[0].split(":")
        try:
            yield host, int(port), line.split(" version ")[0].removeprefix("serving ")
        finally:
            process.terminate()
            process.wait(timeout=30)


def post(host, port, path, body: bytes, headers=None, timeout=60) -> int | str:
    """The status of one POST on a fresh connection, or the name of the connection error."""
    connection = NoDelayHTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"} if headers is None else headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        connection.close()


def fuzz_part(export: Path, count: int, rng: random.Random) -> dict:
    metadata = layout.read_metadata(layout.find_onnx_version_dir(export))
    signatures = contract.signatures_from_metadata(metadata)
    statuses, examples = {}, {}
    with http_server(export) as (host, port, name):
        for _ in range(count):
            kind, path, body, headers = fuzzed_request(rng, name, signatures)
            status = post(host, port, path, body, headers)
            group = f"{status // 100}xx" if isinstance(status, int) else status
            statuses[group] = statuses.get(group, 0) + 1
            if group not in ("2xx", "4xx"):
                examples.setdefault(kind, (status, body[:200].decode("utf-8", "replace")))
        alive = post(host, port, f"/v1/models/{name}:predict", predict_body("generate", example(signatures["generate"], 1)))
    return {"requests": count, "statuses": statuses, "server_alive_after": alive == 200,
            "unexpected_examples": {kind: list(value) for kind, value in examples.items()}}


def predict_body(signature: str, inputs: dict, rows=False) -> bytes:
    if rows:
        batch = len(next(iter(inputs.values())))
        return json.dumps({"signature_name": signature, "instances": [{k: np.asarray(v[i]).tolist() for k, v in inputs.items()}
                                                                     for i in range(batch)]}).encode()
    return json.dumps({"signature_name": signature, "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}).encode()


def example(signature, batch) -> dict:
    return contract.example_inputs(signature, batch)


EXTREME_FLOATS = (3e38, -3e38, 1e38, 3.4028235e38, 1e-45, -1e-45, 65504.0, 1e10, -1e10, 2.0, -2.0, 1.9999)


def fuzzed_request(rng: random.Random, name: str, signatures: dict):
    """(kind, path, body, headers) of one fuzzed request."""
    predict = f"/v1/models/{name}:predict"
    signature_name = rng.choice(sorted(signatures))
    signature = signatures[signature_name]
    batch = rng.choice((1, 2, 3))
    valid = example(signature, batch)
    kind = rng.choice(("valid", "extreme", "extreme", "shape", "dtype", "json", "json", "content_type", "envelope", "path"))
    headers = None
    if kind == "valid":
        body = predict_body(signature_name, valid, rows=rng.random() < 0.5)
    elif kind == "extreme":
        key = rng.choice(sorted(valid))
        valid[key] = np.full(valid[key].shape, rng.choice(EXTREME_FLOATS)) if valid[key].dtype.kind == "f" else valid[key]
        body = predict_body(signature_name, valid, rows=rng.random() < 0.5)
    elif kind == "shape":
        key = rng.choice(sorted(valid))
        shape = list(valid[key].shape)
        shape[rng.randrange(len(shape))] += rng.choice((-1, 1, 5))
        valid[key] = np.zeros([max(0, n) for n in shape], valid[key].dtype)
        body = predict_body(signature_name, valid)
    elif kind == "dtype":
        key = rng.choice(sorted(valid))
        value = rng.choice(("text", True, None, {"a": 1}, [["x"]], 10**30, -(10**30), [[[]]], 1.5))
        body = json.dumps({"signature_name": signature_name, "inputs": {**{k: v.tolist() for k, v in valid.items()}, key: value}}).encode()
    elif kind == "json":
        good = predict_body(signature_name, valid)
        body = rng.choice((
            good[: rng.randrange(1, len(good))],
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
            b"[" * 100000 + b"]" * 100000,
            b'{"signature_name": "decode", "inputs": [[' + b"9" * 5000 + b"]]}",
            good.replace(b"0.", b"NaN, 0.", 1), good.replace(b"0.", b"Infinity, 0.", 1),
            b"", b"null", b'"text"', b"1e999", b"{}",
        ))
    elif kind == "content_type":
        body = predict_body(signature_name, valid)
        headers = rng.choice(({"Content-Type": "text/plain"}, {}, {"Content-Type": "application/x-www-form-urlencoded"},
                              {"Content-Type": "application/json; charset=utf-8"}, {"Content-Type": "multipart/form-data"}))
    elif kind == "envelope":
        body = json.dumps(rng.choice((
            {"signature_name": 5, "inputs": {}}, {"signature_name": signature_name},
            {"signature_name": signature_name, "instances": {"a": 1}}, {"instances": [], "inputs": []},
            {"signature_name": signature_name, "inputs": {k: v.tolist() for k, v in valid.items()}, "extra": 1},
            {"signature_name": "x" * 10000, "inputs": []},
        ))).encode()
    else:
        predict = rng.choice((f"/v1/models/{name}/versions/99:predict", "/v1/models/other:predict",
                              f"/v1/models/{name}:explode", "/v1/models/%00:predict", f"/v1/models/{'a' * 3000}:predict"))
        body = predict_body(signature_name, valid)
    return kind, predict, body, headers


def hol_part(export: Path, clients=4, seconds=10.0) -> dict:
    """Latency of `clients` small requests in a loop, alone, then while one client sends 10 x 15 MB."""
    metadata = layout.read_metadata(layout.find_onnx_version_dir(export))
    signatures = contract.signatures_from_metadata(metadata)
    small = predict_body("generate_uint8", example(signatures["generate_uint8"], 1))
    abusive = big_body(metadata, 15 * 1024 * 1024)
    with http_server(export) as (host, port, name):
        path = f"/v1/models/{name}:predict"
        alone = measure_clients(host, port, path, small, clients, seconds)
        abuse_statuses = []
        abuser = threading.Thread(target=lambda: abuse_statuses.extend(post(host, port, path, abusive) for _ in range(10)))
        abuser.start()
        with_abuse = measure_clients(host, port, path, small, clients, seconds, until=abuser)
        abuser.join()
    return {"clients": clients, "alone": alone, "with_abusive_client": with_abuse,
            "abusive_bodies_mb": round(len(abusive) / 2**20, 1), "abusive_statuses": abuse_statuses,
            "p99_ratio": round(with_abuse["p99_ms"] / alone["p99_ms"], 2),
            "throughput_ratio": round(with_abuse["requests_per_s"] / alone["requests_per_s"], 2)}


def big_body(metadata, size: int) -> bytes:
    """An encode request of about `size` bytes: far more images than any batch limit."""
    image = json.dumps(np.full(metadata["image_shape"], 0.1234567, np.float32).tolist()).encode()
    count = size // (len(image) + 1)
    return b'{"signature_name": "encode", "instances": [' + b",".join([image] * count) + b"]}"


def measure_clients(host, port, path, body, clients, seconds, until=None) -> dict:
    """Each client: one keep-alive connection, requests back to back for `seconds` (and while `until` runs)."""
    latencies, failures, lock = [], 0, threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        nonlocal failures
        connection = NoDelayHTTPConnection(host, port, timeout=120)
        while time.perf_counter() < deadline or (until is not None and until.is_alive()):
            start = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = NoDelayHTTPConnection(host, port, timeout=120)
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    failures += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(ordered), "failures": failures, "seconds": round(elapsed, 1),
            "requests_per_s": round(len(ordered) / elapsed, 1), "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)}


SLOW_CASES = {
    "partial headers": b"POST /v1/models/NAME:predict HTTP/1.1\r\nHost: localhost\r\nContent-Ty",
    "partial body": b"POST /v1/models/NAME:predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{\"signature_name\": ",
    "nothing sent": b"",
}


def slow_part(export: Path, cap=60.0, idle_connections=300) -> dict:
    results = {}
    with http_server(export) as (host, port, name):
        for case, data in SLOW_CASES.items():
            results[case] = seconds_until_closed(host, port, data.replace(b"NAME", name.encode()), cap)
        held = [open_idle(host, port, SLOW_CASES["partial headers"]) for _ in range(idle_connections)]
        start = time.perf_counter()
        status = post(host, port, f"/v1/models/{name}:predict", predict_body("generate", example(
            contract.signatures_from_metadata(layout.read_metadata(layout.find_onnx_version_dir(export)))["generate"], 1)),
            timeout=cap)
        results[f"normal request beside {idle_connections} partial ones"] = {
            "status": status, "seconds": round(time.perf_counter() - start, 2)}
        for sock in held:
            sock.close()
    return results


def seconds_until_closed(host, port, data: bytes, cap: float) -> dict:
    """Send `data`, then wait: seconds until the server closes the connection (None: not within `cap`)."""
    sock = socket.create_connection((host, port))
    sock.settimeout(cap)
    start = time.perf_counter()
    sock.sendall(data)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
        closed_after = round(time.perf_counter() - start, 1)
    except (TimeoutError, ConnectionResetError):
        closed_after = None if time.perf_counter() - start >= cap else round(time.perf_counter() - start, 1)
    finally:
        sock.close()
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else None
    return {"closed_after_s": closed_after, "status": status}


def open_idle(host, port, data: bytes) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.sendall(data)
    return sock


# --- report ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reliability-")))
        work.mkdir(parents=True, exist_ok=True)
        report = {"benchmark": "reliability", "parts": args.parts}
        if "kill" in args.parts:
            report["kill"] = kill = kill_part(work, args.kills, rng)
            print(f"kill -9: {kill['resumed']}/{kill['kills']} resumed ({kill['kills_during_checkpoint_write']} during a "
                  f"checkpoint write); steps lost max {kill['max_steps_lost']} (interval {kill['checkpoint_interval']}); "
                  f"log.csv one row per step: {kill['log_rows_one_per_step']}; damaged checkpoints: "
                  f"{kill['damaged_checkpoints']}", flush=True)
        if "stop" in args.parts:
            report["stop"] = stop = stop_part(work, args.stops, rng)
            print(f"stop: {stop['exit_codes']}; killed by a signal: {stop['killed_by_a_signal']}; saved step = last logged "
                  f"step: {stop['saved_step_is_last_logged']}/{stop['stops']}; resumed: {stop['resumed']}", flush=True)
        if "corrupt" in args.parts:
            report["corrupt"] = corrupt = corrupt_part(work)
            for name, result in corrupt.items():
                summary = ", ".join(f"{command} exit {result[command]['exit_code']}"
                                    f"{' TRACEBACK' if result[command]['traceback'] else ''}"
                                    f" ({len(result[command]['lines'])} line{'s' * (len(result[command]['lines']) != 1)})"
                                    for command in ("evaluate", "export", "train"))
                print(f"damaged run, {name}: {summary}", flush=True)
            calls = [result[command] for result in corrupt.values() for command in ("evaluate", "export", "train")]
            report["corrupt_tracebacks"] = sum(c["traceback"] for c in calls)
            print(f"damaged runs: {report['corrupt_tracebacks']} tracebacks in {len(calls)} invocations", flush=True)
        if {"fuzz", "hol", "slow"} & set(args.parts):
            export = args.export or build_export(work)
            if "fuzz" in args.parts:
                report["fuzz"] = fuzz = fuzz_part(export, args.requests, rng)
                print(f"fuzz: {fuzz['requests']} requests -> {fuzz['statuses']}; alive after: {fuzz['server_alive_after']}",
                      flush=True)
            if "hol" in args.parts:
                report["hol"] = hol = hol_part(export)
                print(f"head-of-line: p99 {hol['alone']['p99_ms']} ms alone, {hol['with_abusive_client']['p99_ms']} ms beside "
                      f"10 x {hol['abusive_bodies_mb']} MB bodies (x{hol['p99_ratio']}); throughput x{hol['throughput_ratio']}",
                      flush=True)
            if "slow" in args.parts:
                report["slow"] = slow = slow_part(export)
                for case, result in slow.items():
                    print(f"slow client, {case}: {result}", flush=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
