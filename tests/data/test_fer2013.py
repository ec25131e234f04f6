"""FER2013 / FER+ loaders on tiny csv files in the exact layout of docs/datasets.md."""

import numpy as np
import pytest
from facemaker import listing

from fercore.bench.load import write_fake_fer2013
from fercore.data import DatasetFormatError, load
from fercore.data.fer2013 import (
    FER_EMOTIONS,
    FERPLUS_VOTES,
    ferplus_labels,
    find_fer2013_csv,
    load_fer2013,
    load_ferplus,
    parse_pixels,
)
from fercore.data.info import info

USAGE = ["Training"] * 8 + ["PublicTest"] * 3 + ["PrivateTest"] * 3
N = len(USAGE)


def faces(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (N, 48, 48)).astype(np.uint8)


def write_fer(path, pixels, kaggle=False, newline="\n"):
    """fer2013.csv (``emotion,pixels,Usage``) or Kaggle's icml_face_data.csv (``emotion, Usage, pixels``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["emotion, Usage, pixels" if kaggle else "emotion,pixels,Usage"]
    for i, usage in enumerate(USAGE):
        text = " ".join(map(str, pixels[i].ravel().tolist()))
        lines.append(f"{i % 7},{usage},{text}" if kaggle else f"{i % 7},{text},{usage}")
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


# FER+ votes per row, in FERPLUS_VOTES order (neutral happiness surprise sadness anger disgust fear contempt unknown NF)
VOTES = [
    [10, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # neutral
    [1, 7, 1, 0, 0, 0, 0, 0, 1, 0],  # happiness (single votes dropped: 7 of 7)
    [4, 0, 0, 3, 0, 0, 0, 0, 0, 3],  # majority: 4 of 10 -> dropped; argmax: neutral
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF = 10, empty name -> not a face
    [0, 0, 6, 0, 0, 0, 4, 0, 0, 0],  # surprise
    [0, 0, 0, 0, 3, 3, 0, 2, 2, 0],  # no majority (3 of 10); argmax: anger (first of the tie)
    [0, 0, 0, 0, 0, 0, 0, 0, 8, 2],  # unknown wins -> dropped by both rules
    [2, 0, 0, 0, 0, 0, 0, 6, 1, 1],  # contempt: 6 of 8 after dropping single votes
    [0, 0, 0, 9, 0, 0, 0, 0, 1, 0],  # sadness
    [0, 5, 0, 0, 0, 0, 0, 0, 0, 5],  # tie happiness / NF: majority drops (5 of 10); argmax: happiness
    [0, 0, 0, 0, 0, 7, 3, 0, 0, 0],  # disgust
    [0, 0, 0, 0, 0, 0, 10, 0, 0, 0],  # fear
    [0, 0, 0, 0, 8, 1, 1, 0, 0, 0],  # anger
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF = 10, empty name
]
MAJORITY = ["neutral", "happy", None, None, "surprise", None, None, "contempt", "sadness", None, "disgust", "fear",
            "anger", None]


def write_ferplus(path, votes=VOTES, usage=USAGE):
    lines = ["Usage,Image name," + ",".join(FERPLUS_VOTES)]
    for i, (u, v) in enumerate(zip(usage, votes, strict=True)):
        name = "" if v[9] == 10 else f"fer{i:07d}.png"
        lines.append(f"{u},{name}," + ",".join(map(str, v)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer_root(tmp_path):
    pixels = faces()
    write_fer(tmp_path / "fer2013" / "fer2013.csv", pixels)
    write_ferplus(tmp_path / "fer2013" / "fer2013new.csv")
    return tmp_path, pixels


# ---------------------------------------------------------------- FER2013


@pytest.mark.parametrize("kaggle,newline", [(False, "\n"), (True, "\n"), (False, "\r\n")])
def test_fer2013_both_headers(tmp_path, kaggle, newline):
    pixels = faces()
    name = "icml_face_data.csv" if kaggle else "fer2013.csv"
    write_fer(tmp_path / name, pixels, kaggle=kaggle, newline=newline)
    fs = load_fer2013(tmp_path, size=48)
    np.testing.assert_array_equal(fs.images[:, 0].numpy(), pixels)
    assert fs.classes == ["neutral", "anger", "disgust", "fear", "happy", "sadness", "surprise"]
    expected = [FER_EMOTIONS[i % 7] for i in range(N)]  # 0 angry ... 6 neutral, mapped by name
    assert [fs.classes[k] for k in fs.labels.tolist()] == expected == fs.meta["emotion"].tolist()
    assert fs.meta["emotion"][0] == "anger" and fs.meta["emotion"][6] == "neutral"
    (split,) = fs.splits
    assert split.train.tolist() == list(range(8)) and split.val.tolist() == [8, 9, 10]
    assert split.test.tolist() == [11, 12, 13]
    assert len(set(fs.subjects)) == N  # no subject ids: one subject per image
    assert fs.meta["line"].tolist() == list(range(2, N + 2))


def test_fer2013_resized_and_found_below_root(fer_root):
    root, pixels = fer_root
    assert find_fer2013_csv(root) == root / "fer2013" / "fer2013.csv"
    fs = load("fer2013", root)
    assert fs.images.shape == (N, 1, 96, 96)
    assert abs(float(fs.images.float().mean()) - float(pixels.mean())) < 2


@pytest.mark.parametrize("damage,expected", [
    (lambda rows: rows.__setitem__(3, rows[3].rsplit(" ", 1)[0] + ",Training"),
     "line 4: expected 2,304 pixel values.*2,303"),
    (lambda rows: rows.__setitem__(3, "0,1 2 3 x,Training"), "line 4: pixel 4 is 'x'"),
    (lambda rows: rows.__setitem__(5, rows[5].replace(",", ",300 ", 1)), "line 6: expected 2,304.*2,305"),
    (lambda rows: rows.__setitem__(5, "0," + " ".join(["256"] + ["1"] * 2303) + ",Training"), "line 6: pixel 1 is 256"),
    (lambda rows: rows.__setitem__(2, "9" + rows[2][1:]), "line 3: emotion must be an id 0-6, got '9'"),
    (lambda rows: rows.__setitem__(2, rows[2].replace("Training", "Train")), "line 3: Usage must be one of"),
    (lambda rows: rows.__setitem__(2, rows[2] + ",extra"), "line 3: expected 3 fields"),
    (lambda rows: rows.__setitem__(0, "label,pixels,Usage"), "line 1: header.*missing emotion"),
    (lambda rows: rows.__setitem__(len(rows) - 1, rows[-1][:3000]), f"line {N + 1}: expected 3 fields"),
])
def test_fer2013_damaged_rows(tmp_path, damage, expected):
    path = write_fer(tmp_path / "fer2013.csv", faces())
    rows = path.read_text().splitlines()
    damage(rows)
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetFormatError, match=expected) as err:
        load_fer2013(tmp_path)
    assert str(path) in str(err.value)


def test_fer2013_truncated_last_row(tmp_path):
    path = write_fer(tmp_path / "fer2013.csv", faces())
    text = path.read_text()
    cut = text.rindex(",PrivateTest")
    path.write_text(text[:cut - 200] + ",PrivateTest\n")  # the download stopped mid-row
    with pytest.raises(DatasetFormatError, match=f"line {N + 1}: expected 2,304 pixel values") as err:
        load_fer2013(tmp_path)
    assert str(path) in str(err.value)


def test_fer2013_missing_file(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(DatasetFormatError, match="fer2013.csv or icml_face_data.csv") as err:
        load_fer2013(tmp_path)
    assert "notes.csv" in str(err.value)


def test_parse_pixels_matches_python():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (5, 2304))
    texts = [" ".join(map(str, row)) for row in pixels]
    texts[2] = "  " + texts[2].replace(" ", "  ") + " "  # extra spaces are still separators
    np.testing.assert_array_equal(parse_pixels(texts).reshape(5, -1), pixels)


# ---------------------------------------------------------------- FER+


def test_ferplus_labels_rules():
    votes = np.array(VOTES)
    majority = ferplus_labels(votes, "majority")
    assert [None if k < 0 else FERPLUS_VOTES[k] for k in majority] == \
        ["neutral", "happiness", None, None, "surprise", None, None, "contempt", "sadness", None, "disgust",
         "fear", "anger", None]
    argmax = ferplus_labels(votes, "argmax")
    assert [None if k < 0 else FERPLUS_VOTES[k] for k in argmax] == \
        ["neutral", "happiness", "neutral", None, "surprise", "anger", None, "contempt", "sadness", "happiness",
         "disgust", "fear", "anger", None]
    with pytest.raises(ValueError, match="rule"):
        ferplus_labels(votes, "soft")


@pytest.mark.parametrize("rule", ["majority", "argmax"])
def test_ferplus_aligned_by_row(fer_root, rule):
    root, pixels = fer_root
    fs = load_ferplus(root, rule=rule, size=48)
    assert fs.classes == ["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    keep = [i for i, e in enumerate(MAJORITY) if e] if rule == "majority" else [0, 1, 2, 4, 5, 7, 8, 9, 10, 11, 12]
    assert fs.meta["row"].tolist() == keep
    np.testing.assert_array_equal(fs.images[:, 0].numpy(), pixels[keep])  # the face of the same row
    if rule == "majority":
        assert [fs.classes[k] for k in fs.labels.tolist()] == [MAJORITY[i] for i in keep]
        assert fs.protocol["dropped"] == {"not_a_face": 2, "no_majority": 4}
    assert (fs.meta["name"] != "").all()
    assert fs.meta["fer2013_emotion"].tolist() == [FER_EMOTIONS[i % 7] for i in keep]
    assert fs.meta["votes_contempt"].tolist() == [VOTES[i][7] for i in keep]
    (split,) = fs.splits
    usage = np.array(USAGE)[keep]
    assert split.test.tolist() == np.flatnonzero(usage == "PrivateTest").tolist()
    assert fs.subjects.tolist() == [f"fer{i:05d}" for i in keep]  # the same ids as in FER2013


def test_ferplus_misaligned_or_missing(fer_root):
    root, _ = fer_root
    plus = root / "fer2013" / "fer2013new.csv"
    write_ferplus(plus, VOTES[:-1], USAGE[:-1])
    with pytest.raises(DatasetFormatError, match="13 data rows.*14") as err:
        load_ferplus(root)
    assert str(plus) in str(err.value)
    write_ferplus(plus, VOTES, USAGE[:7] + ["PublicTest"] + USAGE[8:])
    with pytest.raises(DatasetFormatError, match="line 9 says Usage 'PublicTest'.*line 9 says 'Training'"):
        load_ferplus(root)
    lines = plus.read_text().splitlines()
    lines[3] = lines[3].replace(",0,0,0,0,0,3", ",0,0,0,zero,0,3")
    plus.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match="line 4: the votes") as err:
        load_ferplus(root)
    assert str(plus) in str(err.value)
    plus.unlink()
    with pytest.raises(DatasetFormatError, match="fer2013new.csv"):
        load_ferplus(root)


def test_root_untouched_cache_and_info(fer_root, monkeypatch):
    root, _ = fer_root
    before = listing(root)
    first = load("ferplus", root)
    load("fer2013", root)
    monkeypatch.setattr("fercore.data.fer2013.read_fer2013_csv", lambda *a: pytest.fail("read again"))
    second = load("ferplus", root)
    assert first.labels.tolist() == second.labels.tolist() and listing(root) == before
    summary = info("ferplus", root)
    assert summary["dropped"] == {"not_a_face": 2, "no_majority": 4}
    assert summary["classes"]["contempt"] == 1 and any("no subject ids" in n for n in summary["notes"])
    assert info("fer2013", root)["images"] == N


def test_fake_full_size_writer(tmp_path):
    n = write_fake_fer2013(tmp_path / "fer2013.csv", rows={"Training": 5, "PublicTest": 2, "PrivateTest": 2},
                           distinct=3)
    fs = load_fer2013(tmp_path, size=48)
    assert n == len(fs) == 9 and [len(p) for p in (fs.splits[0].train, fs.splits[0].val, fs.splits[0].test)] == \
        [5, 2, 2]
