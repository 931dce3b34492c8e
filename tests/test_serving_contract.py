"""serving.contract: every signature derived from the one declaration of each operation."""

import numpy as np
import pytest

from serving import contract

NOISE_SHAPES = [(4, 4, 1), (4, 4, 1), (8, 8, 1), (8, 8, 1)]


def test_signatures_follow_the_operations():
    plain = contract.signatures([8, 8, 1], 6)
    assert sorted(plain) == sorted(["encode", "encode_uint8", "decode", "decode_uint8", "generate", "generate_uint8",
                                    "reconstruct", "reconstruct_uint8", "decode_styles", "decode_styles_uint8", "metadata"])
    assert [(s.name, s.shape) for s in plain["decode_styles"].inputs] == [("styles", (1, 6))]  # the MLP's one style input
    noisy = contract.signatures([8, 8, 1], 6, NOISE_SHAPES, num_styles=4)
    assert noisy["decode_styles"].inputs[0].shape == (4, 6)
    assert set(noisy) - set(plain) == {"decode_noise", "decode_noise_uint8", "generate_noise", "generate_noise_uint8",
                                       "decode_styles_noise", "decode_styles_noise_uint8"}
    for name, signature in noisy.items():
        operation = signature.operation
        assert name == operation.name + ("_uint8" if signature.uint8 else "")
        assert (operation.name + "_uint8" in noisy) == operation.uint8_twin, name
        assert [s.name for s in signature.inputs[: len(operation.inputs)]] == list(operation.inputs), name
        assert [s.name for s in signature.outputs] == list(operation.outputs), name
        noise = [(s.name, s.shape) for s in signature.inputs[len(operation.inputs):]]
        assert noise == (list(zip(contract.noise_input_names(4), NOISE_SHAPES)) if operation.noise else []), name
        if signature.uint8:  # the float form with uint8 images
            float_form = noisy[operation.name]
            for uint8_spec, float_spec in zip(signature.inputs + signature.outputs, float_form.inputs + float_form.outputs):
                expected_dtype = "uint8" if float_spec.name == contract.IMAGES else float_spec.dtype
                assert (uint8_spec.name, uint8_spec.dtype, uint8_spec.shape) == (float_spec.name, expected_dtype, float_spec.shape)


def test_signatures_from_metadata_and_onnx_graphs():
    metadata = {"image_shape": [8, 8, 1], "latent_dim": 6, "noise_inputs": [list(s) for s in NOISE_SHAPES], "num_styles": 4,
                "layer_ranges": {"all": [0, 4]}}
    assert contract.signatures_from_metadata(metadata) == contract.signatures([8, 8, 1], 6, NOISE_SHAPES, 4)
    # An export from before the per-layer style operations (no layer_ranges) keeps its other signatures.
    older = {key: value for key, value in metadata.items() if key != "layer_ranges"}
    assert set(contract.signatures_from_metadata(older)) == {
        name for name in contract.signatures([8, 8, 1], 6, NOISE_SHAPES, 4) if not name.startswith("decode_styles")}
    assert contract.onnx_graphs(contract.signatures([8, 8, 1], 6)) == ["encode", "decode", "generate", "decode_styles"]
    assert contract.onnx_graphs(contract.signatures_from_metadata(metadata)) == [
        "encode", "decode", "generate", "decode_styles", "decode_noise", "decode_styles_noise", "generate_noise"]
    assert contract.signatures([8, 8, 1], 6)["reconstruct"].operation.onnx_graphs == ("encode", "decode")


def test_uint8_conversions_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    images = contract.to_model_range(pixels)
    assert images.dtype == np.float32 and images.min() == -1.0 and images.max() == 1.0
    np.testing.assert_array_equal(contract.to_uint8(images), pixels)
    np.testing.assert_array_equal(contract.to_uint8(np.array([-3.0, 3.0])), [0, 255])  # clipped


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"w": np.zeros((2, 6)), "noise_00": np.zeros((2, 4, 4, 1))}, "missing input.s. noise_01, noise_02, noise_03"),
        ({"w": np.zeros((2, 6)), **{n: np.zeros((3, *s)) for n, s in zip(contract.noise_input_names(4), NOISE_SHAPES)}},
         "inputs differ in batch size"),
        ({"w": np.zeros((2, 6)), **{n: np.zeros((2, 8, 8, 1)) for n in contract.noise_input_names(4)}},
         r"noise_00 must have shape \[batch, 4, 4, 1\]"),
        ({"w": np.full((2, 6), np.nan), **{n: np.zeros((2, *s)) for n, s in zip(contract.noise_input_names(4), NOISE_SHAPES)}},
         "w contains NaN"),
    ],
)
def test_check_inputs_names_the_problem(inputs, message):
    signature = contract.signatures([8, 8, 1], 6, NOISE_SHAPES)["decode_noise"]
    with pytest.raises(ValueError, match=message):
        contract.check_inputs(signature, inputs)


@pytest.mark.parametrize("value, message", [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"),
                                            (-np.inf, "NaN or infinite"), (2.5, r"values beyond \+-2 are refused\), got values in \[0, 2.5\]"),
                                            (-2.5, r"values beyond \+-2 are refused\), got values in \[-2.5, 0\]")])
def test_float_images_out_of_range_or_not_finite_are_refused(value, message):
    images = np.zeros((2, 4, 4, 1), np.float32)
    images[1, 2, 3, 0] = value
    with pytest.raises(ValueError, match=message):
        contract.check_images(images, (4, 4, 1))
    images[1, 2, 3, 0] = 1.5  # inside the tolerance (FLOAT_IMAGE_LIMIT)
    assert contract.check_images(images, (4, 4, 1)).dtype == np.float32
