"""The source distribution: pip builds the wheel from it (python -m build, or pip install of the
.tar.gz), so it must hold what setup.py reads and what the packages read at run time. It held no
requirements.txt, and neither could be built or installed."""

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["setup.py", "MANIFEST.in", "requirements.txt", "README.md", "alae_tf", "export", "serving"]
# Files the packages open at run time (config.py's presets, the FD classifier, the studio page).
RUNTIME_FILES = ["alae_tf/presets/mnist.yaml", "alae_tf/metrics/assets/mnist_classifier.weights.h5",
                 "serving/studio/index.html", "serving/studio/studio.js", "serving/studio/studio.css"]


def normalized(requirement: str) -> tuple:
    """A requirement as (name, its specifiers as a set): setuptools writes >=1.26,<3 as <3,>=1.26."""
    parsed = Requirement(requirement)
    return parsed.name.lower(), sorted(str(spec) for spec in parsed.specifier)


def setup_py(directory: Path, *command) -> None:
    subprocess.run([sys.executable, "setup.py", "-q", *command], cwd=directory, check=True, capture_output=True, text=True)


def test_the_sdist_holds_what_setup_py_and_the_packages_read_and_builds_again(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:  # a copy, so that the build's egg-info and dist stay out of the checkout
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    setup_py(source, "sdist", "-d", str(tmp_path / "dist"))
    (sdist,) = (tmp_path / "dist").glob("alae_tf-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        archive.extractall(tmp_path / "unpacked", filter="data")
    missing = [name for name in ["requirements.txt", "README.md", *RUNTIME_FILES] if name not in names]
    assert not missing, missing

    (unpacked,) = (tmp_path / "unpacked").iterdir()
    setup_py(unpacked, "egg_info")  # what pip runs first on an sdist: it reads requirements.txt and README.md
    egg_info = next(unpacked.glob("*.egg-info"))
    text = (egg_info / "PKG-INFO").read_text()
    required = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    declared = (egg_info / "requires.txt").read_text().split("\n[", 1)[0].split()  # before the extras' sections
    assert sorted(map(normalized, declared)) == sorted(map(normalized, required))
    version = re.search(r'^__version__ = "([^"]+)"', (ROOT / "alae_tf" / "__init__.py").read_text(), re.M)[1]
    assert re.search(r"^Version: (\S+)$", text, re.M)[1] == version
    assert (ROOT / "README.md").read_text().splitlines()[0] in text.split("\n\n", 1)[1]  # the README: the long description
