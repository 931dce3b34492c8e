"""python -m alae_tf.edit directions with a labels CSV, and direction names: every unreadable image
named at once, the source of a direction's name, letter-case mismatches, a folder given for the CSV,
fractional labels. Unit-level: no run is trained."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alae_tf.editing import edit_commands
from alae_tf.editing import labelled
from alae_tf.errors import ALAEError, DataError
from serving.editing import Direction, DirectionSet

SHAPE = (8, 8, 3)


def write_images(folder, count=10):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(folder / f"img_{index}.png")


def write_table(path, rows):
    path.write_text("image,Smiling\n" + "".join(f"{name},{value}\n" for name, value in rows))
    return path


def truncated_jpeg():
    """A JPEG cut in its pixel data: PIL opens it (its header is whole), decoding it fails."""
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    file = io.BytesIO()
    Image.fromarray(pixels).save(file, "JPEG")
    return file.getvalue()[:len(file.getvalue()) // 2]


def test_every_unreadable_labelled_image_is_named_in_one_error_before_any_is_encoded(tmp_path):
    """The first one stopped the command (while encoding), the next only on the next run."""
    write_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(truncated_jpeg())
    table = write_table(tmp_path / "labels.csv", [(f"img_{i}.png", i % 2) for i in range(10)]
                        + [("notes.txt", 1), ("broken.jpg", 0)])
    encoded = []

    def encode(images):
        encoded.append(len(images))
        return images[:, 0, 0, :1].astype(np.float64)

    data = labelled.from_attribute_table(table, None, SHAPE)
    with pytest.raises(DataError, match=re.escape(f"{table}: 2 of its 12 images cannot be read: notes.txt (not a recognised "
                                                  "image format); broken.jpg (OSError: image file is truncated") +
                       r".*\); replace those files or remove their rows$"):
        data.encoded(encode)
    assert encoded == []  # notes.txt is no image: found from the headers, before any encoding
    # A file whose pixels alone are damaged is found while reading; nothing more is encoded after it.
    table = write_table(tmp_path / "damaged.csv", [("broken.jpg", 0)] + [(f"img_{i}.png", i % 2) for i in range(10)])
    with pytest.raises(DataError, match=r"damaged.csv: 1 of its 11 images cannot be read: broken.jpg \(OSError"):
        labelled.from_attribute_table(table, None, SHAPE).encoded(encode)
    assert encoded == []


def test_an_unknown_direction_names_the_file_its_names_come_from():
    """'the run has Smiling, Round' was said of the names in a --directions file."""
    directions = DirectionSet(2, (Direction("Smiling", np.array([1, 0], np.float32), {}),
                                  Direction("Round", np.array([0, 1], np.float32), {})))
    with pytest.raises(ALAEError, match="^unknown direction 'Red'; the file d_only.json has Smiling, Round$"):
        edit_commands.direction_vector(directions, "Red", Path("d_only.json"))
    with pytest.raises(ALAEError, match=r"^unknown direction 'Red'; the run has Smiling, Round \(in its directions.json\)$"):
        edit_commands.direction_vector(directions, "Red", None)


def test_image_names_in_another_letter_case_are_said_to_be_so(tmp_path):
    """'pass --images DIR' was the advice, --images given."""
    write_images(tmp_path / "imgs")
    table = write_table(tmp_path / "upper.csv", [(f"IMG_{i}.PNG", i % 2) for i in range(10)])
    with pytest.raises(DataError) as error:
        labelled.from_attribute_table(table, tmp_path / "imgs", SHAPE)
    message = str(error.value)
    assert message.endswith("; 10 of those names differ in letter case from the files: IMG_0.PNG vs img_0.png; write the "
                            "names in the table as the files are named (letter case counts)"), message
    assert "--images" not in message
    # names that match no file: given --images is not advised again
    table = write_table(tmp_path / "other.csv", [(f"other_{i}.png", i % 2) for i in range(10)])
    with pytest.raises(DataError, match="; pass as --images the folder the table's image paths are relative to$"):
        labelled.from_attribute_table(table, tmp_path / "imgs", SHAPE)


def test_a_folder_given_for_the_labels_file_says_which_file_to_pass(tmp_path):
    """[Errno 21] Is a directory before."""
    write_images(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"imgs: a folder, not a labels file; pass the labels CSV file itself \(header "):
        labelled.from_attribute_table(tmp_path / "imgs", None, SHAPE)
    write_table(tmp_path / "imgs" / "labels.csv", [(f"img_{i}.png", i % 2) for i in range(10)])
    with pytest.raises(DataError, match=r"imgs: a folder, not a labels file; pass the labels CSV file itself "
                       rf"\(e.g. --attributes {tmp_path / 'imgs' / 'labels.csv'}\)"):
        labelled.from_attribute_table(tmp_path / "imgs", None, SHAPE)


def test_fractional_labels_get_a_note_that_any_value_above_zero_has_the_attribute(tmp_path, capsys):
    """0.1/0.9 labels (probabilities) silently all counted as having the attribute."""
    write_images(tmp_path)
    table = write_table(tmp_path / "float.csv", [(f"img_{i}.png", 0.9 if i % 2 else 0.1) for i in range(10)])
    data = labelled.from_attribute_table(table, None, SHAPE)
    assert data.train_labels.all()  # the documented rule: > 0 has it
    assert capsys.readouterr().err == (f"note: {table}: values between 0 and 1 in Smiling (e.g. 0.1 on line 2): every value "
                                       "> 0 counts as having the attribute, 0.1 too; if they are probabilities, write 1 "
                                       "(has it) or 0 (has it not)\n")
    for values in ((1, 0), (1, -1)):  # the documented forms: no note
        table = write_table(tmp_path / "whole.csv", [(f"img_{i}.png", values[i % 2]) for i in range(10)])
        labelled.from_attribute_table(table, None, SHAPE)
        assert capsys.readouterr().err == ""
