"""Export time, file sizes and ONNX Runtime CPU latency of a published official ALAE architecture at
full size (random weights: the cost does not depend on them).

    python benchmarks/official_export.py --model ffhq            # 1024x1024
    python benchmarks/official_export.py --model celeba-hq256    # 256x256

Builds the `style_official` model of the published model's settings, writes it as a run
directory (as `python -m alae_tf.convert` would), exports it with `python -m export` (timed,
self-check included), then times `ALAEOnnx.encode` and `.decode` at batch 1 (median of
--repeats after one warm-up call). Prints one line per figure, JSON on the last line.

    python benchmarks/official_export.py --model ffhq --work DIR --latency-only   # re-time DIR's export
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from serving.command_line import CommandParser, folder_to_write


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main():
    parser = CommandParser(prog="python benchmarks/official_export.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="celeba-hq256", choices=["ffhq", "celeba-hq256", "bedroom", "celeba"],
                        help="a published model (default: celeba-hq256)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per operation (default 10)")
    parser.add_argument("--work", type=folder_to_write, help="directory for the run and the export (default: a temporary one, removed at the end)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only time the export already in --work (e.g. again on a quiet machine)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.latency_only and not (args.work and (args.work / "export").is_dir()):
        parser.error("--latency-only needs --work DIR holding a previous run's export")

    import alae_tf  # noqa: F401  (before TensorFlow: it sets TensorFlow's CPU kernel choice)
    import keras

    from alae_tf.model import build_alae
    from alae_tf.official import published_config
    from alae_tf.compute import set_precision
    from alae_tf.run_dir import RunDir, checkpoint_manager
    from alae_tf.config import save_config
    from export.build import ExportRequest, export_run
    from serving import layout
    from serving.onnx_model import ALAEOnnx

    work = args.work or Path(tempfile.mkdtemp(prefix="official_export_"))
    if args.work is None:  # a temporary folder (1.1 GB at 256x256): removed at exit
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    config = published_config(args.model)
    report = {"benchmark": "official_export", "model": args.model, "resolution": config.model.image_shape[0]}
    if not args.latency_only:
        set_precision("none")
        keras.utils.set_random_seed(0)
        started = time.perf_counter()
        model = build_alae(config)
        run = RunDir(work / "run")
        run.root.mkdir(parents=True, exist_ok=True)
        save_config(config, run.config_file)
        checkpoint_manager(model, run).save(checkpoint_number=0)
        print(f"built and saved the random-weight run in {time.perf_counter() - started:.1f} s")
        report["parameters"] = {net: int(sum(np.prod(v.shape) for v in getattr(model, net).weights))
                                for net in ("generator", "encoder", "mapping", "discriminator")}

        started = time.perf_counter()
        export_run(ExportRequest(run=run.root, out=work / "export", name="official"))
        report["export_seconds"] = round(time.perf_counter() - started, 1)
        print(f"export (SavedModel + ONNX + self-check): {report['export_seconds']} s")
        saved_dir = layout.saved_model_dir(work / "export", "official", 1)
        onnx_dir = layout.onnx_dir(work / "export", "official", 1)
        sizes = {"saved_model_mb": round(directory_bytes(saved_dir) / 2**20, 1),
                 **{f"{p.stem}_onnx_mb": round(p.stat().st_size / 2**20, 1) for p in sorted(onnx_dir.glob("*.onnx"))}}
        print("sizes (MiB): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
        report.update(sizes)

    app = ALAEOnnx(work / "export")
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, *app.image_shape)).astype(np.float32)
    w = rng.standard_normal((1, app.latent_dim)).astype(np.float32)
    latency = {}
    for name, call in (("encode", lambda: app.encode(image)), ("decode", lambda: app.decode(w))):
        call()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        latency[f"{name}_ms"] = round(1000 * statistics.median(times), 1)
        print(f"ONNX Runtime {name}, batch 1: median {latency[f'{name}_ms']} ms over {args.repeats} calls")
    print(json.dumps({**report, **latency, "provider": app.provider, "cpu_count": os.cpu_count(),
                      "machine": platform.machine()}))


if __name__ == "__main__":
    main()
