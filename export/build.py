"""Export one run: build everything in a staging directory, check it, then move it into place
(so a failed export never leaves a half-written version for TF-Serving to pick up)."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from alae_tf.data import open_image_source
from alae_tf.errors import ALAEError
from alae_tf.inference import Sampler
from alae_tf.run_dir import RunDir, load_run
from export import onnx_files, savedmodel, tf_serving_files, verify
from serving import contract, layout

CHECK_IMAGES = max(verify.BATCH_SIZES)


@dataclass(frozen=True)
class ExportRequest:
    run: Path
    out: Path
    version: int | None = None
    use_ema: bool = True
    checkpoint: str | None = None
    name: str | None = None
    overwrite: bool = False


def real_images(config, log=print) -> np.ndarray:
    """The first held-out images of the run's dataset as float32 NHWC in [-1, 1] (random images,
    with a note, when the run's data is no longer where it was)."""
    resolution = config.model.image_shape[0]
    try:
        source = open_image_source(config.data.dataset, config.data.path, resolution,
                                   mnist_source=config.data.source, test_count=config.data.test_count)
        return contract.to_model_range(source.test_images(resolution, CHECK_IMAGES))
    except ALAEError as exc:
        log(f"checking with random images: the run's data is not available ({exc})")
        return np.random.default_rng(0).uniform(-1, 1, (CHECK_IMAGES, *config.model.image_shape)).astype(np.float32)


def choose_version(request: ExportRequest, name: str) -> int:
    existing = set(layout.versions(request.out / layout.TF_SERVING / name)) | set(layout.versions(request.out / layout.ONNX / name))
    version = request.version if request.version is not None else max(existing, default=0) + 1
    if version < 1:
        raise ALAEError(f"--version must be a positive integer, got {version}")
    if version in existing and not request.overwrite:
        raise ALAEError(
            f"{layout.saved_model_dir(request.out, name, version)}: version {version} of {name} already exists; "
            "pass --overwrite to replace it or --version to pick another"
        )
    return version


def export_run(request: ExportRequest, log=print) -> dict:
    """Export the run; returns the metadata written next to the artifacts."""
    if request.checkpoint and not Path(request.checkpoint + ".index").is_file():
        raise ALAEError(f"{request.checkpoint}: no such checkpoint (expected {request.checkpoint}.index)")
    # Resolved once: a run still training may write a newer checkpoint while we export.
    checkpoint = request.checkpoint or tf.train.latest_checkpoint(str(RunDir(request.run).checkpoints))
    config, model = load_run(request.run, checkpoint)
    name = request.name or f"alae_{config.preset}"
    if not name or "/" in name or name.startswith("."):
        raise ALAEError(f"--name {name!r}: a model name must be non-empty, without '/', not starting with '.'")
    version = choose_version(request, name)
    sampler = Sampler.from_model(model, request.use_ema)
    images = real_images(config, log)
    metadata = {
        "model_name": name,
        "version": version,
        "preset": config.preset,
        "backbone": config.model.backbone,
        "training_step": model.step,
        "image_shape": list(sampler.image_shape),
        "latent_dim": sampler.latent_dim,
        "value_range": list(contract.VALUE_RANGE),
        "ema": request.use_ema,
        "truncation": contract.TRUNCATION_FORMULA,
        "truncation_cutoff": sampler.mapping.truncation_cutoff,
        "num_styles": sampler.num_styles,
        "w_avg_beta": config.train.w_avg_beta,
        "noise_inputs": [list(shape) for shape in sampler.noise_shapes],
        "onnx_opset": onnx_files.OPSET,
        "run": str(Path(request.run).resolve()),
        "checkpoint": checkpoint,
    }
    signatures = contract.signatures_from_metadata(metadata)
    staging = request.out / f".staging-{name}-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        saved_dir, onnx_dir = staging / "saved_model", staging / "onnx"
        log(f"building {name} version {version} from {metadata['checkpoint']} (step {metadata['training_step']}, "
            f"{'EMA' if request.use_ema else 'live'} nets where the run keeps EMA copies)")
        implementations = savedmodel.operation_implementations(sampler, json.dumps(metadata))
        archive, endpoints = savedmodel.build_archive(implementations, signatures)
        archive.write_out(str(saved_dir), verbose=False)
        write_json(saved_dir / layout.SAVED_MODEL_METADATA, metadata)
        warmups = tf_serving_files.write_warmup_requests(saved_dir, name, signatures)
        loaded = tf.saved_model.load(str(saved_dir))
        saved_diff = verify.check_saved_model(loaded, implementations, signatures, images)
        log(f"SavedModel: {len(signatures)} signatures + serving_default, {warmups} warm-up requests; "
            f"reloaded vs the Sampler max abs diff {saved_diff:.2g}")
        onnx_paths = onnx_files.write_onnx_files(endpoints, signatures, onnx_dir)
        write_json(onnx_dir / layout.ONNX_METADATA, metadata)
        diffs = verify.check_onnx(loaded, onnx_paths, signatures, images)
        log(f"ONNX (opset {onnx_files.OPSET}) vs TensorFlow on {len(diffs)} cases, batch {verify.BATCH_SIZES}: "
            f"max abs diff {max(diffs.values()):.2g} (tolerance {verify.ONNX_TOLERANCE:g} x max(1, |output|))")
        publish(staging, request.out, name, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    tf_serving_files.write_server_files(request.out)
    log(f"written: {layout.saved_model_dir(request.out, name, version)}, {layout.onnx_dir(request.out, name, version)}, "
        f"{request.out / layout.TF_SERVING}/models.config")
    return metadata


def publish(staging: Path, out: Path, name: str, version: int) -> None:
    targets = {staging / "saved_model": layout.saved_model_dir(out, name, version), staging / "onnx": layout.onnx_dir(out, name, version)}
    for source, target in targets.items():
        shutil.rmtree(target, ignore_errors=True)  # only present with --overwrite
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
