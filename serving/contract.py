"""The exported interface, declared once (numpy only, no TensorFlow).

Each `Operation` in `OPERATIONS` names its inputs and outputs, says whether it has a `_uint8`
twin, whether it exists only for generators with noise inputs, and which ONNX graphs realise
it. `signatures()` derives every exported signature from these declarations, and the
SavedModel (`export.savedmodel`), the ONNX files (`export.onnx_files`), the ONNX app API
(`serving.onnx_model`) and the HTTP server (`serving.http`) are all built from them and from
the export's metadata (`signatures_from_metadata`). The numpy side of the uint8 <-> [-1, 1]
conversion lives here too.

Images are NHWC. float32 images live in [-1, 1] (the generator's output is linear and may
step slightly outside); uint8 images are pixels in [0, 255]. A `_uint8` twin takes and gives
`images` as uint8 and is otherwise its operation.
"""

import warnings
from dataclasses import dataclass, replace

import numpy as np

VALUE_RANGE = (-1.0, 1.0)
# Floats beyond this are refused as a probable [0, 255] mix-up; the slack above 1 lets the
# (linear, unclipped) output of decode/generate be fed back in.
FLOAT_IMAGE_LIMIT = 2.0
TRUNCATION_FORMULA = (
    "w = w_avg + truncation_psi * (F(z) - w_avg) on G's first truncation_cutoff style inputs; "
    "w_avg = F's running mean of F(z) over training (decay w_avg_beta per step)"
)
# The metadata's "truncation" for a model with truncation_cutoff 0 (the baselines: no F, G decodes z).
NO_TRUNCATION = "none: truncation_cutoff is 0 (no F, or none of its style inputs truncated); truncation_psi changes nothing"
IMAGES = "images"  # the one image tensor name, in and out; a _uint8 twin makes it uint8
STYLES = "styles"  # per-layer styles [num_styles, latent] per row
METADATA = "metadata"  # the operation answered from the export's metadata, not by a graph


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name, or "string"
    shape: tuple[int, ...]  # one example's shape; every tensor has a leading batch dimension


# TF-Serving's DataType names (its metadata API's "dtype") of the dtypes a TensorSpec holds.
TF_SERVING_DATA_TYPES = {"float32": "DT_FLOAT", "uint8": "DT_UINT8", "int32": "DT_INT32", "string": "DT_STRING"}


@dataclass(frozen=True)
class Operation:
    """One exported operation. Its signature takes `inputs` (then noise_00, noise_01, ... if
    `noise`) and gives `outputs`, all named in `tensor_specs`.

    uint8_twin: also exported as NAME_uint8, with `images` as uint8 pixels in and out.
    noise: exists only for a generator with noise inputs (StyleALAE).
    onnx_graphs: the ONNX files (GRAPH.onnx, the float form of operation GRAPH) that ONNX
    Runtime runs in order, each fed by input name from the signature's inputs and the earlier
    graphs' outputs."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    uint8_twin: bool
    noise: bool
    onnx_graphs: tuple[str, ...]


OPERATIONS = (
    # w = E(images)
    Operation("encode", (IMAGES,), ("w",), uint8_twin=True, noise=False, onnx_graphs=("encode",)),
    # G(w) with no noise (StyleALAE: the deterministic mean image)
    Operation("decode", ("w",), (IMAGES,), uint8_twin=True, noise=False, onnx_graphs=("decode",)),
    # G(truncate(F(z), truncation_psi)), one psi per row (1 = no truncation), no noise
    Operation("generate", ("z", "truncation_psi"), (IMAGES,), uint8_twin=True, noise=False, onnx_graphs=("generate",)),
    # G(E(images))
    Operation("reconstruct", (IMAGES,), (IMAGES,), uint8_twin=True, noise=False, onnx_graphs=("encode", "decode")),
    # G(styles): one w per style input of G, styles [num_styles, latent] per row (edited or mixed
    # latents; every row equal to w gives decode(w)), no noise
    Operation("decode_styles", (STYLES,), (IMAGES,), uint8_twin=True, noise=False, onnx_graphs=("decode_styles",)),
    # decode, decode_styles and generate with G's per-pixel noise images as inputs
    Operation("decode_noise", ("w",), (IMAGES,), uint8_twin=True, noise=True, onnx_graphs=("decode_noise",)),
    Operation("decode_styles_noise", (STYLES,), (IMAGES,), uint8_twin=True, noise=True,
              onnx_graphs=("decode_styles_noise",)),
    Operation("generate_noise", ("z", "truncation_psi"), (IMAGES,), uint8_twin=True, noise=True,
              onnx_graphs=("generate_noise",)),
    # The export's metadata as a JSON string per row; the `row` values are ignored (a TF-Serving
    # REST request needs at least one input).
    Operation(METADATA, ("row",), ("metadata_json",), uint8_twin=False, noise=False, onnx_graphs=()),
)


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operation: Operation
    uint8: bool  # the _uint8 twin of `operation`


DEFAULT_SIGNATURE = "reconstruct"  # what TF-Serving runs for signature_name "serving_default"


def noise_input_names(count: int) -> list[str]:
    return [f"noise_{index:02d}" for index in range(count)]


def tensor_specs(image_shape, latent_dim, num_styles=1) -> dict[str, TensorSpec]:
    """The float form of every tensor an operation names, by name."""
    latent = (int(latent_dim),)
    specs = (
        TensorSpec(IMAGES, "float32", tuple(int(n) for n in image_shape)),
        TensorSpec("w", "float32", latent),
        TensorSpec(STYLES, "float32", (int(num_styles), int(latent_dim))),
        TensorSpec("z", "float32", latent),
        TensorSpec("truncation_psi", "float32", ()),
        TensorSpec("row", "int32", ()),
        TensorSpec("metadata_json", "string", ()),
    )
    return {spec.name: spec for spec in specs}


def signatures(image_shape, latent_dim, noise_shapes=(), num_styles=1) -> dict[str, Signature]:
    """Every exported signature by name (`serving_default` is an alias of DEFAULT_SIGNATURE).

    noise_shapes: [h, w, 1] of each noise input of G (none: no noise operations);
    num_styles: G's style inputs (the MLP: 1; None: no operations on per-layer styles)."""
    tensors = tensor_specs(image_shape, latent_dim, num_styles or 1)
    noise = tuple(TensorSpec(name, "float32", tuple(int(n) for n in shape))
                  for name, shape in zip(noise_input_names(len(noise_shapes)), noise_shapes))
    result = {}
    for operation in OPERATIONS:
        if (operation.noise and not noise) or (STYLES in operation.inputs and num_styles is None):
            continue
        inputs = tuple(tensors[name] for name in operation.inputs) + (noise if operation.noise else ())
        outputs = tuple(tensors[name] for name in operation.outputs)
        result[operation.name] = Signature(operation.name, inputs, outputs, operation, uint8=False)
        if operation.uint8_twin:
            name = operation.name + "_uint8"
            result[name] = Signature(name, _as_uint8(inputs), _as_uint8(outputs), operation, uint8=True)
    return result


def _as_uint8(specs):
    return tuple(replace(spec, dtype="uint8") if spec.name == IMAGES else spec for spec in specs)


def signatures_from_metadata(metadata: dict) -> dict[str, Signature]:
    """The signatures of an export, from its metadata (alae_metadata.json / metadata.json).

    Exports written before the per-layer style operations have no "layer_ranges" in their
    metadata (nor those graphs); they keep their other signatures."""
    num_styles = metadata["num_styles"] if "layer_ranges" in metadata else None
    return signatures(metadata["image_shape"], metadata["latent_dim"], metadata["noise_inputs"], num_styles)


def onnx_graphs(signatures_by_name: dict[str, Signature]) -> list[str]:
    """The ONNX graphs that realise these signatures (one file each), in declaration order."""
    graphs = []
    for signature in signatures_by_name.values():
        graphs += [graph for graph in signature.operation.onnx_graphs if graph not in graphs]
    return graphs


def resolve_signature_name(name: str | None) -> str:
    return DEFAULT_SIGNATURE if name in (None, "", "serving_default") else name


def to_model_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (the formula of training's pipeline)."""
    return images_uint8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8, rounded half to even and clipped (as the SavedModel does)."""
    return np.clip(np.rint((images.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)), 0, 255).astype(np.uint8)


def check_inputs(signature: Signature, inputs: dict) -> dict[str, np.ndarray]:
    """A signature's inputs as arrays of its dtypes and shapes, validated; raises ValueError naming the problem."""
    names = [spec.name for spec in signature.inputs]
    if inputs.keys() != set(names):
        missing, unknown = sorted(set(names) - set(inputs)), sorted(set(inputs) - set(names))
        problems = ([f"missing input(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown input(s) {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"{'; '.join(problems)} for signature {signature.name} (takes {', '.join(names)})")
    arrays = {spec.name: check_tensor(inputs[spec.name], spec) for spec in signature.inputs}
    sizes = {name: len(array) for name, array in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"inputs differ in batch size: {sizes}")
    return arrays


def check_tensor(value, spec: TensorSpec) -> np.ndarray:
    """One input batch of shape [batch, *spec.shape] as spec.dtype; image inputs as `check_images`."""
    if spec.name == IMAGES:
        images = check_images(value, spec.shape)
        if images.dtype != np.dtype(spec.dtype):
            raise ValueError(f"this signature takes {spec.dtype} images, got {images.dtype}")
        return images
    array = as_array(value, spec.name)
    if array.ndim != 1 + len(spec.shape) or tuple(array.shape[1:]) != spec.shape:
        raise ValueError(f"{spec.name} must have shape [batch{''.join(f', {n}' for n in spec.shape)}], got {list(array.shape)}")
    if array.shape[0] == 0:
        raise ValueError(f"{spec.name}: empty batch")
    kinds = "iu" if spec.dtype == "int32" else "fiu"
    if array.dtype.kind not in kinds:
        raise ValueError(f"{spec.name} must be {'integer' if kinds == 'iu' else 'float'}, got dtype {array.dtype}")
    if array.dtype == spec.dtype:  # one reduction and no copy on the common path (a good part of a batch-1 call)
        cast = array
    else:
        with np.errstate(over="ignore"):  # beyond float32's range becomes infinite, refused next (no warning printed)
            cast = array.astype(spec.dtype)
    if not np.isfinite(cast).all():
        if np.isfinite(array).all():
            raise ValueError(f"{spec.name} holds values beyond float32's range (largest |value|: {np.abs(array).max():.3g})")
        raise ValueError(f"{spec.name} contains NaN or infinite values")
    return cast


def as_array(value, name) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError:  # numpy's "inhomogeneous shape" error
        raise ValueError(f"{name}: ragged nested lists (rows of different lengths)") from None


def check_images(images, image_shape) -> np.ndarray:
    """A batch of images as uint8 [0, 255] or float32 [-1, 1], validated; raises ValueError."""
    images = as_array(images, "images")
    expected = (None, *image_shape)
    if images.ndim != len(expected) or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images must have shape [batch, {', '.join(map(str, image_shape))}] (NHWC), got {list(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images: empty batch")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise ValueError(f"images must be uint8 [0, 255] or float [-1, 1], got dtype {images.dtype}")
    # Two reductions without temporaries for the common case (NaN propagates and fails them too);
    # this check is a good part of a batch-1 call's time.
    low, high = images.min(), images.max()
    if not (-FLOAT_IMAGE_LIMIT <= low and high <= FLOAT_IMAGE_LIMIT):
        check_finite(images, "images")
        raise ValueError(
            f"float images are [-1, 1] (values beyond +-{FLOAT_IMAGE_LIMIT:g} are refused), got values in "
            f"[{low:g}, {high:g}]; send [0, 255] pixels as uint8 (over REST or gRPC: the _uint8 signature, "
            "e.g. encode_uint8), and clip a generated image (or ask for it as uint8) before encoding it"
        )
    if 0 <= low and high <= 1 and low < high:  # a photo in [-1, 1] is rarely brighter than mid-grey everywhere
        # One text, so Python's default filter shows it once per process (a server's log included).
        warnings.warn("float images are read as [-1, 1] (pixel / 127.5 - 1), and these all lie in [0, 1]: if they "
                      "are pixel / 255, send the uint8 pixels or 2 * x - 1 instead", UnitRangeWarning)
    return images.astype(np.float32, copy=False)


class UnitRangeWarning(UserWarning):
    """Float images that all lie in [0, 1]: most likely pixel / 255, not the [-1, 1] the models read."""


def is_integer(value) -> bool:
    """An int or a numpy integer, not a bool (which Python counts as an int: True would pass as 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real_number(value) -> bool:
    """An int or a float, Python's or numpy's, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


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
        elif spec.name == IMAGES:
            inputs[spec.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        else:
            inputs[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return inputs
