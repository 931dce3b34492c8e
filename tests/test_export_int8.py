"""python -m export --onnx-int8: GRAPH.int8.onnx beside each float ONNX file, checked against it,
and served by ALAEOnnx(variant="int8") and serving.http --onnx-variant int8."""

import json

import numpy as np
import onnx
import pytest

import export.__main__ as export_cli
import export.verify
from export.onnx_files import large_matmuls, matmuls_to_quantize
from exported_run import NAME, copied_onnx_files, http_server, real_images
from serving import layout
from serving.client import RestClient
from serving.onnx_model import ALAEOnnx


@pytest.fixture(scope="module")
def int8_export(exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "export"
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out), "--onnx-int8"]) == 0
    return out


def relative_rms(actual, expected):
    return float(np.sqrt(np.mean((actual - expected) ** 2) / np.mean(expected**2)))


def test_int8_files_sit_beside_the_float_ones_with_int8_weights(int8_export):
    directory = layout.onnx_dir(int8_export, NAME, 1)
    metadata = layout.read_metadata(directory)
    assert metadata["onnx_variants"] == ["float32", "int8"]
    for graph in ("encode", "decode", "generate", "decode_styles"):
        float_file, int8_file = directory / f"{graph}.onnx", directory / f"{graph}.int8.onnx"
        model = onnx.load(str(int8_file))
        ops = [node.op_type for node in model.graph.node]
        assert "MatMulInteger" in ops, graph
        # the small MatMuls (F's 50x50 layers; E's 64x50 output layer in this small run) stay float
        quantized, every = matmuls_to_quantize(float_file), all_matmuls(float_file)
        assert 0 < len(quantized) < len(every) and ops.count("MatMul") == len(every) - len(quantized), graph
        assert int8_file.stat().st_size < 0.5 * float_file.stat().st_size, graph  # small run: 0.47 with a float first layer
        props = {prop.key: prop.value for prop in model.metadata_props}  # the float file's, kept by the quantizer
        assert props["alae_tf.graph"] == graph and json.loads(props["alae_tf.metadata"])["model_name"] == NAME, graph
        batch_dims = {value.type.tensor_type.shape.dim[0].dim_param for value in [*model.graph.input, *model.graph.output]}
        assert batch_dims == {"batch"}, graph


def all_matmuls(path):
    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type == "MatMul"]


def test_the_int8_app_answers_close_to_the_float_app(int8_export):
    float_app, int8_app = ALAEOnnx(int8_export), ALAEOnnx(int8_export, variant="int8")
    assert int8_app.variant == "int8" and float_app.variant == "float32"
    images = real_images(64)
    w_float, w_int8 = float_app.encode(images), int8_app.encode(images)
    assert not np.array_equal(w_float, w_int8)  # really other weights
    assert relative_rms(w_int8, w_float) < export.verify.INT8_TOLERANCE
    generated = [app.generate(n=16, seed=3) for app in (float_app, int8_app)]
    assert relative_rms(generated[1], generated[0]) < export.verify.INT8_TOLERANCE
    assert np.abs(generated[1] - generated[0]).max() < 0.5  # pixels in [-1, 1]


def test_a_missing_or_unknown_variant_is_refused(exported, int8_export):
    with pytest.raises(ValueError, match="has no int8 ONNX files .* --onnx-int8"):
        ALAEOnnx(exported[1], variant="int8")
    with pytest.raises(ValueError, match="variant must be one of float32, int8"):
        ALAEOnnx(int8_export, variant="fp8")


def test_a_failed_int8_check_exits_1_and_publishes_nothing(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export.verify, "INT8_TOLERANCE", 1e-9)
    copied_onnx_files(monkeypatch, exported[1])  # this run's float files; quantized as usual
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(exported[0]), "--out", str(out), "--onnx-int8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: export check failed") and "encode.int8.onnx differs from encode.onnx" in err
    assert "export without --onnx-int8 for the float files alone" in err
    assert not layout.versions(out / layout.TF_SERVING / NAME) and not list(out.glob(".staging*"))


def test_the_http_server_serves_the_int8_files(int8_export):
    z = np.random.default_rng(0).standard_normal((2, 50)).astype(np.float32)
    expected = ALAEOnnx(int8_export, variant="int8").generate(z)
    with http_server(int8_export, "--onnx-variant", "int8") as url:
        images = RestClient(url, NAME, timeout=30).predict("generate", {"z": z, "truncation_psi": np.ones(2, np.float32)})["images"]
    np.testing.assert_allclose(images, expected, atol=1e-5)


def test_a_graph_without_a_large_matmul_is_refused_in_one_line(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from alae_tf.errors import ALAEError
    from export.onnx_files import write_int8_files

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "weight")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "weight"], ["y"], name="small")], "small",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], [weight])
    path = tmp_path / "encode.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert large_matmuls(path) == {}
    with pytest.raises(ALAEError, match="encode.onnx has no MatMul with >= 4096 weights"):
        write_int8_files({"encode": path}, tmp_path)
    assert not (tmp_path / "encode.int8.onnx").exists()


def test_the_first_large_matmul_stays_float_where_it_holds_few_of_the_weights(tmp_path):
    """G's first layer reads the latent: quantized, it put a VAE baseline's int8 decoder 0.091-0.108
    (relative RMS) from the float one, over the self-check's 0.1 on some runs (an audit's); E's
    first layer, 42% of the encoder's weights, stays int8."""
    from onnx import TensorProto, helper, numpy_helper

    def chain(path, sizes):
        names = [f"layer{i}" for i in range(len(sizes) - 1)]
        weights = [numpy_helper.from_array(np.zeros((a, b), np.float32), f"w{i}")
                   for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
        nodes = [helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"x{i + 1}"], name=name)
                 for i, name in enumerate(names)]
        inputs = [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [None, sizes[0]])]
        outputs = [helper.make_tensor_value_info(f"x{len(names)}", TensorProto.FLOAT, [None, sizes[-1]])]
        graph = helper.make_graph(nodes, "chain", inputs, outputs, weights)
        onnx.save(helper.make_model(graph), str(path))
        return path

    decoder = chain(tmp_path / "decode.onnx", [50, 1024, 1024, 784])
    assert large_matmuls(decoder) == {"layer0": 51_200, "layer1": 1_048_576, "layer2": 802_816}
    assert matmuls_to_quantize(decoder) == ["layer1", "layer2"]  # 2.7% of the weights: float
    encoder = chain(tmp_path / "encode.onnx", [784, 1024, 1024, 50])
    assert matmuls_to_quantize(encoder) == ["layer0", "layer1", "layer2"]  # 42%: int8


def test_a_model_without_large_matmuls_is_refused_before_the_checks(style_exported, tmp_path, monkeypatch, capsys):
    """tiny_style's graphs are convolutions and small MatMuls: the refusal came after the SavedModel
    and ONNX checks (~20 s); now right after the ONNX files are written, and nothing is published."""
    def checked(*args, **kwargs):
        raise AssertionError("the export was checked before --onnx-int8 was refused")

    monkeypatch.setattr(export.verify, "check_saved_model", checked)
    copied_onnx_files(monkeypatch, style_exported[1])  # the refusal reads the float32 files tf2onnx wrote
    out = tmp_path / "export"
    assert export_cli.main(["--run", str(style_exported[0]), "--out", str(out), "--onnx-int8"]) == 2
    assert "has no MatMul with >= 4096 weights" in capsys.readouterr().err
    assert not out.exists()
