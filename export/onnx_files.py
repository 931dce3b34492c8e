"""ONNX files for the encoder and the generator side, converted with tf2onnx from the same
tf.functions as the SavedModel signatures (so names and semantics match):

    encode.onnx    images float32 [N, H, W, C] -> w float32 [N, latent]
    decode.onnx    w float32 [N, latent]       -> images float32 [N, H, W, C]
    generate.onnx  z float32 [N, latent], truncation_psi float32 [N] -> images float32 [N, H, W, C]

Inputs are fed by name. Reconstruction is decode(encode(x)); the uint8 forms convert in numpy
(serving.contract).
"""

from pathlib import Path

import tf2onnx

from export.savedmodel import input_signature
from serving.layout import ONNX_FILES

OPSET = 17  # tf2onnx 1.17 refuses opset 19 and above


def write_onnx_files(endpoints: dict, signatures: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, filename in ONNX_FILES.items():
        paths[name] = out_dir / filename
        tf2onnx.convert.from_function(
            endpoints[name], input_signature=input_signature(signatures[name]), opset=OPSET, output_path=str(paths[name])
        )
    return paths
