"""The export checks itself before it is published: the reloaded SavedModel against the Keras
nets it came from, and ONNX Runtime against the SavedModel, on random and real inputs at
several batch sizes."""

import numpy as np
import onnxruntime
import tensorflow as tf

from export.savedmodel import Nets
from serving.contract import noise_input_names

BATCH_SIZES = (1, 7, 64)
ONNX_TOLERANCE = 1e-4  # max abs diff, ONNX Runtime vs TensorFlow, relative to max(1, max |output|)
SAVED_MODEL_TOLERANCE = 1e-5  # max abs diff, reloaded SavedModel vs the Keras nets


class VerificationError(Exception):
    """An exported artifact disagrees with its source; the message gives the diff."""


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def signature_cases(run_saved, real_images, latent_dim, seed=0, noise_shapes=()):
    """(case name, signature, inputs) for encode, decode and generate (and their noise forms) at each batch size."""
    rng = np.random.default_rng(seed)
    image_shape = real_images.shape[1:]
    for batch in BATCH_SIZES:
        if noise_shapes:
            noise = {name: rng.standard_normal((batch, *shape)).astype(np.float32)
                     for name, shape in zip(noise_input_names(len(noise_shapes)), noise_shapes)}
            w = rng.standard_normal((batch, latent_dim)).astype(np.float32)
            yield f"decode_noise b{batch}", "decode_noise", {"w": w, **noise}
            psi = rng.uniform(0, 1.5, batch).astype(np.float32)
            yield f"generate_noise b{batch}", "generate_noise", {"z": w, "truncation_psi": psi, **noise}
        real = real_images[:batch]
        yield f"encode random b{batch}", "encode", {"images": rng.uniform(-1, 1, (batch, *image_shape)).astype(np.float32)}
        yield f"encode real b{batch}", "encode", {"images": real}
        yield f"decode random b{batch}", "decode", {"w": rng.standard_normal((batch, latent_dim)).astype(np.float32)}
        yield f"decode real b{batch}", "decode", {"w": run_saved("encode", images=real)["w"]}
        z = rng.standard_normal((batch, latent_dim)).astype(np.float32)
        yield f"generate psi=1 b{batch}", "generate", {"z": z, "truncation_psi": np.ones(batch, np.float32)}
        psi = rng.uniform(0, 1.5, batch).astype(np.float32)
        yield f"generate random psi b{batch}", "generate", {"z": z, "truncation_psi": psi}


def saved_model_runner(loaded):
    def run(signature, **inputs):
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    return run


def check_saved_model(loaded, nets: Nets, real_images, latent_dim) -> float:
    """The reloaded signatures equal the Keras nets (truncation_psi = 1 is no truncation)."""
    run = saved_model_runner(loaded)
    z = np.random.default_rng(1).standard_normal((len(real_images), latent_dim)).astype(np.float32)
    w = nets.encoder(real_images).numpy()
    decoded = nets.decode(w).numpy()
    diffs = {
        "encode": max_abs_diff(run("encode", images=real_images)["w"], w),
        "decode": max_abs_diff(run("decode", w=w)["images"], decoded),
        "reconstruct": max_abs_diff(run("reconstruct", images=real_images)["images"], decoded),
        "generate": max_abs_diff(
            run("generate", z=z, truncation_psi=np.ones(len(z), np.float32))["images"],
            nets.decode(nets.mapping(z)).numpy(),
        ),
    }
    if nets.noise_shapes:
        noise = [np.random.default_rng(2).standard_normal((len(w), *shape)).astype(np.float32) for shape in nets.noise_shapes]
        feeds = dict(zip(noise_input_names(len(noise)), noise))
        diffs["decode_noise"] = max_abs_diff(run("decode_noise", w=w, **feeds)["images"], nets.decode(w, noise).numpy())
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > SAVED_MODEL_TOLERANCE:
        raise VerificationError(
            f"reloaded SavedModel signature {worst} differs from the Keras nets by {diffs[worst]:.3g} "
            f"(tolerance {SAVED_MODEL_TOLERANCE:g})"
        )
    return diffs[worst]


def check_onnx(loaded, onnx_paths, real_images, latent_dim, noise_shapes=()) -> dict[str, float]:
    """Max abs diff per case, ONNX Runtime vs the SavedModel; raises past ONNX_TOLERANCE.

    The tolerance scales with outputs beyond [-1, 1]: a StyleALAE generator early in training,
    fed unit-variance noise, can output |x| ~ 10, where float32 round-off differences between
    the two runtimes' convolution and normalisation kernels reach ~1e-5 relative."""
    run = saved_model_runner(loaded)
    sessions = {
        name: onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in onnx_paths.items()
    }
    diffs = {}
    for case, signature, inputs in signature_cases(run, real_images, latent_dim, noise_shapes=noise_shapes):
        expected = run(signature, **inputs)
        session = sessions[signature]
        output_names = [o.name for o in session.get_outputs()]
        actual = dict(zip(output_names, session.run(output_names, inputs)))
        diffs[case] = max(max_abs_diff(actual[key], expected[key]) for key in expected)
        scale = max(1.0, max(float(np.max(np.abs(expected[key]))) for key in expected))
        if diffs[case] > ONNX_TOLERANCE * scale:
            raise VerificationError(
                f"ONNX Runtime differs from TensorFlow on {case}: max abs diff {diffs[case]:.3g} "
                f"> {ONNX_TOLERANCE:g} x {scale:.3g} ({onnx_paths[signature].name})"
            )
    return diffs
