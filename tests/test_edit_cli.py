"""python -m alae_tf.edit and python -m alae_tf.project on the session's small MNIST run: the
figures they write hold the images they say, directions from every label source, and every bad
input is one `error:` line with exit 2."""

import errno
import os
import signal
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
from exported_run import DIRECTIONS
from PIL import Image

from alae_tf import edit, project
from alae_tf.editing import edit_commands
from alae_tf.data import load_mnist
from alae_tf.data.batches import to_model_range, to_uint8
from alae_tf.editing.images import read_image_files
from alae_tf.editing.subjects import select_subjects
from alae_tf.errors import ALAEError
from alae_tf.inference import Sampler
from alae_tf.run_dir import load_run
from serving.editing import DirectionSet, edit_reach

SIDE = 28


@pytest.fixture(scope="module")
def run(exported):
    return exported[0]


@pytest.fixture(scope="module")
def sampler(run):
    return Sampler.from_model(load_run(run)[1])


@pytest.fixture(scope="module")
def style_loaded(style_exported):
    """(config, model, sampler) of the session's tiny_style run, loaded once (read only)."""
    config, model = load_run(style_exported[0])
    return config, model, Sampler.from_model(model)


@pytest.fixture(scope="module")
def held_out():
    mnist = load_mnist()
    return mnist.test_images[..., None], mnist.test_labels


def run_cli(module, argv, capsys):
    """(exit code, stdout, stderr) of module.main(argv), argparse exits included."""
    try:
        code = module.main([str(a) for a in argv])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cells(path, rows, columns):
    grid = np.asarray(Image.open(path))
    assert grid.shape == (rows * SIDE, columns * SIDE), path
    return grid.reshape(rows, SIDE, columns, SIDE).transpose(0, 2, 1, 3)[..., None]


def test_apply_mix_and_interpolate_write_the_figures(run, sampler, held_out, tmp_path, capsys):
    images, labels = held_out
    threes = images[labels == 3][:3]
    code, out, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", "held-out:3:3",
                                    "--strengths", "0", "-1.5", "2", "--out", tmp_path / "sweep.png"], capsys)
    assert code == 0, err
    sweep = cells(tmp_path / "sweep.png", 3, 4)
    np.testing.assert_array_equal(sweep[:, 0], threes)  # the images themselves
    reconstructions = to_uint8(sampler.reconstruct(to_model_range(threes))).numpy()
    np.testing.assert_allclose(sweep[:, 1].astype(int), reconstructions.astype(int), atol=1)  # strength 0
    assert np.abs(sweep[:, 2].astype(int) - sweep[:, 1]).max() > 0 and "at strengths 0, -1.5, 2" in out
    assert "note:" not in err
    # beyond the direction's reach (where the studio's slider ends, which refuses more): a note
    reach = edit_reach(next(d for d in DirectionSet.read(run / "directions.json").directions if d.name == "3_to_8"))
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", "held-out:1:3",
                                  "--strengths", "0", str(-1.01 * reach), "--out", tmp_path / "far.png"], capsys)
    assert code == 0 and err == (f"note: strengths beyond +-{reach:.3g} (this direction's reach, where the studio's slider "
                                 "ends and the default sweep stops) move codes far from any the encoder gives; expect artefacts\n")
    # the default sweep ends at the reach, rounded to 3 decimals (which may round above it): no note
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", "held-out:1:3",
                                  "--out", tmp_path / "default.png"], capsys)
    assert code == 0 and "note:" not in err

    for index, pixels in enumerate(images[:5]):
        Image.fromarray(pixels[..., 0]).save(tmp_path / f"{index}.png")
    files = [tmp_path / f"{index}.png" for index in range(5)]
    code, out, err = run_cli(edit, ["mix", "--run", run, "--sources", *files[:2], "--destinations", *files[2:5],
                                    "--out-dir", tmp_path], capsys)
    assert code == 0, err
    mixing = cells(tmp_path / "mix_all.png", 4, 3)  # the MLP's one style input: mixing takes "all"
    np.testing.assert_allclose(mixing[1:, 1:].astype(int), np.repeat(mixing[:1, 1:], 3, axis=0), atol=1)  # every row: the sources
    assert err == ("note: this generator (mlp) has one style input: a mix takes all of the source's w, so every mixed "
                   "cell is the source's reconstruction (style mixing needs a StyleALAE run)\n")  # it said nothing

    code, out, err = run_cli(edit, ["interpolate", "--run", run, "--from", *files[:2], "--to", *files[2:4],
                                    "--steps", "5", "--out", tmp_path / "path.png"], capsys)
    assert code == 0, err
    strip = cells(tmp_path / "path.png", 2, 7)
    np.testing.assert_array_equal(strip[:, 0], images[:2])
    np.testing.assert_array_equal(strip[:, 6], images[2:4])


def test_directions_from_every_label_source(run, held_out, tmp_path, capsys):
    out = tmp_path / "directions.json"
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--one-vs-rest", "--method", "mean", "--count", "2000",
                                       "--out", out], capsys)
    assert code == 0, err
    found = DirectionSet.read(out)
    assert found.names == [f"to_{k}" for k in range(10)] and "to_9" in stdout
    assert found.directions[0].info["train_images"] == 2000 and found.directions[0].info["held_out_images"] == 10000
    # Class means weighted by class sizes sum to the overall mean, so the ten one-vs-rest mean
    # differences are linearly dependent: the tenth cannot be made orthogonal to the other nine.
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--one-vs-rest", "--method", "mean", "--count", "2000",
                                       "--orthogonalize", "--out", tmp_path / "orthogonal.json"], capsys)
    assert code == 2 and "lies in the span of the ones before it" in err

    images, labels = held_out
    for digit in (4, 9):
        folder = tmp_path / "folders" / f"d{digit}"
        folder.mkdir(parents=True)
        for index, pixels in enumerate(images[labels == digit][:10]):
            Image.fromarray(pixels[..., 0]).save(folder / f"{index}.png")
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--classes", tmp_path / "folders", "--pairs", "d4:d9",
                                       "--method", "mean", "--out", out], capsys)
    assert code == 0, err
    assert DirectionSet.read(out).names == [f"to_{k}" for k in range(10)] + ["d4_to_d9"]  # merged into the file

    rows = ["file,is_nine"] + [f"folders/d{d}/{i}.png,{int(d == 9)}" for d in (4, 9) for i in range(10)]
    (tmp_path / "attributes.csv").write_text("\n".join(rows) + "\n")
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "attributes.csv",
                                       "--method", "mean", "--out", out], capsys)
    assert code == 0, err
    merged = DirectionSet.read(out)
    # The same images split the same way (positions 2 and 7 of each class held out): the same class means.
    np.testing.assert_allclose(merged.vector("is_nine") @ merged.vector("d4_to_d9"), 1.0, atol=1e-6)
    # CelebA's own list format (the count, the names, rows separated by runs of spaces), the same
    # labels: the same direction; --count takes its first rows (it was ignored with --attributes
    # and --classes).
    listed = ["20", "is_nine "] + [f"folders/d{d}/{i}.png  {1 if d == 9 else -1}" for d in (4, 9) for i in range(10)]
    (tmp_path / "list_attr.txt").write_text("\n".join(listed) + "\n")
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "list_attr.txt",
                                       "--method", "mean", "--out", tmp_path / "celeba.json"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(DirectionSet.read(tmp_path / "celeba.json").vector("is_nine"), merged.vector("is_nine"), atol=1e-6)
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "list_attr.txt", "--count", "15",
                                       "--method", "mean", "--out", tmp_path / "celeba.json"], capsys)
    assert code == 0 and "list_attr.txt: 15 images, 1 attributes" in stdout, err
    assert "15/15 images" in stdout and "\x1b" not in stdout  # one bar for all, plain progress lines, not Keras's redrawn bar
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--classes", tmp_path / "folders", "--count", "5",
                                       "--method", "mean", "--out", tmp_path / "celeba.json"], capsys)
    assert code == 0 and "10 images in 2 classes" in stdout, err
    # An attribute without held-out images on one side is refused before any image is encoded;
    # --only leaves it out.
    rare = ["20", "is_nine rare"] + [f"folders/d{d}/{i}.png {1 if d == 9 else -1} {1 if (d, i) == (4, 0) else -1}"
                                     for d in (4, 9) for i in range(10)]
    (tmp_path / "rare.txt").write_text("\n".join(rare) + "\n")
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "rare.txt", "--out", tmp_path / "rare.json"], capsys)
    assert code == 2 and "encoding" not in stdout and not (tmp_path / "rare.json").exists()
    assert err.strip() == "error: rare: 4 'not rare', 0 'rare' among the held-out images; a direction needs both sides " \
                          "(use more images, or leave it out: --only, --pairs)", err
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "rare.txt", "--only", "is_nine", "is_nine",
                                       "--method", "mean", "--out", tmp_path / "rare.json"], capsys)
    assert code == 0 and DirectionSet.read(tmp_path / "rare.json").names == ["is_nine"], err
    # A column named twice was fitted twice and written into a file that every later command then
    # refused; a name with a '/' made apply write outside RUN/edits: both refused before any encoding.
    for header, message in (("file,is_nine,is_nine", "attribute(s) 'is_nine' named twice in the header"),
                            ("file,../../evil", "'../../evil' cannot name a direction: it becomes a file name"),
                            ("file," + "A" * 252, "cannot name a direction: it becomes a file name (edit apply's RUN/edits/"
                                                  "NAME.png); rename that attribute or class without '/', '\\', control "
                                                  "characters or a lone '.' / '..', in at most 251 bytes")):
        rows = [header] + [f"folders/d{d}/{i}.png" + f",{int(d == 9)}" * (header.count(",")) for d in (4, 9) for i in range(10)]
        (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
        code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "bad.csv",
                                           "--out", tmp_path / "bad.json"], capsys)
        assert code == 2 and message in err and "encoding" not in stdout and not (tmp_path / "bad.json").exists(), err
    # Without its header line the first row was taken for one: that image lost, a direction named "0" fitted.
    (tmp_path / "bad.csv").write_text("\n".join(f"folders/d{d}/{i}.png,{int(d == 9)}" for d in (4, 9) for i in range(10)))
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--attributes", tmp_path / "bad.csv", "--out", tmp_path / "bad.json"],
                                capsys)
    assert code == 2 and "encoding" not in stdout and not (tmp_path / "bad.json").exists(), err
    assert "the attribute names of its header line, 0, are numbers: is the header missing? The first line must name " \
           "the columns, e.g. `image,smiling,young`" in err, err

    np.save(tmp_path / "direction_19.npy", np.linspace(-1, 1, 50))
    code, stdout, err = run_cli(edit, ["directions", "--run", run, "--official", tmp_path / "direction_19.npy", "--out", out], capsys)
    assert code == 0, err
    # Accepted for any run of their latent size without a word; they are FFHQ model_157's.
    assert "note: the official direction files were fitted in the W of the official FFHQ model (model_157)" in err
    official = DirectionSet.read(out)
    assert official.names[-1] == "eyeglasses"
    # Its default strengths reach where the official demo's slider ends, 40 x the original length
    # (it had none: "pass --strengths"); a fitted direction's reach is 2 x its class_distance.
    reach = 40 * np.linalg.norm(np.linspace(-1, 1, 50))
    assert edit_commands.default_strengths(official, "eyeglasses") == [round(f * reach, 3) for f in (0, 0.25, 0.5, 0.75, 1)]
    # A file written with --out is read by list and apply with --directions (nothing could read it).
    code, stdout, err = run_cli(edit, ["list", "--run", run, "--directions", out], capsys)
    assert code == 0 and [line.split()[0] for line in stdout.splitlines()[1:]] == official.names, err
    code, stdout, err = run_cli(edit, ["apply", "--run", run, "--directions", out, "--direction", "eyeglasses",
                                       "--images", "held-out:1", "--out", tmp_path / "eyeglasses.png"], capsys)
    assert code == 0 and (tmp_path / "eyeglasses.png").is_file(), err
    assert f"at strengths 0, {round(reach / 4, 3):g}" in stdout
    distance = official.directions[0].info["class_distance"]
    assert edit_commands.default_strengths(official, official.names[0]) == [round(f * distance, 3) for f in (0, 0.5, 1, 1.5, 2)]


def test_directions_of_another_checkpoint_get_a_note_and_a_bare_checkpoint_name_is_the_runs(run, tmp_path, capsys):
    code, out, err = run_cli(edit, ["apply", "--run", run, "--checkpoint", "ckpt-10", "--direction", DIRECTIONS[0],
                                    "--images", "held-out:1", "--strengths", "0", "1", "--out", tmp_path / "x.png"], capsys)
    assert code == 0 and (tmp_path / "x.png").is_file(), err
    assert "directions fitted on the codes of step 20; the networks used here are those of step 10" in err
    code, out, err = run_cli(edit, ["list", "--run", run], capsys)
    assert code == 0 and "note:" not in err


def test_apply_keeps_a_direction_name_with_a_slash_inside_run_edits(run, tmp_path, capsys):
    """A directions file of an older version could hold "Wearing/Hat" or "../../evil": apply's
    default output wrote into a subfolder, or outside the run."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    known = DirectionSet.read(copy / "directions.json")
    renamed = DirectionSet(known.latent_dim, tuple(replace(d, name=name) for d, name in zip(known.directions, ("Wearing/Hat", "../../evil"))))
    renamed.write(copy / "directions.json")
    for name, file in (("Wearing/Hat", "Wearing_Hat.png"), ("../../evil", ".._.._evil.png")):
        code, out, err = run_cli(edit, ["apply", "--run", copy, "--direction", name, "--images", "held-out:1", "--strengths", "0", "1"], capsys)
        assert code == 0 and (copy / "edits" / file).is_file(), err
    assert sorted(p.name for p in (copy / "edits").iterdir()) == [".._.._evil.png", "Wearing_Hat.png"]
    assert not (tmp_path / "evil.png").exists()


def test_score_and_list_print_tables(run, capsys):
    code, out, err = run_cli(edit, ["score", "--run", run, "--direction", "3_to_8", "--strengths", "0", "3", "--count", "40"], capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0] in ("0", "3")]
    assert len(rows) == 2 and "40 held-out images of class 3" in out
    assert rows[0][1] == rows[0][2]  # strength 0: the same reconstructions for the direction and the random one
    assert all(0 <= float(value) <= 1 for row in rows for value in row[1:])
    # 20 steps: the classifier reads none of the reconstructed 3s as a 3 (an audit's 150-step BiGAN neither),
    # which made the table's "1.000 read as 8" look like an edit
    assert "their reconstructions G(E(x)) read as 3: 0.000" in out
    assert "warning: only 0% of the reconstructed 3s are read as 3" in err and "trained 20 steps" in err
    code, out, err = run_cli(edit, ["list", "--run", run], capsys)
    assert code == 0 and all(name in out for name in DIRECTIONS) and "held-out acc" in out


def test_list_reads_no_networks_and_works_without_checkpoints(run, tmp_path, monkeypatch, capsys):
    """`list` of a large model took the seconds of loading it; a run whose checkpoints are gone
    (directions kept, e.g. copied from an export) could not list at all."""
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("config.yaml", "directions.json"):
        (copy / name).write_bytes((run / name).read_bytes())
    monkeypatch.setattr(edit_commands, "load_run", lambda *a: pytest.fail("list loaded the networks"))
    code, out, err = run_cli(edit, ["list", "--run", copy], capsys)
    assert code == 0 and all(name in out for name in DIRECTIONS) and err == ""
    code, out, err = run_cli(edit, ["list", "--run", run, "--checkpoint", "ckpt-1"], capsys)
    assert code == 2 and err.startswith("error: ckpt-1")


def test_negative_strengths_in_any_form_are_numbers():
    """-1e-1 was taken for an option by Python 3.11's argparse ("expected at least one argument")."""
    argv = ["apply", "--run", "r", "--direction", "d", "--images", "held-out:1", "--strengths", "-1e-1", "-2E2", "-.5", "-3", "1e1"]
    assert edit.parse_args(argv).strengths == [-0.1, -200.0, -0.5, -3.0, 10.0]
    with pytest.raises(SystemExit):
        edit.parse_args(argv[:-5] + ["-e1"])  # not a number: still an unknown option


def test_edit_commands_take_a_projection_file_for_its_images_and_codes(run, sampler, held_out, tmp_path, capsys):
    """A projection.npz among the images: its images with their projected codes (G of them is the
    projection's own image), beside images that get E(x); another model's file is refused, and a
    file of another checkpoint is noted."""
    from serving import projection_file

    images, _ = held_out
    out = tmp_path / "projected"
    code, _, err = run_cli(project, ["--run", run, "--images", "held-out:2", "--steps", "4", "--learning-rate", "0.05",
                                     "--mse-weight", "0.1", "--out-dir", out], capsys)
    assert code == 0, err
    saved = np.load(out / "projection.npz")
    projected = cells(out / "projection.png", 2, 3)[:, 2]  # image | encoder | projection
    assert np.abs(projected.astype(int) - cells(out / "projection.png", 2, 3)[:, 1]).max() > 10  # not G(E(x))

    code, stdout, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", out / "projection.npz",
                                       "held-out:2-3", "--strengths", "0", "1", "--out", tmp_path / "sweep.png"], capsys)
    assert code == 0 and err == "" and "for 3 image(s)" in stdout, err  # the MLP has no noise: no note
    sweep = cells(tmp_path / "sweep.png", 3, 3)
    np.testing.assert_array_equal(sweep[:2, 0], saved["images"])
    np.testing.assert_array_equal(sweep[2, 0], images[2])
    np.testing.assert_allclose(sweep[:2, 1].astype(int), projected.astype(int), atol=1)  # strength 0: the projection
    reconstruction = to_uint8(sampler.reconstruct(to_model_range(images[2:3]))).numpy()[0]
    np.testing.assert_allclose(sweep[2, 1].astype(int), reconstruction.astype(int), atol=1)  # an image: G(E(x))
    moved = to_uint8(sampler.decode(sampler.edit(saved["styles"], DirectionSet.read(run / "directions.json").vector("3_to_8"), 1.0)))
    np.testing.assert_allclose(sweep[:2, 2].astype(int), moved.numpy().astype(int), atol=1)

    code, _, err = run_cli(edit, ["interpolate", "--run", run, "--from", out / "projection.npz", "--to", "held-out:2-4",
                                  "--steps", "3", "--out", tmp_path / "path.png"], capsys)
    assert code == 0, err
    path = cells(tmp_path / "path.png", 2, 5)
    np.testing.assert_array_equal(path[:, 0], saved["images"])
    np.testing.assert_allclose(path[:, 1].astype(int), projected.astype(int), atol=1)  # from the projection
    ends = to_uint8(sampler.reconstruct(to_model_range(images[2:4]))).numpy()
    np.testing.assert_allclose(path[:, 3].astype(int), ends.astype(int), atol=1)  # to E(x)

    other = tmp_path / "other.npz"
    distances = {name: np.zeros(1, np.float32) for name in projection_file.DISTANCES}
    projection_file.write(other, projection_file.ProjectionFile(np.zeros((1, 4, 8), np.float32), np.zeros((1, 8, 8, 1), np.uint8),
                                                                distances, True, "run", "ckpt-5", 5, []))
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", other], capsys)
    assert_one_error_line(code, err, f"{other}: its styles are [4, 8] and its images [8, 8, 1]; this run's are [1, 50] and "
                                     "[28, 28, 1]: it was projected with another model")
    older = tmp_path / "older.npz"
    projection_file.write(older, projection_file.ProjectionFile(saved["styles"], saved["images"], distances | {
        name: saved[name] for name in projection_file.DISTANCES}, False, "run", "ckpt-5", 5, []))
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", older, "--out", tmp_path / "o.png"],
                           capsys)
    run_name = Path(run).resolve().name
    assert code == 0 and err == (f"note: {older} was projected with run's ckpt-5 (step 5); the networks used here are "
                                 f"{run_name}'s of step 20: it may reconstruct less well here\n")
    # another run at the same step (the file says which run made it)
    elsewhere = tmp_path / "elsewhere.npz"
    projection_file.write(elsewhere, projection_file.ProjectionFile(saved["styles"], saved["images"], distances | {
        name: saved[name] for name in projection_file.DISTANCES}, False, "another_run", "ckpt-20", 20, []))
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", elsewhere, "--out",
                                  tmp_path / "o.png"], capsys)
    assert code == 0 and err.startswith(f"note: {elsewhere} was projected with another_run's ckpt-20 (step 20)")
    same = tmp_path / "same.npz"
    projection_file.write(same, projection_file.ProjectionFile(saved["styles"], saved["images"], distances | {
        name: saved[name] for name in projection_file.DISTANCES}, False, run_name, "ckpt-20", 20, []))
    code, _, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", same, "--out",
                                  tmp_path / "o.png"], capsys)
    assert code == 0 and err == ""


def test_noise_seed_none_renders_figures_as_the_export_and_the_studio_do(style_exported, style_loaded, tmp_path, capsys):
    """Figures drew G's noise from --noise-seed 0 while the export's decode and the studio render
    without noise, so one edit looked different in the two (an audit): --noise-seed none."""
    run = style_exported[0]
    figures = {}
    for seed in ("none", "0"):
        out = tmp_path / f"seed_{seed}.png"
        code, _, err = run_cli(edit, ["interpolate", "--run", run, "--from", "held-out:1", "--to", "held-out:1",
                                      "--steps", "2", "--noise-seed", seed, "--out", out], capsys)
        assert code == 0, err
        figures[seed] = np.asarray(Image.open(out)).reshape(8, 4, 8).transpose(1, 0, 2)  # [original, two steps, original]
    config, _, sampler = style_loaded
    (image,) = select_subjects(["held-out:1"], config, sampler, None).images
    noiseless = to_uint8(sampler.reconstruct(to_model_range(image[np.newaxis]))).numpy()[0, :, :, 0]
    assert np.abs(figures["none"][1].astype(int) - noiseless).max() <= 1
    assert np.abs(figures["0"][1].astype(int) - noiseless).max() > 8  # seed 0's noise shows
    assert run_cli(edit, ["interpolate", "--run", run, "--from", "held-out:1", "--to", "held-out:1",
                          "--noise-seed", "-1"], capsys)[0] == 2


def test_a_style_figure_with_a_projection_is_rendered_without_noise(style_exported, style_loaded, tmp_path, capsys):
    """StyleALAE: a mix whose source is a per-layer projection renders it as it was fitted (no
    noise), and says so; without a projection the figure keeps --noise-seed's noise."""
    run = style_exported[0]
    out = tmp_path / "projected"
    code, _, err = run_cli(project, ["--run", run, "--images", "held-out:1", "--steps", "2", "--per-layer", "--out-dir", out], capsys)
    assert code == 0, err
    saved = np.load(out / "projection.npz")
    sampler = style_loaded[2]
    code, _, err = run_cli(edit, ["mix", "--run", run, "--sources", out / "projection.npz", "--destinations", "held-out:1-3",
                                  "--layers", "coarse", "--out-dir", tmp_path], capsys)
    notes = [line for line in err.splitlines() if line.startswith("note:")]  # beside the run's untrained-level warning
    assert code == 0 and notes == ["note: a projection file is among the images, so the figure is rendered without G's noise, "
                                   "as projections are fitted (--noise-seed is not used)"], err
    grid = np.asarray(Image.open(tmp_path / "mix_coarse.png")).reshape(3, 8, 2, 8).transpose(0, 2, 1, 3)[..., None]
    noiseless = to_uint8(sampler.decode(saved["styles"])).numpy()[0]
    np.testing.assert_allclose(grid[0, 1].astype(int), noiseless.astype(int), atol=1)  # the source: its projection
    code, _, err = run_cli(edit, ["mix", "--run", run, "--sources", "held-out:1", "--destinations", "held-out:1-3",
                                  "--layers", "coarse", "--out-dir", tmp_path / "plain"], capsys)
    assert code == 0 and "note:" not in err


def test_the_images_of_a_projection_with_noise_keep_their_noise_in_every_figure(style_exported, style_loaded, tmp_path,
                                                                                capsys):
    """StyleALAE, a projection made with --noise: a mix renders each destination's row with its own
    refined noise images and a plain image's row and column without noise; an interpolation
    between two such images carries the noise from one's to the other's. Expected cells are
    rendered here from the file's styles and noise through the Sampler."""
    run = style_exported[0]
    out = tmp_path / "projected"
    code, _, err = run_cli(project, ["--run", run, "--images", "held-out:0-2", "--steps", "4", "--per-layer", "--noise",
                                     "--learning-rate", "0.3", "--noise-weight", "0", "--out-dir", out], capsys)
    assert code == 0, err
    saved = np.load(out / "projection.npz")
    noise = [saved[name] for name in sorted(saved.files) if name.startswith("noise_")]
    config, model, sampler = style_loaded
    side = sampler.image_shape[0]
    with_noise = to_uint8(sampler.decode(saved["styles"], noise)).numpy()
    without = to_uint8(sampler.decode(saved["styles"])).numpy()
    assert np.abs(with_noise.astype(int) - without).max() > 3  # the refined noise shows in the images

    def grid_cells(path, rows, columns):
        grid = np.asarray(Image.open(path))
        assert grid.shape == (rows * side, columns * side)
        return grid.reshape(rows, side, columns, side).transpose(0, 2, 1, 3)[..., None].astype(int)

    code, _, err = run_cli(edit, ["mix", "--run", run, "--sources", "held-out:5-6", "--destinations", out / "projection.npz",
                                  "--layers", "coarse", "--out-dir", tmp_path], capsys)
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert code == 0 and notes == ["note: a projection file with noise images (project --noise) is among the images: they "
                                   "are rendered with them, the other images without G's noise (--noise-seed is not used)"], err
    mixed = grid_cells(tmp_path / "mix_coarse.png", 3, 2)
    np.testing.assert_allclose(mixed[1:, 0], with_noise, atol=1)  # the destinations: their projections, with noise
    plain = select_subjects(["held-out:5-6"], config, sampler, (Path(run).resolve().name, model.step))  # the source, as edit reads it
    np.testing.assert_allclose(mixed[0, 1], to_uint8(sampler.decode(plain.styles)).numpy()[0], atol=1)  # no noise
    start, stop = 0, sampler.generator.styles_per_level  # coarse at 8x8: the 4x4 level's style inputs
    for j in range(2):
        expected = sampler.decode(sampler.mix(saved["styles"][j:j + 1], plain.styles, start, stop), [n[j:j + 1] for n in noise])
        np.testing.assert_allclose(mixed[1 + j, 1], to_uint8(expected).numpy()[0], atol=1)

    code, _, err = run_cli(edit, ["interpolate", "--run", run, "--from", out / "projection.npz", "--to", out / "projection.npz",
                                  "--steps", "3", "--out", tmp_path / "between.png"], capsys)
    assert code == 0, err
    rows = grid_cells(tmp_path / "between.png", 2, 5)
    for p in range(2):
        for step in range(1, 4):  # from an image to itself: its projection with its noise at every step
            np.testing.assert_allclose(rows[p, step], with_noise[p], atol=1)


def test_a_projection_whose_noise_images_fit_another_model_is_refused(style_exported, style_loaded, tmp_path, capsys):
    from serving import projection_file

    run, sampler = style_exported[0], style_loaded[2]
    distances = {name: np.zeros(1, np.float32) for name in projection_file.DISTANCES}
    projection_file.write(tmp_path / "other.npz", projection_file.ProjectionFile(
        np.zeros((1, sampler.num_styles, sampler.latent_dim), np.float32), np.zeros((1, *sampler.image_shape), np.uint8),
        distances, True, "run", "ckpt-20", 20, noise=[np.zeros((1, 3, 3, 1), np.float32)]))
    code, _, err = run_cli(edit, ["mix", "--run", run, "--sources", tmp_path / "other.npz", "--destinations", "held-out:1-2",
                                  "--out-dir", tmp_path], capsys)
    assert code == 2 and f"other.npz: its noise images are [(3, 3, 1)]; this run's generator takes {sampler.noise_shapes}" in err


def test_score_on_a_run_the_digit_classifier_cannot_read_stops_before_any_image_is_edited(style_exported, capsys,
                                                                                          monkeypatch):
    """tiny_style's 8x8 MNIST: the classifier takes 28x28 or 32x32 digits (an audit's run encoded and
    edited every image before it was told so)."""
    monkeypatch.setattr(edit_commands, "run_directions", lambda *args: pytest.fail("got past the classifier's sizes"))
    code, _, err = run_cli(edit, ["score", "--run", style_exported[0], "--direction", "3_to_8"], capsys)
    last = err.strip().splitlines()[-1]  # after the note that this 20-step run has not reached 8x8
    assert code == 2 and last == "error: the MNIST classifier takes grayscale 28x28 or 32x32 digits, got shape (1, 8, 8, 1)", err


def write_image(path, shape):
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    "module, argv, message",
    [
        (edit, ["apply", "--run", "{tmp}/nowhere", "--direction", "3_to_8", "--images", "held-out:1"], "nowhere: no such directory"),
        (edit, ["apply", "--run", "{run}", "--direction", "smile", "--images", "held-out:1"], "unknown direction 'smile'; the run has 0_to_1, 3_to_8"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--data-path", "{tmp}/moved"],
         "--data-path {tmp}/moved: no such file or directory"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--data-path", "{tmp}/moved"], "--data-path {tmp}/moved: no such file or directory"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--strengths", "1", "abc"], "strength 'abc' is not a number"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--strengths", "nan"], "not a finite number"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--strengths", "1e300"], "beyond float32's range"),
        (edit, ["score", "--run", "{run}", "--direction", "3_to_8", "--count", "2", "--strengths", "0", "1e39"], "beyond float32's range"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--strengths", "-1e39"], "beyond float32's range"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--layers", "hair"], "unknown layer range 'hair'"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:x"], "expected held-out:N"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:0"], "held-out:0: selects no images; N must be at least 1"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:5-5"], "selects no images; A-B takes positions A..B-1"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:2000:3"], "0..1999 of 1010 held-out images of class 3"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--out", "{tmp}"], "cannot write {tmp}: Is a directory"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--out", "{tmp}/noext"], "cannot write {tmp}/noext: the file name must end in .png"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--out", "{file}/x.png"], "cannot write {file}/x.png: {file} is not a directory"),
        (edit, ["interpolate", "--run", "{run}", "--from", "held-out:1", "--to", "held-out:1", "--out", "{file}/x.png"], "{file} is not a directory"),
        (edit, ["mix", "--run", "{run}", "--sources", "held-out:1", "--destinations", "held-out:1", "--out-dir", "{file}"], "cannot write {file}: {file} is not a directory"),
        # a file name over 255 bytes (a long direction name's default --out too): a traceback from is_dir()
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "held-out:1", "--out", "{tmp}/" + "a" * 300 + ".png"],
         "cannot write {tmp}/" + "a" * 300 + ".png: File name too long"),
        (edit, ["mix", "--run", "{run}", "--sources", "held-out:1", "--destinations", "held-out:1", "--out-dir", "{tmp}/" + "d" * 300],
         "cannot write {tmp}/" + "d" * 300 + ": File name too long"),
        (edit, ["apply", "--run", "{run}", "--direction", "3_to_8", "--images", "{tmp}/missing.png"], "no such image file or folder"),
        (edit, ["apply", "--run", "{run}", "--images", "held-out:1"], "the following arguments are required: --direction"),
        (edit, ["interpolate", "--run", "{run}", "--from", "{small}", "--to", "{small}", "--steps", "1"], "argument --steps: 1 must be an integer >= 2"),
        (edit, ["directions", "--run", "{run}", "--pairs", "3-8"], "class pair '3-8' is not A:B"),
        # these were ignored silently
        (edit, ["directions", "--run", "{run}", "--official", "{tmp}", "--count", "3", "--pairs", "3:8", "--method", "mean"],
         "--pairs, --method, --count: for fitting directions; --official imports the files as they are"),
        (edit, ["directions", "--run", "{run}", "--classes", "{tmp}", "--images", "{tmp}/missing"], "--images goes with --attributes"),
        (edit, ["list", "--run", "{run}", "--directions", "{tmp}/none.json"], "none.json: no such directions file"),
        # argparse took --out for mix's --out-dir (an abbreviation) and wrote a folder mix.png
        (edit, ["mix", "--run", "{run}", "--sources", "held-out:1", "--destinations", "held-out:1", "--out", "{tmp}/mix.png"],
         "unrecognized arguments: --out"),
        (edit, ["score", "--run", "{run}", "--direction", "3_to_8", "--count", "0"], "argument --count: 0 must be an integer >= 1"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--noise"], "--noise: this run's generator (mlp) has no noise inputs"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--steps", "-1"], "argument --steps: -1 must be an integer >= 0"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--steps", "ten"], "argument --steps: 'ten' is not an integer"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--mse-weight", "inf"], "argument --mse-weight: inf must be a finite number >= 0"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--learning-rate", "inf"], "argument --learning-rate: inf must be a finite number > 0"),
        # 0.5981 then NaN: a file of NaN codes was written, exit 0
        (project, ["--run", "{run}", "--images", "held-out:1", "--steps", "2", "--learning-rate", "1e30", "--out-dir", "{tmp}/p"],
         "the projection of image 1 diverged (codes NaN, infinite or beyond 1e+06) (--learning-rate 1e+30, --mse-weight 1); "
         "run again with a lower --learning-rate"),
        (project, ["--run", "{run}", "--images", "{tmp}/projection.npz"], "projection.npz: a projection file, whose images are projected already"),
        (project, ["--run", "{run}", "--images", "held-out:1", "--checkpoint", "{run}/checkpoints"], "checkpoints: a directory; name one checkpoint"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(module, argv, message, run, tmp_path, capsys):
    paths = {"tmp": tmp_path, "run": run, "small": write_image(tmp_path / "small.png", (10, 10)),
             "file": tmp_path / "a_file"}
    paths["file"].write_text("not a folder")
    code, out, err = run_cli(module, [a.format(**paths) for a in argv], capsys)
    assert code == 2 and err.startswith("error: ") and message.format(**paths) in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_images_of_another_size_or_mode_are_brought_to_the_model_s_as_training_images_are(run, tmp_path, capsys):
    """A photo is centre-cropped, resized and converted (here to MNIST's 28x28 grayscale), with one
    note line saying so; the pixels are PIL's own crop, grayscale and LANCZOS resize, within a level."""
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)  # 30 wide, 40 high: rows 5..34 kept
    Image.fromarray(colour).save(tmp_path / "photo.png")
    square = Image.fromarray(colour).crop((0, 5, 30, 35)).convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    code, out, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", tmp_path / "photo.png",
                                    "--strengths", "0", "--out", tmp_path / "edit.png"], capsys)
    assert code == 0, err
    assert err == (f"note: {tmp_path / 'photo.png'}: a 30x40 RGB image, centre-cropped to 30x30, resized to 28x28, "
                   "converted from RGB to grayscale, as training images are; photos of handwritten digits: "
                   "python -m alae_tf.align_digits frames them as MNIST's\n")
    images = read_image_files(tmp_path / "photo.png", (28, 28, 1))
    assert images.shape == (1, 28, 28, 1) and np.abs(images[0, ..., 0].astype(int) - np.asarray(square)).max() <= 1
    capsys.readouterr()
    # A folder: one line for all of it; an image of the model's shape gets no note.
    (tmp_path / "folder").mkdir()
    write_image(tmp_path / "folder" / "a.png", (28, 28))
    write_image(tmp_path / "folder" / "b.png", (28, 28, 4))
    assert read_image_files(tmp_path / "folder", (28, 28, 1)).shape == (2, 28, 28, 1)
    assert capsys.readouterr().err == (f"note: {tmp_path / 'folder'}: 1 of 2 images brought to 28x28 grayscale as training "
                                       f"images are (first: {tmp_path / 'folder' / 'b.png'}: a 28x28 RGBA image, "
                                       "transparency flattened onto black, converted from RGBA to grayscale)\n")


def test_project_refuses_bad_images_before_any_note_of_what_it_would_replace(run, tmp_path, capsys):
    """It said an earlier projection would be replaced, then that held-out:0 selects no images
    (an operator audit, 2026-12-06)."""
    (tmp_path / "projection.npz").write_bytes(b"an earlier projection")
    code, out, err = run_cli(project, ["--run", run, "--images", "held-out:0", "--out-dir", tmp_path], capsys)
    assert code == 2 and err == "error: held-out:0: selects no images; N must be at least 1\n", err
    assert (tmp_path / "projection.npz").read_bytes() == b"an earlier projection"


def test_a_folder_with_an_unreadable_file_is_read_without_it_as_training_reads_it(tmp_path, capsys):
    """edit and project refused the whole folder a run was trained on for one truncated JPEG in
    it, which training had skipped with a warning (an operator audit, 2026-12-06)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    write_image(folder / "a.png", (28, 28))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(30))
    write_image(folder / "c.png", (28, 28))
    assert read_image_files(folder, (28, 28, 1)).shape == (2, 28, 28, 1)
    assert capsys.readouterr().err == (f"warning: {folder}: skipped 1 of 3 image files that cannot be read: broken.jpg "
                                       "(not a recognised image format)\n")
    with pytest.raises(ALAEError, match=f"^{folder / 'broken.jpg'}: cannot read the image"):  # named alone: an error
        read_image_files(folder / "broken.jpg", (28, 28, 1))
    for name in ("a.png", "c.png"):
        (folder / name).write_bytes(b"not a png")
    with pytest.raises(ALAEError, match=f"^{folder}: none of its 3 image files can be read \\(skipped 3 of 3"):
        read_image_files(folder, (28, 28, 1))


@pytest.mark.parametrize("argv", [["--help"], ["apply", "--help"], ["directions", "--help"], ["score", "--help"]])
def test_edit_help(argv, capsys):
    code, out, err = run_cli(edit, argv, capsys)
    assert code == 0 and out.startswith("usage: python -m alae_tf.edit")


def test_project_help(capsys):
    code, out, err = run_cli(project, ["--help"], capsys)
    assert code == 0 and out.startswith("usage: python -m alae_tf.project") and "LPIPS" in out
    text = " ".join(out.split())
    assert "an export's `decode_styles`" in text and "python -m alae_tf.edit`'s apply, mix and interpolate take the file" in text


def assert_one_error_line(code, err, message):
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_unwritable_outputs_fail_before_the_slow_work(run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, out, err = run_cli(edit, ["directions", "--run", run, "--pairs", "1:7", "--count", "200",
                                    "--out", blocker / "d.json"], capsys)
    assert_one_error_line(code, err, f"cannot write {blocker / 'd.json'}: {blocker} is not a directory")
    assert "encoding" not in out  # refused before the codes are computed and the SVM fitted
    code, out, err = run_cli(project, ["--run", run, "--images", "held-out:2", "--steps", "3", "--out-dir", blocker], capsys)
    assert_one_error_line(code, err, f"cannot write {blocker}: {blocker} is not a directory")
    assert "projecting" not in out


def test_a_figure_too_large_for_memory_is_refused_before_any_image_is_decoded(run, tmp_path, capsys, monkeypatch):
    """A folder of thousands of images made a figure that grew until the process died (apply:
    ~4 MB per image at 256x256, interpolate 13 MB per pair); the limit is on the figure's pixels."""
    from alae_tf.editing import figures, images

    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(4):
        Image.fromarray(np.full((28, 28), 40 * index, np.uint8)).save(folder / f"{index}.png")
    monkeypatch.setattr(figures, "FIGURE_BYTES", 11 * 28 * 28)  # 11 cells of 28x28
    monkeypatch.setattr(images, "model_pixels", lambda *args: pytest.fail("an image was decoded"))
    code, out, err = run_cli(edit, ["apply", "--run", run, "--direction", DIRECTIONS[0], "--images", folder,
                                    "--strengths", "0", "1", "--out", tmp_path / "a.png"], capsys)
    assert code == 2 and "the figure would hold 12 images of 28x28, 0.0 GiB of pixels, more than the 0 GiB" in err, err
    code, out, err = run_cli(edit, ["interpolate", "--run", run, "--from", folder, "--to", folder, "--steps", "2",
                                    "--out", tmp_path / "i.png"], capsys)
    assert code == 2 and "the figure would hold 16 images" in err, err
    monkeypatch.setattr(figures, "FIGURE_BYTES", 9 * 28 * 28)
    code, out, err = run_cli(edit, ["mix", "--run", run, "--sources", folder, "--destinations", "held-out:1",
                                    "--out-dir", tmp_path / "m"], capsys)
    assert code == 2 and "the figure would hold 10 images" in err, err  # (4 + 1) x (1 + at least 1), one range
    monkeypatch.undo()
    monkeypatch.setattr(figures, "FIGURE_BYTES", 12 * 28 * 28)
    code, out, err = run_cli(edit, ["apply", "--run", run, "--direction", DIRECTIONS[0], "--images", folder,
                                    "--strengths", "0", "1", "--out", tmp_path / "a.png"], capsys)
    assert code == 0 and (tmp_path / "a.png").is_file(), err


def test_an_output_that_is_one_of_the_input_images_is_refused(run, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(photo)
    before = photo.read_bytes()
    for command in (["apply", "--direction", "3_to_8", "--images", "held-out:1", str(photo), "--out", photo],
                    ["interpolate", "--from", "held-out:1", "--to", str(tmp_path / ".." / tmp_path.name / "photo.png"),
                     "--out", photo]):
        code, out, err = run_cli(edit, [command[0], "--run", run, *command[1:]], capsys)
        assert_one_error_line(code, err, f"cannot write {photo}: it is one of the input images; choose another --out")
    assert photo.read_bytes() == before


def test_an_output_inside_an_input_folder_is_refused(run, tmp_path, capsys):
    """apply, mix and interpolate wrote their grids into an image folder they read: the next
    command read the grids as images of the folder (mix's 104 sources held its earlier grids)."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "sub" / "0.png")
    for command, option, target in (
            (["apply", "--direction", "3_to_8", "--images", folder], "--out", folder / "sub" / "a.png"),
            (["mix", "--sources", "held-out:1", "--destinations", folder / "sub"], "--out-dir", folder / "sub"),
            (["interpolate", "--from", "held-out:1", "--to", folder], "--out", folder / "i.png")):
        code, out, err = run_cli(edit, [command[0], "--run", run, *command[1:], option, target], capsys)
        inside = folder / "sub" if command[0] == "mix" else folder
        assert_one_error_line(code, err, f"{option} {target} is inside the image folder {inside}: what is written there "
                                         f"would be read as an image of the folder next time; pass another {option}")
    assert sorted(p.name for p in folder.rglob("*")) == ["0.png", "sub"]


def test_a_read_only_folder_is_refused_up_front(run, tmp_path, monkeypatch, capsys):
    # As root, permissions do not block writes; a read-only mount does, and os.access reports it.
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: path != tmp_path and access(path, mode, **kw))
    code, out, err = run_cli(edit, ["apply", "--run", run, "--direction", "3_to_8", "--images", "held-out:1",
                                    "--out", tmp_path / "x.png"], capsys)
    assert_one_error_line(code, err, f"cannot write {tmp_path / 'x.png'}: {tmp_path} is not writable")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_files_is_refused_up_front(run, capsys):
    """os.access cannot tell (root may write anywhere by its permission bits, /proc included); the
    directions were fitted, or the images projected, before the write failed."""
    code, out, err = run_cli(edit, ["directions", "--run", run, "--pairs", "1:7", "--count", "200",
                                    "--out", "/proc/alae_tf/d.json"], capsys)
    assert code == 2 and err.startswith("error: cannot write /proc/alae_tf/d.json: /proc") and "encoding" not in out
    code, out, err = run_cli(project, ["--run", run, "--images", "held-out:2", "--steps", "3", "--out-dir", "/proc/alae_tf"], capsys)
    assert code == 2 and err.startswith("error: cannot write /proc/alae_tf: /proc") and "projecting" not in out


def test_a_failed_write_is_one_error_line(run, tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Image.Image, "save", read_only)
    code, out, err = run_cli(edit, ["interpolate", "--run", run, "--from", "held-out:1", "--to", "held-out:1-2",
                                    "--out", tmp_path / "x.png"], capsys)
    assert_one_error_line(code, err, f"cannot write {tmp_path / 'x.png'}: Read-only file system")
    monkeypatch.undo()
    monkeypatch.setattr(np, "savez", read_only)
    code, out, err = run_cli(project, ["--run", run, "--images", "held-out:1", "--steps", "0", "--out-dir", tmp_path], capsys)
    assert_one_error_line(code, err, f"cannot write {tmp_path / 'projection.partial.npz'}: Read-only file system")


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM"),
                                                (signal.SIGHUP, 129, "SIGHUP")])
def test_a_stop_signal_while_a_figure_is_written_leaves_the_earlier_file_whole(run, tmp_path, monkeypatch, capsys,
                                                                                signum, code, name):
    """Ctrl-C printed a traceback, SIGTERM ended the command without a word, and a PNG cut off
    mid-write replaced the earlier figure."""
    out = tmp_path / "sweep.png"
    argv = ["apply", "--run", run, "--direction", "3_to_8", "--images", "held-out:2", "--strengths", "0", "1", "--out", out]
    assert run_cli(edit, argv, capsys)[0] == 0
    before = out.read_bytes()
    real_save = Image.Image.save

    def stopped_mid_write(image, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        os.kill(os.getpid(), signum)  # raises here: the handler runs before the next line

    monkeypatch.setattr(Image.Image, "save", stopped_mid_write)
    handlers = {each: signal.getsignal(each) for each in (signal.SIGTERM, signal.SIGHUP)}
    got, _, err = run_cli(edit, argv, capsys)
    assert (got, err) == (code, f"\ninterrupted ({name}): no file was left half-written (each one written is named above)\n")
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png"]
    assert {each: signal.getsignal(each) for each in handlers} == handlers
    monkeypatch.setattr(Image.Image, "save", real_save)
