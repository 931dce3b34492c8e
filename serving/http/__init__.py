"""An HTTP server on ONNX Runtime that speaks TF-Serving's REST API: `python -m serving.http`."""
