"""ONNX files for the encoder and the generator side, converted with tf2onnx from the same
tf.functions as the SavedModel signatures (so names and semantics match):

    encode.onnx    images float32 [N, H, W, C] -> w float32 [N, latent]
    decode.onnx    w float32 [N, latent]       -> images float32 [N, H, W, C]
    generate.onnx  z float32 [N, latent], truncation_psi float32 [N] -> images float32 [N, H, W, C]

StyleALAE exports add decode_noise.onnx and generate_noise.onnx, taking G's noise images
(noise_00, noise_01, ... float32 [N, h, w, 1]) as further inputs.

Inputs are fed by name. Reconstruction is decode(encode(x)); the uint8 forms convert in numpy
(serving.contract).
"""

from pathlib import Path

import tf2onnx

from export.savedmodel import input_signature
from serving.layout import NOISE_ONNX_FILES, ONNX_FILES

OPSET = 17  # tf2onnx 1.17 refuses opset 19 and above


def write_onnx_files(endpoints: dict, signatures: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    files = {**ONNX_FILES, **(NOISE_ONNX_FILES if "generate_noise" in signatures else {})}
    for name, filename in files.items():
        paths[name] = out_dir / filename
        tf2onnx.convert.from_function(
            endpoints[name], input_signature=input_signature(signatures[name]), opset=OPSET, output_path=str(paths[name])
        )
    return paths
