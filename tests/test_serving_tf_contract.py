"""The TF-Serving contract of the exported SavedModel, in process (no tensorflow_model_server
here): REST JSON bodies in row and columnar form, and gRPC PredictRequests built with
tensorflow-serving-api, resolved against the SavedModel's own signature defs and run through
it; the gRPC client against an in-process PredictionService on the SavedModel; a real
tensorflow_model_server only where the binary is on PATH."""

import dataclasses
import json
import shutil
import socket
import subprocess
import time
import warnings
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from exported_run import NAME, real_images, run_signature

from serving import contract, layout, rest
from serving.client import GrpcClient, RestClient, ServingError, predict_request


@pytest.fixture(scope="session")
def signature_defs(export_dir):
    """The SignatureDef protos TF-Serving reads from saved_model.pb."""
    proto = saved_model_pb2.SavedModel.FromString((layout.saved_model_dir(export_dir, NAME, 1) / "saved_model.pb").read_bytes())
    return proto.meta_graphs[0].signature_def


def saved_model_signatures(saved) -> dict[str, contract.Signature]:
    """The SavedModel's signatures in serving.contract's terms: inputs and outputs read from the
    model, not the contract (serving_default left out: rest resolves it to reconstruct itself)."""

    def specs(structure):
        return tuple(contract.TensorSpec(k, v.dtype.name, tuple(v.shape[1:])) for k, v in sorted(structure.items()))

    declared = contract.signatures([28, 28, 1], 50)
    return {
        name: dataclasses.replace(declared[name], inputs=specs(fn.structured_input_signature[1]), outputs=specs(fn.structured_outputs))
        for name, fn in saved.signatures.items() if name != "serving_default"
    }


def run_rest(saved, body: str) -> dict:
    """What TF-Serving does with a REST predict body: resolve, run, answer (as JSON)."""
    signatures = saved_model_signatures(saved)
    name, inputs, rows = rest.parse_predict(rest.parse_json(body.encode()), signatures, max_batch=1024)
    outputs = {k: v.numpy() for k, v in saved.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    outputs = {k: np.array([s.decode() for s in v]) if v.dtype == object else v for k, v in outputs.items()}
    return json.loads(json.dumps(rest.predict_response(outputs, rows)))


def test_rest_row_and_columnar_bodies_run_through_the_signatures(saved):
    pixels = real_images(3)
    z = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)
    psi = [1.0, 0.5, 0.0]
    w = run_signature(saved, "encode_uint8", images=pixels)["w"]

    rows = run_rest(saved, json.dumps({"signature_name": "encode_uint8", "instances": pixels.tolist()}))
    np.testing.assert_allclose(rows["predictions"], w, atol=1e-6)
    named_rows = run_rest(saved, json.dumps({"signature_name": "encode_uint8", "instances": [{"images": p} for p in pixels.tolist()]}))
    np.testing.assert_allclose(named_rows["predictions"], w, atol=1e-6)
    columns = run_rest(saved, json.dumps({"signature_name": "encode_uint8", "inputs": {"images": pixels.tolist()}}))
    np.testing.assert_allclose(columns["outputs"], w, atol=1e-6)

    expected = run_signature(saved, "generate_uint8", z=z, truncation_psi=np.array(psi, np.float32))["images"]
    instances = [{"z": z[i].tolist(), "truncation_psi": psi[i]} for i in range(3)]
    rows = run_rest(saved, json.dumps({"signature_name": "generate_uint8", "instances": instances}))
    assert np.array_equal(np.array(rows["predictions"], np.uint8), expected)
    columns = run_rest(saved, json.dumps({"signature_name": "generate_uint8", "inputs": {"z": z.tolist(), "truncation_psi": psi}}))
    assert np.array_equal(np.array(columns["outputs"], np.uint8), expected)

    default = run_rest(saved, json.dumps({"inputs": contract.to_model_range(pixels).tolist()}))
    np.testing.assert_allclose(default["outputs"], run_signature(saved, "reconstruct", images=contract.to_model_range(pixels))["images"], atol=1e-6)
    metadata = run_rest(saved, json.dumps({"signature_name": "metadata", "instances": [0]}))
    assert json.loads(metadata["predictions"][0])["model_name"] == NAME


def test_rest_bodies_that_do_not_fit_the_signature_are_refused(saved):
    for body, message in [
        ({"signature_name": "generate", "instances": [{"z": [0.0] * 50}]}, "missing input(s) truncation_psi"),
        ({"signature_name": "encode", "inputs": [[0.0] * 28]}, "expected shape [batch, 28, 28, 1]"),
        ({"signature_name": "encode_uint8", "inputs": np.full((1, 28, 28, 1), 256).tolist()}, "values must lie in [0, 255]"),
        ({"signature_name": "nope", "instances": [0]}, "unknown signature 'nope'"),
        ({"signature_name": "decode", "inputs": [[1e39] * 50]}, "out-of-float32-range values"),
    ]:
        # A client's numbers print nothing on the server's stderr (the float32 overflow warned).
        with pytest.raises(rest.RequestError, match=None) as error, warnings.catch_warnings():
            warnings.simplefilter("error")
            run_rest(saved, json.dumps(body))
        assert message in str(error.value) and error.value.status == 400


def resolve_grpc_request(request: predict_pb2.PredictRequest, signature_defs) -> tuple[str, dict]:
    """TF-Serving's checks of a PredictRequest against a SignatureDef: names, dtypes, shapes."""
    name = request.model_spec.signature_name or "serving_default"
    if name not in signature_defs:
        raise LookupError(f"signature {name!r} not found")
    signature = signature_defs[name]
    if set(request.inputs) != set(signature.inputs):
        raise LookupError(f"inputs {sorted(request.inputs)} do not match {sorted(signature.inputs)}")
    arrays = {}
    for key, proto in request.inputs.items():
        info = signature.inputs[key]
        if proto.dtype != info.dtype:
            raise TypeError(f"input {key}: dtype {proto.dtype} != {info.dtype}")
        dims = [d.size for d in proto.tensor_shape.dim]
        expected = [d.size for d in info.tensor_shape.dim]
        if len(dims) != len(expected) or any(e not in (-1, d) for d, e in zip(dims, expected)):
            raise ValueError(f"input {key}: shape {dims} does not fit {expected}")
        arrays[key] = tf.make_ndarray(proto)
    return name, arrays


def test_grpc_requests_resolve_against_the_signature_defs(saved, signature_defs):
    pixels = real_images(7)
    request = predict_request(NAME, "reconstruct_uint8", {"images": pixels}, version=1)
    assert request.model_spec.version.value == 1
    name, inputs = resolve_grpc_request(predict_pb2.PredictRequest.FromString(request.SerializeToString()), signature_defs)
    result = run_signature(saved, name, **inputs)["images"]
    assert result.dtype == np.uint8 and result.shape == (7, 28, 28, 1)

    z = np.zeros((2, 50), np.float32)
    # numpy's default float64 goes as the float32 the signatures take (it was sent as DT_DOUBLE, refused)
    _, inputs = resolve_grpc_request(predict_request(NAME, "generate", {"z": z.astype(np.float64), "truncation_psi": [1.0, 0.5]}),
                                     signature_defs)
    assert inputs["z"].dtype == inputs["truncation_psi"].dtype == np.float32
    with pytest.raises(TypeError, match="dtype"):
        resolve_grpc_request(predict_request(NAME, "generate", {"z": z, "truncation_psi": np.ones(2, np.int64)}), signature_defs)
    with pytest.raises(ValueError, match="shape"):
        resolve_grpc_request(predict_request(NAME, "encode", {"images": np.zeros((2, 28, 28), np.float32)}), signature_defs)
    with pytest.raises(LookupError, match="do not match"):
        resolve_grpc_request(predict_request(NAME, "generate", {"z": z}), signature_defs)


class SavedModelPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A stand-in for tensorflow_model_server's PredictionService, on the loaded SavedModel."""

    def __init__(self, saved, signature_defs):
        self.saved, self.signature_defs = saved, signature_defs

    def Predict(self, request, context):
        if request.model_spec.name != NAME:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        try:
            name, inputs = resolve_grpc_request(request, self.signature_defs)
        except (LookupError, TypeError, ValueError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = predict_pb2.PredictResponse()
        for key, value in run_signature(self.saved, name, **inputs).items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = NAME
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signature_map)
        return response


class SavedModelStatusService(model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request, context):
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add(version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        status.status.error_code = 0
        return response


@pytest.fixture
def grpc_server(saved, signature_defs):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(SavedModelPredictionService(saved, signature_defs), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(SavedModelStatusService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_grpc_client_end_to_end(grpc_server, saved):
    client = GrpcClient(grpc_server, NAME, timeout=10)
    try:
        pixels = real_images(5)
        outputs = client.predict("encode_uint8", {"images": pixels})
        np.testing.assert_allclose(outputs["w"], run_signature(saved, "encode_uint8", images=pixels)["w"], atol=1e-6)
        metadata = client.metadata()
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert "generate" in signature_map.signature_def
        assert client.status().model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        with pytest.raises(ServingError, match="INVALID_ARGUMENT: signature 'nope' not found"):
            client.predict("nope", {"images": pixels})
    finally:
        client.close()
    with pytest.raises(ServingError, match="NOT_FOUND"):
        GrpcClient(grpc_server, "other", timeout=10).predict("encode", {"images": contract.to_model_range(pixels)})


def test_clients_report_an_unreachable_server_in_one_line():
    with socket.socket() as sock:  # a free port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServingError, match=f"127.0.0.1:{port}.*cannot connect"):
        RestClient(f"http://127.0.0.1:{port}", NAME, timeout=5).status()
    with pytest.raises(ServingError, match="UNAVAILABLE"):
        GrpcClient(f"127.0.0.1:{port}", NAME, timeout=5).predict("encode", {"images": np.zeros((1, 28, 28, 1), np.float32)})


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not on PATH (not installable from PyPI or Debian; use serving/docker-compose.yml)")
def test_real_tensorflow_model_server(export_dir, saved, tmp_path):
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    command = ["tensorflow_model_server", f"--port={ports[0]}", f"--rest_api_port={ports[1]}",
               f"--model_config_file={export_dir / layout.TF_SERVING / 'models.host.config'}", "--enable_batching",
               f"--batching_parameters_file={export_dir / layout.TF_SERVING / 'batching_parameters.txt'}"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rest_client = RestClient(f"http://127.0.0.1:{ports[1]}", NAME, timeout=10)
        deadline = time.time() + 60
        while True:
            try:
                rest_client.status()
                break
            except ServingError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        pixels = real_images(100)  # above the batching's 64 rows per run: split, as serving.http takes it whole
        expected = run_signature(saved, "encode_uint8", images=pixels)["w"]
        for rows in (False, True):
            np.testing.assert_allclose(rest_client.predict("encode_uint8", {"images": pixels}, rows=rows)["w"], expected, atol=1e-5)
        grpc_client = GrpcClient(f"127.0.0.1:{ports[0]}", NAME, timeout=10)
        np.testing.assert_allclose(grpc_client.predict("encode_uint8", {"images": pixels})["w"], expected, atol=1e-5)
        grpc_client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_docker_compose_mounts_the_export_where_models_config_points(export_dir):
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "serving" / "docker-compose.yml").read_text())
    config_text = (export_dir / layout.TF_SERVING / "models.config").read_text()
    for name in ("tf-serving", "tf-serving-gpu"):
        service = compose["services"][name]
        source, target = service["volumes"][0].rsplit(":", 2)[:2]
        assert source.endswith("/tf_serving") and target == "/models"
        flags = dict(flag.removeprefix("--").split("=", 1) for flag in service["command"] if "=" in flag)
        for flag in ("model_config_file", "batching_parameters_file"):
            assert flags[flag].startswith(target + "/")
            assert (export_dir / layout.TF_SERVING / flags[flag].removeprefix(target + "/")).is_file()
        assert f'base_path: "{target}/{NAME}"' in config_text
        assert (export_dir / layout.TF_SERVING / NAME / "1" / "saved_model.pb").is_file()
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
