"""benchmarks/mode_coverage.py's score, checked on its own image set, whose kinds are known."""

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "mode_coverage.py"


def load_script():
    spec = importlib.util.spec_from_file_location("mode_coverage", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_model_range(files):
    return np.stack([np.asarray(Image.open(f), dtype=np.float32) for f in files]) / 127.5 - 1


def test_the_score_finds_the_kinds_the_images_were_drawn_with(tmp_path):
    mode_coverage = load_script()
    mode_coverage.write_discs(tmp_path)
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == mode_coverage.IMAGES
    assert Image.open(files[0]).size == (mode_coverage.RESOLUTION, mode_coverage.RESOLUTION)
    # Image i is red when i is odd and large when i // 2 is odd: 256 images, 64 of each kind.
    shares = mode_coverage.coverage(as_model_range(files[:256]))
    assert shares == {"no_disc": 0.0, "red": 0.5, "blue": 0.5, "large": 0.5, "small": 0.5,
                      "colour_coverage": 1.0, "size_coverage": 1.0}
    red_small = [f for i, f in enumerate(files[:256]) if i % 2 == 1 and (i // 2) % 2 == 0]
    assert mode_coverage.coverage(as_model_range(red_small)) == {
        "no_disc": 0.0, "red": 1.0, "blue": 0.0, "large": 0.0, "small": 1.0, "colour_coverage": 0.0, "size_coverage": 0.0}


def test_a_blank_image_has_no_disc():
    mode_coverage = load_script()
    shares = mode_coverage.coverage(np.full((4, 32, 32, 3), 0.2, np.float32))
    assert shares["no_disc"] == 1.0 and shares["colour_coverage"] == 0.0 and shares["size_coverage"] == 0.0
