"""The exported interface, in one place: signature names, their inputs and outputs, and the
image conversions. The SavedModel (`export`), the ONNX app API and the HTTP server all follow
it, and the tests check the SavedModel against it. numpy only (no TensorFlow).

Images are NHWC. float32 images live in [-1, 1] (the generator's output is linear and may
step slightly outside); uint8 images are pixels in [0, 255]. Every image signature comes in a
float form and a `_uint8` form (uint8 in, uint8 out).
"""

from dataclasses import dataclass

import numpy as np

VALUE_RANGE = (-1.0, 1.0)
# Floats beyond this are refused as a probable [0, 255] mix-up; the slack above 1 lets the
# (linear, unclipped) output of decode/generate be fed back in.
FLOAT_IMAGE_LIMIT = 2.0
TRUNCATION_FORMULA = "w = w_avg + truncation_psi * (F(z) - w_avg), w_avg = mean of F(z) over w_avg_samples z ~ N(0, I)"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name, or "string"
    shape: tuple[int, ...]  # one example's shape; every tensor has a leading batch dimension


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def noise_input_names(count: int) -> list[str]:
    return [f"noise_{index:02d}" for index in range(count)]


def signatures(image_shape, latent_dim, noise_shapes=()) -> dict[str, Signature]:
    """Every exported signature by name (`serving_default` is an alias of `reconstruct`).

    `noise_shapes` ([H, W, 1] per noise input of a StyleALAE generator) adds `decode_noise` and
    `generate_noise` (+ uint8 forms): the same as decode / generate, which use no noise (the
    deterministic mean image), with the per-pixel noise images given as inputs noise_00, ..."""
    image_shape = tuple(int(n) for n in image_shape)
    latent = (int(latent_dim),)
    images = {dtype: TensorSpec("images", dtype, image_shape) for dtype in ("float32", "uint8")}
    w, z = TensorSpec("w", "float32", latent), TensorSpec("z", "float32", latent)
    psi = TensorSpec("truncation_psi", "float32", ())
    result = {}
    for suffix, dtype in (("", "float32"), ("_uint8", "uint8")):
        image = images[dtype]
        result["encode" + suffix] = Signature("encode" + suffix, (image,), (w,))  # w = E(images)
        result["decode" + suffix] = Signature("decode" + suffix, (w,), (image,))  # G(w)
        # G(w_avg + psi * (F(z) - w_avg)), one psi per row (1 = no truncation)
        result["generate" + suffix] = Signature("generate" + suffix, (z, psi), (image,))
        result["reconstruct" + suffix] = Signature("reconstruct" + suffix, (image,), (image,))  # G(E(images))
    noise = tuple(TensorSpec(name, "float32", tuple(shape)) for name, shape in zip(noise_input_names(len(noise_shapes)), noise_shapes))
    for suffix, dtype in (("", "float32"), ("_uint8", "uint8")) if noise else ():
        image = images[dtype]
        result["decode_noise" + suffix] = Signature("decode_noise" + suffix, (w, *noise), (image,))
        result["generate_noise" + suffix] = Signature("generate_noise" + suffix, (z, psi, *noise), (image,))
    # The export's metadata as a JSON string, one per row; the int32 `row` values are ignored
    # (a TF-Serving REST request needs at least one input).
    result["metadata"] = Signature("metadata", (TensorSpec("row", "int32", ()),), (TensorSpec("metadata_json", "string", ()),))
    return result


DEFAULT_SIGNATURE = "reconstruct"  # what TF-Serving runs for signature_name "serving_default"


def resolve_signature_name(name: str | None) -> str:
    return DEFAULT_SIGNATURE if name in (None, "", "serving_default") else name


def to_model_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (the same formula as training's pipeline)."""
    return images_uint8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8, rounded half to even and clipped (as the SavedModel does)."""
    return np.clip(np.rint((images.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)), 0, 255).astype(np.uint8)


def check_images(images, image_shape) -> np.ndarray:
    """A batch of images as uint8 [0, 255] or float [-1, 1], validated; raises ValueError."""
    images = np.asarray(images)
    expected = (None, *image_shape)
    if images.ndim != len(expected) or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images must have shape [batch, {', '.join(map(str, image_shape))}] (NHWC), got {list(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images: empty batch")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise ValueError(f"images must be uint8 [0, 255] or float [-1, 1], got dtype {images.dtype}")
    check_finite(images, "images")
    if np.abs(images).max() > FLOAT_IMAGE_LIMIT:
        raise ValueError(
            f"float images must lie in [-1, 1], got values in [{images.min():g}, {images.max():g}]; "
            "send [0, 255] pixels as uint8"
        )
    return images.astype(np.float32, copy=False)


def check_latents(latents, latent_dim, name) -> np.ndarray:
    latents = np.asarray(latents)
    if latents.ndim != 2 or latents.shape[1] != latent_dim:
        raise ValueError(f"{name} must have shape [batch, {latent_dim}], got {list(latents.shape)}")
    if latents.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    if latents.dtype.kind not in "fiu" or latents.dtype == np.bool_:
        raise ValueError(f"{name} must be float, got dtype {latents.dtype}")
    latents = latents.astype(np.float32)
    check_finite(latents, name)
    return latents


def check_finite(array: np.ndarray, name: str) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def example_inputs(signature: Signature, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid inputs for a signature (for warm-up requests, checks and benchmarks)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in signature.inputs:
        shape = (batch, *spec.shape)
        if spec.name == "truncation_psi":
            inputs[spec.name] = np.ones(shape, np.float32)
        elif spec.dtype == "uint8":
            inputs[spec.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif spec.dtype == "int32":
            inputs[spec.name] = np.zeros(shape, np.int32)
        elif spec.name == "images":
            inputs[spec.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return inputs
