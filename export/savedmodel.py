"""The SavedModel: one tf.function per `serving.contract` signature, each built the same way
from the signature's declaration and the TF implementation of its operation on a `Sampler`
(`operation_implementations`, the one table of TF code here).

Each function is traced once, and its concrete function is what the SavedModel holds (as an
attribute: `loaded.encode(images=...)`, and as a signature), beside the variables it reads.
Keras' ExportArchive, which this replaces, keeps the tf.functions themselves, and TensorFlow
traces those again while saving (its cache keys include the save context): each function three
times in all, a quarter of a small 128x128 model's export time (64 -> 47 s) and 4% of a
published 256x256 one's (279 -> 266 s; 2-core AVX2 EPYC, 2026-12-07). The Keras nets are not
tracked either: each would add its own serving function, traced from its first call (for a
growing backbone, the lowest level) and failing at the top level."""

import tensorflow as tf

from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.inference import Sampler
from serving.contract import DEFAULT_SIGNATURE, Signature


def operation_implementations(sampler: Sampler, metadata_json: str) -> dict:
    """{operation name: function(float inputs in the declared order, then the noise images) -> {output name: tensor}}."""
    return {
        "encode": lambda images: {"w": sampler.encode(images)},
        "decode": lambda w: {"images": sampler.decode(w)},
        "generate": lambda z, truncation_psi: {"images": sampler.generate(z, truncation_psi)},
        "reconstruct": lambda images: {"images": sampler.reconstruct(images)},
        "decode_styles": lambda styles: {"images": sampler.decode(styles)},
        "decode_noise": lambda w, *noise: {"images": sampler.decode(w, list(noise))},
        "decode_styles_noise": lambda styles, *noise: {"images": sampler.decode(styles, list(noise))},
        "generate_noise": lambda z, truncation_psi, *noise: {"images": sampler.generate(z, truncation_psi, list(noise))},
        # The string becomes a graph constant (a tensor captured from outside would not).
        "metadata": lambda row: {"metadata_json": tf.fill(tf.shape(row), metadata_json)},
    }


def signature_function(signature: Signature, implementation):
    """The body of a signature's tf.function: uint8 inputs to [-1, 1], the operation, uint8 outputs back."""

    def function(*inputs):
        floats = [to_model_range(x) if spec.dtype == "uint8" else x for spec, x in zip(signature.inputs, inputs)]
        outputs = implementation(*floats)
        return {spec.name: to_uint8(outputs[spec.name]) if spec.dtype == "uint8" else outputs[spec.name]
                for spec in signature.outputs}

    return function


def input_signature(signature: Signature) -> list[tf.TensorSpec]:
    """TensorSpecs with a dynamic batch; their names become the SavedModel's and ONNX's input names."""
    return [tf.TensorSpec([None, *spec.shape], tf.as_dtype(spec.dtype), name=spec.name) for spec in signature.inputs]


def traced_functions(implementations: dict, signatures: dict[str, Signature]) -> dict[str, tf.types.experimental.GenericFunction]:
    """A tf.function per signature name, traced (`implementations`: as `operation_implementations` gives them)."""
    functions = {}
    for name, signature in signatures.items():
        function = tf.function(signature_function(signature, implementations[signature.operation.name]),
                               input_signature=input_signature(signature), autograph=False)
        function.get_concrete_function()
        functions[name] = function
    return functions


def write_saved_model(functions: dict, path: str) -> None:
    """The SavedModel of `traced_functions`, with DEFAULT_SIGNATURE's also as serving_default."""
    root = tf.Module()
    concrete = {name: function.get_concrete_function() for name, function in functions.items()}
    variables = {id(v): v for c in concrete.values() for v in c.variables}
    root.variables_read = list(variables.values())
    for name, function in concrete.items():
        setattr(root, name, function)
    tf.saved_model.save(root, path, signatures={**concrete, "serving_default": concrete[DEFAULT_SIGNATURE]})
