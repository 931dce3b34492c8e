"""Convert an official ALAE checkpoint (github.com/podgorskiy/ALAE, a `.pth` file) into an alae_tf run:

    python -m alae_tf.convert --checkpoint ffhq.pth --config ffhq --out runs/official_ffhq

The run directory is an ordinary one (config.yaml + checkpoints/), so `python -m export`,
`python -m alae_tf.evaluate`, the grids and the editing tools take it as they are. The `.pth`
is read without torch (alae_tf.torch_files). Our live nets get the checkpoint's live nets and
our EMA copies its smoothed ones (`*_s`, what the official figures use); when a checkpoint
holds only one of the two, both get it. The run's step counter is set to the top level's first
step after its fade-in, so `python -m alae_tf.train --out RUN --steps N` would fine-tune at full
resolution (the published models are past their fade-in); a checkpoint saved before that point of
the official schedule (its scheduler's epoch count says so) is set to the same point of ours, where
its upper levels are untrained.
"""

import argparse
import os
import secrets
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from alae_tf import torch_files
from alae_tf.atomic_file import STAGING_LOCK, make_staging_folder, move_unless_exists, remove_abandoned_staging
from alae_tf.config import save_config
from alae_tf.errors import ALAEError, ConfigError, out_of_disk_space, written_file
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from alae_tf.official import (NON_FINITE, PUBLISHED, PUBLISHED_DATASET_SIZES, config_from_official, official_dataset_size,
                              plan_networks, published_config)
from serving.command_line import CommandParser
from serving.contract import is_integer

# Our net -> the official checkpoint's name for it (E is called "discriminator" there).
OFFICIAL_NAMES = {"encoder": "discriminator", "generator": "generator", "discriminator": "mapping_tl",
                  "mapping": "mapping_fl", "dlatent_avg": "dlatent_avg"}
SMOOTHED = "_s"
PROBLEMS_SHOWN = 25
DATA_PARALLEL_PREFIX = "module."  # torch's DataParallel / DistributedDataParallel wrap a net's state dict keys


def parse_args(argv=None):
    parser = CommandParser(
        prog="python -m alae_tf.convert",
        description="Convert an official ALAE StyleALAE checkpoint (.pth, read without torch) into an alae_tf run "
        "directory that export, evaluate and the editing tools read like any trained run.",
        epilog="Published models (their settings ship as presets): " + ", ".join(f"{k} -> preset {v}" for k, v in PUBLISHED.items())
        + ". An official config file's MODEL: keys define the network; TRAIN: and DATASET.SIZE set the schedule "
        "and DATASET.FLIP_IMAGES (default on) data.random_flip, used if you fine-tune; other keys are ignored.\n\nexamples:\n"
        "  python -m alae_tf.convert --checkpoint model_157.pth --config ffhq --out runs/official_ffhq\n"
        "  python -m alae_tf.convert --checkpoint model.pth --config ALAE/configs/celeba-hq256.yaml --out runs/celeba",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="the official .pth file (zip or legacy torch format)")
    parser.add_argument("--config", required=True,
                        help=f"an official config YAML (e.g. configs/ffhq.yaml) or a published model's name: {', '.join(PUBLISHED)}")
    parser.add_argument("--out", type=Path, required=True, help="run directory to create (must not exist yet)")
    parser.add_argument("--batch-size", type=int,
                        help="the batch size a fine-tune of the run trains with, at every level (default: the "
                        "official config's per-level list, e.g. 32 at ffhq's top level); fixed with the run's step "
                        "counter, which counts batches, so choose it here")
    return parser.parse_args(argv)


def with_batch_size(config, batch_size):
    """`config` with one batch size for every level in place of the official per-level list."""
    if batch_size is not None:
        config.train.batch_size, config.train.level_batch_sizes = batch_size, []
        config.validate("--batch-size")
    return config


def official_config_file(spec: str) -> dict | None:
    """The contents of the official config file `spec` names, or None for a published model's name."""
    path = Path(spec)
    if path.is_file():
        try:
            return yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a YAML config file ({exc})") from None
    if spec in PUBLISHED:  # before folders: the official download script saves into training_artifacts/NAME
        return None
    if path.is_dir():
        raise ConfigError(f"--config {spec}: a directory; pass the official code's configs/NAME.yaml file in it")
    raise ConfigError(f"--config {spec!r}: no such file, and not a published model ({', '.join(PUBLISHED)})")


def read_config(spec: str):
    raw = official_config_file(spec)
    return published_config(spec) if raw is None else config_from_official(raw, spec)


def read_epoch_images(spec: str) -> int:
    """Images in one epoch of the official schedule (its DATASET.SIZE), which counts epochs."""
    raw = official_config_file(spec)
    return PUBLISHED_DATASET_SIZES[spec] if raw is None else official_dataset_size(raw)


def official_epochs(checkpoint) -> int | None:
    """Epochs the official training had completed when it saved the file (its schedulers'
    `last_epoch`: train_alae.py steps them at each epoch's end, then saves), or None where the file
    does not say (a file of the models alone)."""
    auxiliary = checkpoint.get("auxiliary") if isinstance(checkpoint, dict) else None
    schedulers = auxiliary.get("scheduler") if isinstance(auxiliary, dict) else None
    if not isinstance(schedulers, dict):
        return None
    counts = [state.get("last_epoch") for state in schedulers.values() if isinstance(state, dict)]
    return max((n for n in counts if is_integer(n) and n >= 0), default=None)


def converted_step(config, epochs: int | None, epoch_images: int) -> tuple[int, str | None]:
    """The run's step: the top level's first after its fade-in, or, for a checkpoint saved before
    the official schedule got there, the same point of ours (and a warning saying so)."""
    from alae_tf import schedule  # (it imports Keras: not for --help)

    phases = schedule.phases(config)
    top = phases[-1]
    if epochs is None:
        return top.faded_in_step, None
    step = schedule.step_at_image(phases, epochs * epoch_images)
    if step >= top.faded_in_step:
        return top.faded_in_step, None
    phase = schedule.phase_at(phases, step)
    fading = ", fading in" if step < phase.faded_in_step and phase.level > 0 else ""
    return step, (f"warning: the checkpoint was saved after {epochs} epoch(s) of the official schedule "
                  f"(a model_tmp_* file of training under way), at level {phase.level} ({phase.resolution}x"
                  f"{phase.resolution}{fading}) of {len(phases)}: its levels above are untrained. The run is set to "
                  f"the same point of our schedule, step {step}, from which a fine-tune (python -m alae_tf.train "
                  "--out RUN --data-path DIR --steps N) goes on growing")


def official_states(checkpoint, path) -> dict:
    """{"live": {our net: state dict}, "smoothed": {...}} from the checkpoint's "models"; a net with
    one copy only gives it to both (listed under "one_copy": (its official name, the copy held))."""
    models = checkpoint.get("models") if isinstance(checkpoint, dict) else None
    if not isinstance(models, dict):
        raise ALAEError(f"{path}: not an official ALAE checkpoint (no \"models\" dictionary)")
    states = {"live": {}, "smoothed": {}, "one_copy": [], "data_parallel": False}
    for ours, theirs in OFFICIAL_NAMES.items():
        live, smoothed = models.get(theirs), models.get(theirs + SMOOTHED)
        if ours == "dlatent_avg":  # one running mean, saved without a smoothed copy
            smoothed = smoothed or live
        if live is None and smoothed is None:
            what = ("'dlatent_avg' (F's running mean of w, the centre of truncation)" if ours == "dlatent_avg"
                    else f"{theirs!r} (or {theirs + SMOOTHED!r}) state dict")
            raise ALAEError(f"{path}: the checkpoint has no {what}; found: {', '.join(sorted(models))}")
        for name, state in ((theirs, live), (theirs + SMOOTHED, smoothed)):
            if state is not None and not isinstance(state, dict):
                raise ALAEError(f"{path}: models[{name!r}] is a {type(state).__name__}, not a state dict (the official "
                                "checkpoints hold each net's state_dict()): not an official ALAE checkpoint")
        live, smoothed = (without_data_parallel_prefix(state, states) for state in (live, smoothed))
        if ours != "dlatent_avg" and (live is None or smoothed is None):
            states["one_copy"].append((theirs, "live" if smoothed is None else "smoothed"))
        states["live"][ours] = live if live is not None else smoothed
        states["smoothed"][ours] = smoothed if smoothed is not None else live
    return states


def checkpoint_name(problem: str, copy: str) -> str:
    """A weight plan's problem ("encoder.encode_block.0.bias_1: ...") with the checkpoint's name of
    the net ("discriminator", plus "_s" for the smoothed `copy`)."""
    net, _, rest = problem.partition(".")
    return f"{OFFICIAL_NAMES.get(net, net)}{copy}.{rest}"


def without_data_parallel_prefix(state: dict | None, states: dict) -> dict | None:
    """A state dict saved from a net inside torch's DataParallel (every key "module."-prefixed, as
    the official Checkpointer itself strips), without the prefix; noted in states["data_parallel"]."""
    if not state or not all(isinstance(key, str) and key.startswith(DATA_PARALLEL_PREFIX) for key in state):
        return state
    states["data_parallel"] = True
    return {key.removeprefix(DATA_PARALLEL_PREFIX): value for key, value in state.items()}


def convert(checkpoint_path: Path, config, out: Path, *, epoch_images: int, log=print) -> dict:
    """Write the run; returns {"step": ..., "tensors": ...}. Nothing is written if anything is wrong.
    `epoch_images`: the images in one epoch of the official schedule (`read_epoch_images`)."""
    if out.exists():
        raise ALAEError(f"{out}: already exists; pass a new --out directory")
    log(f"reading {checkpoint_path}")
    checkpoint = torch_files.load(checkpoint_path)
    states = official_states(checkpoint, checkpoint_path)
    if states["data_parallel"]:
        log(f"note: the nets were saved inside torch's DataParallel; read without its {DATA_PARALLEL_PREFIX!r} prefixes")
    for held in ("live", "smoothed"):
        if names := [name for name, copy in states["one_copy"] if copy == held]:
            other = "EMA copies (what sampling and export use)" if held == "live" else "live nets (what a fine-tune trains)"
            log(f"note: the checkpoint holds only the {held} {', '.join(names)}; our {other} get the same weights")
    import tensorflow as tf  # loaded here, after the arguments and the checkpoint's file are checked

    from alae_tf.compute import set_precision
    from alae_tf.model import build_alae
    from alae_tf.run_dir import RunDir, checkpoint_manager

    log("building the networks and checking the weights against them")
    set_precision("none")
    model = build_alae(config)
    copies = {"": plan_networks(model.networks(), states["live"], config.model.latent_dim),
              SMOOTHED: plan_networks(model.sampling_networks(), states["smoothed"], config.model.latent_dim)}
    assignments = [pair for plans in copies.values() for plan in plans for pair in plan.arrays()]
    # Named as in the checkpoint (E is its "discriminator"); a damaged tensor with its copy's name.
    problems = sorted({checkpoint_name(problem, copy if problem.endswith(NON_FINITE) else "")
                       for copy, plans in copies.items() for plan in plans for problem in plan.problems + plan.unused()})
    if damaged := [problem.removesuffix(f": {NON_FINITE}") for problem in problems if problem.endswith(NON_FINITE)]:
        raise ALAEError(f"{checkpoint_path}: {len(damaged)} tensor(s) hold values that are not numbers "
                        f"({', '.join(damaged[:3])}{', ...' if len(damaged) > 3 else ''}): the file is damaged; "
                        "download it again")
    if problems:
        shown = "\n  ".join(problems[:PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - PROBLEMS_SHOWN} more" if len(problems) > PROBLEMS_SHOWN else ""
        raise ConfigError(f"{checkpoint_path} does not match this config ({config.preset}: "
                          f"{config.model.image_shape[0]}x{config.model.image_shape[0]}, latent {config.model.latent_dim}; "
                          f"tensors named as in the checkpoint, where E is 'discriminator', D 'mapping_tl', F "
                          f"'mapping_fl'):\n  {shown}{more}")
    for variable, array in assignments:
        variable.assign(array)
    check_finite(model, checkpoint_path)
    step, early = converted_step(config, official_epochs(checkpoint), epoch_images)
    if early:
        log(early)
    model.trained_steps.assign(step)
    config.train.steps, config.train.epochs = step, None

    # This process's own staging folder, published only where nothing is: two conversions into one
    # --out shared one folder and left a run of one's config with the other's checkpoint.
    remove_abandoned_staging(out.parent, f".{out.name}.converting-")
    staging = out.with_name(f".{out.name}.converting-{os.getpid()}-{secrets.token_hex(4)}")
    staging_lock = None
    try:
        staging_lock = make_staging_folder(staging)
        run = RunDir(staging)
        log("writing the run")
        save_config(config, run.config_file)
        checkpoint_manager(model, run).save(checkpoint_number=step)
        # not part of the run; without it the folder is left alone for a minute (remove_abandoned_staging)
        (staging / STAGING_LOCK).unlink()
        move_unless_exists(staging, out)
    except FileExistsError:
        raise ALAEError(f"{out}: appeared while this conversion ran (another one into the same --out?); it is left "
                        "as it is and nothing was written: pass a new --out directory") from None
    except (OSError, tf.errors.OpError) as exc:
        if out_of_disk_space(exc):
            raise ALAEError(f"no space left on the disk, writing {written_file(exc, f'into {out.parent}')}; nothing "
                            f"was written to {out}: free some space and run the command again") from None
        if isinstance(exc, OSError):  # a parent that is a file, a folder this user cannot write
            raise ALAEError(f"cannot write {out} ({exc.strerror})") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if staging_lock is not None:
            staging_lock.close()
    log(f"written {out}: {len(assignments)} tensors ({sum(a.size for _, a in assignments) // 2:,} parameters per copy), "
        f"{config.model.image_shape[0]}x{config.model.image_shape[0]}, step {step}")
    return {"step": step, "tensors": len(assignments), "parameters": int(sum(np.size(a) for _, a in assignments))}


def check_finite(model, checkpoint_path: Path) -> None:
    """A damaged tensor in a legacy-format file (it has no checksums, a zip file has) converted
    without a word when its bytes still read as numbers: weights of 1e25, and E(x) NaN. What each
    copy of the nets computes on random latents and its own images must be finite."""
    import tensorflow as tf

    from alae_tf.inference import Sampler

    for copy, nets in (("live", model.networks()), ("smoothed", model.sampling_networks())):
        sampler = Sampler(nets.mapping, nets.generator, nets.encoder)
        images = sampler.generate(tf.random.stateless_normal([2, sampler.latent_dim], seed=[0, 0]))
        codes = sampler.encode(tf.clip_by_value(images, -1.0, 1.0))
        outputs = {"F and G (images from random latents)": images, "E (their codes)": codes,
                   "D (its scores of them)": nets.discriminator(codes)}
        if failing := [what for what, value in outputs.items() if not np.all(np.isfinite(np.asarray(value)))]:
            raise ALAEError(f"{checkpoint_path}: the {copy} nets compute values that are not finite in "
                            f"{', '.join(failing)}: the file is damaged (a legacy-format .pth carries no "
                            "checksums) or was diverged when saved; download it again")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with stop_signals_raise_stopped():  # the staging folder is removed on SIGTERM too
            convert(args.checkpoint, with_batch_size(read_config(args.config), args.batch_size), args.out,
                    epoch_images=read_epoch_images(args.config))
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({signal_name(exc)}); nothing was written to {args.out}", file=sys.stderr)
        return interrupted_exit_code(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
