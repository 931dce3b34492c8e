"""The SavedModel: one tf.function per `serving.contract` signature, written with Keras'
ExportArchive (it tracks the nets' variables; holding Keras models as tf.Module attributes
would add their own serving_default and can break saving)."""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from alae_tf.data.pipeline import to_model_range as from_uint8  # training's own uint8 -> [-1, 1]
from serving.contract import DEFAULT_SIGNATURE, Signature


@dataclass(frozen=True)
class Nets:
    mapping: keras.Model  # F: z -> w
    generator: keras.Model  # G: w -> images in [-1, 1]
    encoder: keras.Model  # E: images -> w
    truncation_cutoff: int | None = None  # StyleALAE: truncate only the first N style inputs
    noise_shapes: tuple = ()  # StyleALAE: [H, W, 1] of each noise input of G

    def decode(self, w, noise=None):
        """G(w); a StyleALAE generator repeats w over its style inputs and adds `noise` (None: none)."""
        return self.generator(w) if not self.noise_shapes else self.generator(w, noise=noise)

    def generate(self, z, truncation_psi, w_avg, noise=None):
        w = self.mapping(z)
        if not self.noise_shapes:
            return self.generator(truncate(w, truncation_psi, w_avg))
        styles = tf.repeat(w[:, tf.newaxis, :], self.generator.num_styles, axis=1)
        first = tf.range(self.generator.num_styles)[tf.newaxis, :, tf.newaxis] < self.truncation_cutoff
        styles = tf.where(first, truncate(styles, truncation_psi, w_avg), styles)
        return self.generator(styles, noise=noise)


def to_uint8(images):
    # tf.round rounds half to even, like numpy's rint in serving.contract.to_uint8.
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def truncate(w, truncation_psi, w_avg):
    """w_avg + psi * (w - w_avg), one psi per row, for w of any rank (per-layer w later)."""
    psi = tf.reshape(truncation_psi, [-1] + [1] * (len(w.shape) - 1))
    return w_avg + psi * (w - w_avg)


def endpoint_functions(nets: Nets, w_avg: np.ndarray, metadata_json: str) -> dict:
    """Python functions named and shaped as the contract's signatures (argument names = input names)."""
    encoder = nets.encoder

    def generate_float(z, truncation_psi, noise=None):
        # A constant built inside the trace becomes a graph constant; one captured from outside
        # would become an extra input of the ONNX graph.
        return nets.generate(z, truncation_psi, tf.constant(w_avg, tf.float32), noise)

    def encode(images):
        return {"w": encoder(images)}

    def encode_uint8(images):
        return {"w": encoder(from_uint8(images))}

    def decode(w):
        return {"images": nets.decode(w)}

    def decode_uint8(w):
        return {"images": to_uint8(nets.decode(w))}

    def generate(z, truncation_psi):
        return {"images": generate_float(z, truncation_psi)}

    def generate_uint8(z, truncation_psi):
        return {"images": to_uint8(generate_float(z, truncation_psi))}

    def reconstruct(images):
        return {"images": nets.decode(encoder(images))}

    def reconstruct_uint8(images):
        return {"images": to_uint8(nets.decode(encoder(from_uint8(images))))}

    def metadata(row):
        return {"metadata_json": tf.fill(tf.shape(row), tf.constant(metadata_json))}

    def decode_noise(w, *noise):
        return {"images": nets.decode(w, list(noise))}

    def decode_noise_uint8(w, *noise):
        return {"images": to_uint8(nets.decode(w, list(noise)))}

    def generate_noise(z, truncation_psi, *noise):
        return {"images": generate_float(z, truncation_psi, list(noise))}

    def generate_noise_uint8(z, truncation_psi, *noise):
        return {"images": to_uint8(generate_float(z, truncation_psi, list(noise)))}

    return {
        "decode_noise": decode_noise, "decode_noise_uint8": decode_noise_uint8,
        "generate_noise": generate_noise, "generate_noise_uint8": generate_noise_uint8,
        "encode": encode, "encode_uint8": encode_uint8, "decode": decode, "decode_uint8": decode_uint8,
        "generate": generate, "generate_uint8": generate_uint8, "reconstruct": reconstruct,
        "reconstruct_uint8": reconstruct_uint8, "metadata": metadata,
    }


def input_signature(signature: Signature) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, *spec.shape], tf.as_dtype(spec.dtype), name=spec.name) for spec in signature.inputs]


def build_archive(nets: Nets, w_avg, metadata_json, signatures: dict[str, Signature]):
    """The ExportArchive and its tf.functions by signature name."""
    archive = keras.export.ExportArchive()
    for net in (nets.mapping, nets.generator, nets.encoder):
        archive.track(net)
    functions = endpoint_functions(nets, w_avg, metadata_json)
    # ExportArchive aliases the first endpoint registered as serving_default.
    order = [DEFAULT_SIGNATURE] + [name for name in signatures if name != DEFAULT_SIGNATURE]
    endpoints = {}
    for name in order:
        endpoints[name] = archive.add_endpoint(name, functions[name], input_signature(signatures[name]))
    return archive, endpoints
