"""Projection on the session's small MNIST run: refining E(x) lowers LPIPS and MSE on held-out
images, the reported distances are those of the returned latents (recomputed independently), and
python -m alae_tf.project writes what it reports."""

import os
import signal
import socket

import numpy as np
import pytest
from exported_run import real_images
from PIL import Image

from alae_tf import project as project_cli
from alae_tf.editing import project_command
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
    # Independent route: the reported distances are those of the returned styles' images as shown
    # (clipped to [-1, 1], as saved), and the encoder's are those of the plain reconstruction.
    np.testing.assert_allclose(result.images, sampler.decode(result.styles).numpy(), atol=1e-6)
    shown = np.clip(result.images, -1, 1)
    assert np.abs(result.images).max() > 1  # this barely trained G overshoots: clipped and unclipped errors differ
    lpips, mse = distance(shown, targets)
    np.testing.assert_allclose(result.lpips, lpips.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.mse, ((shown - targets.numpy()) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    encoder_lpips, encoder_mse = distance(np.clip(sampler.reconstruct(targets), -1, 1), targets)
    np.testing.assert_allclose(result.encoder_lpips, encoder_lpips.numpy(), atol=1e-5)
    np.testing.assert_allclose(result.encoder_mse, encoder_mse.numpy(), rtol=1e-5)
    zero = project(sampler, targets, steps=0, distance=distance, verbose=False)
    np.testing.assert_array_equal(zero.styles[:, 0], sampler.encode(targets).numpy())
    np.testing.assert_array_equal(zero.lpips, zero.encoder_lpips)


def test_the_cli_writes_the_projection_it_reports(exported, tmp_path, capsys):
    for index, pixels in enumerate(real_images(2)):
        Image.fromarray(pixels[..., 0]).save(tmp_path / f"{index}.png")
    out_dir = tmp_path / "my out"
    code = project_cli.main(["--run", str(exported[0]), "--images", str(tmp_path / "0.png"), str(tmp_path / "1.png"),
                             "--steps", "8", "--learning-rate", "0.02", "--mse-weight", "0.1", "--out-dir", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0
    # the command to paste, its path quoted (a folder with a space split in two)
    assert out.rstrip().endswith(f"--studio --projections '{out_dir}/projection.npz')")
    saved = np.load(out_dir / "projection.npz")
    assert saved["styles"].shape == (2, 1, 50) and set(saved) == {"styles", "images", "encoder_lpips", "encoder_mse", "lpips",
                                                                  "mse", "per_layer", "run", "checkpoint", "training_step"}
    np.testing.assert_array_equal(saved["images"], real_images(2))  # the images as the model saw them
    assert (saved["run"], saved["checkpoint"], saved["training_step"], saved["per_layer"]) == ("run", "ckpt-20", 20, False)
    assert saved["lpips"].mean() < saved["encoder_lpips"].mean()
    encoder_row, = [line.split() for line in out.splitlines() if line.startswith("encoder")]
    assert float(encoder_row[1]) == pytest.approx(saved["encoder_lpips"].mean(), abs=1e-4)
    grid = np.asarray(Image.open(out_dir / "projection.png"))
    assert grid.shape == (2 * 28, 3 * 28)
    np.testing.assert_array_equal(grid[:28, :28], real_images(2)[0, ..., 0])  # image | encoder | projection


def test_a_second_projection_into_a_folder_being_written_is_refused(exported, tmp_path, capsys):
    """Two projections into one folder wrote its files in turn: the one that ended last kept them,
    and neither said so."""
    from alae_tf.run_lock import take_lock

    out_dir = tmp_path / "projections"
    out_dir.mkdir()
    with take_lock(out_dir / project_command.LOCK_FILE, str):  # the other projection, running
        code = project_cli.main(["--run", str(exported[0]), "--images", "held-out:1", "--steps", "1", "--out-dir", str(out_dir)])
        assert (code, capsys.readouterr().err) == (2, f"error: {out_dir} is being written by another projection (pid "
                                                      f"{os.getpid()} on {socket.gethostname()}); wait for it to finish, "
                                                      "or pass another --out-dir\n")
    assert project_cli.main(["--run", str(exported[0]), "--images", "held-out:1", "--steps", "1", "--out-dir", str(out_dir)]) == 0
    assert (out_dir / "projection.npz").is_file()


def test_batches_give_the_projection_of_one_batch_and_each_is_saved_as_it_ends(exported, tmp_path, capsys, monkeypatch):
    """--batch-size 2 over 3 images: the same styles and distances as all 3 at once (each image's
    projection is its own), the files written after each batch, so Ctrl-C keeps the batches done.
    projection.png shows only the first PREVIEW_IMAGES (here 2), written by the batches that hold
    them: every image is in the npz."""
    for index, pixels in enumerate(real_images(3)):
        Image.fromarray(pixels[..., 0]).save(tmp_path / f"{index}.png")
    files = [str(tmp_path / f"{index}.png") for index in range(3)]
    common = ["--run", str(exported[0]), "--images", *files, "--steps", "5", "--learning-rate", "0.05", "--mse-weight", "0.1"]
    assert project_cli.main([*common, "--out-dir", str(tmp_path / "one")]) == 0
    assert np.asarray(Image.open(tmp_path / "one" / "projection.png")).shape == (3 * 28, 3 * 28)
    monkeypatch.setattr(project_command, "PREVIEW_IMAGES", 2)
    pngs, real_write_png = [], project_command.write_png
    monkeypatch.setattr(project_command, "write_png", lambda grid, path: (pngs.append(path), real_write_png(grid, path)))
    assert project_cli.main([*common, "--batch-size", "2", "--out-dir", str(tmp_path / "two")]) == 0
    assert pngs == [tmp_path / "two" / "projection.partial.png"]  # the batch past the preview's 2 images left it alone
    out = capsys.readouterr().out
    assert "3 images, 5 steps, w, 2 at a time" in out and "images 1-2 of 3" in out and "image 3 of 3" in out
    assert "(image | encoder | projection, the first 2 of 3 images)" in out
    one, two = np.load(tmp_path / "one" / "projection.npz"), np.load(tmp_path / "two" / "projection.npz")
    # Up to float rounding, which a batch's convolutions change: LPIPS divides VGG16 features by
    # their norms, near zero on MNIST's black background, so gradients differ by ~0.2% of the
    # largest and Adam's first steps (about lr each, whatever the gradient's size) carry that on.
    np.testing.assert_allclose(two["styles"], one["styles"], atol=0.02)  # 5 steps of lr 0.05 may move 0.25
    for name in ("lpips", "mse", "encoder_lpips", "encoder_mse"):
        np.testing.assert_allclose(two[name], one[name], rtol=0.01, err_msg=name)
    np.testing.assert_array_equal(two["images"], one["images"])
    assert len(two["styles"]) == 3
    preview = np.asarray(Image.open(tmp_path / "two" / "projection.png"))
    assert preview.shape == (2 * 28, 3 * 28)
    np.testing.assert_array_equal(preview[:, :28], np.concatenate(real_images(3)[:2, ..., 0]))  # the images column

    calls = []
    real_project = project_command.project

    def interrupted_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_project(*args, **kwargs)

    monkeypatch.setattr(project_command, "project", interrupted_second_batch)
    assert project_cli.main([*common, "--batch-size", "2", "--out-dir", str(tmp_path / "stopped")]) == 130
    err = capsys.readouterr().err
    assert f"interrupted (Ctrl-C): {tmp_path / 'stopped' / 'projection.partial.npz'} holds the first 2 of 3 images\n" in err
    stopped = np.load(tmp_path / "stopped" / "projection.partial.npz")
    np.testing.assert_allclose(stopped["styles"], two["styles"][:2], rtol=1e-6, atol=1e-6)  # the same batch as before
    assert not list((tmp_path / "stopped").glob("*.partial")) and not (tmp_path / "stopped" / "projection.npz").exists()

    # Interrupted during the first batch of another projection into that folder: nothing written,
    # and the partial file there is named as an earlier projection's (it was not mentioned).
    calls.clear()
    calls.append(1)
    assert project_cli.main([*common, "--batch-size", "2", "--out-dir", str(tmp_path / "stopped")]) == 130
    err = capsys.readouterr().err
    assert (f"interrupted (Ctrl-C) before the first batch was done; nothing written ({tmp_path / 'stopped' / 'projection.partial.npz'} "
            "is from an earlier projection)\n") in err

    # Interrupted again in a folder holding a complete projection: that one is kept (it was
    # overwritten by the 2 images done), and an uninterrupted run then replaces it.
    calls.clear()
    before = (tmp_path / "two" / "projection.npz").read_bytes()
    assert project_cli.main([*common, "--batch-size", "2", "--out-dir", str(tmp_path / "two")]) == 130
    err = capsys.readouterr().err
    assert f"holds the first 2 of 3 images ({tmp_path / 'two' / 'projection.npz'}, from before, is unchanged)" in err
    assert err.startswith(f"note: {tmp_path / 'two' / 'projection.npz'} holds an earlier projection; it is kept until "
                          "this one is complete, then replaced (--out-dir DIR writes elsewhere)\n"), err
    assert (tmp_path / "two" / "projection.npz").read_bytes() == before
    monkeypatch.setattr(project_command, "project", real_project)
    assert project_cli.main([*common, "--batch-size", "3", "--out-dir", str(tmp_path / "two")]) == 0
    assert len(np.load(tmp_path / "two" / "projection.npz")["styles"]) == 3
    assert not list((tmp_path / "two").glob("projection.partial.*"))


def test_the_files_are_written_at_most_once_a_minute_and_at_the_end(exported, tmp_path, monkeypatch, capsys):
    """Every image's file was rewritten after each batch: ~N^2 / (2 x batch) images written in all."""
    (tmp_path / "digits").mkdir()
    for index, pixels in enumerate(real_images(3)):
        Image.fromarray(pixels[..., 0]).save(tmp_path / "digits" / f"{index}.png")
    writes, real_write = [], project_command.write_outputs
    monkeypatch.setattr(project_command, "write_outputs", lambda *args, **kwargs: (writes.append(len(args[4].styles)),
                                                                                real_write(*args, **kwargs)))
    # --steps 0: when the files are written does not depend on the optimisation (and 0 steps trace none)
    common = ["--run", str(exported[0]), "--images", str(tmp_path / "digits"), "--steps", "0", "--batch-size", "1"]
    assert project_cli.main([*common, "--out-dir", str(tmp_path / "a")]) == 0
    assert writes == [3]  # three batches within a minute: the files once, at the end
    writes.clear()
    monkeypatch.setattr(project_command, "SAVE_EVERY_SECONDS", 0)
    assert project_cli.main([*common, "--out-dir", str(tmp_path / "b")]) == 0
    assert writes == [1, 2, 3]
    # SIGTERM while the second batch's preview reconstruction runs: the first batch is saved, as
    # on Ctrl-C (the two lists were one batch apart there, and saving them raised a ValueError
    # instead; SIGTERM ended the command without saving or a word)
    calls, real_to_uint8 = [], project_command.to_uint8

    def interrupted_second(images):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_to_uint8(images)

    monkeypatch.setattr(project_command, "SAVE_EVERY_SECONDS", 3600)
    monkeypatch.setattr(project_command, "to_uint8", interrupted_second)
    assert project_cli.main([*common, "--out-dir", str(tmp_path / "c")]) == 143
    assert len(np.load(tmp_path / "c" / "projection.partial.npz")["styles"]) == 1
    assert f"interrupted (SIGTERM): {tmp_path / 'c' / 'projection.partial.npz'} holds the first 1 of 3" in capsys.readouterr().err


def test_a_stop_while_the_run_loads_or_the_images_are_read_is_told(exported, tmp_path, capsys, monkeypatch):
    """Ctrl-C while the run loaded, or SIGTERM while a folder of images was read, ended the command
    with exit 130 / 143 and not a word (found 2026-12-07); now one line says nothing was written,
    and no output folder is left behind."""
    common = ["--run", str(exported[0]), "--images", "held-out:3", "--steps", "2"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(project_command, "load_run", interrupted)
        assert project_cli.main([*common, "--out-dir", str(tmp_path / "a")]) == 130
    assert capsys.readouterr().err == "\ninterrupted (Ctrl-C) while loading the run; nothing written\n"

    def stopped(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as patch:
        patch.setattr(project_command, "select_images", stopped)
        assert project_cli.main([*common, "--out-dir", str(tmp_path / "b")]) == 143
    assert capsys.readouterr().err == "\ninterrupted (SIGTERM) before the first batch was done; nothing written\n"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_more_images_than_a_projection_file_holds_are_refused_before_any_work(exported, tmp_path, capsys, monkeypatch):
    """A file edit and the studio could not read would be found only after the projection: the MLP's
    1,000 bytes per image (styles 1 x 50 float32, a 28x28 image, four distances) against a limit
    made to hold one."""
    from serving import projection_file

    monkeypatch.setattr(projection_file, "MAX_UNPACKED_BYTES", projection_file.HEADERS_AND_ABOUT_BYTES + 1500)
    monkeypatch.setattr(project_command, "project", lambda *args, **kwargs: pytest.fail("projection started"))
    for index, pixels in enumerate(real_images(2)):
        Image.fromarray(pixels[..., 0]).save(tmp_path / f"{index}.png")
    code = project_cli.main(["--run", str(exported[0]), "--images", str(tmp_path / "0.png"), str(tmp_path / "1.png"),
                             "--out-dir", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "2 images are more than one projection file holds for this model: at most 1, the 0 MiB" in err
    assert "groups of at most 1, each with its own --out-dir" in err
    assert not (tmp_path / "out" / "projection.npz").exists()
    # ... and before any image is decoded: a folder too large for memory was decoded to be counted
    from alae_tf.editing import images as editing_images

    monkeypatch.setattr(editing_images, "model_pixels", lambda *args: pytest.fail("an image was decoded"))
    (tmp_path / "images").mkdir()
    for name in ("0.png", "1.png"):
        (tmp_path / name).rename(tmp_path / "images" / name)
    assert project_cli.main(["--run", str(exported[0]), "--images", str(tmp_path / "images"), "--out-dir",
                             str(tmp_path / "out")]) == 2
    assert "2 images are more than one projection file holds" in capsys.readouterr().err


def test_what_would_fail_after_the_work_is_refused_before_it_and_leftovers_are_named(exported, tmp_path, capsys,
                                                                                     monkeypatch):
    """An audit's cases: --zoom 100000 projected every image, then died in an 85.6 TiB allocation
    (nothing written: the PNG came before the npz); an --out-dir inside the image folder read the
    last run's projection.png as an image; a re-run replaced an interrupted run's partial file
    without a word; a folder named projection.npz at the final rename was a traceback."""
    run = str(exported[0])
    monkeypatch.setattr(project_command, "project", lambda *args, **kwargs: pytest.fail("projection started"))
    code = project_cli.main(["--run", run, "--images", "held-out:4", "--zoom", "100000", "--out-dir", str(tmp_path / "z")])
    err = capsys.readouterr().err
    assert code == 2 and "the figure would hold 12 images of 28x28 zoomed 100000x" in err, err
    assert not (tmp_path / "z").exists()  # the folder it made held only its lock file, and stayed
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(real_images(1)[0, ..., 0]).save(photos / "0.png")
    assert project_cli.main(["--run", run, "--images", str(photos), "--out-dir", str(photos / "projected")]) == 2
    assert capsys.readouterr().err == (f"error: --out-dir {photos / 'projected'} is inside the image folder {photos}: what is "
                                       "written there would be read as an image of the folder next time; pass another "
                                       "--out-dir\n")
    prepared = tmp_path / "prepared"  # said "no image files found"
    prepared.mkdir()
    (prepared / "meta.json").write_text("{}")
    (prepared / "images-r02.tfrecords").write_bytes(b"")
    assert project_cli.main(["--run", run, "--images", str(prepared), "--out-dir", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert f"error: {prepared}: a prepared dataset (python -m alae_tf.data.prepare), not image files;" in err
    monkeypatch.undo()
    code = project_cli.main(["--run", run, "--images", "held-out:1", "--steps", "2", "--learning-rate", "1e30",
                             "--out-dir", str(tmp_path / "diverged")])
    assert code == 2 and "diverged" in capsys.readouterr().err and not (tmp_path / "diverged").exists()

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "projection.partial.npz").write_bytes(b"left by a Ctrl-C")
    (out_dir / "projection.npz").mkdir()  # in the way of the final rename
    code = project_cli.main(["--run", run, "--images", "held-out:1", "--steps", "1", "--noise-weight", "2",
                             "--per-layer", "--out-dir", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1].startswith(f"error: cannot write {out_dir / 'projection.npz'}: "), err
    assert f"note: {out_dir / 'projection.partial.npz'}, from an interrupted projection, is replaced as this one goes" in err
    assert "note: --noise-weight weighs the noise images' penalty, and without --noise none are refined" in err
    assert "note: --per-layer: this generator (mlp) has one style input, so w+ is w" in err
    assert np.load(out_dir / "projection.partial.npz")["styles"].shape == (1, 1, 50)  # the work is kept


def test_images_whose_projection_ended_worse_than_the_encoder_are_named():
    """--learning-rate 30 ended farther from every image than the encoder's code, exit 0 and no word."""
    from alae_tf.editing.projection import Projection

    def projection(lpips, mse):
        count = len(lpips)
        return Projection(styles=np.zeros((count, 1, 2)), noise=None, images=np.zeros((count, 1, 1, 1)),
                          encoder_lpips=np.full(count, 0.5), encoder_mse=np.full(count, 0.2),
                          lpips=np.array(lpips), mse=np.array(mse))

    assert project_command.worse_than_the_encoder(projection([0.4, 0.5], [0.2, 0.2]), 1.0, 0.01) is None  # equal: not worse
    assert project_command.worse_than_the_encoder(projection([0.4, 0.6, 0.45], [0.2, 0.2, 0.3]), 1.0, 30) == (
        "warning: 2 of 3 images ended farther from their image than the encoder's code they started from (LPIPS + MSE; "
        "image 2, 3): --learning-rate 30 is too large for them; run again with a lower one")
    assert project_command.worse_than_the_encoder(projection([0.45], [0.3]), 0.1, 1) is None  # 0.48 < 0.52: MSE weighs 0.1


def test_the_default_batch_shrinks_with_the_image():
    """~2 GB of activations per image at 1024x1024 (official FFHQ model): 16 at once did not fit in 24 GB."""
    assert [project_command.default_batch_size((side, side, 3)) for side in (28, 128, 256, 512, 1024)] == [16, 16, 4, 1, 1]


def test_noise_on_a_generator_from_the_official_code_says_what_it_replaces(tmp_path, capsys):
    """A run converted from the official code (tests/fixtures/official) fills missing noise with
    the official deterministic stand-in, which --noise replaces: a note says so."""
    from pathlib import Path

    from alae_tf import convert

    fixture = Path(__file__).parent / "fixtures" / "official"
    run = tmp_path / "official"
    assert convert.main(["--checkpoint", str(fixture / "model.pth"), "--config", str(fixture / "config.yaml"),
                         "--out", str(run)]) == 0
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "face.png")
    capsys.readouterr()
    assert project_cli.main(["--run", str(run), "--images", str(tmp_path / "face.png"), "--steps", "0", "--noise",
                             "--out-dir", str(tmp_path / "out")]) == 0
    assert "note: without noise images this generator (from the official code) adds the official code's deterministic " \
           "stand-in; --noise replaces it" in capsys.readouterr().err
    # A converted run names no data directory: held-out images and the run's labels say what to use
    # instead, --data-path among them (both commands have it since 2026-12-06).
    from alae_tf import edit

    for module, argv in ((project_cli, ["--run", str(run), "--images", "held-out:2", "--out-dir", str(tmp_path / "o")]),
                         (edit, ["directions", "--run", str(run), "--out", str(tmp_path / "d.json")])):
        assert module.main(argv) == 2
        err = capsys.readouterr().err
        assert "the run's config names no directory for its prepared data" in err and "pass --data-path DIR" in err, err
