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

import logging
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
        model, _ = tf2onnx.convert.from_function(endpoints[graph], input_signature=input_signature(signatures[graph]),
                                                 opset=OPSET)
        name_batch_dimension(model)
        onnx.helper.set_model_props(model, {METADATA_KEY: metadata_json, GRAPH_KEY: graph})
        onnx.save(model, str(paths[graph]))
    return paths


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


def large_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes of an ONNX file whose constant weight has >= INT8_MIN_WEIGHTS elements."""
    model = onnx.load(str(path))
    sizes = {tensor.name: int(np.prod(tensor.dims)) for tensor in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and any(sizes.get(name, 0) >= INT8_MIN_WEIGHTS for name in node.input)]


def write_int8_files(float_paths: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """{graph: GRAPH.int8.onnx}: ONNX Runtime's dynamic quantization of each float graph's large
    MatMuls (`large_matmuls`): int8 weights per output channel, activations quantized to uint8 at
    every call; the other ops (convolutions included) stay float32. A graph without a large MatMul
    is refused with an ALAEError (quantize_dynamic would then quantize every node)."""
    paths = {}
    quantizer_log = logging.getLogger()  # quantize_dynamic warns on the root logger about pre-processing
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        for graph, path in float_paths.items():
            nodes = large_matmuls(path)
            if not nodes:
                raise ALAEError(f"--onnx-int8: {path.name} has no MatMul with >= {INT8_MIN_WEIGHTS} weights to "
                                "quantize (a model this small gains nothing from int8); export without --onnx-int8")
            paths[graph] = out_dir / onnx_file(graph, INT8)
            quantize_dynamic(str(path), str(paths[graph]), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_quantize=nodes)
    finally:
        quantizer_log.setLevel(level)
    return paths
