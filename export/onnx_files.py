"""ONNX files, converted with tf2onnx from the same tf.functions as the SavedModel signatures
(so names and semantics match): one file per graph of `serving.contract.onnx_graphs`, the
float form of that operation.

    encode.onnx    images float32 [N, H, W, C] -> w float32 [N, latent]
    decode.onnx    w float32 [N, latent]       -> images float32 [N, H, W, C]
    generate.onnx  z float32 [N, latent], truncation_psi float32 [N] -> images float32 [N, H, W, C]

StyleALAE exports add decode_noise.onnx and generate_noise.onnx, taking G's noise images
(noise_00, noise_01, ... float32 [N, h, w, 1]) as further inputs. Inputs are fed by name.
"""

from pathlib import Path

import tf2onnx

from export.savedmodel import input_signature
from serving.contract import onnx_graphs
from serving.layout import onnx_file

OPSET = 17  # tf2onnx 1.17 refuses opset 19 and above


def write_onnx_files(endpoints: dict, signatures: dict, out_dir: Path) -> dict[str, Path]:
    """{graph name: path} of the ONNX files written into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for graph in onnx_graphs(signatures):
        paths[graph] = out_dir / onnx_file(graph)
        tf2onnx.convert.from_function(
            endpoints[graph], input_signature=input_signature(signatures[graph]), opset=OPSET, output_path=str(paths[graph])
        )
    return paths
