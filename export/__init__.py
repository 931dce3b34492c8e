"""Export a trained run for serving: `python -m export --run RUN --out EXPORT`.

Writes a TF-Serving SavedModel and ONNX files that follow `serving.contract`, checks the ONNX
files against TensorFlow, and only then moves them into place. See export/README.md.
"""
