"""Serving an exported ALAE: the app API on ONNX Runtime (`serving.onnx_model`), a client for
TF-Serving's REST and gRPC APIs (`serving.client`) and an HTTP server that speaks TF-Serving's
REST protocol on ONNX Runtime (`python -m serving.http`). See serving/README.md.

Nothing here imports TensorFlow except the gRPC client: an app that embeds the model needs
numpy and onnxruntime only.
"""
