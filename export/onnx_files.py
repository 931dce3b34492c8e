"""ONNX files, converted with tf2onnx from the same tf.functions as the SavedModel signatures
(so names and semantics match): one file per graph of `serving.contract.onnx_graphs`, the
float form of that operation.

    encode.onnx    images float32 [N, H, W, C] -> w float32 [N, latent]
    decode.onnx    w float32 [N, latent]       -> images float32 [N, H, W, C]
    generate.onnx  z float32 [N, latent], truncation_psi float32 [N] -> images float32 [N, H, W, C]

StyleALAE exports add decode_noise.onnx and generate_noise.onnx, taking G's noise images
(noise_00, noise_01, ... float32 [N, h, w, 1]) as further inputs. Inputs are fed by name; N is
named `batch` in every file's inputs and outputs.
Each file carries the export's metadata.json in its own metadata (`METADATA_KEY`, and the graph's
name under `GRAPH_KEY`), so an app running it on plain ONNX Runtime reads the model's name,
version, image shape and value range from the file (`session.get_modelmeta().custom_metadata_map`).

With `python -m export --onnx-int8`, each graph also gets GRAPH.int8.onnx (same inputs and
outputs): its large MatMul weights stored as int8 (`write_int8_files`).
"""

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import onnx
import tf2onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from alae_tf.errors import ALAEError
from export.savedmodel import input_signature
from serving.contract import onnx_graphs
from serving.layout import INT8, onnx_file

OPSET = 17  # tf2onnx 1.17 refuses opset 19 and above
METADATA_KEY, GRAPH_KEY = "alae_tf.metadata", "alae_tf.graph"
BATCH_DIM = "batch"


def write_onnx_files(endpoints: dict, signatures: dict, out_dir: Path, metadata_json: str) -> dict[str, Path]:
    """{graph name: path} of the ONNX files written into `out_dir`, each carrying `metadata_json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for graph in onnx_graphs(signatures):
        paths[graph] = out_dir / onnx_file(graph)
        with _optimizer_failures_raised():
            model, _ = tf2onnx.convert.from_function(endpoints[graph], input_signature=input_signature(signatures[graph]),
                                                     opset=OPSET)
        name_batch_dimension(model)
        onnx.helper.set_model_props(model, {METADATA_KEY: metadata_json, GRAPH_KEY: graph})
        onnx.save(model, str(paths[graph]))
    return paths


@contextlib.contextmanager
def _optimizer_failures_raised():
    """tf2onnx deep-copies the graph before each of its optimizer passes, so that a pass that fails
    can be skipped with a warning: 13% of exporting a 128x128 StyleALAE (59 -> 52 s), and that way
    its encoder kept 5 nodes more (4 Sub, 1 Reshape). A failing pass now stops the export instead."""
    name = "TF2ONNX_CATCH_ERRORS"  # read by tf2onnx at each conversion (tf2onnx.constants)
    before = os.environ.get(name)
    os.environ[name] = "FALSE"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def name_batch_dimension(model: onnx.ModelProto) -> None:
    """Names the first dimension of every input and output BATCH_DIM (tf2onnx names each its own
    `unk__N`): apps and ONNX Runtime see that they are one size, the batch."""
    for value in [*model.graph.input, *model.graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        if first.HasField("dim_value"):
            raise ALAEError(f"{value.name}: a fixed batch size ({first.dim_value}) in an exported graph")
        first.dim_param = BATCH_DIM


# MatMuls with fewer weights stay float32: the MNIST MLP's F (six 50x50 layers, each followed by
# a pixel norm) carries int8 rounding through every layer (max pixel error 1.74 quantized, 0.12
# kept float) and holds 0.2% of the bytes.
INT8_MIN_WEIGHTS = 4096
# The first large MatMul also stays float32 when it holds less than this share of the large
# MatMuls' weights: G's first layer, which reads the latent (50x1024, 2.7% of an MNIST decoder's).
# Quantized, it put the int8 decoders of the VAE baseline 0.091 (relative RMS) from the float one,
# over the self-check's 0.1 on some runs; kept float, 0.020 (ALAE's 0.015 -> 0.012). E's first
# layer reads pixels and holds 42% of the encoder's: it stays int8.
FIRST_LAYER_FLOAT_SHARE = 0.1


def large_matmuls(path: Path) -> dict[str, int]:
    """{name: weights} of the MatMul nodes of an ONNX file whose constant weight has >= INT8_MIN_WEIGHTS
    elements, in graph order."""
    model = onnx.load(str(path))
    sizes = {tensor.name: int(np.prod(tensor.dims)) for tensor in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        weights = max((sizes.get(name, 0) for name in node.input), default=0)
        if node.op_type == "MatMul" and weights >= INT8_MIN_WEIGHTS:
            found[node.name] = weights
    return found


def matmuls_to_quantize(path: Path) -> list[str]:
    """The large MatMuls, less the first where it holds under FIRST_LAYER_FLOAT_SHARE of their weights."""
    large = large_matmuls(path)
    names = list(large)
    if names and large[names[0]] < FIRST_LAYER_FLOAT_SHARE * sum(large.values()):
        names = names[1:]
    return names


def write_int8_files(float_paths: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """{graph: GRAPH.int8.onnx}: ONNX Runtime's dynamic quantization of each float graph's large
    MatMuls (`matmuls_to_quantize`): int8 weights per output channel, activations quantized to uint8
    at every call; the other ops (convolutions included) stay float32. A graph without a large MatMul
    is refused with an ALAEError (quantize_dynamic would then quantize every node)."""
    paths = {}
    quantizer_log = logging.getLogger()  # quantize_dynamic warns on the root logger about pre-processing
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        for graph, path in float_paths.items():
            nodes = matmuls_to_quantize(path)
            if not nodes:
                raise ALAEError(f"--onnx-int8: {path.name} has no MatMul with >= {INT8_MIN_WEIGHTS} weights to "
                                "quantize (a model this small gains nothing from int8); export without --onnx-int8")
            paths[graph] = out_dir / onnx_file(graph, INT8)
            quantize_dynamic(str(path), str(paths[graph]), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_quantize=nodes)
    finally:
        quantizer_log.setLevel(level)
    return paths
