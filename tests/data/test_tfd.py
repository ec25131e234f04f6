"""TFD loader on tiny .mat files in the exact layout of docs/datasets.md (v5 via scipy, v7.3 via h5py)."""

import h5py
import numpy as np
import pytest
import scipy.io
from facemaker import listing

from fercore.data import DatasetFormatError, load
from fercore.data.info import info
from fercore.data.tfd import CLASSES, TFD_EXPRESSIONS, find_tfd_file, load_tfd, read_tfd

N = 40


def tfd_arrays(side=48, seed=0):
    """N images; every 3rd unlabelled (-1), every 5th identity unknown (-1), folds 1/2/3 for labelled rows.

    Column vectors are (N, 1), as in the real file (savemat would write a 1-D array as (1, N)).
    """
    rng = np.random.default_rng(seed)
    row = np.arange(N)
    labs_ex = np.where(row % 3 == 0, -1, 1 + row % 7).reshape(N, 1)
    labs_id = np.where(row % 5 == 0, -1, 100 + row // 4).reshape(N, 1)
    folds = np.zeros((N, 5), dtype=np.int64)
    labelled = labs_ex[:, 0] > 0
    folds[labelled] = 1 + (row[labelled, None] + np.arange(5)) % 3
    return {"images": rng.integers(0, 256, (N, side, side)).astype(np.uint8), "labs_ex": labs_ex.astype(float),
            "labs_id": labs_id.astype(float), "folds": folds.astype(float)}


def write_v5(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, arrays)
    return path


def write_v73(path, arrays):
    """A MATLAB v7.3 file: HDF5 behind a 512-byte header, every array stored transposed (column-major)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            f[key] = np.asarray(value).T
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:  # 116 bytes of text, 8 of subsystem offset, version 0x0200, endian "IM"
        f.write(text.ljust(116) + b" " * 8 + b"\x00\x02" + b"IM")
    return path


@pytest.fixture
def tfd_root(tmp_path):
    arrays = tfd_arrays()
    write_v5(tmp_path / "tfd" / "TFD_48x48.mat", arrays)
    return tmp_path / "tfd", arrays


def test_labelled_images_classes_by_name_and_subjects(tfd_root):
    root, arrays = tfd_root
    fs = load_tfd(root, resolution=48, size=48)
    labelled = arrays["labs_ex"][:, 0] > 0
    assert len(fs) == labelled.sum() and fs.image_size == 48
    np.testing.assert_array_equal(fs.images[:, 0].numpy(), arrays["images"][labelled])
    assert fs.classes == ["neutral", "anger", "disgust", "fear", "happy", "sadness", "surprise"] == CLASSES
    names = [TFD_EXPRESSIONS[int(e)] for e in arrays["labs_ex"][labelled, 0]]  # 1 anger ... 7 neutral
    assert [fs.classes[k] for k in fs.labels.tolist()] == names == fs.meta["emotion"].tolist()
    rows = np.flatnonzero(labelled)
    ids = arrays["labs_id"][rows, 0].astype(int)
    expected = [f"tfd{i}" if i >= 0 else f"tfd-row{r + 1}" for i, r in zip(ids, rows, strict=True)]
    assert fs.subjects.tolist() == expected
    assert len(set(s for s in expected if "row" in s)) == (ids < 0).sum()  # unknown identity: unique subjects
    assert fs.meta["row"].tolist() == (rows + 1).tolist()


def test_official_folds(tfd_root):
    root, arrays = tfd_root
    fs = load_tfd(root, resolution=48, size=48)
    assert len(fs.splits) == 5
    folds = arrays["folds"][arrays["labs_ex"][:, 0] > 0].astype(int)
    for k, split in enumerate(fs.splits):
        for part, code in (("train", 1), ("val", 2), ("test", 3)):
            assert getattr(split, part).tolist() == np.flatnonzero(folds[:, k] == code).tolist()


def test_resize_and_unlabelled(tfd_root):
    root, arrays = tfd_root
    fs = load_tfd(root, resolution=48, size=96)
    assert fs.images.shape[1:] == (1, 96, 96)
    everything = load_tfd(root, resolution=48, size=48, unlabelled=True)
    assert len(everything) == N and int((everything.labels == -1).sum()) == (arrays["labs_ex"] < 0).sum()
    unlabelled = set(np.flatnonzero(everything.labels.numpy() == -1).tolist())
    for split in everything.splits:
        assert not unlabelled & set(np.concatenate([split.train, split.val, split.test]).tolist())


def test_v73_file_reads_the_same(tmp_path, tfd_root):
    root, arrays = tfd_root
    path = write_v73(tmp_path / "v73" / "TFD_48x48.mat", arrays)
    with pytest.raises(NotImplementedError):  # what scipy says about v7.3, hence h5py
        scipy.io.loadmat(path)
    a, b = read_tfd(path), read_tfd(root / "TFD_48x48.mat")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["images"].shape == (N, 48, 48)


def test_find_file_below_root_and_by_resolution(tmp_path):
    write_v5(tmp_path / "TFD" / "release" / "TFD_96x96.mat", tfd_arrays(side=96))
    assert find_tfd_file(tmp_path).name == "TFD_96x96.mat"
    with pytest.raises(DatasetFormatError, match="TFD_48x48.mat") as err:
        find_tfd_file(tmp_path, resolution=48)
    assert "TFD_96x96.mat" in str(err.value) and "resolution=96" in str(err.value)  # says what it did find
    fs = load("tfd", tmp_path)  # the paper's file and size by default
    assert fs.image_size == 96 and fs.name == "tfd"


@pytest.mark.parametrize("damage,expected", [
    (lambda a: a.pop("folds"), "missing key.*'folds'"),
    (lambda a: a.update(images=a["images"][:, :, :40]), "'images'.*square.*\\(40, 48, 40\\)"),
    (lambda a: a.update(images=a["images"][0]), "'images'.*got shape \\(48, 48\\)"),
    (lambda a: a.update(labs_ex=a["labs_ex"][:-1]), "'labs_ex'.*shape \\(40, 1\\).*\\(39, 1\\)"),
    (lambda a: a.update(labs_ex=a["labs_ex"].T), "'labs_ex'.*shape \\(40, 1\\).*\\(1, 40\\)"),
    (lambda a: a.update(folds=a["folds"][:, :4]), "'folds'.*\\(40, 5\\).*\\(40, 4\\)"),
    (lambda a: a["labs_ex"].__setitem__((7, 0), 9), "'labs_ex', row 8: value 9"),
    (lambda a: a["folds"].__setitem__((4, 2), 5), "'folds', row 5: value 5"),
    (lambda a: a.update(images=a["images"] * 2.0), "'images'.*0-255"),
])
def test_damaged_file(tmp_path, damage, expected):
    arrays = tfd_arrays()
    damage(arrays)
    path = write_v5(tmp_path / "TFD_48x48.mat", arrays)
    with pytest.raises(DatasetFormatError, match=expected) as err:
        load_tfd(tmp_path, resolution=48)
    assert str(path) in str(err.value)


def test_truncated_and_foreign_files(tmp_path):
    path = write_v5(tmp_path / "TFD_48x48.mat", tfd_arrays())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetFormatError, match="cannot read") as err:
        load_tfd(tmp_path, resolution=48)
    assert str(path) in str(err.value)
    path.write_text("images,labs_ex\n1,2\n")
    with pytest.raises(DatasetFormatError) as err:
        load_tfd(tmp_path, resolution=48)
    assert str(path) in str(err.value)


def test_root_untouched_cache_and_info(tfd_root, monkeypatch):
    root, _ = tfd_root
    before = listing(root)
    first = load_tfd(root, resolution=48)
    monkeypatch.setattr("fercore.data.tfd._build", lambda *a: pytest.fail("read again"))
    second = load_tfd(root, resolution=48)
    assert first.labels.tolist() == second.labels.tolist() and listing(root) == before
    summary = info("tfd", root, resolution=48)
    assert summary["images"] == len(first) and len(summary["folds"]) == 5
    assert any("no identity" in note for note in summary["notes"])


def test_a_copy_with_only_the_48x48_file_is_read_and_says_so(tfd_root, capsys):
    root, _ = tfd_root
    with pytest.warns(UserWarning, match="holds TFD_48x48.mat but no TFD_96x96.mat: using the 48x48 faces"):
        fs = load_tfd(root, size=48)
    assert fs.protocol["resolution"] == 48 and len(fs) == 26
    from fercore.cli import main

    with pytest.warns(UserWarning, match="using the 48x48 faces"):
        assert main(["info", "tfd", "--root", str(root), "--json"]) == 0
    assert main(["info", "tfd", "--root", str(root), "--option", "resolution=48", "--option", "size=48"]) == 0
    assert "protocol: " in capsys.readouterr().out
    assert main(["info", "tfd", "--root", str(root), "--option", "resolution=96"]) == 2
    assert "no TFD_96x96.mat found" in capsys.readouterr().err
