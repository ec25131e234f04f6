"""JAFFE, KDEF, RAF-DB and generic class-folder loaders on tiny copies in the exact layouts of docs/datasets.md."""

import numpy as np
import pytest
from facemaker import blank_frame, face_frame, listing
from PIL import Image

from fercore.data import DatasetFormatError, load
from fercore.data.folders import load_folder, load_jaffe, load_kdef, load_rafdb
from fercore.data.info import info

SEVEN = ["neutral", "anger", "disgust", "fear", "happy", "sadness", "surprise"]
JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")


def save(path, gray, rgb=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(gray)
    (image.convert("RGB") if rgb else image).save(path)
    return path


def corrupt(path):
    """A truncated copy of a real image file: the header says more than the file holds."""
    path.write_bytes(path.read_bytes()[:200])


def subject_of_folds(fs):
    return dict(sorted(set(zip(fs.meta["subject"], fs.meta["fold"], strict=True))))


def assert_subject_independent(fs):
    for split in fs.splits:
        parts = [set(fs.subjects[getattr(split, p)]) for p in ("train", "val", "test")]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]


# ---------------------------------------------------------------- JAFFE


@pytest.fixture
def jaffe_root(tmp_path):
    """jaffe/jaffedbase/: 10 subjects x 3 images (.tiff, one RGB), a blank frame, a corrupt one, README, .DS_Store."""
    folder = tmp_path / "jaffe" / "jaffedbase"
    codes = ["AN", "HA", "NE", "SU", "FE", "DI", "SA"]
    number = 1
    for i, subject in enumerate(JAFFE_SUBJECTS):
        for j in range(3):
            code = codes[(i + j) % 7]
            save(folder / f"{subject}.{code}{j + 1}.{number}.tiff", face_frame(i + j), rgb=(i, j) == (2, 1))
            number += 1
    save(folder / f"UY.SA1.{number}.tiff", blank_frame())
    corrupt(save(folder / f"YM.HA3.{number + 1}.tiff", face_frame(0)))
    (folder / "README").write_text("The JAFFE images may be used only for non-commercial research.\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return tmp_path / "jaffe"


def test_jaffe(jaffe_root):
    with pytest.warns(UserWarning) as record:
        fs = load_jaffe(jaffe_root, size=64)
    assert len(fs) == 30 and fs.images.shape[1:] == (1, 64, 64) and fs.classes == SEVEN
    assert fs.protocol["left_out"] == {"no_face": ["UY.SA1.31.tiff"], "unreadable": ["YM.HA3.32.tiff"]}
    messages = sorted(str(w.message) for w in record)
    assert "no face found by the Haar cascade: UY.SA1.31.tiff" in messages[0]
    assert "unreadable image: YM.HA3.32.tiff" in messages[1]
    row = fs.meta.set_index("path").loc["KA.AN1.1.tiff"]
    assert (row["subject"], row["emotion"], row["code"], row["repeat"], row["number"]) == ("KA", "anger", "AN", 1, 1)
    assert [fs.classes[k] for k in fs.labels.tolist()] == fs.meta["emotion"].tolist()
    # 10 subjects, 10 folds: leave one subject out, validation = the next subject
    assert subject_of_folds(fs) == {s: k for k, s in enumerate(JAFFE_SUBJECTS)}
    for t, split in enumerate(fs.splits):
        assert set(fs.subjects[split.test]) == {JAFFE_SUBJECTS[t]}
        assert set(fs.subjects[split.val]) == {JAFFE_SUBJECTS[(t + 1) % 10]}
        assert len(split.train) == 24
    assert (fs.meta["box_side"] > 0.5 * 128).all()  # the Haar box, in frame pixels


def test_jaffe_bad_names(jaffe_root):
    folder = jaffe_root / "jaffedbase"
    save(folder / "KA.XX1.99.tiff", face_frame(0))
    with pytest.raises(DatasetFormatError, match="unknown expression code 'XX'") as err:
        load_jaffe(jaffe_root)
    assert str(folder / "KA.XX1.99.tiff") in str(err.value)
    (folder / "KA.XX1.99.tiff").rename(folder / "KA_AN1_99.tiff")
    with pytest.raises(DatasetFormatError, match="like KA.AN1.39.tiff") as err:
        load_jaffe(jaffe_root)
    assert "KA_AN1_99.tiff" in str(err.value)


def test_jaffe_not_found(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"x")
    with pytest.raises(DatasetFormatError, match="no JAFFE copy found.*KA.AN1.39.tiff.*photos"):
        load_jaffe(tmp_path)


# ---------------------------------------------------------------- KDEF


KDEF_CODES = ["AF", "AN", "DI", "HA", "NE", "SA", "SU"]


@pytest.fixture
def kdef_root(tmp_path):
    """KDEF/<AF01..BM05>/: sessions A and B of 5 women and 5 men; S (straight), HL and FL (blank: no face)."""
    root = tmp_path / "KDEF_and_AKDEF" / "KDEF"
    k = 0
    for session in "AB":
        for gender in "FM":
            for number in range(1, 6):
                folder = root / f"{session}{gender}{number:02d}"
                for j, code in enumerate(KDEF_CODES[:2] if session == "A" else KDEF_CODES[2:4]):
                    stem = f"{session}{gender}{number:02d}{code}"
                    portrait = np.full((174, 128), 90, dtype=np.uint8)  # taller than wide, like 562x762
                    portrait[23:151] = face_frame(k + j)
                    save(folder / f"{stem}S.JPG", portrait, rgb=True)
                    save(folder / f"{stem}HL.JPG", face_frame(k + j + 1), rgb=True)
                    save(folder / f"{stem}FL.JPG", blank_frame(), rgb=True)  # a profile: no frontal face
                k += 1
    (root / "AF01" / "Thumbs.db").write_bytes(b"\x00")
    return tmp_path


def test_kdef_frontal_by_default(kdef_root):
    fs = load_kdef(kdef_root, size=48)
    assert len(fs) == 40 and set(fs.meta["angle"]) == {"S"} and fs.classes == SEVEN
    assert fs.protocol["left_out"] == {"no_face": [], "unreadable": []}
    row = fs.meta.set_index("path").loc["AF01/AF01AFS.JPG"]
    assert (row["subject"], row["session"], row["emotion"]) == ("F01", "A", "fear")  # AF = afraid
    # sessions A and B are the same person: one subject, one fold
    assert set(fs.meta.loc[fs.meta["subject"] == "F01", "session"]) == {"A", "B"}
    assert len(set(fs.subjects)) == 10 and len(fs.splits) == 10
    assert subject_of_folds(fs) == {s: k for k, s in enumerate(sorted(set(fs.subjects)))}
    assert_subject_independent(fs)


def test_kdef_angles(kdef_root):
    with pytest.warns(UserWarning, match="left out 40 image"):
        fs = load_kdef(kdef_root, angles=["S", "HL", "FL"], size=48)
    assert len(fs) == 80 and set(fs.meta["angle"]) == {"S", "HL"}  # FL frames: no face, left out
    assert all(p.endswith("FL.JPG") for p in fs.protocol["left_out"]["no_face"])
    whole = load_kdef(kdef_root, angles="all", crop="none", size=48)
    assert len(whole) == 120 and fs.protocol["angles"] == ["FL", "HL", "S"]
    with pytest.raises(ValueError, match="angles"):
        load_kdef(kdef_root, angles="up")


def test_kdef_bad_files(kdef_root):
    folder = kdef_root / "KDEF_and_AKDEF" / "KDEF" / "AM02"
    corrupt(folder / "AM02ANS.JPG")
    with pytest.warns(UserWarning, match="unreadable"):
        fs = load_kdef(kdef_root, size=48)
    assert fs.protocol["left_out"]["unreadable"] == ["AM02/AM02ANS.JPG"]
    save(folder / "AM03ANS.JPG", face_frame(0))
    with pytest.raises(DatasetFormatError, match="image of AM03 is in the folder of AM02") as err:
        load_kdef(kdef_root)
    assert str(folder / "AM03ANS.JPG") in str(err.value)
    (folder / "AM03ANS.JPG").rename(folder / "AM02XXS.JPG")
    with pytest.raises(DatasetFormatError, match="like AF01ANS.JPG") as err:
        load_kdef(kdef_root)
    assert "AM02XXS.JPG" in str(err.value)


# ---------------------------------------------------------------- RAF-DB


RAF_LABELS = {"train": [1, 2, 3, 4, 5, 6, 7] * 3, "test": [1, 2, 3, 4, 5, 6, 7]}


@pytest.fixture
def raf_root(tmp_path):
    """RAF-DB/basic/: the label file (names as shipped: 5-digit train, 4-digit test) and 100x100 RGB aligned faces."""
    basic = tmp_path / "RAF-DB" / "basic"
    lines = []
    rng = np.random.default_rng(0)
    for part, labels in RAF_LABELS.items():
        for i, label in enumerate(labels, start=1):
            name = f"{part}_{i:05d}" if part == "train" else f"{part}_{i:04d}"
            lines.append(f"{name}.jpg {label}")
            save(basic / "Image" / "aligned" / f"{name}_aligned.jpg", rng.integers(0, 256, (100, 100), np.uint8),
                 rgb=True)
    (basic / "EmoLabel").mkdir()
    (basic / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_rafdb(raf_root):
    fs = load_rafdb(raf_root, size=50)
    assert len(fs) == 28 and fs.images.shape[1:] == (1, 50, 50) and fs.classes == SEVEN
    ids = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sadness", 6: "anger", 7: "neutral"}
    expected = [ids[k] for k in RAF_LABELS["train"] + RAF_LABELS["test"]]
    assert fs.meta["emotion"].tolist() == expected == [fs.classes[k] for k in fs.labels.tolist()]
    assert fs.subjects[0] == "train_00001" and fs.subjects[-1] == "test_0007"
    (split,) = fs.splits
    assert split.test.tolist() == list(range(21, 28))
    # validation is carved from train by the seed: 10% of every class, at least one image each
    assert len(split.val) == 7 and len(split.train) == 14
    assert sorted(fs.labels[split.val].tolist()) == list(range(7))
    other = load_rafdb(raf_root, size=50, seed=1).splits[0]
    assert set(split.val) | set(split.train) == set(range(21)) and set(split.val) != set(other.val)


def test_rafdb_bad_lines_and_images(raf_root):
    labels = raf_root / "RAF-DB" / "basic" / "EmoLabel" / "list_patition_label.txt"
    text = labels.read_text()
    labels.write_text(text.replace("train_00003.jpg 3", "train_00003.jpg three"))
    with pytest.raises(DatasetFormatError, match="line 3: expected") as err:
        load_rafdb(raf_root)
    assert str(labels) in str(err.value)
    labels.write_text(text.replace("train_00003.jpg 3", "train_00003.jpg 8"))
    with pytest.raises(DatasetFormatError, match="line 3"):
        load_rafdb(raf_root)
    labels.write_text(text)
    aligned = raf_root / "RAF-DB" / "basic" / "Image" / "aligned"
    (aligned / "test_0002_aligned.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="line 23: the aligned image .*test_0002_aligned.jpg") as err:
        load_rafdb(raf_root)
    assert str(labels) in str(err.value)
    save(aligned / "test_0002_aligned.jpg", face_frame(0))
    corrupt(aligned / "test_0002_aligned.jpg")
    with pytest.warns(UserWarning, match="unreadable image: Image/aligned/test_0002_aligned.jpg"):
        assert len(load_rafdb(raf_root)) == 27


# ---------------------------------------------------------------- generic class folders


def write_folder(root, classes=("angry", "happy", "neutral"), per_class=4, split=None):
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            folder = root / split / c if split else root / c
            save(folder / f"S{i:03d}_{c}_{i}.png", rng.integers(0, 256, (48, 48), np.uint8))
    return root


def test_folder_labels_follow_the_given_names(tmp_path):
    root = write_folder(tmp_path / "faces")
    fs = load_folder(root, classes=["neutral", "Happy", "angry"], size=32)  # not folder order; any case
    assert fs.classes == ["neutral", "Happy", "angry"] and len(fs) == 12
    assert [fs.classes[k] for k in fs.labels.tolist()] == fs.meta["emotion"].tolist()
    assert fs.meta.loc[fs.meta["path"].str.startswith("angry/"), "emotion"].eq("angry").all()
    assert len(set(fs.subjects)) == 12 and len(fs.splits) == 10  # per image: no subject ids
    assert sorted(np.concatenate([s.test for s in fs.splits]).tolist()) == list(range(12))
    by_subject = load_folder(root, classes=["neutral", "happy", "angry"], subject=r"^(S\d+)_", n_folds=4)
    assert sorted(set(by_subject.subjects)) == ["S000", "S001", "S002", "S003"]
    assert_subject_independent(by_subject)


def test_folder_with_split_folders(tmp_path):
    root = tmp_path / "fer_kaggle"
    write_folder(root, split="train", per_class=6)
    write_folder(root, split="test", per_class=2)
    fs = load("folder", root, classes=["angry", "happy", "neutral"])
    (split,) = fs.splits
    assert len(split.test) == 6 and set(fs.meta["part"][split.test]) == {"test"}
    assert len(split.val) == 3 and set(fs.meta["part"][split.val]) == {"train"}  # 10% of 6 per class, carved
    write_folder(root, split="val", per_class=1)
    (split,) = load("folder", root, classes=["angry", "happy", "neutral"]).splits
    assert len(split.val) == 3 and len(split.train) == 18


def test_folder_errors(tmp_path):
    root = write_folder(tmp_path / "faces")
    with pytest.raises(DatasetFormatError, match="unknown class folder 'happy'; expected one of angry, neutral, "
                                                 "surprise") as err:
        load_folder(root, classes=["angry", "neutral", "surprise"])
    assert str(root / "happy") in str(err.value)
    with pytest.raises(DatasetFormatError, match="no folder for class.*contempt"):
        load_folder(root, classes=["angry", "happy", "neutral", "contempt"])
    with pytest.raises(ValueError, match="classes"):
        load_folder(root, classes=[])
    with pytest.raises(DatasetFormatError, match="pattern"):
        load_folder(root, classes=["angry", "happy", "neutral"], subject=r"^P\d+")
    save(root / "stray.png", blank_frame())
    with pytest.raises(DatasetFormatError, match="outside class folders"):
        load_folder(root, classes=["angry", "happy", "neutral"])
    (root / "stray.png").unlink()
    corrupt(root / "happy" / "S001_happy_1.png")
    with pytest.warns(UserWarning, match="unreadable"):
        assert len(load_folder(root, classes=["angry", "happy", "neutral"])) == 11
    with pytest.raises(ValueError, match="no default location"):
        load("folder")


# ---------------------------------------------------------------- every format: root untouched, cache, info


def test_roots_untouched_cached_and_info(jaffe_root, kdef_root, raf_root, monkeypatch):
    folder = write_folder(kdef_root / "generic")
    cases = [("jaffe", jaffe_root, {}), ("kdef", kdef_root / "KDEF_and_AKDEF", {}), ("rafdb", raf_root, {}),
             ("folder", folder, {"classes": ["angry", "happy", "neutral"]})]
    before = {name: listing(root) for name, root, _ in cases}
    first = {}
    with pytest.warns(UserWarning):
        for name, root, options in cases:
            first[name] = load(name, root, **options)
    monkeypatch.setattr("fercore.data.folders.load_faces", lambda *a, **k: pytest.fail("images read again"))
    with pytest.warns(UserWarning, match="left out"):  # JAFFE's left-out frames are reported again
        for name, root, options in cases:
            again = load(name, root, **options)
            assert torch_equal(again.images, first[name].images) and again.meta.equals(first[name].meta)
    for name, root, _ in cases:
        assert listing(root) == before[name], name
    with pytest.warns(UserWarning):
        summary = info("jaffe", jaffe_root)
    assert summary["images"] == 30 and summary["left_out"] == {"no_face": 1, "unreadable": 1}
    assert summary["subjects"] == {"total": 10, "labelled": 10}
    generic = info("folder", folder)  # classes not given: the folders, in name order
    assert list(generic["classes"]) == ["angry", "happy", "neutral"] and "classes not given" in generic["notes"][0]
    assert any("no subject ids" in n for n in info("rafdb", raf_root)["notes"])


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())
