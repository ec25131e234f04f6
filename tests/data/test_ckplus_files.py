"""CK+ files: the MATLAB ascii parsers, finding the folders however they were unzipped, listing the sequences."""

from __future__ import annotations

import numpy as np
import pytest
from builders import matlab

from fercore.data.ckplus_files import (
    CKPlusFormatError,
    find_ckplus_folders,
    read_emotion,
    read_facs,
    read_landmarks,
    scan_ckplus,
)

# ---------------------------------------------------------------- parsers


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_read_emotion_matlab_ascii(tmp_path, newline):
    path = tmp_path / "S005_001_00000011_emotion.txt"
    path.write_bytes(f"   3.0000000e+00{newline}".encode())
    assert read_emotion(path) == 3


@pytest.mark.parametrize("text,expected", [
    ("   three\n", "line 1"),
    ("   9.0000000e+00\n", "outside 0-7"),
    ("", "empty"),
    ("   3.0000000e+00\n\n   4.0000000e+00\n", "line 3"),
    ("   3.5000000e+00\n", "whole numbers"),
])
def test_read_emotion_errors_name_file_and_line(tmp_path, text, expected):
    path = tmp_path / "S005_001_00000011_emotion.txt"
    path.write_text(text)
    with pytest.raises(CKPlusFormatError, match=expected) as err:
        read_emotion(path)
    assert str(path) in str(err.value)


def test_read_facs_rows_with_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "S005_001_00000011_facs.txt"
    path.write_bytes(b"   9.0000000e+00   4.0000000e+00\r\n\r\n   1.7000000e+01   0.0000000e+00\r\n\r\n")
    assert read_facs(path) == [(9, 4), (17, 0)]


@pytest.mark.parametrize("line,expected", [
    ("   9.0000000e+00", "line 2: expected two numbers"),
    ("   9.0000000e+00   x", "line 2: expected two numbers"),
    ("   9.0000000e+00   7.0000000e+00", "line 2: intensity 7"),
])
def test_read_facs_malformed_line(tmp_path, line, expected):
    path = tmp_path / "S005_001_00000011_facs.txt"
    path.write_text(f"   1.0000000e+00   2.0000000e+00\n{line}\n")
    with pytest.raises(CKPlusFormatError, match=expected) as err:
        read_facs(path)
    assert str(path) in str(err.value)


def test_read_landmarks_negative_values(tmp_path):
    rows = [(-2.5, 3.25)] + [(float(k), 100.0 + k) for k in range(1, 68)]
    path = tmp_path / "S005_001_00000001_landmarks.txt"
    text = "".join(matlab(x, y) + "\r\n" for x, y in rows)
    assert text.startswith("  -2.5000000e+00   3.2500000e+00")  # two spaces before a negative number
    path.write_bytes(text.encode())
    points = read_landmarks(path)
    assert points.dtype == np.float32 and points.shape == (68, 2)
    np.testing.assert_allclose(points, rows)


def test_read_landmarks_errors(tmp_path):
    path = tmp_path / "S005_001_00000001_landmarks.txt"
    path.write_text("".join(matlab(1.0, 2.0) + "\n" for _ in range(67)))
    with pytest.raises(CKPlusFormatError, match="expected 68 rows"):
        read_landmarks(path)
    path.write_text("".join(matlab(1.0, 2.0) + "\n" for _ in range(40)) + "   1.0\n"
                    + "".join(matlab(1.0, 2.0) + "\n" for _ in range(27)))
    with pytest.raises(CKPlusFormatError, match="line 41") as err:
        read_landmarks(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- folders


def test_find_folders_below_zip_named_parents(ckplus_tree):
    found = find_ckplus_folders(ckplus_tree.root)
    assert found == ckplus_tree.folders  # including Landmarks/Landmarks
    assert found["Landmarks"].parent.name == "Landmarks"


def test_find_folders_flat_layout(make_ckplus_tree):
    tree = make_ckplus_tree(zipped=False, landmarks=False, facs=False)
    found = find_ckplus_folders(tree.root)
    assert found["cohn-kanade-images"] == tree.root / "cohn-kanade-images"
    assert found["Emotion"] == tree.root / "Emotion"
    assert found["FACS"] is None and found["Landmarks"] is None


def test_root_without_ckplus_folders(tmp_path):
    (tmp_path / "photos" / "cohn-kanade-images").mkdir(parents=True)  # empty: not a CK+ folder
    (tmp_path / ".backup" / "Emotion" / "S005").mkdir(parents=True)  # hidden: skipped
    (tmp_path / "__MACOSX" / "cohn-kanade-images" / "S005").mkdir(parents=True)  # zip debris: skipped
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CKPlusFormatError) as err:
        find_ckplus_folders(tmp_path)
    message = str(err.value)
    for word in (str(tmp_path), "cohn-kanade-images", "Emotion", "FACS", "Landmarks", "photos", "notes.txt"):
        assert word in message
    with pytest.raises(CKPlusFormatError, match="not a folder"):
        find_ckplus_folders(tmp_path / "missing")


def test_scan_lists_every_sequence(ckplus_tree):
    table = scan_ckplus(ckplus_tree.root)
    assert len(table) == len(ckplus_tree.sequences)
    assert table["labelled"].sum() == len(ckplus_tree.labelled()) == 24
    unlabelled = table[~table["labelled"]].set_index(["subject", "sequence"])
    assert unlabelled["facs"].to_dict() == {("S005", "003"): True, ("S010", "004"): False,
                                            ("S046", "005"): True}
