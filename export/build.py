"""Export one run: build everything in a staging directory, check it, then move it into place
(so a failed export never leaves a half-written version for TF-Serving to pick up).

Publishing moves the ONNX half, then the SavedModel half (the one TF-Serving watches); a failure
between the two moves the first back. An existing version (--overwrite) is exchanged with the new
one in one step where the OS can (Linux renameat2), so its readers never find it missing, and it
is deleted only once both new halves are in place. Without --overwrite a version that appeared
while this export was building (another export into the same directory) is left as it is, and
nothing of this one is published."""

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from alae_tf.atomic_file import make_staging_folder, move_unless_exists, remove_abandoned_staging, swap
from alae_tf.data import open_run_images
from alae_tf.editing.directions import fitted_elsewhere_note, read_run_directions
from alae_tf.editing.ranges import layer_ranges
from alae_tf.errors import ALAEError, out_of_disk_space, written_file
from alae_tf.inference import Sampler
from alae_tf.run_dir import checkpoint_name, load_run, untrained_top_level
from alae_tf.run_layout import RunDir
from export import onnx_files, savedmodel, tf_serving_files, verify
from serving import contract, layout

STAGING_PREFIX = ".staging-"  # OUT/.staging-NAME-VERSION-PID-RANDOM while an export builds
MAX_VERSION = 2**63 - 1  # TF-Serving's version numbers are int64


@dataclass(frozen=True)
class ExportRequest:
    run: Path
    out: Path
    version: int | None = None
    use_ema: bool = True
    checkpoint: str | None = None
    name: str | None = None
    overwrite: bool = False
    onnx_int8: bool = False  # also GRAPH.int8.onnx (export.onnx_files.write_int8_files)
    data_path: str | None = None  # where the run's data is now (default: its config's data.path)


def real_images(config, log=print, data_path=None) -> np.ndarray:
    """The first held-out images of the run's dataset (at `data_path` if given) as float32 NHWC in
    [-1, 1] (random images, with a note, when the run's data is no longer where it was)."""
    count = max(verify.batch_sizes(config.model.image_shape))
    try:
        source = open_run_images(config, path=data_path)
        return contract.to_model_range(source.test_images(config.model.image_shape[0], count))
    except ALAEError as exc:
        log(f"checking with random images: the run's data is not available ({exc})")
        return np.random.default_rng(0).uniform(-1, 1, (count, *config.model.image_shape)).astype(np.float32)


def choose_version(request: ExportRequest, name: str) -> int:
    existing = set(layout.versions(request.out / layout.TF_SERVING / name)) | set(layout.versions(request.out / layout.ONNX / name))
    version = request.version if request.version is not None else max(existing, default=0) + 1
    if not 1 <= version <= MAX_VERSION:
        raise ALAEError(f"--version must be a positive integer up to 2^63 - 1 (TF-Serving reads a version as a signed "
                        f"64-bit integer), got {version}")
    if version in existing and not request.overwrite:
        raise ALAEError(
            f"{layout.saved_model_dir(request.out, name, version)}: version {version} of {name} already exists; "
            "pass --overwrite to replace it or --version to pick another"
        )
    return version


# What a model's clients rely on: a server follows the newest version of a name, and a new version
# that changed these would switch them to another model without a word.
INTERFACE = ("image_shape", "latent_dim", "num_styles", "noise_inputs")


def check_same_interface(request: ExportRequest, metadata: dict) -> None:
    """Refuse a version whose inputs or outputs differ from the newest other version of its name
    (a copied config that kept `preset: folder64` exported a 16x16 model as alae_folder64 beside a
    64x64 one, and the server swapped one for the other)."""
    name, version = metadata["model_name"], metadata["version"]
    others = [other for other in layout.versions(request.out / layout.ONNX / name) if other != version]
    if not others:
        return
    try:
        previous = layout.read_metadata(layout.onnx_dir(request.out, name, max(others)))
    except (FileNotFoundError, ValueError):  # a version being copied in, or damaged: nothing to compare
        return
    changed = [key for key in INTERFACE if key in previous and previous[key] != metadata[key]]
    if not changed:
        return
    suggestion = f"alae_{Path(request.run).resolve().name}"
    suggestion = suggestion if layout.is_model_name(suggestion) and suggestion != name else "NAME"
    raise ALAEError(f"{name}: version {max(others)} in {request.out} is another model ({_interface(previous)}; this "
                    f"run's: {_interface(metadata)}): a server of {name} would switch its clients to it. Export this "
                    f"one under its own name (--name {suggestion}) or into another --out")


def _interface(metadata: dict) -> str:
    shape = "x".join(str(n) for n in metadata.get("image_shape", []))
    return f"{shape} images, latent {metadata.get('latent_dim')}, {metadata.get('num_styles')} style inputs"


def export_run(request: ExportRequest, log=print) -> dict:
    """Export the run; returns the metadata written next to the artifacts."""
    if request.name is not None:
        check_name(request.name)
    config, model = load_run(request.run, request.checkpoint)  # named by its step below: a newer one may come meanwhile
    name = request.name or check_name(f"alae_{config.preset}")
    version = choose_version(request, name)
    sampler = Sampler.from_model(model, request.use_ema)
    ema = request.use_ema and bool(config.train.ema_nets)  # the baselines keep no EMA copies
    images = real_images(config, log, request.data_path)
    directions = read_run_directions(request.run, sampler.latent_dim)  # RUN/directions.json, if fitted
    if directions and (note := fitted_elsewhere_note(directions, RunDir(request.run).directions_file, request.run, model.step)):
        log(note + "; the export carries them all the same")
    metadata = {
        "model_name": name,
        "version": version,
        "preset": config.preset,
        "backbone": config.model.backbone,
        "training_step": model.step,
        "image_shape": list(sampler.image_shape),
        "latent_dim": sampler.latent_dim,
        "value_range": list(contract.VALUE_RANGE),
        "ema": ema,
        "truncation": contract.TRUNCATION_FORMULA if sampler.mapping.truncation_cutoff else contract.NO_TRUNCATION,
        "truncation_cutoff": sampler.mapping.truncation_cutoff,
        # the psi of the run's sample grids (train.truncation_psi): the studio's default
        "truncation_psi": config.train.truncation_psi if sampler.mapping.truncation_cutoff else None,
        "num_styles": sampler.num_styles,
        "w_avg_beta": config.train.w_avg_beta if sampler.mapping.truncation_cutoff else None,
        "noise_inputs": [list(shape) for shape in sampler.noise_shapes],
        "layer_ranges": {range_name: list(span) for range_name, span in layer_ranges(sampler).items()},
        "directions": directions.to_json() if directions else None,
        "onnx_opset": onnx_files.OPSET,
        "onnx_variants": [layout.FLOAT32, layout.INT8] if request.onnx_int8 else [layout.FLOAT32],
        "run": Path(request.run).resolve().name,  # names, not paths: the metadata is served to clients
        "checkpoint": checkpoint_name(model.step),
    }
    check_same_interface(request, metadata)
    signatures = contract.signatures_from_metadata(metadata)
    remove_abandoned_staging(request.out, STAGING_PREFIX)
    staging = request.out / f"{STAGING_PREFIX}{name}-{version}-{os.getpid()}-{secrets.token_hex(4)}"
    created_out = not request.out.exists()
    try:
        staging_lock = make_staging_folder(staging)
    except OSError as exc:  # --out is a file, or a folder this user cannot write
        raise ALAEError(f"cannot write into the export directory {request.out}: {exc.strerror}") from None
    try:
        saved_dir, onnx_dir = staged_halves(staging)
        nets = (f"EMA copies of {', '.join(config.train.ema_nets)}" if ema else
                "live nets" + ("" if not request.use_ema else ": the run keeps no EMA copies"))
        log(f"building {name} version {version} from {metadata['checkpoint']} (step {metadata['training_step']}, {nets})")
        # Minutes for a large model, before the first figure: each stage says it is starting.
        log(f"writing the SavedModel: {len(signatures)} signatures and their warm-up requests")
        implementations = savedmodel.operation_implementations(sampler, json.dumps(metadata))
        endpoints = savedmodel.traced_functions(implementations, signatures)
        savedmodel.write_saved_model(endpoints, str(saved_dir))
        write_json(saved_dir / layout.SAVED_MODEL_METADATA, metadata)
        # batch 1 and 64 (the batching limit); above 64x64 batch 1 only: a 1024x1024 model's
        # records at batch 2 already weigh ~300 MB of the SavedModel
        small = verify.batch_sizes(config.model.image_shape) == verify.BATCH_SIZES
        warmup_batches = (1, 64) if small else (1,)
        warmups = tf_serving_files.write_warmup_requests(saved_dir, name, signatures, warmup_batches)
        log(f"converting {len(contract.onnx_graphs(signatures))} graphs to ONNX (tf2onnx)")
        onnx_paths = onnx_files.write_onnx_files(endpoints, signatures, onnx_dir, json.dumps(metadata))
        write_json(onnx_dir / layout.ONNX_METADATA, metadata)
        # before the checks: a model too small for int8 is refused in seconds rather than after them
        int8_paths = onnx_files.write_int8_files(onnx_paths, onnx_dir) if request.onnx_int8 else None
        log("checking the reloaded SavedModel and the ONNX files against the run's networks")
        loaded = tf.saved_model.load(str(saved_dir))
        saved_diff = verify.check_saved_model(loaded, implementations, signatures, images)
        log(f"SavedModel: {len(signatures)} signatures + serving_default, {warmups} warm-up requests; "
            f"reloaded vs the Sampler max abs diff {saved_diff:.2g}, within {verify.SAVED_MODEL_TOLERANCE:g} x max(1, |output|) in every case")
        try:
            diffs = verify.check_onnx(loaded, onnx_paths, signatures, images)
        except verify.VerificationError as exc:
            if untrained_top_level(config, model.step) is None:
                raise
            raise verify.VerificationError(
                f"{exc}. Networks this early in training (step {model.step}) can amplify float32 round-off past the "
                "check's tolerance, the EMA copies most (they have barely moved from their start): export a later "
                "checkpoint, or the live nets with --no-ema") from None
        log(f"ONNX (opset {onnx_files.OPSET}) vs TensorFlow on {len(diffs)} cases, batch {verify.batch_sizes(images.shape[1:])}: "
            f"max abs diff {max(diffs.values()):.2g}, within {verify.ONNX_TOLERANCE:g} x max(1, |output|) in every case")
        if int8_paths:
            errors = verify.check_int8(loaded, onnx_paths, int8_paths, signatures, images)
            sizes = sum(path.stat().st_size for path in int8_paths.values()) / sum(path.stat().st_size for path in onnx_paths.values())
            log(f"ONNX int8: {len(int8_paths)} files, {sizes:.0%} of the float files' bytes; vs float on real inputs: "
                f"relative RMS difference {', '.join(f'{graph} {error:.3f}' for graph, error in errors.items())} "
                f"(tolerance {verify.INT8_TOLERANCE:g})")
        publish(staging, request.out, name, version, request.overwrite)
    except (OSError, tf.errors.OpError) as exc:
        if not out_of_disk_space(exc):
            raise
        raise ALAEError(f"no space left on the disk, writing {written_file(exc, f'into {request.out}')}; "
                        "nothing was published: free some space and run the command again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        staging_lock.close()
        if created_out and request.out.is_dir() and not any(request.out.iterdir()):
            request.out.rmdir()  # nothing was published: no empty --out left behind
    tf_serving_files.write_server_files(request.out)
    log(f"written: {layout.saved_model_dir(request.out, name, version)}, {layout.onnx_dir(request.out, name, version)}, "
        f"{request.out / layout.TF_SERVING}/models.config")
    return metadata


def check_name(name: str) -> str:
    if not layout.is_model_name(name):
        raise ALAEError(f"model name {name!r}: use 1 to {layout.MAX_NAME_LENGTH} letters, digits, '_', '-' or '.', "
                        "starting with a letter or digit (it goes into URLs and models.config); pass --name")
    return name


def staged_halves(staging: Path) -> tuple[Path, Path]:
    """(SavedModel folder, ONNX folder) of an export being built in `staging`."""
    return staging / "saved_model", staging / "onnx"


def publish(staging: Path, out: Path, name: str, version: int, overwrite: bool) -> None:
    """Move both built halves into place, or neither. With `overwrite` the old version ends up in
    `staging` (deleted with it); without, an existing half is an error."""
    saved_dir, onnx_dir = staged_halves(staging)
    halves = [(onnx_dir, layout.onnx_dir(out, name, version)), (saved_dir, layout.saved_model_dir(out, name, version))]
    moved = []
    try:
        for built, target in halves:
            target.parent.mkdir(parents=True, exist_ok=True)
            if overwrite:
                swap(built, target)
            else:
                move_unless_exists(built, target)
            moved.append((built, target))
    except OSError as exc:  # FileExistsError among them
        for built, target in reversed(moved):
            swap(target, built)
        if isinstance(exc, FileExistsError):
            raise ALAEError(f"{exc.filename}: version {version} of {name} appeared while this export was building "
                            "(another export into the same directory?); nothing was published: pass --overwrite to "
                            "replace it or --version to pick another") from None
        raise ALAEError(f"cannot publish {name} version {version} ({exc}); nothing was published") from None


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
