"""What the dataset loaders share: the error type, class names, image reading, splits and FaceSet assembly.

Each format module (ckplus, tfd, fer2013, folders) only parses its own layout and protocol;
everything that would otherwise be copied between them lives here, so that every loader
reports problems the same way and returns FaceSets built the same way.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fercore.data.faceset import NO_LABEL, FaceSet, Split, rotating_splits, subject_folds
from fercore.facs import CKPLUS_EMOTIONS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
N_LANDMARKS = 68

# fercore's class names and their order: CK+'s. Every loader maps its dataset's ids to these
# names (never ids to ids), and orders its classes like this list, so "happy" has the same index
# in every 7-class dataset (TFD, FER2013, JAFFE, KDEF, RAF-DB) and FER+ matches CK+'s 8 classes.
EMOTIONS: tuple[str, ...] = CKPLUS_EMOTIONS
_SYNONYMS = {"angry": "anger", "happiness": "happy", "sad": "sadness", "afraid": "fear",
             "fearful": "fear", "surprised": "surprise", "disgusted": "disgust"}


class DatasetFormatError(ValueError):
    """A dataset copy does not match its documented layout; the message names the file (and line, row or key)."""


def emotion_name(name: str) -> str:
    """A dataset's own emotion word -> fercore's name (``"sad" -> "sadness"``, ``"angry" -> "anger"``)."""
    word = name.strip().lower()
    word = _SYNONYMS.get(word, word)
    if word not in EMOTIONS:
        raise ValueError(f"{name!r} is not an emotion fercore knows ({', '.join(EMOTIONS)})")
    return word


def ordered_classes(names) -> list[str]:
    """fercore names of ``names`` (dataset words), in fercore's class order."""
    wanted = {emotion_name(n) for n in names}
    return [e for e in EMOTIONS if e in wanted]


# ---------------------------------------------------------------- files


def find_below(root: Path, match: Callable[[Path], bool], depth: int = 2) -> Path | None:
    """The shallowest folder at or below ``root`` (up to ``depth`` levels) for which ``match`` holds.

    Users unzip archives into a folder named after the zip, so the folder a loader wants is
    often one level down. Hidden folders and ``__MACOSX`` zip debris are skipped. Ties at the
    same depth go to the first in name order.
    """
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            if match(folder):
                return folder
        level = [child for folder in level for child in _subfolders(folder)]
    return None


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".") and e.name != "__MACOSX"]


def image_files(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, any case), sorted; hidden files (``._x.jpg``) skipped."""
    try:
        names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError:
        return []
    return [folder / n for n in names if n.lower().endswith(tuple(suffixes)) and (folder / n).is_file()]


def read_gray(path: Path, error: type[Exception] = DatasetFormatError) -> np.ndarray:
    """uint8 (H, W): any image file as gray (colour and 16-bit images are converted).

    Raises:
        ``error`` naming the file, when it is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so that a truncated file fails here and not later
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                return (np.asarray(image, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8)
            return np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError) as e:
        raise error(f"cannot read image {path}: {e}") from e


# ---------------------------------------------------------------- pixels


def resize_faces(faces: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Resize a stack of square gray faces (pre-cropped datasets are resized only).

    torch's uint8 bilinear resize with antialiasing: the same pixels as PIL's ``BILINEAR``
    resize (used by ``crop_square``), batched, so 35,887 FER2013 faces take about a second.

    Args:
        faces: uint8 (N, H, H).
        size: output side.

    Returns:
        uint8 (N, 1, size, size).
    """
    faces = np.asarray(faces, dtype=np.uint8)
    n, h, w = faces.shape
    if h != w:
        raise ValueError(f"resize_faces needs square faces, got {h}x{w}")
    if h == size:
        return faces[:, None].copy()
    out = np.empty((n, 1, size, size), dtype=np.uint8)
    for start in range(0, n, chunk):
        x = torch.from_numpy(np.ascontiguousarray(faces[start:start + chunk, None]))
        out[start:start + chunk] = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).numpy()
    return out


# ---------------------------------------------------------------- splits


def subject_splits(subjects: np.ndarray, labelled: np.ndarray, n_folds: int,
                   where: str = "this copy") -> tuple[np.ndarray, list[Split]]:
    """Subject-independent rotating folds (the paper's CK+ rule, used for every dataset with subjects).

    Labelled subjects are sorted; the one at position i goes to fold i mod ``n_folds``. Fold t
    is tested with fold (t + 1) mod ``n_folds`` as validation and the rest as training. With as
    many folds as subjects this is leave-one-subject-out with the next subject as validation.

    Args:
        subjects: str (N,) subject id per image.
        labelled: bool (N,); unlabelled images get fold -1 and are in no split.
        n_folds: number of folds (at least 3: train, validation and test must differ).
        where: what to name in the error (the dataset root).

    Returns:
        (fold int (N,), one ``Split`` per fold).
    """
    subjects, labelled = np.asarray(subjects), np.asarray(labelled, dtype=bool)
    fold_of_subject = subject_folds(subjects[labelled], n_folds)
    if n_folds < 3 or len(fold_of_subject) < n_folds:
        raise DatasetFormatError(f"{where}: {len(fold_of_subject)} subjects have labelled images; {n_folds} "
                                 f"subject-independent folds need at least {max(n_folds, 3)}")
    fold = np.array([fold_of_subject[s] if ok else -1 for s, ok in zip(subjects, labelled, strict=True)],
                    dtype=np.int64)
    return fold, rotating_splits(fold, n_folds)


def carve_validation(train: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Split ``train`` indices into (train, val), ``fraction`` of every class to val, by ``seed``.

    Used by datasets that ship only train / test (RAF-DB): model selection needs a validation
    set that is not the test set. Stratified, and every class with at least 2 images gives at
    least 1 to validation and keeps at least 1 for training, so rare classes appear in both.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for k in np.unique(labels[train]):
        members = train[labels[train] == k]
        take = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        val.append(rng.permutation(members)[:take])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(train, val), val


def per_image_subjects(prefix: str, n: int, numbers: np.ndarray | None = None) -> np.ndarray:
    """Unique subject ids ``prefix00000``... for datasets without identities (every image its own subject).

    Args:
        numbers: int (n,) number of each image (e.g. its row in the file); default 0..n-1.
    """
    numbers = np.arange(n) if numbers is None else np.asarray(numbers)
    width = max(5, len(str(int(numbers.max())))) if n else 5
    return np.array([f"{prefix}{i:0{width}d}" for i in numbers], dtype=str)


# ---------------------------------------------------------------- FaceSet


def make_faceset(name: str, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], subjects: np.ndarray,
                 meta: pd.DataFrame, splits: list[Split], protocol: dict,
                 landmarks: np.ndarray | None = None) -> FaceSet:
    """Assemble a FaceSet from arrays, for datasets without FACS codes.

    Args:
        images: uint8 (N, 1, S, S).
        labels: int (N,), index into ``classes`` or ``NO_LABEL``.
        subjects: (N,) subject ids (converted to str).
        landmarks: float (N, 68, 2) in crop pixels; None = unknown (NaN).

    Returns:
        FaceSet with no AU columns.
    """
    n = len(images)
    labels = np.asarray(labels, dtype=np.int64)
    bad = (labels != NO_LABEL) & ((labels < 0) | (labels >= len(classes)))
    if bad.any():
        raise ValueError(f"label {labels[bad][0]} is not an index into the {len(classes)} classes")
    if landmarks is None:
        landmarks = np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32)
    return FaceSet(name=name, images=torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
                   labels=torch.from_numpy(labels), classes=list(classes),
                   subjects=np.asarray(subjects).astype(str), aus=torch.zeros((n, 0), dtype=torch.int8), au_codes=[],
                   landmarks=torch.from_numpy(np.asarray(landmarks, dtype=np.float32)),
                   meta=meta.reset_index(drop=True), splits=splits, protocol=protocol)


def warn_left_out(faceset: FaceSet) -> FaceSet:
    """Warn about the images a loader left out (``faceset.protocol["left_out"]``); returns ``faceset``.

    Called after every load, cached or not, so the warning is never lost to the cache.
    """
    left_out = faceset.protocol.get("left_out") or {}
    for reason, files in left_out.items():
        if files:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            what = {"no_face": "no face found by the Haar cascade",
                    "unreadable": "unreadable image"}.get(reason, reason)
            warnings.warn(f"{faceset.name}: left out {len(files)} image(s), {what}: {shown} "
                          f"(listed in faceset.protocol['left_out'])", stacklevel=3)
    return faceset
