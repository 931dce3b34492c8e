"""python -m export --run RUN [--out EXPORT] [--version N] [--no-ema] [--checkpoint CKPT] [--onnx-int8]"""

import argparse
import sys
from pathlib import Path

from alae_tf.errors import ALAEError
from alae_tf.run_layout import run_problem
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving.command_line import CommandParser, install_extra


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m export",
        description="Export a trained ALAE run as a TF-Serving SavedModel (EXPORT/tf_serving/NAME/VERSION) and "
        "ONNX files (EXPORT/onnx/NAME/VERSION), checked against each other before they are published. "
        "Exit 2: bad arguments or run; exit 1: the exported model failed its parity check.",
        epilog="examples:\n"
        "  python -m export --run runs/mnist                       # into exports/, the next version\n"
        "  python -m export --run runs/mnist --out exports --onnx-int8 --checkpoint ckpt-5000\n"
        "  python -m serving.http --model exports              # then serve it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", type=Path, help="run directory written by python -m alae_tf.train "
                        "(default: the run that holds --checkpoint)")
    parser.add_argument("--checkpoint", help="checkpoint to export instead of the latest: RUN/checkpoints/ckpt-5000, or just ckpt-5000")
    parser.add_argument("--out", type=Path, default=Path("exports"), help="export directory (default: exports)")
    parser.add_argument("--name", help="model name for TF-Serving URLs (default: alae_<preset>)")
    parser.add_argument("--version", type=int, help="version number (default: one more than the highest present)")
    parser.add_argument("--no-ema", dest="use_ema", action="store_false",
                        help="export the live nets instead of their EMA copies (for the nets the run keeps EMA copies of)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument("--onnx-int8", action="store_true",
                        help="also write GRAPH.int8.onnx beside each ONNX file: large MatMul weights as int8 (about 4x "
                        "smaller, faster at small batches on CPU); load with ALAEOnnx(..., variant='int8')")
    parser.add_argument("--data-path", help="where the run's data is now, if it moved (default: the run's "
                        "data.path; a run converted from an official checkpoint has none): the export checks its "
                        "graphs on the data's held-out images, else on random ones")
    args = parser.parse_args(argv)
    if args.run is None:
        if args.checkpoint is None:
            parser.error("pass --run RUN or --checkpoint RUN/checkpoints/ckpt-N")
        checkpoint = Path(args.checkpoint)  # RUN/checkpoints/ckpt-N; a directory is refused later, naming itself
        if len(checkpoint.parts) == 1:
            parser.error(f"--checkpoint {args.checkpoint} names no run: pass --run RUN too, or the path "
                         f"RUN/checkpoints/{args.checkpoint}")
        args.run = checkpoint.parent if checkpoint.is_dir() else checkpoint.parent.parent
    inside = args.out.resolve() == args.run.resolve() or args.run.resolve() in args.out.resolve().parents
    if inside and (args.run / "config.yaml").is_file():  # (a --run that is no run is named as such later)
        parser.error(f"--out {args.out} is inside the run {args.run}: an export is served and shipped apart from "
                     "its run; pass another directory (default: exports)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if problem := run_problem(args.run):  # told before TensorFlow's import
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:  # TensorFlow and ONNX: imported once the command line was read
        from export.build import ExportRequest, export_run
        from export.verify import VerificationError
    except ModuleNotFoundError as missing:  # the export extra is not installed: one line, not a traceback
        if missing.name.split(".")[0] not in ("onnx", "tf2onnx", "onnxruntime", "tensorflow_serving"):
            raise
        print(f"error: python -m export needs the {missing.name} package: {install_extra('export')}", file=sys.stderr)
        return 2
    request = ExportRequest(run=args.run, out=args.out, version=args.version, use_ema=args.use_ema,
                            checkpoint=args.checkpoint, name=args.name, overwrite=args.overwrite,
                            onnx_int8=args.onnx_int8, data_path=args.data_path)
    try:
        with stop_signals_raise_stopped():  # the staging folder is removed on SIGTERM as on Ctrl-C
            export_run(request)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VerificationError as exc:
        print(f"error: export check failed, nothing was published: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); nothing was published", file=sys.stderr)
        return interrupted_exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
