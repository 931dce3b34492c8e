"""A client for TF-Serving's REST and gRPC predict APIs; the REST one also talks to
`python -m serving.http` (same protocol).

    client = RestClient("http://127.0.0.1:8501", "alae_mnist")
    w = client.predict("encode_uint8", {"images": pixels})["w"]

Both `predict`s return {output name: numpy array} in the signature's dtypes. Every failure
(unreachable, timeout, HTTP or gRPC error, inputs JSON cannot carry) raises ServingError with one
line saying what failed; its `status` is the HTTP status when the server answered (429, 408 and 503
are worth a retry), else None. The REST client needs numpy only; the gRPC client needs tensorflow
and tensorflow-serving-api.
"""

import http.client
import json
import socket
import threading
import urllib.parse

import numpy as np

from serving.contract import IMAGES, TF_SERVING_DATA_TYPES

# numpy's type of each TF-Serving DataType name
DTYPES = {name: np.str_ if dtype == "string" else np.dtype(dtype).type for dtype, name in TF_SERVING_DATA_TYPES.items()}
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ServingError(Exception):
    """A request to a model server failed; the message names the server, the call and the cause.
    `status`: the HTTP status of the server's answer, None when there was none."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class RestClient:
    def __init__(self, base_url="http://127.0.0.1:8501", model="alae_mnist", version=None, timeout=30.0):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http://HOST:PORT or https://HOST:PORT, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.version = version
        self.timeout = timeout
        self._signature_defs = None  # from the model's metadata, read once
        # One connection per thread, kept alive between requests (a new TCP connection per call:
        # 1.88 ms per batch-1 encode_uint8 on serving.http, against 1.52 kept; serving/README.md).
        self._kept = threading.local()

    @property
    def model_url(self) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.base_url}/v1/models/{self.model}{version}"

    def status(self) -> dict:
        """GET /v1/models/NAME[/versions/N]: the model_version_status list."""
        return self._request("GET", self.model_url)

    def metadata(self) -> dict:
        """GET .../metadata: the signature defs."""
        return self._request("GET", self.model_url + "/metadata")

    def predict(self, signature, inputs: dict, rows=False) -> dict[str, np.ndarray]:
        """Run a signature; `rows=True` sends `instances` (row form), else `inputs` (columnar)."""
        if not inputs:
            raise ValueError("inputs: no tensors (a dict of input name -> array)")
        signature_def = self.signature_def(signature)
        self._check_image_dtypes(signature, signature_def, inputs)
        if rows:
            if scalars := [key for key, value in inputs.items() if np.ndim(value) == 0]:
                raise ValueError(f"rows=True sends one instance per row, and {', '.join(scalars)} has none (a scalar); "
                                 "give it a batch dimension or use the columnar form (rows=False)")
            sizes = {key: len(value) for key, value in inputs.items()}
            if len(set(sizes.values())) > 1:  # the first input's count of rows was sent, the others' cut or failing
                raise ValueError(f"rows=True sends one instance per row, and the inputs differ in batch size: {sizes}")
            batch = len(next(iter(inputs.values())))
            instances = [{key: np.asarray(value[i]).tolist() for key, value in inputs.items()} for i in range(batch)]
            body = {"signature_name": signature, "instances": instances}
        else:
            body = {"signature_name": signature, "inputs": {key: np.asarray(value).tolist() for key, value in inputs.items()}}
        answer = self.predict_json(body)
        dtypes = {name: DTYPES[spec["dtype"]] for name, spec in signature_def["outputs"].items()}
        if rows:
            predictions = answer["predictions"]
            if len(dtypes) == 1 and not isinstance(predictions[0], dict):
                predictions = [{next(iter(dtypes)): p} for p in predictions]
            values = {key: [row[key] for row in predictions] for key in dtypes}
        else:
            outputs = answer["outputs"]
            values = outputs if isinstance(outputs, dict) else {next(iter(dtypes)): outputs}
        return {key: np.asarray(value, dtype=dtypes[key]) for key, value in values.items()}

    def predict_json(self, body: dict) -> dict:
        """POST .../:predict with a ready JSON body; returns the decoded answer."""
        try:
            data = json.dumps(body, allow_nan=False).encode()
        except ValueError:
            raise ServingError(f"POST {self.model_url}:predict: the inputs hold NaN or infinite values, which JSON "
                               "cannot carry") from None
        return self._request("POST", self.model_url + ":predict", data)

    def _connect(self, parts, method, url):
        connection_class = NoDelayHTTPSConnection if parts.scheme == "https" else NoDelayHTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout)
        try:
            connection.connect()
        except TimeoutError:
            raise ServingError(f"{method} {url}: cannot connect within {self.timeout:g} s") from None
        except OSError as exc:
            raise ServingError(f"{method} {url}: cannot connect ({exc})") from None
        self._kept.connection = connection
        return connection

    def _exchange(self, connection, reused, method, url, path, data):
        """(response, its body) on `connection`; raises _Stale when a `reused` (kept) connection
        fails before any answer, ServingError otherwise."""
        cut_off = None
        try:
            try:
                connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            except (BrokenPipeError, ConnectionResetError) as exc:
                if reused:
                    raise _Stale() from None
                cut_off = exc  # the server answered before the whole body arrived (413, 408) and closed: read why
            response = connection.getresponse()
            payload = response.read()
        except _Stale:
            raise
        except TimeoutError:  # socket.timeout is an alias since Python 3.10
            self.close()
            raise ServingError(f"{method} {url}: no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if reused and cut_off is None:
                raise _Stale() from None
            if cut_off is not None:
                raise ServingError(f"{method} {url}: the server closed the connection while the {len(data or b'') / 1e6:.1f} MB "
                                   f"request was being sent ({cut_off}); too large or too slow for it? (serving.http: "
                                   "--max-body-mb, --max-batch, --read-timeout); send fewer images per request") from None
            raise ServingError(f"{method} {url}: the connection failed ({exc})") from None
        if response.will_close or cut_off is not None:
            self.close()
        return response, payload

    def signature_def(self, signature) -> dict:
        """The signature's inputs and outputs as the server's metadata gives them."""
        if self._signature_defs is None:
            self._signature_defs = self.metadata()["metadata"]["signature_def"]["signature_def"]
        if signature not in self._signature_defs:
            raise ServingError(f"{self.model_url}: no signature {signature!r} (has: {', '.join(sorted(self._signature_defs))})")
        return self._signature_defs[signature]

    def _check_image_dtypes(self, signature, signature_def, inputs) -> None:
        """JSON carries numbers without their dtype: uint8 pixels sent to a float signature were read
        as [-1, 1] values, dark ones (0..2) without any error, and float images in [-1, 1] sent to a
        _uint8 one as pixels 0 and 1 (black). ValueError instead, as the app API."""
        for name, value in inputs.items():
            spec = signature_def["inputs"].get(name)
            if name != IMAGES or spec is None:
                continue
            kind = np.asarray(value).dtype.kind
            if spec["dtype"] == "DT_FLOAT" and kind in "biu":
                twin = f"{signature}_uint8"
                hint = f"send pixels [0, 255] to {twin}, or " if twin in self._signature_defs else ""
                raise ValueError(f"{signature} takes float32 images in [-1, 1], got {np.asarray(value).dtype}: "
                                 f"{hint}send pixels / 127.5 - 1")
            if spec["dtype"] == "DT_UINT8" and kind in "fc":  # as ALAEOnnx (ints are pixels, as JSON sends them)
                twin = signature.removesuffix("_uint8")
                raise ValueError(f"{signature} takes uint8 pixels in [0, 255], got {np.asarray(value).dtype}: send "
                                 f"np.uint8 pixels, or float32 images in [-1, 1] to {twin}")

    def close(self) -> None:
        """Closes this thread's kept-alive connection (the next request opens another)."""
        connection = getattr(self._kept, "connection", None)
        if connection is not None:
            connection.close()
            self._kept.connection = None

    def _request(self, method, url, data=None) -> dict:
        """One request on this thread's kept-alive connection; a kept one the server closed while it
        was idle (its keep-alive timeout) fails before any answer, and the request goes once more
        on a new connection (every request here may run twice: predict is a pure function)."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = getattr(self._kept, "connection", None)
        try:
            response, payload = self._exchange(kept or self._connect(parts, method, url), kept is not None, method, url,
                                               path, data)
        except _Stale:
            self.close()
            response, payload = self._exchange(self._connect(parts, method, url), False, method, url, path, data)
        if response.status >= 400:
            raise ServingError(f"{method} {url}: HTTP {response.status}: {_error_text(payload, response.reason)}",
                               response.status)
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise ServingError(f"{method} {url}: answer is not JSON ({exc})") from None


class _Stale(Exception):
    """A kept-alive connection failed before any answer."""


class NoDelayHTTPConnection(http.client.HTTPConnection):
    """http.client writes the headers and the body separately; with Nagle's algorithm on, the
    body then waits for the server's delayed ACK (~40 ms per request on Linux)."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _error_text(payload: bytes, reason: str) -> str:
    try:
        return json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")[:500] or reason


def predict_request(model, signature, inputs: dict, version=None):
    """A tensorflow_serving.apis PredictRequest for {input name: array}. float64 arrays (numpy's
    default, and Python floats) go as float32, the only float the signatures take, as the REST
    client's JSON numbers do; other dtypes go as they are."""
    import tensorflow as tf  # only the gRPC path needs TensorFlow (for TensorProto)
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for key, value in inputs.items():
        array = np.asarray(value)
        request.inputs[key].CopyFrom(tf.make_tensor_proto(array.astype(np.float32) if array.dtype == np.float64 else array))
    return request


class GrpcClient:
    def __init__(self, target="127.0.0.1:8500", model="alae_mnist", version=None, timeout=30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target, self.model, self.version, self.timeout = target, model, version, timeout
        options = [("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES)]
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(self, signature, inputs: dict) -> dict[str, np.ndarray]:
        import tensorflow as tf

        request = predict_request(self.model, signature, inputs, self.version)
        response = self._call("Predict", self._predictions.Predict, request)
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def status(self):
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        return self._call("GetModelStatus", self._models.GetModelStatus, request)

    def metadata(self):
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        return self._call("GetModelMetadata", self._predictions.GetModelMetadata, request)

    def close(self):
        self._channel.close()

    def _call(self, name, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            raise ServingError(f"gRPC {name} to {self.target} ({self.model}): {exc.code().name}: {exc.details()}") from None
