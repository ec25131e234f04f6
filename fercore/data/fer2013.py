"""FER2013 and FER+ loaders: ``fer2013.csv`` (or Kaggle's ``icml_face_data.csv``) and ``fer2013new.csv`` -> FaceSet.

FER2013 is one csv of 35,887 pre-cropped 48x48 gray faces, each row ``emotion,pixels,Usage``
with the pixels as 2,304 space-separated numbers; its ``Usage`` column is the protocol: train on
Training, select on PublicTest, report PrivateTest. FER+ re-labelled the same images with 10
votes each (8 emotions, unknown, not a face) in ``fer2013new.csv``, whose rows follow
``fer2013.csv`` row for row: the two are aligned by position, never by FER+'s image names.

FER2013 has no subject ids, so every image is its own subject; the one split is the file's own.
Parsing 80 million pixel numbers one by one in Python would take minutes, so each row's pixel
string is parsed by numpy in C (a few seconds for the full file).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.data.cache import cached, tree_fingerprint
from fercore.data.common import (
    DatasetFormatError,
    find_below,
    make_faceset,
    ordered_classes,
    per_image_subjects,
    resize_faces,
)
from fercore.data.faceset import FaceSet, Split

SIDE = 48
N_PIXELS = SIDE * SIDE
FILES = ("fer2013.csv", "icml_face_data.csv")  # the original and Kaggle's copy (header with spaces)
FERPLUS_FILE = "fer2013new.csv"
# FER2013's ids -> fercore names.
FER_EMOTIONS = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
FER_CLASSES = ordered_classes(FER_EMOTIONS)
USAGES = ("Training", "PublicTest", "PrivateTest")  # -> train, val, test
# FER+ vote columns, as in its header; the first 8 are emotions (FER+ words).
FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                 "unknown", "NF")
FERPLUS_CLASSES = ordered_classes(FERPLUS_VOTES[:8])
FERPLUS_RULES = ("majority", "argmax")
_LOADER_VERSION = 1


# ---------------------------------------------------------------- files


def find_fer2013_csv(root: str | os.PathLike) -> Path:
    """``fer2013.csv`` (else ``icml_face_data.csv``): ``root`` itself, or searched 2 levels below it."""
    root = Path(root).expanduser()
    if root.is_file():
        return root
    if not root.is_dir():
        raise DatasetFormatError(f"FER2013 root {root} is neither a folder nor a csv file")
    for name in FILES:
        folder = find_below(root, lambda p, name=name: (p / name).is_file())
        if folder is not None:
            return folder / name
    found = sorted(p.name for p in root.rglob("*.csv"))[:10]
    raise DatasetFormatError(f"no {' or '.join(FILES)} in {root} or 2 levels below it; csv files found: "
                             f"{', '.join(found) or 'none'}")


def read_fer2013_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a FER2013 csv (either header variant).

    Returns:
        DataFrame with one row per data row: ``emotion`` (int 0-6, FER2013's id), ``usage``
        (Training / PublicTest / PrivateTest), ``line`` (line number in the file), and
        ``pixels``: a uint8 (N, 48, 48) array in ``df.attrs["pixels"]``.

    Raises:
        DatasetFormatError naming the file and line: a missing column, a row with the wrong
        number of fields, an emotion id outside 0-6, an unknown Usage, or pixels that are not
        2,304 numbers 0-255.
    """
    path = Path(path)
    emotions, usages, lines, pixel_text = [], [], [], []
    for line, row, column in _csv_rows(path, ("emotion", "pixels", "Usage")):
        emotion = row[column["emotion"]].strip()
        if emotion not in {str(k) for k in range(len(FER_EMOTIONS))}:
            raise DatasetFormatError(f"{path}, line {line}: emotion must be an id 0-6, got {emotion!r}")
        usage = row[column["Usage"]].strip()
        if usage not in USAGES:
            raise DatasetFormatError(f"{path}, line {line}: Usage must be one of {', '.join(USAGES)}, "
                                     f"got {usage!r}")
        emotions.append(int(emotion))
        usages.append(usage)
        lines.append(line)
        pixel_text.append(row[column["pixels"]])
    if not lines:
        raise DatasetFormatError(f"{path}: no data rows after the header")
    table = pd.DataFrame({"emotion": np.array(emotions, dtype=np.int64), "usage": usages, "line": lines})
    table.attrs["pixels"] = parse_pixels(pixel_text, path, np.array(lines))
    return table


def parse_pixels(texts: list[str], path: Path | str = "pixels", lines: np.ndarray | None = None) -> np.ndarray:
    """Parse FER2013 pixel strings (2,304 space-separated numbers 0-255 each).

    One C-level ``np.fromstring`` per row (about 40 us), never Python per pixel; a row that
    does not parse is looked at again, slowly, to say what is wrong with it.

    Args:
        texts: N strings.
        path, lines: the file and the line of each string, for error messages.

    Returns:
        uint8 (N, 48, 48).

    Raises:
        DatasetFormatError naming the file and line.
    """
    lines = np.arange(1, len(texts) + 1) if lines is None else lines
    out = np.empty((len(texts), N_PIXELS), dtype=np.int32)
    for i, text in enumerate(texts):
        try:
            values = np.fromstring(text, dtype=np.int32, sep=" ")
        except ValueError:  # a token that is not a whole number
            values = None
        if values is None or len(values) != N_PIXELS:
            raise DatasetFormatError(f"{path}, line {lines[i]}: {_pixel_problem(text)}")
        out[i] = values
    bad = (out < 0) | (out > 255)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DatasetFormatError(f"{path}, line {lines[i]}: pixel {j + 1} is {out[i, j]}, outside 0-255")
    return out.astype(np.uint8).reshape(-1, SIDE, SIDE)


def _pixel_problem(text: str) -> str:
    tokens = text.split()
    for k, token in enumerate(tokens):
        if not token.isdigit():
            return f"pixel {k + 1} is {token[:20]!r}, expected a whole number 0-255"
    return f"expected {N_PIXELS:,} pixel values (a 48x48 image), found {len(tokens):,}"


def read_ferplus_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check ``fer2013new.csv``.

    Returns:
        DataFrame with one row per data row: ``usage``, ``name`` (FER+'s image name, "" for
        non-faces), ``line``, and one int column per vote in ``FERPLUS_VOTES``.

    Raises:
        DatasetFormatError naming the file and line: a missing column, a wrong field count or a
        vote that is not a whole number >= 0.
    """
    path = Path(path)
    rows, lines = [], []
    for line, row, column in _csv_rows(path, ("Usage", "Image name", *FERPLUS_VOTES)):
        try:
            votes = [int(row[column[v]]) for v in FERPLUS_VOTES]
        except ValueError:
            votes = [-1]
        if min(votes) < 0:
            text = ",".join(row[column[v]] for v in FERPLUS_VOTES)
            raise DatasetFormatError(f"{path}, line {line}: the votes {', '.join(FERPLUS_VOTES)} must be whole "
                                     f"numbers >= 0, got {text!r}")
        rows.append([row[column["Usage"]].strip(), row[column["Image name"]].strip(), *votes])
        lines.append(line)
    table = pd.DataFrame(rows, columns=["usage", "name", *FERPLUS_VOTES])
    table.insert(2, "line", lines)
    return table


def _csv_rows(path: Path, required: tuple[str, ...]):
    """Yield (line number, fields, column index by name) for each data row; blank rows are skipped
    and a row with the wrong number of fields is an error naming the file and line."""
    with _open_csv(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        column = _columns(path, header, required)
        for row in reader:
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                raise DatasetFormatError(f"{path}, line {reader.line_num}: expected {len(header)} fields "
                                         f"({', '.join(header)}), got {len(row)}")
            yield reader.line_num, row, column


def _open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed by the caller's with)
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path}: {e.strerror or e}") from e


def _columns(path: Path, header: list[str] | None, wanted: tuple[str, ...]) -> dict[str, int]:
    """Column positions by name; names are compared without surrounding spaces (Kaggle's header has them)."""
    names = [h.strip() for h in header or []]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise DatasetFormatError(f"{path}, line 1: header must name the columns {', '.join(wanted)}; missing "
                                 f"{', '.join(missing)} (header is {','.join(header or []) or 'empty'!r})")
    return {w: names.index(w) for w in wanted}


# ---------------------------------------------------------------- FER+ labels


def ferplus_labels(votes: np.ndarray, rule: str = "majority") -> np.ndarray:
    """One label per image from FER+'s 10 votes, or -1 where the rule drops the image.

    ``"majority"`` is FER+'s own rule (Microsoft's FERPlus code, mode "majority"): votes of 1 are
    dropped as outliers, and the top column is kept if it has more than half of the remaining
    votes; ``"argmax"`` keeps the column with the most raw votes (ties: the first in
    ``FERPLUS_VOTES`` order). Either way an image whose winner is ``unknown`` or ``NF`` (not a
    face), or that has no votes, is dropped.

    Args:
        votes: int (N, 10) in ``FERPLUS_VOTES`` order.
        rule: ``"majority"`` or ``"argmax"``.

    Returns:
        int64 (N,): index into ``FERPLUS_VOTES[:8]`` (FER+'s emotion order), -1 = dropped.
    """
    if rule not in FERPLUS_RULES:
        raise ValueError(f"rule must be one of {FERPLUS_RULES}, got {rule!r}")
    votes = np.asarray(votes, dtype=np.int64)
    if rule == "majority":
        votes = np.where(votes <= 1, 0, votes)
    top = votes.argmax(axis=1)
    best = votes.max(axis=1)
    keep = (best > 0) & (top < 8)
    if rule == "majority":
        keep &= 2 * best > votes.sum(axis=1)
    return np.where(keep, top, -1)


# ---------------------------------------------------------------- loaders


def load_fer2013(root: str | os.PathLike, size: int = 96, name: str = "fer2013", use_cache: bool = True) -> FaceSet:
    """Load FER2013 under its own protocol (Training / PublicTest / PrivateTest).

    Args:
        root: folder holding ``fer2013.csv`` or ``icml_face_data.csv`` (searched 2 levels deep),
            or the csv itself.
        size: side of the output faces (48x48 pre-cropped faces, resized only).
        name: FaceSet name.
        use_cache: reuse / store the result in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet with images uint8 (N, 1, size, size), labels over 7 classes in fercore's order
        (neutral, anger, disgust, fear, happy, sadness, surprise), subjects: one per image
        (``"fer00000"``: FER2013 has no subject ids, so no split can be subject-independent),
        meta (row = position among the data rows, line, usage, emotion) and one split:
        train = Training, val = PublicTest, test = PrivateTest.
    """
    _check_size(size)
    path = find_fer2013_csv(root).resolve()
    protocol = {"dataset": name, "root": str(path), "size": size, "crop": "none (pre-cropped)", "n_folds": 1}
    key = {"loader": _LOADER_VERSION, "protocol": protocol, "files": tree_fingerprint([path])}

    def build() -> FaceSet:
        table = read_fer2013_csv(path)
        emotion = [FER_EMOTIONS[e] for e in table["emotion"]]
        labels = np.array([FER_CLASSES.index(e) for e in emotion], dtype=np.int64)
        meta = pd.DataFrame({"row": np.arange(len(table)), "line": table["line"], "usage": table["usage"],
                             "emotion": emotion})
        return _faceset(name, table.attrs["pixels"], labels, FER_CLASSES, meta, size, protocol)

    return cached(name, key, build, use_cache=use_cache)


def load_ferplus(root: str | os.PathLike, rule: str = "majority", size: int = 96, name: str = "ferplus",
                 use_cache: bool = True) -> FaceSet:
    """Load FER+: FER2013's faces with FER+'s labels (8 classes), aligned by row position.

    Args:
        root: folder holding ``fer2013.csv`` (or ``icml_face_data.csv``) and ``fer2013new.csv``
            (each searched 2 levels deep).
        rule: ``"majority"`` (FER+'s protocol) or ``"argmax"``; see ``ferplus_labels``.
        size: side of the output faces.
        name: FaceSet name.
        use_cache: reuse / store the result in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet of the images the rule keeps (non-faces, empty FER+ names and undecided votes
        are dropped; ``protocol["dropped"]`` counts them), labels over fercore's 8 classes
        (neutral, anger, contempt, disgust, fear, happy, sadness, surprise), one subject per
        image, meta (row in fer2013.csv, lines, usage, FER+ name, FER2013's emotion, the 10 vote
        counts) and FER2013's one split.

    Raises:
        DatasetFormatError: ``fer2013new.csv`` is missing, or its rows do not line up with
            ``fer2013.csv`` (a different row count or Usage).
    """
    _check_size(size)
    if rule not in FERPLUS_RULES:
        raise ValueError(f"rule must be one of {FERPLUS_RULES}, got {rule!r}")
    fer_path = find_fer2013_csv(root).resolve()
    folder = fer_path.parent  # beside fer2013.csv first, else anywhere below root
    if not (folder / FERPLUS_FILE).is_file():
        root_dir = Path(root).expanduser()
        folder = find_below(root_dir, lambda p: (p / FERPLUS_FILE).is_file()) if root_dir.is_dir() else None
    if folder is None:
        raise DatasetFormatError(f"no {FERPLUS_FILE} (the FER+ labels) in {root} or 2 levels below it; place it "
                                 f"beside {fer_path.name}")
    plus_path = (folder / FERPLUS_FILE).resolve()
    protocol = {"dataset": name, "root": str(fer_path.parent), "rule": rule, "size": size,
                "crop": "none (pre-cropped)", "n_folds": 1}
    key = {"loader": _LOADER_VERSION, "protocol": protocol, "files": tree_fingerprint([fer_path, plus_path])}

    def build() -> FaceSet:
        fer, plus = read_fer2013_csv(fer_path), read_ferplus_csv(plus_path)
        _check_aligned(fer_path, fer, plus_path, plus)
        votes = plus[list(FERPLUS_VOTES)].to_numpy()
        top = ferplus_labels(votes, rule)
        face = (plus["name"] != "").to_numpy()
        keep = np.flatnonzero(face & (top >= 0))
        emotion = [_fercore(FERPLUS_VOTES[t]) for t in top[keep]]
        labels = np.array([FERPLUS_CLASSES.index(e) for e in emotion], dtype=np.int64)
        meta = pd.DataFrame({"row": keep, "line": fer["line"].to_numpy()[keep],
                             "ferplus_line": plus["line"].to_numpy()[keep], "usage": fer["usage"].to_numpy()[keep],
                             "name": plus["name"].to_numpy()[keep], "emotion": emotion,
                             "fer2013_emotion": [FER_EMOTIONS[e] for e in fer["emotion"].to_numpy()[keep]],
                             **{f"votes_{v}": votes[keep, k] for k, v in enumerate(FERPLUS_VOTES)}})
        full = dict(protocol, dropped={"not_a_face": int((~face).sum()),
                                       "no_majority": int((face & (top < 0)).sum())})
        return _faceset(name, fer.attrs["pixels"][keep], labels, FERPLUS_CLASSES, meta, size, full)

    return cached(name, key, build, use_cache=use_cache)


def _fercore(word: str) -> str:
    return ordered_classes([word])[0]


def _check_aligned(fer_path: Path, fer: pd.DataFrame, plus_path: Path, plus: pd.DataFrame) -> None:
    if len(fer) != len(plus):
        raise DatasetFormatError(f"{plus_path} has {len(plus):,} data rows but {fer_path} has {len(fer):,}: FER+ "
                                 f"labels are matched to FER2013 images by row position, so both must be complete")
    differ = fer["usage"].to_numpy() != plus["usage"].to_numpy()
    if differ.any():
        k = int(np.argmax(differ))
        raise DatasetFormatError(f"rows do not line up: {plus_path}, line {plus['line'][k]} says Usage "
                                 f"{plus['usage'][k]!r} but {fer_path}, line {fer['line'][k]} says {fer['usage'][k]!r}")


def _faceset(name: str, pixels: np.ndarray, labels: np.ndarray, classes: list[str], meta: pd.DataFrame, size: int,
             protocol: dict) -> FaceSet:
    """FaceSet with one subject per image and the Usage split."""
    usage = meta["usage"].to_numpy()
    index = np.arange(len(meta))
    split = Split(*(index[usage == u] for u in USAGES))
    subjects = per_image_subjects("fer", len(meta), meta["row"].to_numpy())  # same id in FER2013 and FER+
    return make_faceset(name, resize_faces(pixels, size), labels, classes, subjects, meta, [split], protocol)


def _check_size(size) -> None:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
