"""The export checks itself before it is published: the reloaded SavedModel against the
`Sampler` it came from, every ONNX file against the SavedModel, on random and real inputs at
several batch sizes, and each int8 ONNX file against its float one on real inputs."""

import numpy as np
import onnxruntime
import tensorflow as tf

from export.savedmodel import signature_function
from serving.contract import IMAGES, METADATA, STYLES

BATCH_SIZES = (1, 7, 64)  # images up to SMALL_IMAGE_PIXELS; larger ones are checked at LARGE_BATCH_SIZES
LARGE_BATCH_SIZES = (1, 2)  # a 1024x1024 StyleALAE at batch 64 would need tens of GB
SMALL_IMAGE_PIXELS = 64 * 64
# max abs diff, ONNX Runtime vs TensorFlow, relative to max(1, max |output|). Two tiny_style runs
# of 20 steps differing only in float32 rounding of their Adam updates measured 5.4e-4 and 1.1e-3
# at outputs ~10 (random styles and noise into an early StyleALAE): 1e-4 was at the edge. A
# 40-step run of mnist_style32's shape (batch 8) measured 3.9e-3 at outputs ~7 (5.5e-4 relative)
# and failed 2e-4; TensorFlow's own oneDNN and Eigen kernels differ by the same 3.9e-3 on that
# model and input: float32 round-off that an early generator amplifies, not the conversion.
ONNX_TOLERANCE = 2e-3
SAVED_MODEL_TOLERANCE = 1e-5  # max abs diff, reloaded SavedModel vs the Sampler, relative to max(1, max |output|)
VARIANTS = ("random", "real")
# int8 ONNX files (--onnx-int8) vs their float ones on the real-image cases: RMS of the difference
# over the RMS of the float output. MNIST MLP measured 0.05 (encode) and 0.03 (generate); its probe
# and reconstruction error did not move (README, Export and serving).
INT8_TOLERANCE = 0.1


def batch_sizes(image_shape) -> tuple[int, ...]:
    """The batch sizes the export is checked at (several, so a dynamic batch is exercised)."""
    return BATCH_SIZES if image_shape[0] * image_shape[1] <= SMALL_IMAGE_PIXELS else LARGE_BATCH_SIZES


class VerificationError(Exception):
    """An exported artifact disagrees with its source; the message gives the diff."""


def max_abs_diff(a, b) -> float:
    """Infinite when either side holds NaN: a NaN diff would pass every `diff > tolerance` check."""
    diff = np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
    return float(np.nan_to_num(diff, nan=np.inf))


def saved_model_runner(loaded):
    def run(signature, **inputs):
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    return run


def case_inputs(signature, variant, real_images, run_saved, rng) -> dict[str, np.ndarray]:
    """Inputs of a float signature for one batch of `real_images`. "random": uniform images,
    normal latents, styles and noise, psi in [0, 1.5); "real": the real images, w = encode(them)
    (styles: that w on every style input), psi 1."""
    batch, inputs = len(real_images), {}
    for spec in signature.inputs:
        shape = (batch, *spec.shape)
        if spec.name == IMAGES:
            inputs[spec.name] = real_images if variant == "real" else rng.uniform(-1, 1, shape).astype(np.float32)
        elif spec.name == "w" and variant == "real":
            inputs[spec.name] = run_saved("encode", images=real_images)["w"]
        elif spec.name == STYLES and variant == "real":  # each image's w on every style input
            w = run_saved("encode", images=real_images)["w"]
            inputs[spec.name] = np.repeat(w[:, np.newaxis], spec.shape[0], axis=1)
        elif spec.name == "truncation_psi":
            inputs[spec.name] = np.ones(shape, np.float32) if variant == "real" else rng.uniform(0, 1.5, shape).astype(np.float32)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return inputs


def check_saved_model(loaded, implementations, signatures, real_images, seed=0) -> float:
    """Every float signature of the reloaded SavedModel equals its function run eagerly on the
    Sampler (real and random inputs, at the batch of `real_images`); returns the worst diff."""
    run = saved_model_runner(loaded)
    rng = np.random.default_rng(seed)
    diffs = {}
    for name, signature in signatures.items():
        if signature.uint8 or signature.operation.name == METADATA:
            continue
        eager = signature_function(signature, implementations[signature.operation.name])
        for variant in VARIANTS:
            inputs = case_inputs(signature, variant, real_images, run, rng)
            expected = eager(*(tf.constant(inputs[spec.name]) for spec in signature.inputs))
            actual = run(name, **inputs)
            case = f"{name} {variant}"
            diffs[case] = max(max_abs_diff(actual[key], expected[key]) for key in expected)
            scale = max(1.0, max(float(np.max(np.abs(expected[key]))) for key in expected))
            if diffs[case] > SAVED_MODEL_TOLERANCE * scale:
                raise VerificationError(
                    f"reloaded SavedModel signature {case} differs from the Sampler by {diffs[case]:.3g} "
                    f"(tolerance {SAVED_MODEL_TOLERANCE:g} x {scale:.3g})"
                )
    return max(diffs.values())


def check_onnx(loaded, onnx_paths, signatures, real_images, seed=0) -> dict[str, float]:
    """Max abs diff per case, ONNX Runtime vs the SavedModel; raises past ONNX_TOLERANCE.

    The tolerance scales with outputs beyond [-1, 1]: a StyleALAE generator early in training,
    fed unit-variance noise, can output |x| ~ 10, where float32 round-off differences between
    the two runtimes' convolution and normalisation kernels reach ~1e-4 relative."""
    run = saved_model_runner(loaded)
    rng = np.random.default_rng(seed)
    sessions = {
        graph: onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for graph, path in onnx_paths.items()
    }
    diffs = {}
    for batch in batch_sizes(real_images.shape[1:]):
        for graph, session in sessions.items():
            for variant in VARIANTS:
                case = f"{graph} {variant} b{batch}"
                inputs = case_inputs(signatures[graph], variant, real_images[:batch], run, rng)
                expected = run(graph, **inputs)
                output_names = [o.name for o in session.get_outputs()]
                actual = dict(zip(output_names, session.run(output_names, inputs)))
                diffs[case] = max(max_abs_diff(actual[key], expected[key]) for key in expected)
                scale = max(1.0, max(float(np.max(np.abs(expected[key]))) for key in expected))
                if diffs[case] > ONNX_TOLERANCE * scale:
                    raise VerificationError(
                        f"ONNX Runtime differs from TensorFlow on {case}: max abs diff {diffs[case]:.3g} "
                        f"> {ONNX_TOLERANCE:g} x {scale:.3g} ({onnx_paths[graph].name})"
                    )
    return diffs


def relative_rms(actual, expected) -> float:
    """RMS(actual - expected) / RMS(expected); infinite for NaN."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    value = np.sqrt(np.mean(np.square(actual - expected)) / max(np.mean(np.square(expected)), 1e-12))
    return float(np.nan_to_num(value, nan=np.inf))


def check_int8(loaded, float_paths, int8_paths, signatures, real_images, seed=0) -> dict[str, float]:
    """Relative RMS difference per graph, int8 file vs float file, on the "real" case (the real
    images, their encodings, normal latents, psi 1); raises past INT8_TOLERANCE."""
    run = saved_model_runner(loaded)
    rng = np.random.default_rng(seed)
    errors = {}
    for graph, int8_path in int8_paths.items():
        inputs = case_inputs(signatures[graph], "real", real_images, run, rng)
        outputs = []
        for path in (float_paths[graph], int8_path):
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            outputs.append(dict(zip(names, session.run(names, inputs))))
        expected, actual = outputs
        errors[graph] = max(relative_rms(actual[key], expected[key]) for key in expected)
        if errors[graph] > INT8_TOLERANCE:
            raise VerificationError(f"{int8_path.name} differs from {float_paths[graph].name} by a relative RMS of "
                                    f"{errors[graph]:.3g} > {INT8_TOLERANCE:g} on real inputs; export without "
                                    "--onnx-int8 for the float files alone")
    return errors
