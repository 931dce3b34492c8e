"""Runs written by an older alae_tf load with today's: tests/fixtures/format2 holds two small runs
(MLP and StyleALAE) that alae_tf wrote at commit 77267e7 (2026-12-01, the first code of run
format 2) and the images that code drew from them (tests/fixtures/make_format2_runs.py).

A change that cannot read them any more must raise config.RUN_FORMAT, so that such runs are
refused in one line naming the last commit that reads them (run_dir.read_run_config), and then
replace this test with one of that refusal."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from alae_tf.config import RUN_FORMAT
from alae_tf.inference import Sampler
from alae_tf.run_dir import load_run

FIXTURES = Path(__file__).parent / "fixtures" / "format2"


@pytest.mark.parametrize("name", ["mlp", "style"])
def test_a_run_of_the_first_format_2_code_loads_and_draws_what_that_code_drew(name, tmp_path):
    assert RUN_FORMAT == 2, "the run format changed: test that format 2 runs are refused instead (see this file's docstring)"
    run = shutil.copytree(FIXTURES / name, tmp_path / name)  # loading may write nothing into the repository
    reference = np.load(run / "reference.npz")
    config, model = load_run(run)
    assert model.step == reference["step"] == config.train.steps
    # Both optimizers' states came back, not only the weights (each applies twice a step since its
    # level began: 40 and 72 here).
    assert {key: int(optimizer.iterations) for key, optimizer in model.checkpointed_optimizers().items()} == {
        key: int(reference[f"iterations_{key}"]) for key in ("optimizer_ed", "optimizer_fg")}

    sampler = Sampler.from_model(model)
    noise = [reference[f"noise_{i}"] for i in range(len(sampler.noise_shapes))] or None
    drawn = {"images": sampler.generate(reference["z"], float(reference["psi"]), noise=noise),
             "w": sampler.encode(reference["images"]),
             "decoded": sampler.decode(reference["w"], noise=noise)}
    for key, values in drawn.items():
        # The same function; StyleALAE's resampling convolutions have since summed in another
        # order (stride-2 ones, 2026-12-03): 1.5e-5 of images reaching 6.9, measured.
        np.testing.assert_allclose(values.numpy(), reference[key], rtol=0,
                                   atol=1e-5 * max(1.0, float(np.abs(reference[key]).max())), err_msg=key)
