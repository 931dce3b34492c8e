"""The evaluation behind `python -m alae_tf.evaluate` (alae_tf/evaluate.py reads its command line):
the metrics computed one after the other, each one's failure kept apart, and eval.json written."""

import json
import sys
import time
import traceback
from pathlib import Path

from alae_tf.atomic_file import write_text_atomically
from alae_tf.data import ImageSplits, open_run_images
from alae_tf.errors import ALAEError
from alae_tf.grids import images_per_call
from alae_tf.inference import Sampler
from alae_tf.metrics import BATCH_SIZE, DEFAULT_METRICS, METRICS, UNLABELLED_DEFAULT_METRICS
from alae_tf.metrics.context import EvalContext
from alae_tf.run_dir import RunDir, data_change, load_run
from alae_tf.stop_signals import STOP_SIGNALS, Stopped, interrupted_exit_code, signal_name, stop_signals_raise_stopped

INTERRUPTED = "interrupted"  # Ctrl-C; a SIGTERM or SIGHUP: "stopped (SIGTERM)", "stopped (SIGHUP)"


def stop_reason(exc: KeyboardInterrupt) -> str:
    return f"stopped ({signal_name(exc)})" if isinstance(exc, Stopped) else INTERRUPTED


EXIT_CODE_OF_STOP = {stop_reason(exc): interrupted_exit_code(exc)
                     for exc in (KeyboardInterrupt(), *(Stopped(signum) for signum in STOP_SIGNALS))}
PPL_METRICS = ("ppl_full", "ppl_end")


def evaluate(args) -> dict:
    """The report of the metrics asked for; a metric that cannot be computed on this run (say, the
    probe without class labels) is named under "failed", and the others are computed all the same."""
    names = args.metrics  # checked by alae_tf.evaluate.argument_problem
    config, model = load_run(args.run, args.checkpoint)
    data = evaluation_data(config, args)
    batch_size = args.batch_size or min(BATCH_SIZE, images_per_call(config.model.image_shape))
    ctx = EvalContext(sampler=Sampler.from_model(model), config=config, data=data, num_samples=args.num_samples,
                      seed=args.seed, batch_size=batch_size, ppl_crop=args.ppl_crop)
    if names is None:
        names = list(DEFAULT_METRICS if data.train_labels is not None else UNLABELLED_DEFAULT_METRICS)
        print(f"metrics: {', '.join(names)} (the default{'' if data.train_labels is not None else ' for data without class labels'})")
    started = time.time()
    values, settings = {}, {}
    failed = refused_metrics(names, ctx)
    to_compute = [name for name in names if name not in failed]
    # What else a metric's figures depend on, recorded beside them (the probe's 50k split became the
    # reference's partition on 2026-12-05, commit 60d2624; before, the first 50k of evaluate's order).
    particular = {**{name: {"ppl_crop": args.ppl_crop} for name in PPL_METRICS}, "probe": {"split50k": "reference"}}
    common = {"seed": args.seed, "batch_size": batch_size}
    with stop_signals_raise_stopped():
        for name in to_compute:
            print(f"== {name}")
            try:
                ctx.samples_used = None
                computed = METRICS[name].compute(ctx)
                # the samples the metric drew (its default when --num-samples is not given; none: it read the data)
                used = {"metric": name, "num_samples": ctx.samples_used, **common, **particular.get(name, {})}
                values.update(computed)
                settings.update({key: used for key in computed})
            except ALAEError as exc:  # one metric's problem costs no other metric's result (an hour of FID)
                print(f"error: {name}: {exc}", file=sys.stderr)
                failed[name] = str(exc)
            except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP: the metrics done so far are still written
                reason = stop_reason(exc)
                print(f"\n{reason} during {name}", file=sys.stderr)
                failed.update({left: reason for left in to_compute[to_compute.index(name):]})
                break
            except Exception as exc:  # a defect of one metric: its traceback for the report, the others' results kept
                traceback.print_exc()
                print(f"error: {name} failed ({type(exc).__name__}: {exc}); the other metrics go on", file=sys.stderr)
                failed[name] = f"{type(exc).__name__}: {exc}"
    failed = {name: failed[name] for name in names if name in failed}  # in the order asked
    report = {
        "run": str(args.run),
        "step": model.step,
        "data": data.source,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "metrics": values,
        "settings": settings,
        "seconds": round(time.time() - started, 1),
    }
    return {**report, "failed": failed} if failed else report


def refused_metrics(names, ctx) -> dict:
    """The metrics this run cannot give, with the reason, as far as that is known before any image
    is drawn (class labels, held-out images, image shape, sample counts): said at once, not after an
    hour of the metrics asked for before them."""
    refused = {}
    for name in names:
        try:
            METRICS[name].check(ctx)
        except ALAEError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            refused[name] = str(exc)
    return refused


def read_eval_file(path: Path) -> dict | None:
    """The reports eval.json holds, or None when there is none (or it is not an evaluate report)."""
    try:
        previous = json.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):  # none yet, or one that writing it will report
        return None
    except (OSError, ValueError) as exc:
        print(f"warning: {path} is unreadable ({exc}); it is replaced by this evaluation's report", file=sys.stderr)
        return None
    return previous if isinstance(previous, dict) and isinstance(previous.get("metrics"), dict) else None


def with_earlier_reports(report: dict, previous: dict | None) -> dict:
    """`report` with what `previous` (eval.json's content) held: the figures of the same checkpoint
    and data of the metrics this evaluation did not ask for (each with its own settings), and every
    report of another checkpoint or data under "other_evaluations". A metric asked for again
    replaces all its earlier figures, also when it failed this time (one interrupted keeps them);
    figures written before settings named their metric (2026-12-06) are kept unless recomputed."""
    if previous is None:
        return report
    earlier = [{key: value for key, value in previous.items() if key != "other_evaluations"}]
    earlier += previous.get("other_evaluations", [])
    same = [old for old in earlier if (old.get("step"), old.get("data")) == (report["step"], report["data"])]
    asked = {used.get("metric") for used in report["settings"].values()}
    asked |= {name for name, reason in report.get("failed", {}).items() if reason not in EXIT_CODE_OF_STOP}
    asked.discard(None)
    metrics, settings = {}, {}
    for old in same:
        old_settings = {"num_samples": old.get("num_samples"), "seed": old.get("seed")}
        for name, value in old["metrics"].items():
            used = old.get("settings", {}).get(name, old_settings)
            if used.get("metric") in asked:
                continue
            metrics[name] = value
            settings[name] = used
    merged = {**report, "metrics": {**metrics, **report["metrics"]}, "settings": {**settings, **report["settings"]}}
    others = [old for old in earlier if old not in same]
    return {**merged, "other_evaluations": others} if others else merged


REAL_IMAGES = 60000  # training images loaded at least: all of MNIST's (the probe's), more than FID's 50k


def evaluation_data(config, args) -> ImageSplits:
    """The run's data at the final resolution, read as the metrics ask for it (`ImageRows`):
    max(--num-samples, 60k) training images (all of them if fewer) in a fixed shuffled order, with
    their labels, and the held-out images."""
    resolution = config.model.image_shape[0]
    images = open_run_images(config, path=args.data_path, mnist_source=args.data_source)
    if change := data_change(RunDir(Path(args.run)), images):
        print(f"warning: {change}; figures on held-out images may include images the run trained on", file=sys.stderr)
    count = min(images.num_train, max(args.num_samples or 0, REAL_IMAGES))
    return ImageSplits(images.train_rows(resolution)[:count], images.train_sample_labels(count),
                       images.test_rows(resolution), images.test_labels, images.description, images.train_order(count))


def markdown_table(report) -> str:
    lines = [f"step {report['step']} of {report['run']}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.0f} |" if name.endswith("_real_images") else f"| {name} | {value:.4f} |"
              for name, value in report["metrics"].items()]  # "_real_images": how many a metric compared against
    return "\n".join(lines)


def run(args) -> int:
    """Evaluate as `args` (the command line, read by alae_tf.evaluate) say, print the table and write
    eval.json; the exit code."""
    try:
        report = evaluate(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = report.get("failed", {})
    stops = [EXIT_CODE_OF_STOP[reason] for reason in failed.values() if reason in EXIT_CODE_OF_STOP]
    if not report["metrics"] and stops and len(stops) == len(failed):  # stopped before the first metric, none refused
        reason = next(reason for reason in failed.values() if reason in EXIT_CODE_OF_STOP)  # interrupted or stopped
        print(f"{reason} before any metric was done; nothing written", file=sys.stderr)
        return stops[0]
    if report["metrics"]:
        print(markdown_table(report))  # first: a run directory that cannot be written loses no result
    eval_file = RunDir(args.run).eval_file
    kept = with_earlier_reports(report, read_eval_file(eval_file))
    carried = [name for name in kept["metrics"] if name not in report["metrics"]]
    if carried:
        print(f"{eval_file} also keeps from earlier evaluations of step {report['step']}: {', '.join(carried)}")
    try:
        write_text_atomically(eval_file, json.dumps(kept, indent=2) + "\n")
    except OSError as exc:
        results = "; the results are the table above" if report["metrics"] else ""
        print(f"error: cannot write {eval_file} ({exc.strerror}){results}", file=sys.stderr)
        return 2
    print(f"written to {eval_file}")
    if not failed:
        return 0
    if report["metrics"]:
        print(f"error: not computed: {', '.join(failed)} (the reasons are above)", file=sys.stderr)
    else:  # written all the same: eval.json lists them under failed, without their earlier figures
        print(f"error: none of the metrics could be computed ({', '.join(failed)})", file=sys.stderr)
    return stops[0] if stops else 2
