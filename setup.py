from pathlib import Path

from setuptools import find_packages, setup


def requirements():
    lines = Path(__file__).with_name("requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="alae_tf",
    version="0.1.0",
    description="Adversarial Latent Autoencoders (ALAE, StyleALAE) in TensorFlow/Keras, from training to serving",
    long_description=Path(__file__).with_name("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["alae_tf", "alae_tf.*", "export", "export.*", "serving", "serving.*"]),
    package_data={"alae_tf": ["presets/*.yaml"]},
    install_requires=requirements(),
    extras_require={
        "test": ["pytest==9.0.3"],
        # TFDS as a data source (tfds 4.9.10 on Python 3.11 also needs importlib_resources).
        "tfds": ["tensorflow-datasets", "importlib_resources"],
    },
)
