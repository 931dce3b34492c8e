"""The work of `python -m alae_tf.project` (alae_tf/project.py reads its command line)."""

import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.data.datasets import given_data_path
from alae_tf.editing.figures import check_figure_size, zoomed
from alae_tf.editing.images import count_images, held_out_warning, select_images
from alae_tf.editing.outputs import check_output_dir, write_png, writing
from alae_tf.editing.projection import Projection, project
from alae_tf.editing.subjects import is_projection
from alae_tf.errors import ALAEError
from alae_tf.inference import Sampler
from alae_tf.png import image_grid
from alae_tf.run_dir import checkpoint_name, load_run
from alae_tf.run_layout import RunDir
from alae_tf.run_lock import take_lock
from alae_tf.stop_signals import interrupted_exit_code, signal_name, stop_signals_raise_stopped
from serving import projection_file

PREVIEW_IMAGES = 64  # a grid of every image would be one huge PNG for a folder of thousands
# The files are written under PARTIAL's name as batches end, at most every SAVE_EVERY_SECONDS
# (and on Ctrl-C or a divergence; a kill loses at most that much), and take FINAL's name once
# every image is done: an earlier projection into the same folder is replaced only by a complete one.
PARTIAL, FINAL = "projection.partial", "projection"
LOCK_FILE = ".projection.lock"  # held while a projection writes into its folder
# Codes beyond this magnitude have diverged (F's and E's are of order 1): since the loss reads the
# clipped images, a far too large learning rate ends at huge finite codes rather than at NaN.
MAX_CODE = 1e6
SAVE_EVERY_SECONDS = 60  # PARTIAL's files are brought up to date at most this often, and on Ctrl-C


def default_batch_size(image_shape) -> int:
    """16 images up to 128x128, fewer above: 2**18 pixels per batch."""
    return max(1, min(16, 2**18 // (image_shape[0] * image_shape[1])))


def project_images(args) -> dict:
    if projected := next((spec for spec in args.images if is_projection(spec)), None):
        raise ALAEError(f"{projected}: a projection file, whose images are projected already (edit and the studio "
                        "take it); project takes image files, folders and held-out:N")
    try:
        config, model = load_run(args.run, args.checkpoint)
    except KeyboardInterrupt as exc:  # said nothing: TensorFlow's import and the load take seconds
        print(f"\ninterrupted ({signal_name(exc)}) while loading the run; nothing written", file=sys.stderr)
        raise
    if args.data_path is not None:
        config.data.path = given_data_path(args.data_path)
    if warning := held_out_warning(args.images, config, args.run):
        print(warning, file=sys.stderr)
    sampler = Sampler.from_model(model)
    if args.noise and not sampler.noise_shapes:  # before the output folder is made
        raise ALAEError(f"--noise: this run's generator ({config.model.backbone}) has no noise inputs to refine")
    out_dir = args.out_dir or RunDir(args.run).projections
    check_output_dir(out_dir, inputs=tuple(args.images))
    created = not out_dir.exists()
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        # Two projections into one folder wrote one file in turn: the one finishing last kept it, unsaid.
        lock = take_lock(out_dir / LOCK_FILE, lambda holder: f"{out_dir} is being written by another projection "
                         f"({holder}); wait for it to finish, or pass another --out-dir")
    with lock:
        try:
            return project_into(args, config, model, sampler, out_dir)
        except BaseException:
            if created and os.listdir(out_dir) == [LOCK_FILE]:  # nothing written: no empty folder left behind
                (out_dir / LOCK_FILE).unlink()
                out_dir.rmdir()
            raise


def project_into(args, config, model, sampler, out_dir: Path) -> dict:
    """The projection of `args.images` written into `out_dir` (locked by this process)."""
    parts, reconstructions, count = [], [], 0
    written, previewed, saved_at = 0, 0, time.monotonic()

    def save():
        """The batches done so far as PARTIAL's files (the preview only when it gains images)."""
        nonlocal written, previewed, saved_at
        result = Projection.joined(parts)
        shown = min(len(result.styles), PREVIEW_IMAGES)
        write_outputs(out_dir, PARTIAL, originals[:len(result.styles)], np.concatenate(reconstructions), result, about,
                      args.zoom, preview=shown > previewed)
        written, previewed, saved_at = len(result.styles), shown, time.monotonic()
        return result

    try:  # from here: reading a folder of images takes a while too
        count = count_images(args.images, config)  # first: a bad --images is refused before any note of what would happen
        if (out_dir / f"{FINAL}.npz").exists():  # said nothing: hours of an earlier projection were replaced unnoticed
            print(f"note: {out_dir / FINAL}.npz holds an earlier projection; it is kept until this one is complete, then "
                  "replaced (--out-dir DIR writes elsewhere)", file=sys.stderr)
        if (out_dir / f"{PARTIAL}.npz").exists():  # replaced unsaid, and "Ctrl-C keeps those done" read as resumable
            print(f"note: {out_dir / PARTIAL}.npz, from an interrupted projection, is replaced as this one goes: a "
                  "projection starts again from its first image (--out-dir DIR keeps it)", file=sys.stderr)
        if args.noise_weight != 1.0 and not args.noise:
            print("note: --noise-weight weighs the noise images' penalty, and without --noise none are refined",
                  file=sys.stderr)
        if args.per_layer and sampler.num_styles == 1:
            print(f"note: --per-layer: this generator ({config.model.backbone}) has one style input, so w+ is w",
                  file=sys.stderr)
        if args.noise and sampler.generator.noise_stand_in:
            print("note: without noise images this generator (from the official code) adds the official code's "
                  "deterministic stand-in; --noise replaces it by noise images started from zero, so the projection "
                  "does not start exactly at the encoder's G(E(x))", file=sys.stderr)
        size = args.batch_size or default_batch_size(sampler.image_shape)
        limit = projection_file.max_images(sampler.num_styles, sampler.latent_dim, sampler.image_shape,
                                           sampler.noise_shapes if args.noise else ())
        if count > limit:
            # Found before the work: a file edit and the studio refuse would be found only after it.
            raise ALAEError(f"{count} images are more than one projection file holds for this model: at most {limit}"
                            f"{' with their noise images' if args.noise else ''}, the "
                            f"{projection_file.MAX_UNPACKED_BYTES >> 20} MiB that edit and the studio read; project them "
                            f"in groups of at most {limit}, each with its own --out-dir (edit takes several projection files)")
        check_figure_size(min(count, PREVIEW_IMAGES) * 3, sampler.image_shape, args.zoom)  # the preview, before hours of work
        originals = select_images(args.images, config)
        count = len(originals)  # less than counted when a folder holds files that cannot be read (skipped)
        print(f"projecting {plural(count, 'image')}, {plural(args.steps, 'step')}, "
              f"{'w+ (per layer)' if args.per_layer else 'w'}"
              f"{' and noise' if args.noise else ''}{f', {size} at a time' if count > size else ''}")
        # Names, not paths, as an export's metadata has them: the studio compares the two.
        about = {"per_layer": args.per_layer, "run": args.run.resolve().name, "checkpoint": checkpoint_name(model.step),
                 "training_step": model.step}
        for start in range(0, count, size):
            targets = to_model_range(originals[start:start + size])
            last = start + len(targets)
            if count > size:
                print(f"images {start + 1}-{last} of {count}" if last > start + 1 else f"image {last} of {count}")
            part = project(sampler, targets, steps=args.steps, learning_rate=args.learning_rate, mse_weight=args.mse_weight,
                           per_layer=args.per_layer, optimize_noise=args.noise, noise_weight=args.noise_weight)
            if not all(np.isfinite(array).all() for array in (part.styles, *(part.noise or []))) or \
                    np.abs(part.styles).max() > MAX_CODE:
                if start > written:
                    save()
                kept = (f" ({out_dir / PARTIAL}.npz holds the {plural(start, 'image')} before "
                        f"{'them' if last > start + 1 else 'it'})" if start else earlier_files(out_dir))
                which = f"images {start + 1}-{last}" if last > start + 1 else f"image {last}"
                raise ALAEError(f"the projection of {which} diverged (codes NaN, infinite or beyond "
                                f"{MAX_CODE:g}) "
                                f"(--learning-rate {args.learning_rate:g}, --mse-weight {args.mse_weight:g}); run again "
                                f"with a lower --learning-rate{kept}")
            shown = max(0, PREVIEW_IMAGES - start)  # G's images only for the preview (2.7 MB per image were kept at 256x256)
            reconstructed = (to_uint8(sampler.reconstruct(targets[:shown])).numpy() if shown else
                             np.zeros((0, *sampler.image_shape), np.uint8))
            # Both lists grow together: a Ctrl-C between them made save() stack lists of two lengths.
            parts.append(dataclasses.replace(part, images=part.images[:shown]))
            reconstructions.append(reconstructed)
            # Rewriting every image's file after each batch wrote ~N^2 / (2 x batch) images in all
            # (hundreds of GB for thousands of images at 256x256 in batches of 4).
            if last == count or time.monotonic() - saved_at >= SAVE_EVERY_SECONDS:
                result = save()
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP: the batches done so far are written
        done = sum(len(part.styles) for part in parts)
        if done > written:
            save()
        kept = f" ({out_dir / FINAL}.npz, from before, is unchanged)" if (out_dir / f"{FINAL}.npz").exists() else ""
        name = signal_name(exc)
        print(f"\ninterrupted ({name}): {out_dir / PARTIAL}.npz holds the first {done} of {count} images{kept}" if done else
              f"\ninterrupted ({name}) before the first batch was done; nothing written{earlier_files(out_dir)}",
              file=sys.stderr)
        raise
    for suffix in (".npz", ".png"):  # complete: replaces the files of an earlier projection into this folder
        with writing(out_dir / f"{FINAL}{suffix}"):
            (out_dir / f"{PARTIAL}{suffix}").replace(out_dir / f"{FINAL}{suffix}")
    summary = {"encoder": (float(result.encoder_lpips.mean()), float(result.encoder_mse.mean())),
               f"after {plural(args.steps, 'step')}": (float(result.lpips.mean()), float(result.mse.mean()))}
    print(f"{'mean over images':<20} {'LPIPS':>8} {'MSE':>8}")
    for name, (lpips, mse) in summary.items():
        print(f"{name:<20} {lpips:>8.4f} {mse:>8.4f}")
    if warning := worse_than_the_encoder(result, args.mse_weight, args.learning_rate):
        print(warning, file=sys.stderr)
    preview = f", the first {PREVIEW_IMAGES} of {count} images" if count > PREVIEW_IMAGES else ""
    npz_bytes = (out_dir / "projection.npz").stat().st_size
    npz_size = f"{npz_bytes / 2**20:.1f} MiB" if npz_bytes >= 2**20 else f"{npz_bytes / 2**10:.0f} KiB"
    print(f"written: {out_dir / 'projection.png'} (image | encoder | projection{preview}), {out_dir / 'projection.npz'} "
          f"({npz_size}; the studio opens it: python -m serving.http --model EXPORT --studio --projections "
          f"{shlex.quote(str(out_dir / 'projection.npz'))})")
    return summary


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def worse_than_the_encoder(result: Projection, mse_weight: float, learning_rate: float) -> str | None:
    """The warning for images whose projection ended farther from them (LPIPS + mse_weight x MSE,
    the loss it lowers) than the encoder's code it started from: a learning rate too large for them."""
    loss, start = result.lpips + mse_weight * result.mse, result.encoder_lpips + mse_weight * result.encoder_mse
    worse = np.flatnonzero(loss > start)
    if not len(worse):
        return None
    listed = ", ".join(str(i + 1) for i in worse[:10]) + (", ..." if len(worse) > 10 else "")
    return (f"warning: {len(worse)} of {len(result.lpips)} images ended farther from their image than the encoder's "
            f"code they started from (LPIPS + MSE; image {listed}): --learning-rate {learning_rate:g} is too large for "
            "them; run again with a lower one")


def earlier_files(out_dir: Path) -> str:
    """' (DIR/projection.npz and ... are from an earlier projection)' naming the projection files
    in `out_dir` (called before this projection wrote any), or ''."""
    names = [str(out_dir / f"{name}.npz") for name in (FINAL, PARTIAL) if (out_dir / f"{name}.npz").exists()]
    if not names:
        return ""
    return f" ({' and '.join(names)} {'is' if len(names) == 1 else 'are'} from an earlier projection)"


def write_outputs(out_dir: Path, stem: str, originals, reconstructions, result: Projection, about: dict, zoom: int,
                  preview=True) -> None:
    """STEM.png (per image of the first PREVIEW_IMAGES: the image, G(E(x)), the projection; unless
    not `preview`: a batch past them leaves it as it is) and STEM.npz (every image)."""
    distances = {"lpips": result.lpips, "mse": result.mse,
                 "encoder_lpips": result.encoder_lpips, "encoder_mse": result.encoder_mse}
    saved = projection_file.ProjectionFile(result.styles, originals, distances, noise=result.noise or [], **about)
    with writing(out_dir / f"{stem}.npz"):  # first: the codes are the work, a preview can be drawn again
        projection_file.write(out_dir / f"{stem}.npz", saved)
    if preview:
        shown = min(len(originals), PREVIEW_IMAGES)
        rows = np.stack([originals[:shown], reconstructions[:shown], to_uint8(result.images[:shown]).numpy()], axis=1)
        write_png(zoomed(image_grid(rows.reshape(-1, *rows.shape[2:]), 3), zoom), out_dir / f"{stem}.png")


def run(args) -> int:
    """Project as `args` (the command line, read by alae_tf.project) say; exit code 0, 2 for an error,
    130, 143 or 129 when stopped."""
    try:
        with stop_signals_raise_stopped():
            project_images(args)
    except ALAEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        return interrupted_exit_code(exc)
    return 0
