"""Directions: fitting on codes with a known answer, held-out accuracy by hand, orthogonalisation,
the versioned directions file, the official direction_*.npy format, labelled folders and CSVs."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from alae_tf.editing import directions as fitting
from alae_tf.editing import labelled
from alae_tf.editing.official import read_official_directions
from alae_tf.errors import ALAEError, DataError
from serving.editing import Direction, DirectionSet, DirectionsError

LATENT = 6


def two_clouds(count, gap, seed, axis=np.array([3.0, 4.0, 0, 0, 0, 0]) / 5):
    """Codes of two Gaussian clouds (std 1) whose means differ by `gap` along the unit `axis`."""
    rng = np.random.default_rng(seed)
    negative = rng.standard_normal((count, LATENT))
    positive = rng.standard_normal((count, LATENT)) + gap * axis
    codes = np.concatenate([negative, positive])
    labels = np.repeat([0, 1], count)
    return codes, labels, axis


def as_labelled(train_codes, train_labels, test_codes, test_labels, names=("a", "b")):
    """A Labelled whose 'images' are the codes themselves (the fitting sees codes only)."""
    codes = np.concatenate([train_codes, test_codes])
    return labelled.Labelled(tuple(names), train_labels, test_labels, False, "codes",
                             lambda encode: (encode(codes), np.arange(len(codes))))


def test_class_distance_is_the_distance_between_the_side_means_whatever_the_direction():
    """Clouds stretched along the first axis, means apart along (1, 1): the SVM's normal leans
    towards the narrow second axis, away from the means' difference, so along it the means lie
    closer than their distance, the strength unit of every direction (documented)."""
    rng = np.random.default_rng(5)
    stretch = np.diag([6.0, 0.5, 1, 1, 1, 1])
    shift = 2.0 * np.array([1.0, 1.0, 0, 0, 0, 0])
    make = lambda n: (np.concatenate([rng.standard_normal((n, LATENT)) @ stretch,  # noqa: E731
                                      rng.standard_normal((n, LATENT)) @ stretch + shift]), np.repeat([0, 1], n))
    (train, train_labels), (test, test_labels) = make(3000), make(1000)
    tasks = fitting.class_pair_tasks(as_labelled(train, train_labels, test, test_labels), [("a", "b")])
    for method in fitting.METHODS:
        (direction,) = fitting.fit_directions(train, test, tasks, method).directions
        gap = train[train_labels == 1].mean(axis=0) - train[train_labels == 0].mean(axis=0)
        assert direction.info["class_distance"] == pytest.approx(np.linalg.norm(gap), rel=1e-5)
        along = abs(direction.vector.astype(np.float64) @ gap)
        if method == "svm":
            assert along < 0.9 * np.linalg.norm(gap)  # the normal leans away from the means' difference
        else:
            assert along == pytest.approx(np.linalg.norm(gap), rel=1e-5)


def test_a_note_says_when_the_mean_direction_separates_the_held_out_images_better():
    """In many dimensions and with few images the SVM fits its training codes' noise (an audit's
    own-images run: held-out 0.916 against the mean direction's 0.990); `directions` says so."""
    def clouds(count, seed, mislabelled=0.0):
        rng = np.random.default_rng(seed)
        labels = np.repeat([0, 1], count)
        codes = rng.standard_normal((2 * count, 32))
        codes[:, 0] += np.where(labels == 1, 2.0, -2.0)
        extra = int(2 * count * mislabelled)  # a cluster of codes labelled at random
        stray = rng.standard_normal((extra, 32))
        stray[:, 0] *= 0.1  # between the two sides
        stray[:, 1] += 3
        return np.concatenate([codes, stray]), np.concatenate([labels, rng.integers(0, 2, extra)])

    test, test_labels = clouds(500, 1)
    for count, mislabelled, noted in ((50, 0.05, True), (400, 0.0, False)):
        train, train_labels = clouds(count, 0, mislabelled)
        tasks = fitting.class_pair_tasks(as_labelled(train, train_labels, test, test_labels), [("a", "b")])
        directions = fitting.fit_directions(train, test, tasks, "svm")
        notes = fitting.better_by_mean(directions, train, test, tasks)
        svm = directions.directions[0].info["held_out_accuracy"]
        normal, offset = fitting.fit_boundary(train, tasks[0].train_side, "mean")
        mean = fitting.held_out_accuracy(normal, offset, test, tasks[0].test_side)
        assert (mean > svm + 0.01) is noted, (svm, mean)
        assert notes == ([f"note: a_to_b: --method mean separates the held-out images better ({mean:.4f} against the "
                          f"SVM's {svm:.4f}; noisy labels favour it)"] if noted else [])


def first_pixel(images):
    """An 'encoder' whose code is an image's top-left pixel: the tests' images are constant, so it names the image."""
    return images[:, 0, 0, :1]


@pytest.mark.parametrize("method", fitting.METHODS)
def test_a_direction_points_from_the_negative_to_the_positive_class(method):
    train, train_labels, axis = two_clouds(2000, 4.0, seed=0)
    test, test_labels, _ = two_clouds(2000, 4.0, seed=1)
    tasks = fitting.class_pair_tasks(as_labelled(train, train_labels, test, test_labels), [("a", "b")])
    found = fitting.fit_directions(train, test, tasks, method)
    (direction,) = found.directions
    assert direction.name == "a_to_b" and direction.info["negative"] == "a" and direction.info["positive"] == "b"
    assert abs(np.linalg.norm(direction.vector) - 1) < 1e-6 and direction.vector @ axis > 0.99
    # The boundary sits halfway: each side is correct with probability Phi(gap / 2) = Phi(2) = 0.977.
    assert abs(direction.info["held_out_accuracy"] - 0.977) < 0.01
    assert abs(direction.info["class_distance"] - 4.0) < 0.15
    assert direction.info["train_images"] == 4000 and direction.info["held_out_images"] == 4000
    reverse = fitting.fit_directions(train, test, fitting.class_pair_tasks(
        as_labelled(train, train_labels, test, test_labels), [("b", "a")]), method).directions[0]
    assert reverse.name == "b_to_a" and reverse.vector @ direction.vector < -0.999


def test_codes_that_are_not_numbers_are_one_error_naming_the_encoder():
    """A converted damaged checkpoint or a diverged run gives NaN codes: scikit-learn's traceback."""
    train, train_labels, _ = two_clouds(200, 4.0, seed=0)
    test, test_labels, _ = two_clouds(200, 4.0, seed=1)
    tasks = fitting.class_pair_tasks(as_labelled(train, train_labels, test, test_labels), [("a", "b")])
    for method in fitting.METHODS:
        for broken, split in ((train, "training"), (test, "held-out")):
            broken = broken.copy()
            broken[[3, 7], 1] = [np.nan, np.inf]
            codes = (broken, test) if split == "training" else (train, broken)
            with pytest.raises(ALAEError, match=rf"^E gives codes that are not numbers for 2 of the 400 {split} "
                               r"images: the run's encoder is broken"):
                fitting.fit_directions(*codes, tasks, method)


def test_the_svm_weighs_the_two_sides_equally_however_many_images_each_has():
    """One class against the rest is ~1:9: unweighted, the boundary slides toward the small side
    (most of its images then fall on the wrong side). Each image weighs n / (2 n_side), as the
    official find_principal_directions.py's class_weight="balanced"."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(11)
    axis = np.eye(LATENT)[0]
    few, many = rng.standard_normal((60, LATENT)) + 1.5 * axis, rng.standard_normal((600, LATENT))
    codes, sides = np.concatenate([many, few]), np.repeat([0, 1], [600, 60])
    normal, offset = fitting.fit_boundary(codes, sides, "svm")
    weights = np.where(sides == 1, len(sides) / (2 * 60), len(sides) / (2 * 600))
    by_hand = LinearSVC(C=1.0, dual=False, max_iter=10000).fit(codes, sides, sample_weight=weights)
    scale = np.linalg.norm(by_hand.coef_[0])
    np.testing.assert_allclose(normal, by_hand.coef_[0] / scale, atol=1e-6)
    assert offset == pytest.approx(-by_hand.intercept_[0] / scale, abs=1e-6)
    unweighted = LinearSVC(C=1.0, dual=False, max_iter=10000).fit(codes, sides)
    assert -unweighted.intercept_[0] / np.linalg.norm(unweighted.coef_[0]) > offset + 0.3  # slid toward the few


def test_held_out_accuracy_by_hand():
    codes = np.array([[0.0, 0], [2, 0], [4, 0], [1, 5]])
    sides = np.array([0, 0, 1, 1])
    # Boundary x > 1.5: negatives 0 (right), 2 (wrong); positives 4 (right), 1 (wrong) -> (1/2 + 1/2) / 2.
    assert fitting.held_out_accuracy(np.array([1.0, 0]), 1.5, codes, sides) == 0.5
    assert fitting.held_out_accuracy(np.array([1.0, 0]), 3.0, codes, sides) == 0.75  # (2/2 + 1/2) / 2
    assert fitting.held_out_accuracy(np.array([0.0, 1]), 1.0, codes, sides) == 0.75  # y > 1: (2/2 + 1/2) / 2


def test_class_tasks_select_their_images():
    data = as_labelled(np.zeros((5, 1)), np.array([0, 1, 2, 1, 0]), np.zeros((3, 1)), np.array([2, 0, 1]), ["x", "y", "z"])
    pair, = fitting.class_pair_tasks(data, [("z", "x")])
    assert pair.train_side.tolist() == [1, -1, 0, -1, 1] and pair.test_side.tolist() == [0, 1, -1]  # z negative, x positive
    assert [t.name for t in fitting.class_pair_tasks(data, None)] == ["x_to_y", "x_to_z", "y_to_z"]
    rest, = fitting.one_vs_rest_tasks(data, ["y"])
    assert rest.name == "to_y" and rest.train_side.tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ALAEError, match="unknown class 'w'; the labels have x, y, z"):
        fitting.class_pair_tasks(data, [("w", "x")])
    with pytest.raises(ALAEError, match="same class twice"):
        fitting.class_pair_tasks(data, [("x", "x")])


def test_orthogonalised_directions_keep_earlier_projections():
    rng = np.random.default_rng(3)
    vectors = [v / np.linalg.norm(v) for v in rng.standard_normal((3, LATENT))]
    basis = fitting.orthogonalized(vectors)
    np.testing.assert_allclose(np.array(basis) @ np.array(basis).T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(basis[0], vectors[0])
    # By hand in 2-d: (1, 1)/sqrt 2 made orthogonal to (1, 0) is (0, 1).
    np.testing.assert_allclose(fitting.orthogonalized([np.array([1.0, 0]), np.array([1.0, 1]) / np.sqrt(2)])[1], [0, 1], atol=1e-12)
    with pytest.raises(ALAEError, match="span"):
        fitting.orthogonalized([np.array([1.0, 0]), np.array([-1.0, 0])])
    # Class means 0, 3 e0 and 3 (e0 + e1): a_to_c is at 45 degrees to a_to_b; made orthogonal, it is e1.
    rng = np.random.default_rng(4)
    means = np.zeros((3, LATENT))
    means[1, 0], means[2, :2] = 3, 3
    labels = np.repeat([0, 1, 2], 500)
    codes = means[labels] + rng.standard_normal((1500, LATENT))
    data = as_labelled(codes, labels, codes, labels, ["a", "b", "c"])
    tasks = fitting.class_pair_tasks(data, [("a", "b"), ("a", "c")])
    found = fitting.fit_directions(codes, codes, tasks, "mean", orthogonalize=True)
    assert abs(found.directions[0].vector @ found.directions[1].vector) < 1e-6
    assert found.directions[1].vector[1] > 0.99 and found.directions[1].info["orthogonal_to"] == ["a_to_b"]


def test_the_directions_file_round_trips_exactly_and_merges_by_name(tmp_path):
    rng = np.random.default_rng(0)
    unit = lambda: (lambda v: (v / np.linalg.norm(v)).astype(np.float32))(rng.standard_normal(LATENT))  # noqa: E731
    first = DirectionSet(LATENT, (Direction("smile", unit(), {"method": "svm", "held_out_accuracy": 0.9}),
                                  Direction("age", unit(), {})))
    path = tmp_path / "directions.json"
    first.write(path)
    document = json.loads(path.read_text())
    assert document["format"] == "alae_tf.directions" and document["version"] == 1 and document["latent_dim"] == LATENT
    again = DirectionSet.read(path)
    assert again.names == ["smile", "age"] and again.directions[0].info == {"method": "svm", "held_out_accuracy": 0.9}
    for a, b in zip(first.directions, again.directions):
        assert a.vector.dtype == b.vector.dtype == np.float32 and np.array_equal(a.vector, b.vector)
    newer = DirectionSet(LATENT, (Direction("age", unit(), {"method": "mean"}), Direction("glasses", unit(), {})))
    merged = again.merged(newer)
    assert merged.names == ["smile", "age", "glasses"] and np.array_equal(merged.vector("age"), newer.vector("age"))
    with pytest.raises(DirectionsError, match="unknown direction 'hat'; known directions: smile, age, glasses"):
        merged.vector("hat")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="other"), "not an alae_tf directions document"),
        (lambda d: d.update(version=2), "format version 2; this alae_tf reads 1"),
        (lambda d: d["directions"][0].update(vector=[1.0, 0.0]), r"shape \[2\], expected \[6\]"),
        (lambda d: d["directions"][0].update(vector=[2.0, 0, 0, 0, 0, 0]), "norm 2, expected a unit vector"),
        (lambda d: d["directions"][0].update(vector=[float("nan")] * 6), "NaN"),
        (lambda d: d["directions"].append(dict(d["directions"][0])), "repeated name"),
    ],
)
def test_a_bad_directions_document_is_named(change, message):
    document = DirectionSet(LATENT, (Direction("x", np.eye(LATENT, dtype=np.float32)[0], {}),)).to_json()
    change(document)
    with pytest.raises(DirectionsError, match=message):
        DirectionSet.from_json(document, "test")


def test_run_directions_refuse_another_latent_size(tmp_path):
    DirectionSet(LATENT, (Direction("x", np.eye(LATENT, dtype=np.float32)[0], {}),)).write(tmp_path / "directions.json")
    assert fitting.read_run_directions(tmp_path / "elsewhere", LATENT) is None
    assert fitting.read_run_directions(tmp_path, LATENT).names == ["x"]
    with pytest.raises(ALAEError, match="latent size 6; this model's is 8"):
        fitting.read_run_directions(tmp_path, 8)
    (tmp_path / "directions.json").write_text("{")
    with pytest.raises(ALAEError, match="not JSON"):
        fitting.read_run_directions(tmp_path, LATENT)


def test_official_direction_files_become_named_unit_directions(tmp_path):
    # The official files are np.save of a float64 [latent] LinearSVC normal, not unit length.
    smiling, eyeglasses = np.arange(1.0, 7.0), -np.ones(6)
    np.save(tmp_path / "direction_1.npy", smiling)
    np.save(tmp_path / "direction_19.npy", eyeglasses)
    np.save(tmp_path / "direction_45.npy", np.ones(6))
    (tmp_path / "notes.npy").write_text("ignored: not a direction_<k>.npy name")
    found = read_official_directions([tmp_path], LATENT)
    assert found.names == ["smiling", "eyeglasses", "attribute_45"]
    np.testing.assert_allclose(found.vector("smiling"), smiling / np.sqrt(91), rtol=1e-6)
    assert found.directions[0].info["official_norm"] == pytest.approx(np.sqrt(91))
    assert found.directions[1].info["positive"] == "eyeglasses"
    with pytest.raises(ALAEError, match=r"shape \[8\]"):
        read_official_directions([tmp_path / "direction_1.npy"], 8)
    with pytest.raises(ALAEError, match="not a direction_<k>.npy file"):
        read_official_directions([tmp_path / "notes.npy"], LATENT)


def write_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_class_folders_hold_out_every_fifth_image_per_class(tmp_path):
    for name, value in (("cats", 10), ("dogs", 200)):
        for index in range(10):
            write_png(tmp_path / "classes" / name / f"{index}.png", np.full((16, 16), value + index, np.uint8))
    (tmp_path / "classes" / "dogs" / "broken.png").write_bytes(b"not a png")  # skipped with a warning
    data = labelled.from_class_folders(tmp_path / "classes", (8, 8, 1))
    assert data.names == ("cats", "dogs") and not data.attributes
    assert data.train_labels.tolist() == [0] * 8 + [1] * 9 and data.test_labels.tolist() == [0, 0, 1, 1]
    codes = data.encoded(first_pixel)
    # Held out by place in the list: held_out_positions(10, 2) = 2, 7 for cats and, with broken.png
    # listed last among dogs, held_out_positions(11, 2) = 2, 8; the pixel says which image.
    assert codes.test_codes[:, 0].tolist() == [12, 17, 202, 208] and codes.test_rows.tolist() == [0, 1, 2, 3]
    assert codes.train_codes[:, 0].tolist() == [10, 11, 13, 14, 15, 16, 18, 19, 200, 201, 203, 204, 205, 206, 207, 209]
    assert codes.train_rows.tolist() == list(range(16))  # broken.png, training row 16, left out
    pair, = fitting.class_pair_tasks(data, [("cats", "dogs")])
    assert len(pair.of_rows(codes.train_rows, codes.test_rows).train_side) == 16
    few = labelled.from_class_folders(tmp_path / "classes", (8, 8, 1), count=5).encoded(first_pixel)  # five of each
    assert sorted(np.concatenate([few.train_codes, few.test_codes])[:, 0].tolist()) == [10, 11, 12, 13, 14, 200, 201, 202, 203, 204]
    write_png(tmp_path / "single" / "cats" / "0.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="found 1 class folder"):
        labelled.from_class_folders(tmp_path / "single", (8, 8, 1))


def test_images_are_encoded_a_chunk_at_a_time(monkeypatch):
    """Memory does not grow with the number of images: the decoder is at most one chunk ahead of the
    encoder, and each encode call gets at most CHUNK_PIXEL_BYTES of pixels."""
    image = np.zeros((4, 4, 3), np.uint8)  # 48 bytes
    monkeypatch.setattr(labelled, "CHUNK_PIXEL_BYTES", 3 * image.nbytes)
    decoded, calls = [], []

    def images():
        for index in range(10):
            decoded.append(index)
            yield image + index

    def encode(batch):
        calls.append((len(batch), len(decoded)))
        return batch[:, 0, 0, :1]

    codes = labelled.encode_stream(images(), 11, encode)  # 11 files, one skipped: the bar still ends
    assert codes[:, 0].tolist() == list(range(10)) and codes.dtype == np.float64
    assert calls == [(3, 3), (3, 6), (3, 9), (1, 10)]


def test_an_attribute_csv_labels_images_by_sign(tmp_path):
    rows = ["image,Smiling,Eyeglasses"]
    for index in range(10):
        write_png(tmp_path / "img" / f"{index}.png", np.full((8, 8, 3), index, np.uint8))
        rows.append(f"{index}.png,{1 if index % 2 else -1},{0 if index < 5 else 1}")
    (tmp_path / "attributes.csv").write_text("\n".join(rows) + "\n")
    data = labelled.from_attribute_table(tmp_path / "attributes.csv", tmp_path / "img", (8, 8, 3))
    assert data.attributes and data.names == ("Smiling", "Eyeglasses")
    assert data.encoded(first_pixel).test_codes[:, 0].tolist() == [2, 7]  # held_out_positions(10, 2)
    assert data.test_labels.tolist() == [[False, False], [True, True]]
    tasks = fitting.attribute_tasks(data)
    assert [t.name for t in tasks] == ["Smiling", "Eyeglasses"] and tasks[0].negative == "not Smiling"
    (tmp_path / "bad.csv").write_text("image,Smiling\n0.png,yes\n1.png,1\n")
    with pytest.raises(DataError, match="bad.csv:2: attribute 'Smiling' is 'yes', not a number: attribute values "
                       r"are numbers \(> 0: has the attribute\) and the image path is the first column"):
        labelled.from_attribute_table(tmp_path / "bad.csv", tmp_path / "img", (8, 8, 3))
    (tmp_path / "nan.csv").write_text("image,Smiling\n0.png,nan\n1.png,1\n")
    with pytest.raises(DataError, match="nan.csv:2: attribute 'Smiling' is 'nan', not a number"):
        labelled.from_attribute_table(tmp_path / "nan.csv", tmp_path / "img", (8, 8, 3))
    (tmp_path / "twice.csv").write_text("image,Smiling\n0.png,1\n1.png,1\n0.png,-1\n")
    with pytest.raises(DataError, match=r"twice.csv:4: image 0.png is listed twice \(first on line 2\)"):
        labelled.from_attribute_table(tmp_path / "twice.csv", tmp_path / "img", (8, 8, 3))
    # a notes column is not read when --only leaves it out
    (tmp_path / "notes.csv").write_text("image,Smiling,notes\n" + "".join(
        f"{i}.png,{1 if i % 2 else -1},photo {i}\n" for i in range(10)))
    data = labelled.from_attribute_table(tmp_path / "notes.csv", tmp_path / "img", (8, 8, 3), only={"Smiling"})
    assert data.names == ("Smiling",) and data.test_labels.tolist() == [[False], [True]]
    # an --only name the table lacks is named with those it has (the message listed the kept ones: none)
    with pytest.raises(DataError, match="notes.csv: no attribute 'smiling', 'Big'; it has Smiling, notes$"):
        labelled.from_attribute_table(tmp_path / "notes.csv", tmp_path / "img", (8, 8, 3), only=["smiling", "Smiling", "Big"])
    # a spreadsheet's trailing comma: "attribute '' is '', not a number" before
    (tmp_path / "trailing.csv").write_text("image,Smiling,\n0.png,1,\n1.png,-1,\n")
    with pytest.raises(DataError, match=r"trailing.csv: column 3 of the header has no name \(a trailing comma\?\)"):
        labelled.from_attribute_table(tmp_path / "trailing.csv", tmp_path / "img", (8, 8, 3))
    # some files missing: the fix is the table, not --images (which it suggested though given)
    (tmp_path / "missing.csv").write_text("image,Smiling\nnope.png,1\n1.png,1\n")
    with pytest.raises(DataError, match=re.escape(f"missing.csv: 1 of its 2 image files not found in {tmp_path / 'img'}, e.g. "
                                                  f"{tmp_path / 'img' / 'nope.png'}; list only the images you have, or correct those paths")):
        labelled.from_attribute_table(tmp_path / "missing.csv", tmp_path / "img", (8, 8, 3))
    with pytest.raises(DataError, match=re.escape("2 of its 2 image files not found in " + str(tmp_path)) + ".*pass --images DIR, "
                       r"the folder the table's image paths are relative to \(default: its own folder\)$"):
        labelled.from_attribute_table(tmp_path / "attributes.csv", None, (8, 8, 3), count=2)
    assert labelled.from_attribute_table(tmp_path / "attributes.csv", tmp_path / "img", (8, 8, 3), count=6) \
        .encoded(first_pixel).test_codes[:, 0].tolist() == [3]  # the first 6 rows; held_out_positions(6, 1)
    # a table without its image column: "image -1 is listed twice" before
    (tmp_path / "no_image_column.csv").write_text("Smiling,Eyeglasses\n1,-1\n-1,1\n1,1\n")
    with pytest.raises(DataError, match=re.escape("no_image_column.csv: 3 of its 3 image files not found in ") + ".*; its "
                       "first column holds numbers \\('1', ...\\), not image paths: the image path is the first column"):
        labelled.from_attribute_table(tmp_path / "no_image_column.csv", tmp_path / "img", (8, 8, 3))
    # a line of spaces (a spreadsheet's last line) is skipped as an empty one is: "1 columns, expected 3" before
    (tmp_path / "spaces.csv").write_text("\n".join(rows) + "\n  \n\t\n")
    assert labelled.from_attribute_table(tmp_path / "spaces.csv", tmp_path / "img", (8, 8, 3)).names == ("Smiling", "Eyeglasses")


def test_celebas_attribute_list_is_read_as_it_comes(tmp_path, caplog):
    """list_attr_celeba.txt / CelebAMask-HQ-attribute-anno.txt: the image count, the names (with a
    trailing space), rows `file v1 v2` padded with runs of spaces; the same labels as the CSV."""
    lines = ["10", "Smiling Eyeglasses "]
    for index in range(10):
        write_png(tmp_path / f"{index}.jpg", np.full((8, 8, 3), index, np.uint8))
        lines.append(f"{index}.jpg {1 if index % 2 else -1:2d} {-1 if index < 5 else 1:2d}")
    (tmp_path / "list_attr_celeba.txt").write_text("\r\n".join(lines) + "\r\n")
    data = labelled.from_attribute_table(tmp_path / "list_attr_celeba.txt", None, (8, 8, 3))
    assert data.attributes and data.names == ("Smiling", "Eyeglasses")
    assert data.encoded(first_pixel).test_codes[:, 0].tolist() == [2, 7]
    assert data.test_labels.tolist() == [[False, False], [True, True]]
    assert data.train_labels[:, 0].tolist() == [False, True, True, False, True, False, False, True]  # images 0 1 3 4 5 6 8 9
    assert not caplog.records
    (tmp_path / "short.txt").write_text("\n".join(["12", *lines[1:]]) + "\n")
    assert len(labelled.from_attribute_table(tmp_path / "short.txt", None, (8, 8, 3)).train_labels) == 8
    assert "its first line says 12 images, it lists 10" in caplog.text
    (tmp_path / "ragged.txt").write_text("\n".join([*lines[:5], "4.jpg 1"]) + "\n")
    with pytest.raises(DataError, match=r"ragged.txt:6: 2 columns, expected 3 \(the image and 2 attributes\)"):
        labelled.from_attribute_table(tmp_path / "ragged.txt", None, (8, 8, 3))
    (tmp_path / "names_only.txt").write_text("10\n")
    with pytest.raises(DataError, match="or CelebA's list"):
        labelled.from_attribute_table(tmp_path / "names_only.txt", None, (8, 8, 3))


def test_directions_fitted_at_another_step_or_on_another_run_get_a_note(tmp_path):
    """edit and export both say so (editing.edit_commands.run_directions, export.build). Another run of the same
    step got no note: two runs trained with the same --steps, the common case."""
    unit = np.eye(2, dtype=np.float32)
    run = tmp_path / "runs" / "tiny_b"
    here = {"run": str(run), "training_step": 20}
    directions = DirectionSet(2, (Direction("a", unit[0], here), Direction("b", unit[1], {}),
                                  Direction("c", unit[1], {**here, "training_step": 15})))
    assert fitting.fitted_elsewhere_note(directions, "d.json", run, 20) == (
        "note: d.json holds directions fitted on the codes of step 15; the networks used here are those of step 20 "
        "(fit them again for this checkpoint)")
    assert fitting.fitted_elsewhere_note(DirectionSet(2, directions.directions[:2]), "d.json", run, 20) is None
    other_run = DirectionSet(2, (Direction("a", unit[0], {"run": str(tmp_path / "runs" / "tiny"), "training_step": 20}),))
    assert fitting.fitted_elsewhere_note(other_run, "d.json", run, 20) == (
        "note: d.json holds directions fitted on the codes of run tiny's step 20; the networks used here are run "
        "tiny_b's of step 20 (fit them again for this run)")
    # Without a run in their info (older files), the step alone tells.
    assert fitting.fitted_elsewhere_note(DirectionSet(2, (Direction("a", unit[0], {"training_step": 20}),)), "d.json",
                                         run, 20) is None


def test_a_moved_data_folder_says_where_to_point_the_run(tmp_path):
    """The fix is --data-path, which edit and project lacked (an operator audit, 2026-12-06)."""
    from alae_tf.config import Config

    config = Config()
    config.data.dataset, config.data.path = "folder", str(tmp_path / "moved_away")
    with pytest.raises(DataError, match=r"moved_away: the run's data \(data.path in its config.yaml\) is no longer "
                       "there; pass --data-path DIR, where it is now"):
        labelled.open_run_data(config)
