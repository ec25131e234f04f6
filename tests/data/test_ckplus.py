"""CK+ loader on tiny hand-written trees in the exact on-disk format of docs/datasets.md."""

import json
import os
import sys
import types

import numpy as np
import pytest
import torch
from builders import DOT, SUBJECTS, SeqSpec, frame_image, matlab, write_ckplus_tree

import fercore.data
from fercore.cli import main
from fercore.data import NO_LABEL, load
from fercore.data.ckplus import load_ckplus
from fercore.data.ckplus_files import CKPlusFormatError, read_landmarks
from fercore.data.crop import crop_square, landmark_box
from fercore.facs import AU_ABSENT, AU_NOT_CODED, AU_PRESENT_UNKNOWN, CKPLUS_EMOTIONS


def expected_count(tree, frames="paper", classes=CKPLUS_EMOTIONS):
    """Images a protocol takes from the tree: first frame neutral, up to 3 expressive frames."""
    n = 0
    for s in tree.labelled():
        if CKPLUS_EMOTIONS[s.emotion] not in classes:
            continue
        neutral = frames in ("paper", "peak") and "neutral" in classes
        n += neutral + (min(3, s.n_frames - 1) if frames in ("paper", "last3") else 1)
    return n


def test_landmark_crop_needs_landmarks_folder(make_ckplus_tree):
    tree = make_ckplus_tree(landmarks=False)
    with pytest.raises(CKPlusFormatError, match="Landmarks") as err:
        load_ckplus(tree.root, crop="landmarks")
    assert str(tree.root) in str(err.value)
    # crop="auto" (the default) falls back to the Haar cascade, which finds no face in these frames
    with pytest.raises(CKPlusFormatError, match="no face in any"):
        load_ckplus(tree.root)


# ---------------------------------------------------------------- protocols


def test_paper_protocol(ckplus_tree):
    fs = load_ckplus(ckplus_tree.root)
    assert fs.classes == list(CKPLUS_EMOTIONS)
    assert len(fs) == expected_count(ckplus_tree)
    assert fs.images.shape == (len(fs), 1, 96, 96) and fs.images.dtype == torch.uint8
    meta = fs.meta
    assert set(meta.columns) >= {"path", "subject", "sequence", "frame", "n_frames", "role", "emotion",
                                 "labelled"}
    assert (meta["subject"] == fs.subjects).all() and meta["labelled"].all()
    names = [fs.classes[k] for k in fs.labels.tolist()]
    assert names == meta["emotion"].where(meta["role"] != "neutral", "neutral").tolist()
    # neutral = frame 1; the last three frames carry the label, the last one is the apex
    for (subject, sequence), rows in meta.groupby(["subject", "sequence"]):
        s = ckplus_tree.seq(subject, sequence)
        assert rows["frame"].tolist() == [1] + list(range(max(2, s.n_frames - 2), s.n_frames + 1))
        assert rows["role"].tolist()[-1] == "apex" and rows["emotion"].iloc[0] == CKPLUS_EMOTIONS[s.emotion]
    short = meta[(meta["subject"] == "S011") & (meta["sequence"] == "001")]  # 3 frames
    assert short["frame"].tolist() == [1, 2, 3] and short["role"].tolist() == ["neutral", "onset", "apex"]
    assert meta["path"].iloc[0] == ("extended-cohn-kanade-images/cohn-kanade-images/"
                                    "S005/001/S005_001_00000001.png")


def test_images_are_the_landmark_crops_of_their_frames(ckplus_tree):
    """Every image (RGB sequence included) is exactly the crop of its frame around its own landmarks."""
    fs = load_ckplus(ckplus_tree.root, size=48)
    assert (fs.meta["subject"] + fs.meta["sequence"]).isin(["S014002"]).any()  # the RGB sequence is in
    for i, row in fs.meta.iterrows():
        s = ckplus_tree.seq(row["subject"], row["sequence"])
        points = read_landmarks(ckplus_tree.landmark_path(s, row["frame"]))
        expected = crop_square(frame_image(s, row["frame"]), landmark_box(points), 48)
        np.testing.assert_array_equal(fs.images[i, 0].numpy(), expected)


def test_landmarks_in_crop_coordinates_match_the_crop(ckplus_tree):
    fs = load_ckplus(ckplus_tree.root)
    assert fs.landmarks.shape == (len(fs), 68, 2) and fs.landmarks.dtype == torch.float32
    negative = fs.meta["subject"] == "S026"  # faces reaching past the frame edge: crops are zero-padded
    assert negative.any() and (fs.images[torch.from_numpy(negative.to_numpy().copy()), 0, :5, :5] == 0).all()
    for i in range(len(fs)):
        image = fs.images[i, 0].numpy()
        row, col = np.unravel_index(np.argmax(image), image.shape)
        x, y = fs.landmarks[i, DOT].tolist()
        assert abs(col - x) <= 1.0 and abs(row - y) <= 1.0, (i, col, row, x, y)


@pytest.mark.parametrize("frames", ["paper", "last3", "peak"])
def test_frames_protocols(ckplus_tree, frames):
    fs = load_ckplus(ckplus_tree.root, frames=frames)
    assert len(fs) == expected_count(ckplus_tree, frames)
    roles = fs.meta["role"].value_counts().to_dict()
    assert roles.get("apex") == len(ckplus_tree.labelled())
    assert roles.get("neutral", 0) == (0 if frames == "last3" else len(ckplus_tree.labelled()))
    if frames == "peak":
        assert "onset" not in roles


@pytest.mark.parametrize("classes", [7, 6])
def test_class_subsets_map_labels_by_name(ckplus_tree, classes):
    fs = load_ckplus(ckplus_tree.root, classes=classes)
    dropped = {"neutral"} | ({"contempt"} if classes == 6 else set())
    assert fs.classes == [c for c in CKPLUS_EMOTIONS if c not in dropped]
    kept = [c for c in CKPLUS_EMOTIONS if c not in dropped]
    assert len(fs) == expected_count(ckplus_tree, classes=kept)
    assert "neutral" not in set(fs.meta["role"]) and not set(fs.meta["emotion"]) & dropped
    assert [fs.classes[k] for k in fs.labels.tolist()] == fs.meta["emotion"].tolist()
    if classes == 7:
        assert fs.classes.index("contempt") == 1 and (fs.labels == 1).any()


def test_action_unit_codes(ckplus_tree):
    fs = load_ckplus(ckplus_tree.root)
    numbers = sorted({au for s in ckplus_tree.labelled() for au, _ in s.facs})
    assert fs.au_codes == [f"AU{n}" for n in numbers]
    aus, meta = fs.aus.numpy(), fs.meta
    assert (aus[meta["role"] == "neutral"] == AU_ABSENT).all()
    assert (aus[meta["role"] == "onset"] == AU_NOT_CODED).all()
    for i in np.flatnonzero(meta["role"] == "apex"):
        s = ckplus_tree.seq(meta["subject"][i], meta["sequence"][i])
        expected = {f"AU{au}": (AU_PRESENT_UNKNOWN if level == 0 else level) for au, level in s.facs}
        assert {c: int(v) for c, v in zip(fs.au_codes, aus[i], strict=True) if v != AU_ABSENT} == expected
    assert (aus == AU_PRESENT_UNKNOWN).any()  # CK+ intensity 0 -> 9
    assert fs.au_coded().sum() == (meta["role"] != "onset").sum()


def test_without_facs_folder_there_are_no_au_columns(make_ckplus_tree):
    fs = load_ckplus(make_ckplus_tree(facs=False).root)
    assert fs.au_codes == [] and fs.aus.shape == (len(fs), 0)


def test_unlabelled_apex_frames_are_outside_every_split(ckplus_tree):
    plain = load_ckplus(ckplus_tree.root)
    fs = load_ckplus(ckplus_tree.root, unlabelled=True)
    extra = fs.labels == NO_LABEL
    assert len(fs) == len(plain) + 2 and int(extra.sum()) == 2  # S005/003 and S046/005 have FACS
    rows = fs.meta[extra.numpy()]
    assert set(zip(rows["subject"], rows["sequence"], strict=True)) == {("S005", "003"), ("S046", "005")}
    assert (rows["role"] == "apex").all() and (~rows["labelled"]).all() and (rows["emotion"] == "").all()
    assert (rows["frame"] == rows["n_frames"]).all() and (rows["fold"] == -1).all()
    assert "AU38" in fs.au_codes and "AU43" in fs.au_codes
    i = int(np.flatnonzero(extra.numpy() & (fs.meta["subject"] == "S005").to_numpy())[0])
    assert fs.aus[i, fs.au_codes.index("AU38")] == AU_PRESENT_UNKNOWN
    assert fs.aus[i, fs.au_codes.index("AU12")] == 2
    unlabelled = set(np.flatnonzero(extra.numpy()))
    for split in fs.splits:
        assert not unlabelled & set(np.concatenate([split.train, split.val, split.test]).tolist())


# ---------------------------------------------------------------- folds


def test_subject_folds_follow_the_paper_rule(ckplus_tree):
    fs = load_ckplus(ckplus_tree.root)
    fold_of = {s: i % 10 for i, s in enumerate(sorted(SUBJECTS))}  # S044 -> 0, S046 -> 1
    assert fold_of["S044"] == 0 and fold_of["S046"] == 1
    assert (fs.meta["fold"] == fs.meta["subject"].map(fold_of)).all()
    assert len(fs.splits) == 10
    tested = np.zeros(len(fs), dtype=int)
    for t, split in enumerate(fs.splits):
        parts = {p: set(fs.subjects[getattr(split, p)]) for p in ("train", "val", "test")}
        assert parts["test"] == {s for s, f in fold_of.items() if f == t}
        assert parts["val"] == {s for s, f in fold_of.items() if f == (t + 1) % 10}
        assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
        assert not parts["val"] & parts["test"]
        assert len(split.train) + len(split.val) + len(split.test) == len(fs)
        tested[split.test] += 1
    assert (tested == 1).all()


def test_fewer_than_ten_labelled_subjects_is_an_error(make_ckplus_tree):
    seqs = [SeqSpec(f"S{100 + i:03d}", "001", 5, emotion=1 + i % 7, facs=[(4, 2)]) for i in range(9)]
    tree = make_ckplus_tree(seqs)
    with pytest.raises(CKPlusFormatError, match="at least 10"):
        load_ckplus(tree.root)


# ---------------------------------------------------------------- bad input


def test_emotion_file_naming_a_frame_without_image(ckplus_tree):
    s = ckplus_tree.seq("S032", "001")
    image = ckplus_tree.image_path(s, s.n_frames)
    image.unlink()
    with pytest.raises(CKPlusFormatError) as err:
        load_ckplus(ckplus_tree.root)
    assert str(ckplus_tree.emotion_path(s)) in str(err.value) and str(image) in str(err.value)


def test_emotion_file_of_a_sequence_without_images(ckplus_tree):
    s = ckplus_tree.seq("S032", "001")
    for frame in range(1, s.n_frames + 1):
        ckplus_tree.image_path(s, frame).unlink()
    with pytest.raises(CKPlusFormatError, match="has no image") as err:  # empty image folder
        load_ckplus(ckplus_tree.root)
    assert str(ckplus_tree.emotion_path(s)) in str(err.value)
    ckplus_tree.image_path(s, 1).parent.rmdir()
    with pytest.raises(CKPlusFormatError, match="has no image") as err:  # no image folder at all
        load_ckplus(ckplus_tree.root)
    assert str(ckplus_tree.emotion_path(s)) in str(err.value)


def test_malformed_emotion_file_in_tree(ckplus_tree):
    path = ckplus_tree.emotion_path(ckplus_tree.seq("S034", "002"))
    path.write_text("   surprise\n")
    with pytest.raises(CKPlusFormatError, match="line 1") as err:
        load_ckplus(ckplus_tree.root)
    assert str(path) in str(err.value)


def test_malformed_facs_file_in_tree(ckplus_tree):
    path = ckplus_tree.facs_path(ckplus_tree.seq("S034", "002"))
    path.write_text(matlab(4, 2) + "\n" + matlab(5) + "\n")
    with pytest.raises(CKPlusFormatError, match="line 2") as err:
        load_ckplus(ckplus_tree.root)
    assert str(path) in str(err.value)


def test_missing_landmark_file(ckplus_tree):
    s = ckplus_tree.seq("S037", "001")
    path = ckplus_tree.landmark_path(s, s.n_frames - 1)
    path.unlink()
    with pytest.raises(CKPlusFormatError, match="landmark file") as err:
        load_ckplus(ckplus_tree.root)
    assert str(path) in str(err.value)
    # a frame the protocol does not use may lack its landmarks
    ckplus_tree.landmark_path(s, 2).unlink()
    assert len(load_ckplus(ckplus_tree.root, frames="peak")) == expected_count(ckplus_tree, "peak")


def test_unreadable_image(ckplus_tree):
    s = ckplus_tree.seq("S042", "002")
    path = ckplus_tree.image_path(s, 1)
    path.write_bytes(b"not a png")
    with pytest.raises(CKPlusFormatError, match="cannot read image") as err:
        load_ckplus(ckplus_tree.root)
    assert str(path) in str(err.value)


def test_bad_options(ckplus_tree):
    with pytest.raises(ValueError, match="crop"):
        load_ckplus(ckplus_tree.root, crop="eyes")
    with pytest.raises(ValueError, match="frames"):
        load_ckplus(ckplus_tree.root, frames="all")
    with pytest.raises(ValueError, match="classes"):
        load_ckplus(ckplus_tree.root, classes=5)


# ---------------------------------------------------------------- cache, root untouched


def _listing(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_dataset_root_is_not_modified(ckplus_tree):
    before = _listing(ckplus_tree.root)
    load_ckplus(ckplus_tree.root, unlabelled=True)
    load_ckplus(ckplus_tree.root)
    assert _listing(ckplus_tree.root) == before


def test_second_load_hits_the_cache(ckplus_tree, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERCORE_CACHE", str(cache))
    first = load_ckplus(ckplus_tree.root)
    assert len(list(cache.glob("ckplus-*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("images were read again")

    monkeypatch.setattr("fercore.data.ckplus._build", fail)
    second = load_ckplus(ckplus_tree.root)
    for what in ("images", "labels", "aus", "landmarks"):
        assert torch.equal(getattr(first, what), getattr(second, what))
    assert (first.subjects == second.subjects).all() and first.meta.equals(second.meta)
    assert first.classes == second.classes and first.au_codes == second.au_codes
    assert first.protocol == second.protocol
    for a, b in zip(first.splits, second.splits, strict=True):
        assert all(np.array_equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    # a changed file of the copy invalidates the entry
    path = ckplus_tree.emotion_path(ckplus_tree.seq("S005", "001"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="read again"):
        load_ckplus(ckplus_tree.root)


# ---------------------------------------------------------------- fercore.data.load and `fercore info`


def test_load_dispatches_by_name(ckplus_tree):
    fs = load("ckplus", ckplus_tree.root, frames="peak")
    assert fs.name == "ckplus" and len(fs) == expected_count(ckplus_tree, "peak")
    with pytest.raises(ValueError, match="ckplus.*synthfacs"):
        load("mnist")


def test_synthfacs_is_written_when_missing(tmp_path, monkeypatch):
    written = []

    def write_tree(root):
        written.append(root)
        write_ckplus_tree(root)

    checked = []
    fake = types.SimpleNamespace(write_tree=write_tree, warn_if_outdated=checked.append)
    monkeypatch.setitem(sys.modules, "fercore.data.synthfacs", fake)
    monkeypatch.setenv("FERCORE_DATA", str(tmp_path / "data"))
    fs = load("synthfacs")
    assert written == [tmp_path / "data" / "synthfacs"] and fs.name == "synthfacs"
    assert fs.protocol["dataset"] == "synthfacs"
    load("synthfacs")  # already there: not written again, its renderer version checked each time
    assert len(written) == 1 and checked == written * 2
    assert fercore.data.dataset_root("synthfacs") == tmp_path / "data" / "synthfacs"


def test_info_cli_json(ckplus_tree, capsys):
    assert main(["info", "ckplus", "--root", str(ckplus_tree.root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    fs = load_ckplus(ckplus_tree.root)
    assert summary["classes"] == {c: int((fs.labels == k).sum()) for k, c in enumerate(fs.classes)}
    assert summary["images"] == len(fs) == sum(summary["classes"].values())
    assert summary["sequences"] == {"labelled": 24, "unlabelled": 3}
    assert summary["subjects"] == {"total": 12, "labelled": 12}
    assert [f["test"] for f in summary["folds"]] == [len(s.test) for s in fs.splits]


def test_info_cli_tables(ckplus_tree, capsys):
    main(["info", "ckplus", "--root", str(ckplus_tree.root)])
    out = capsys.readouterr().out
    assert "contempt" in out and "train_subjects" in out and "24 labelled" in out


# ---------------------------------------------------------------- more quirks of real copies


def test_macos_zip_debris_is_ignored(ckplus_tree):
    """AppleDouble ``._*`` files beside every file and a ``__MACOSX`` mirror change nothing."""
    plain = load_ckplus(ckplus_tree.root, use_cache=False)
    for path in list(ckplus_tree.root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 Mac OS X")
    mirror = ckplus_tree.root / "__MACOSX" / "Emotion_labels" / "Emotion" / "S005" / "001"
    mirror.mkdir(parents=True)
    (mirror / "._S005_001_00000005_emotion.txt").write_bytes(b"\x00\x05\x16\x07")
    fs = load_ckplus(ckplus_tree.root, use_cache=False)
    assert fs.meta.equals(plain.meta) and torch.equal(fs.images, plain.images)


def test_truncated_png_names_the_file(ckplus_tree):
    s = ckplus_tree.seq("S042", "001")
    path = ckplus_tree.image_path(s, s.n_frames)
    path.write_bytes(path.read_bytes()[:60])  # a download or unzip that stopped early
    with pytest.raises(CKPlusFormatError, match="cannot read image") as err:
        load_ckplus(ckplus_tree.root)
    assert str(path) in str(err.value)
    assert isinstance(err.value, fercore.data.DatasetFormatError)  # one base class for every format


def test_load_ckplus_through_load_with_either_crop(ckplus_tree):
    fs = load("ckplus", ckplus_tree.root, crop="landmarks", frames="peak")
    assert fs.protocol["crop"] == "landmarks"
    assert load("ckplus", ckplus_tree.root, frames="peak").protocol == fs.protocol  # "auto": landmarks found
