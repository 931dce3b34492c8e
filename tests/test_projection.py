"""Projection on the session's small MNIST run: refining E(x) lowers LPIPS and MSE on held-out
images, the reported distances are those of the returned latents (recomputed independently), and
python -m alae_tf.project writes what it reports."""

import numpy as np
import pytest
from exported_run import real_images
from PIL import Image

from alae_tf import project as project_cli
from alae_tf.data.batches import to_model_range
from alae_tf.editing.projection import ProjectionDistance, project
from alae_tf.inference import Sampler
from alae_tf.metrics.lpips import LPIPS
from alae_tf.run_dir import load_run


@pytest.fixture(scope="module")
def sampler(exported):
    return Sampler.from_model(load_run(exported[0])[1])


@pytest.fixture(scope="module")
def distance():
    return ProjectionDistance(LPIPS())


def test_projection_lowers_lpips_and_mse_against_the_encoder_alone(sampler, distance):
    targets = to_model_range(real_images(3))
    # This 20-step model's reconstructions are far off (MSE ~2 on [-1, 1] pixels): a small MSE weight
    # keeps LPIPS from being drowned out (a trained run uses the default 1; see the README).
    result = project(sampler, targets, steps=12, learning_rate=0.02, mse_weight=0.1, distance=distance, verbose=False)
    assert result.styles.shape == (3, 1, 50) and result.noise is None  # the MLP: one style input, no noise
    assert result.lpips.mean() < result.encoder_lpips.mean() and result.mse.mean() < result.encoder_mse.mean()
    # Independent route: the reported distances are those of the returned styles, and the encoder's
    # are those of the plain reconstruction.
    np.testing.assert_allclose(result.images, sampler.decode(result.styles).numpy(), atol=1e-6)
    lpips, mse = distance(sampler.decode(result.styles), targets)
    np.testing.assert_allclose(result.lpips, lpips.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.mse, ((result.images - targets.numpy()) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    encoder_lpips, _ = distance(sampler.reconstruct(targets), targets)
    np.testing.assert_allclose(result.encoder_lpips, encoder_lpips.numpy(), atol=1e-5)
    zero = project(sampler, targets, steps=0, distance=distance, verbose=False)
    np.testing.assert_array_equal(zero.styles[:, 0], sampler.encode(targets).numpy())
    np.testing.assert_array_equal(zero.lpips, zero.encoder_lpips)


def test_the_cli_writes_the_projection_it_reports(exported, tmp_path, capsys):
    for index, pixels in enumerate(real_images(2)):
        Image.fromarray(pixels[..., 0]).save(tmp_path / f"{index}.png")
    code = project_cli.main(["--run", str(exported[0]), "--images", str(tmp_path / "0.png"), str(tmp_path / "1.png"),
                             "--steps", "8", "--learning-rate", "0.02", "--mse-weight", "0.1", "--out-dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    saved = np.load(tmp_path / "out" / "projection.npz")
    assert saved["styles"].shape == (2, 1, 50) and set(saved) == {"styles", "images", "encoder_lpips", "encoder_mse", "lpips",
                                                                  "mse", "per_layer", "run", "checkpoint", "training_step"}
    np.testing.assert_array_equal(saved["images"], real_images(2))  # the images as the model saw them
    assert (saved["run"], saved["checkpoint"], saved["training_step"], saved["per_layer"]) == ("run", "ckpt-20", 20, False)
    assert saved["lpips"].mean() < saved["encoder_lpips"].mean()
    encoder_row, = [line.split() for line in out.splitlines() if line.startswith("encoder")]
    assert float(encoder_row[1]) == pytest.approx(saved["encoder_lpips"].mean(), abs=1e-4)
    grid = np.asarray(Image.open(tmp_path / "out" / "projection.png"))
    assert grid.shape == (2 * 28, 3 * 28)
    np.testing.assert_array_equal(grid[:28, :28], real_images(2)[0, ..., 0])  # image | encoder | projection
