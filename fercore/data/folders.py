"""Image-folder datasets: JAFFE, KDEF, RAF-DB (basic) and a generic ``root/<class>/*`` reader -> FaceSet.

Each of these ships as plain image files whose name or folder says the label (and, for JAFFE and
KDEF, the subject). Each loader here only turns its layout into a list of entries (file, class,
subject, meta); reading, face cropping, splitting and caching are shared (``_load``).

- JAFFE and KDEF frames show more than the face, and ship no landmarks: they are cropped with
  the paper's Haar cascade (``crop="haar"``); frames without a detected face are left out and
  reported. RAF-DB's aligned images are faces already (``crop="none"``: resized only).
- Folds are subject-independent where the subject is known (JAFFE, KDEF): the paper's CK+ rule,
  sorted subjects, fold = position mod ``n_folds``, test fold t, validation fold t + 1.
  JAFFE has 10 subjects, so its default 10 folds are leave-one-subject-out.
- RAF-DB has no subject ids and ships train / test only: its validation set is carved from
  train by a seed, and every image is its own subject.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.data.cache import cached, tree_fingerprint
from fercore.data.common import (
    DatasetFormatError,
    carve_validation,
    find_below,
    image_files,
    make_faceset,
    ordered_classes,
    subject_splits,
    warn_left_out,
)
from fercore.data.faceset import FaceSet, Split, rotating_splits
from fercore.data.haar import CROP_METHODS, load_faces

_LOADER_VERSION = 1

JAFFE_CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sadness",
               "SU": "surprise"}
_JAFFE_NAME = re.compile(r"([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.tiff?", re.IGNORECASE)

KDEF_CODES = {"AF": "fear", "AN": "anger", "DI": "disgust", "HA": "happy", "NE": "neutral", "SA": "sadness",
              "SU": "surprise"}
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")  # full left, half left, straight, half right, full right
_KDEF_FOLDER = re.compile(r"([AB])([FM])(\d{2})", re.IGNORECASE)
_KDEF_NAME = re.compile(r"([AB])([FM])(\d{2})(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)\.jpe?g", re.IGNORECASE)

RAFDB_LABEL_FILE = "list_patition_label.txt"  # spelled as shipped
RAFDB_EMOTIONS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sadness", 6: "anger", 7: "neutral"}
_RAFDB_NAME = re.compile(r"(train|test)_\d+\.jpg")

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


@dataclass
class _Entry:
    """One image file of a dataset, before it is read."""

    path: Path
    emotion: str  # class name
    subject: str
    part: str = ""  # "train" / "val" / "test" where the dataset fixes it
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- shared steps


def _load(name: str, root: Path, entries: list[_Entry], classes: Sequence[str], crop: str, size: int,
          protocol: dict, make_splits: Callable[[list[_Entry], np.ndarray, Path], tuple[np.ndarray, list[Split]]],
          extra_files: Sequence[Path] = (), use_cache: bool = True) -> FaceSet:
    """Read ``entries`` into a cached FaceSet: crop, drop what has no face, label, split, warn."""
    if crop not in CROP_METHODS:
        raise ValueError(f"crop must be one of {CROP_METHODS}, got {crop!r}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not entries:
        raise DatasetFormatError(f"{root}: no images of {name} found")
    protocol = {"dataset": name, "root": str(root), "crop": crop, "size": size, **protocol}
    key = {"loader": _LOADER_VERSION, "protocol": protocol,
           "files": tree_fingerprint([e.path for e in entries] + list(extra_files))}

    def build() -> FaceSet:
        faces = load_faces([e.path for e in entries], crop=crop, size=size, relative_to=root, desc=name)
        kept = [entries[i] for i in faces.kept]
        if not kept:
            raise DatasetFormatError(f"{root}: none of the {len(entries)} images of {name} could be used "
                                     f"({', '.join(f'{k}: {len(v)}' for k, v in faces.left_out.items())})")
        labels = np.array([classes.index(e.emotion) for e in kept], dtype=np.int64)
        subjects = np.array([e.subject for e in kept])
        fold, splits = make_splits(kept, labels, root)
        meta = pd.DataFrame([{"path": e.path.relative_to(root).as_posix(), "subject": e.subject,
                              "emotion": e.emotion, **e.meta} for e in kept])
        meta["fold"] = fold
        meta[["box_x0", "box_y0", "box_side"]] = faces.boxes
        full = dict(protocol, left_out=faces.left_out)
        return make_faceset(name, faces.images, labels, classes, subjects, meta, splits, full)

    return warn_left_out(cached(name, key, build, use_cache=use_cache))


def _by_subject(n_folds: int):
    """Split maker: subject-independent rotating folds (see ``common.subject_splits``)."""
    def make(kept: list[_Entry], labels: np.ndarray, root: Path):
        return subject_splits(np.array([e.subject for e in kept]), np.ones(len(kept), dtype=bool), n_folds, str(root))
    return make


def _by_image(n_folds: int, seed: int):
    """Split maker for images without subjects: rotating folds over the images shuffled by ``seed``."""
    def make(kept: list[_Entry], labels: np.ndarray, root: Path):
        if len(kept) < n_folds or n_folds < 3:
            raise DatasetFormatError(f"{root}: {len(kept)} images cannot make {n_folds} folds (at least 3 needed)")
        fold = np.empty(len(kept), dtype=np.int64)
        fold[np.random.default_rng(seed).permutation(len(kept))] = np.arange(len(kept)) % n_folds
        return fold, rotating_splits(fold, n_folds)
    return make


def _by_part(val_fraction: float, seed: int):
    """Split maker for datasets that fix train / test (and maybe val): one split; val carved from train if absent."""
    def make(kept: list[_Entry], labels: np.ndarray, root: Path):
        part = np.array([e.part for e in kept])
        index = np.arange(len(kept))
        train, val, test = index[part == "train"], index[part == "val"], index[part == "test"]
        if not len(train) or not len(test):
            raise DatasetFormatError(f"{root}: the split needs train and test images; found {len(train)} train, "
                                     f"{len(test)} test")
        if not len(val):
            train, val = carve_validation(train, labels, val_fraction, seed)
        fold = np.full(len(kept), -1, dtype=np.int64)  # one split: no rotating folds
        return fold, [Split(train, val, test)]
    return make


def _find(root: str | os.PathLike, what: str, match: Callable[[Path], bool], expected: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetFormatError(f"{what} root {root} is not a folder")
    folder = find_below(root, match)
    if folder is None:
        top = sorted(p.name for p in root.iterdir())[:20]
        raise DatasetFormatError(f"no {what} copy found in {root} or 2 levels below it: expected {expected}. "
                                 f"The folder holds: {', '.join(top) or 'nothing'}")
    return folder.resolve()


# ---------------------------------------------------------------- JAFFE


def load_jaffe(root: str | os.PathLike, crop: str = "haar", size: int = 96, n_folds: int = 10,
               name: str = "jaffe", use_cache: bool = True) -> FaceSet:
    """Load JAFFE: one flat folder of ``KA.AN1.39.tiff`` files (subject.EXPk.n).

    Args:
        root: the folder of .tiff files, or a folder up to 2 levels above it.
        crop: ``"haar"`` (the paper's cascade; frames without a face are left out) or ``"none"``.
        size: side of the output faces.
        n_folds: subject folds; the default 10 (JAFFE's 10 subjects) is leave-one-subject-out
            with the next subject (in sorted order) as validation.
        name, use_cache: FaceSet name; reuse / store in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet, 7 classes in fercore's order, subjects = the two-letter poser codes, meta
        (path, subject, emotion, code, repeat, number, fold, crop box).
    """
    folder = _find(root, "JAFFE", lambda p: any(_JAFFE_NAME.fullmatch(f.name) for f in image_files(p)),
                   "a folder of .tiff images named like KA.AN1.39.tiff")
    entries = []
    for path in image_files(folder, (".tif", ".tiff")):
        m = _JAFFE_NAME.fullmatch(path.name)
        if m is None:
            raise DatasetFormatError(f"{path}: a JAFFE image name is subject.EXPk.n.tiff, like KA.AN1.39.tiff")
        subject, code, repeat, number = m.group(1).upper(), m.group(2).upper(), int(m.group(3)), int(m.group(4))
        if code not in JAFFE_CODES:
            raise DatasetFormatError(f"{path}: unknown expression code {code!r}; JAFFE codes are "
                                     f"{', '.join(f'{c} ({e})' for c, e in JAFFE_CODES.items())}")
        entries.append(_Entry(path, JAFFE_CODES[code], subject,
                              meta={"code": code, "repeat": repeat, "number": number}))
    classes = ordered_classes(JAFFE_CODES.values())
    return _load(name, folder, entries, classes, crop, size, {"n_folds": n_folds}, _by_subject(n_folds),
                 use_cache=use_cache)


# ---------------------------------------------------------------- KDEF


def load_kdef(root: str | os.PathLike, angles: str | Sequence[str] = ("S",), crop: str = "haar", size: int = 96,
              n_folds: int = 10, name: str = "kdef", use_cache: bool = True) -> FaceSet:
    """Load KDEF: ``KDEF/AF01/AF01ANS.JPG`` = session A/B, gender F/M, subject 01-35, expression, angle.

    Args:
        root: the folder of subject folders (``AF01`` ... ``BM35``), or a folder up to 2 levels above.
        angles: camera angles to keep: ``"S"`` (straight, the default), any of FL HL S HR FR, or
            ``"all"``. The frontal Haar cascade rarely finds faces in the profile angles.
        crop: ``"haar"`` (frames without a face are left out) or ``"none"`` (centre square).
        size: side of the output faces.
        n_folds: subject folds (70 subjects -> 7 per fold), test fold t, validation t + 1.
        name, use_cache: FaceSet name; reuse / store in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet, 7 classes in fercore's order, subjects = gender + number (``"F01"``: sessions A
        and B photograph the same person, so both are one subject), meta (path, subject,
        emotion, session, angle, fold, crop box).
    """
    angles = _angles(angles)
    folder = _find(root, "KDEF", lambda p: any(_KDEF_FOLDER.fullmatch(s.name) for s in _dirs(p)),
                   "subject folders AF01 ... BM35 holding images like AF01ANS.JPG")
    entries = []
    for sub in _dirs(folder):
        if not _KDEF_FOLDER.fullmatch(sub.name):
            continue
        for path in image_files(sub):
            m = _KDEF_NAME.fullmatch(path.name)
            if m is None:
                raise DatasetFormatError(f"{path}: a KDEF image name is session, gender, subject, expression, "
                                         f"angle, like AF01ANS.JPG (expressions {' '.join(KDEF_CODES)}, "
                                         f"angles {' '.join(KDEF_ANGLES)})")
            session, gender, number, code, angle = (g.upper() for g in m.groups())
            if session + gender + number != sub.name.upper():
                raise DatasetFormatError(f"{path}: the image of {session + gender + number} is in the folder of "
                                         f"{sub.name}")
            if angle in angles:
                entries.append(_Entry(path, KDEF_CODES[code], gender + number,
                                      meta={"session": session, "angle": angle}))
    classes = ordered_classes(KDEF_CODES.values())
    return _load(name, folder, entries, classes, crop, size, {"angles": list(angles), "n_folds": n_folds},
                 _by_subject(n_folds), use_cache=use_cache)


def _angles(angles: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(angles, str):
        angles = KDEF_ANGLES if angles == "all" else (angles,)
    angles = tuple(a.upper() for a in angles)
    unknown = [a for a in angles if a not in KDEF_ANGLES]
    if unknown or not angles:
        raise ValueError(f"angles must be 'all' or some of {', '.join(KDEF_ANGLES)}, got {unknown or angles}")
    return tuple(a for a in KDEF_ANGLES if a in angles)


def _dirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


# ---------------------------------------------------------------- RAF-DB


def load_rafdb(root: str | os.PathLike, size: int = 96, val_fraction: float = 0.1, seed: int = 0,
               name: str = "rafdb", use_cache: bool = True) -> FaceSet:
    """Load RAF-DB basic: ``basic/EmoLabel/list_patition_label.txt`` and ``basic/Image/aligned/*_aligned.jpg``.

    Args:
        root: the ``basic`` folder or a folder up to 2 levels above it.
        size: side of the output faces (the aligned 100x100 faces are resized only).
        val_fraction: share of every class of the train images moved to validation.
        seed: which train images go to validation.
        name, use_cache: FaceSet name; reuse / store in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet, 7 classes in fercore's order, one subject per image (RAF-DB has no subject ids:
        the subject is the image name, ``"train_00001"``), meta (path, subject, emotion, part,
        line, fold = -1) and one split: RAF-DB's train (less validation) / validation / test.

    Raises:
        DatasetFormatError naming the label file and line for a line that does not parse or an
        image that is missing.
    """
    basic = _find(root, "RAF-DB", lambda p: (p / "EmoLabel" / RAFDB_LABEL_FILE).is_file(),
                  f"basic/EmoLabel/{RAFDB_LABEL_FILE} and basic/Image/aligned/")
    label_file = basic / "EmoLabel" / RAFDB_LABEL_FILE
    aligned = basic / "Image" / "aligned"
    entries = []
    for lineno, line in _read_lines(label_file):
        parts = line.split()
        if len(parts) != 2 or not _RAFDB_NAME.fullmatch(parts[0]) or parts[1] not in {str(k) for k in RAFDB_EMOTIONS}:
            raise DatasetFormatError(f"{label_file}, line {lineno}: expected '<train|test>_NNNNN.jpg <label 1-7>', "
                                     f"like 'train_00001.jpg 5', got {line.strip()!r}")
        stem = parts[0][: -len(".jpg")]
        path = aligned / f"{stem}_aligned.jpg"
        if not path.is_file():
            raise DatasetFormatError(f"{label_file}, line {lineno}: the aligned image {path} of {parts[0]} is missing")
        entries.append(_Entry(path, RAFDB_EMOTIONS[int(parts[1])], stem, part=stem.split("_")[0],
                              meta={"part": stem.split("_")[0], "line": lineno}))
    classes = ordered_classes(RAFDB_EMOTIONS.values())
    protocol = {"val_fraction": val_fraction, "seed": seed, "n_folds": 1}
    return _load(name, basic, entries, classes, "none", size, protocol, _by_part(val_fraction, seed),
                 extra_files=[label_file], use_cache=use_cache)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path}: {e.strerror or e}") from e
    return [(k, line) for k, line in enumerate(text.splitlines(), start=1) if line.strip()]


# ---------------------------------------------------------------- generic folders


def load_folder(root: str | os.PathLike, classes: Sequence[str], crop: str = "none", size: int = 96,
                subject: str | None = None, n_folds: int = 10, val_fraction: float = 0.1, seed: int = 0,
                name: str = "folder", use_cache: bool = True) -> FaceSet:
    """Load images sorted into class folders: ``root/<class>/*`` or ``root/<split>/<class>/*``.

    Image files are .png, .jpg, .jpeg, .tif and .tiff. Class folders are matched to ``classes``
    ignoring case; the label is the position in ``classes`` (never the folder order, which for
    Kaggle's FER2013 folders is alphabetical and differs from the csv's ids).

    Args:
        root: the folder of class folders, or of split folders (``train``, ``val``/``valid``/
            ``validation``, ``test``) that hold class folders.
        classes: class names in label order, e.g. ``["angry", "disgust", ...]``.
        crop: ``"none"`` (faces already: centre square, resized) or ``"haar"``.
        size: side of the output faces.
        subject: regular expression whose first group (or whole match) in the file name is the
            subject, e.g. ``r"^(S\\d+)_"``; None = every image its own subject.
        n_folds: without split folders, rotating folds by subject (or by image, shuffled by
            ``seed``, when there are no subjects: then folds are not subject-independent).
        val_fraction, seed: with split folders but no validation folder, the share of every
            class of train moved to validation, and by which seed.
        name, use_cache: FaceSet name; reuse / store in ``fercore.store.cache_dir()``.

    Raises:
        DatasetFormatError: a folder that is not one of ``classes`` (the message lists them),
            a class without a folder, images outside class folders, or a name the ``subject``
            pattern does not match.
    """
    classes = list(classes or [])
    if not classes or len({c.casefold() for c in classes}) != len(classes):
        raise ValueError(f"classes must be distinct class names in label order, got {classes!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetFormatError(f"image folder root {root} is not a folder")
    root = root.resolve()
    pattern = re.compile(subject) if subject else None
    class_of = {c.casefold(): c for c in classes}
    subdirs = _dirs(root)
    by_split = any(d.name.casefold() in SPLIT_FOLDERS for d in subdirs) and \
        not any(d.name.casefold() in class_of for d in subdirs)
    tops = [(SPLIT_FOLDERS.get(d.name.casefold(), ""), d) for d in subdirs] if by_split else [("", root)]
    entries, seen = [], set()
    for part, top in tops:
        if by_split and not part:
            raise DatasetFormatError(f"{top}: unknown split folder; expected {', '.join(sorted(set(SPLIT_FOLDERS)))} "
                                     f"holding the class folders")
        _no_loose_images(top)
        for folder in _dirs(top):
            label = class_of.get(folder.name.casefold())
            if label is None:
                raise DatasetFormatError(f"{folder}: unknown class folder {folder.name!r}; expected one of "
                                         f"{', '.join(classes)} (the classes you passed)")
            seen.add(label)
            for path in image_files(folder):
                entries.append(_Entry(path, label, _subject_of(path, root, pattern), part=part,
                                      meta={"part": part} if by_split else {}))
    missing = [c for c in classes if c not in seen]
    if missing:
        raise DatasetFormatError(f"{root}: no folder for class(es) {', '.join(missing)}; found "
                                 f"{', '.join(sorted({e.emotion for e in entries})) or 'no class folders'}")
    if by_split:
        make, protocol = _by_part(val_fraction, seed), {"layout": "split folders", "val_fraction": val_fraction,
                                                         "seed": seed, "n_folds": 1}
    elif pattern is not None:
        make, protocol = _by_subject(n_folds), {"layout": "class folders", "subject": subject, "n_folds": n_folds}
    else:
        make, protocol = _by_image(n_folds, seed), {"layout": "class folders", "subject": None, "n_folds": n_folds,
                                                    "seed": seed}
    return _load(name, root, entries, classes, crop, size, {"classes": classes, **protocol}, make,
                 use_cache=use_cache)


def _no_loose_images(folder: Path) -> None:
    loose = image_files(folder)
    if loose:
        raise DatasetFormatError(f"{folder} holds images outside class folders ({loose[0].name}, ...); put each "
                                 f"image in the folder of its class")


def _subject_of(path: Path, root: Path, pattern: re.Pattern | None) -> str:
    if pattern is None:
        return path.relative_to(root).with_suffix("").as_posix()  # the image itself
    m = pattern.search(path.name)
    if m is None:
        raise DatasetFormatError(f"{path}: the subject pattern {pattern.pattern!r} does not match the file name")
    return m.group(1) if m.groups() else m.group(0)
