"""CK+ (Extended Cohn-Kanade) loader: a user's unzipped copy -> FaceSet.

Reads the official layout as it is on disk (see docs/datasets.md), applies the paper's
protocol (first frame neutral + last three frames of each of the labelled sequences,
subject-independent folds by sorted subject id) and caches the cropped result outside the
dataset folder. The built-in SynthFACS dataset is written in the same layout, so this loader
reads it too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fercore.data.cache import cached, tree_fingerprint
from fercore.data.ckplus_files import (
    LANDMARKS,
    CKPlusFormatError,
    SequenceFiles,
    find_ckplus_folders,
    read_facs,
    read_landmarks,
    scan_sequences,
)
from fercore.data.common import N_LANDMARKS, read_gray, warn_left_out
from fercore.data.crop import crop_square, landmark_box, to_crop_coords
from fercore.data.faceset import NO_LABEL, FaceSet, rotating_splits, subject_folds
from fercore.data.haar import haar_box
from fercore.facs import AU_ABSENT, AU_NOT_CODED, AU_PRESENT_UNKNOWN, CKPLUS_EMOTIONS, au_code
from fercore.progress import tqdm

FRAME_PROTOCOLS = ("paper", "last3", "peak")
CLASS_SETS: dict[int, tuple[str, ...]] = {
    8: CKPLUS_EMOTIONS,
    7: tuple(e for e in CKPLUS_EMOTIONS if e != "neutral"),
    6: tuple(e for e in CKPLUS_EMOTIONS if e not in ("neutral", "contempt")),
}
N_FOLDS = 10
CROPS = ("auto", "landmarks", "haar")
_LOADER_VERSION = 1  # part of the cache key: bump when the output changes for the same input


# ---------------------------------------------------------------- protocol


@dataclass
class _Item:
    """One image the protocol uses."""

    seq: SequenceFiles
    index: int  # position in seq.frames
    role: str  # "neutral" / "onset" / "apex"
    label: str | None  # class name; None = unlabelled

    @property
    def frame(self) -> str:
        return self.seq.frames[self.index]


def _plan(sequences: list[SequenceFiles], frames: str, classes: tuple[str, ...], unlabelled: bool) -> list[_Item]:
    """The images of the protocol, in sequence order.

    The first frame is never given the sequence's emotion: in a sequence of fewer than four
    frames the expressive frames are all but the first (a one-frame sequence gives its only frame).
    """
    items = []
    for seq in sequences:
        n = len(seq.frames)
        if seq.emotion is None:
            if unlabelled and seq.facs_file is not None:
                items.append(_Item(seq, n - 1, "apex", None))
            continue
        emotion = CKPLUS_EMOTIONS[seq.emotion]
        if emotion not in classes:
            continue
        first = 1 if n > 1 else 0
        if frames in ("paper", "peak") and first == 1 and "neutral" in classes:
            items.append(_Item(seq, 0, "neutral", "neutral"))
        expressive = range(max(first, n - 3), n) if frames in ("paper", "last3") else [n - 1]
        items += [_Item(seq, i, "apex" if i == n - 1 else "onset", emotion) for i in expressive]
    return items


def _landmark_file(folders: dict[str, Path | None], item: _Item) -> Path:
    stem = item.frame[: -len(".png")]
    return folders[LANDMARKS] / item.seq.subject / item.seq.sequence / f"{stem}_landmarks.txt"


# ---------------------------------------------------------------- loader


def load_ckplus(root: str | os.PathLike, frames: str = "paper", classes: int = 8, size: int = 96,
                crop: str = "auto", unlabelled: bool = False, name: str = "ckplus",
                use_cache: bool = True) -> FaceSet:
    """Load a CK+ copy (or SynthFACS, written in the same layout) under a protocol.

    Args:
        root: folder holding the unzipped CK+ copy (searched, see ``find_ckplus_folders``).
        frames: per labelled sequence, ``"paper"`` = first frame (neutral) + last three frames,
            ``"last3"`` = last three only, ``"peak"`` = first (neutral) + last frame.
        classes: 8 = neutral + the 7 emotions (CK+ order), 7 = no neutral, 6 = no neutral and no
            contempt. Sequences whose emotion is not a class are left out.
        size: side of the square crops in pixels.
        crop: ``"landmarks"`` (box around each frame's own 68 landmarks), ``"haar"`` (the paper's
            OpenCV cascade, see ``fercore.data.haar``: frames without a detected face are left
            out, with a warning, and listed in ``protocol["left_out"]``; landmarks, where the copy
            has them, are carried into the crop), or ``"auto"``: landmarks when the copy has a
            ``Landmarks`` folder, else haar. ``protocol["crop"]`` says which was used.
        unlabelled: also add the last frame of every unlabelled sequence that has FACS codes,
            with label ``NO_LABEL``; these images are in no split.
        name: FaceSet name (``"synthfacs"`` for the built-in dataset).
        use_cache: reuse / store the result in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet with images uint8 (N, 1, size, size), labels (N,), subjects ``"S005"``, aus
        int8 (N, A) (apex: FACS codes, 9 where CK+ gives intensity 0; neutral: 0; other frames: -1),
        landmarks float32 (N, 68, 2) in crop pixels (NaN where the copy has none), meta (path
        relative to root, subject, sequence, frame (1-based), n_frames, role, emotion of the
        sequence ("" if unlabelled), labelled, fold) and 10 rotating subject-independent splits.
        Folds come from the subjects of the planned images, so a subject keeps its fold when the
        Haar crop leaves some of its frames out.
    """
    if frames not in FRAME_PROTOCOLS:
        raise ValueError(f"frames must be one of {FRAME_PROTOCOLS}, got {frames!r}")
    if classes not in CLASS_SETS:
        raise ValueError(f"classes must be one of {sorted(CLASS_SETS)}, got {classes!r}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    root = Path(root).expanduser().resolve()
    folders = find_ckplus_folders(root)
    if crop == "auto":
        crop = "landmarks" if folders[LANDMARKS] is not None else "haar"
    if crop == "landmarks" and folders[LANDMARKS] is None:
        raise CKPlusFormatError(f"crop='landmarks' needs the CK+ Landmarks folder (from Landmarks.zip), "
                                f"not found below {root}; crop='haar' needs no landmarks")
    class_names = CLASS_SETS[classes]
    sequences = scan_sequences(folders)
    items = _plan(sequences, frames, class_names, unlabelled)
    image_files = [it.seq.folder / it.frame for it in items]
    landmark_files: list[Path | None] = [_landmark_file(folders, it) if folders[LANDMARKS] else None
                                         for it in items]
    for k, (image, lm) in enumerate(zip(image_files, landmark_files, strict=True)):
        if lm is not None and not lm.is_file():
            if crop == "landmarks":
                raise CKPlusFormatError(f"landmark file {lm} is missing (needed to crop {image})")
            landmark_files[k] = None  # the Haar crop does without; the landmarks of this frame are NaN
    facs_files = sorted({it.seq.facs_file for it in items if it.seq.facs_file is not None})
    emotion_files = [s.emotion_file for s in sequences if s.emotion_file is not None]
    protocol = {"dataset": name, "root": str(root), "frames": frames, "classes": classes, "size": size,
                "crop": crop, "unlabelled": unlabelled, "n_folds": N_FOLDS}
    key = {"loader": _LOADER_VERSION, "protocol": protocol,
           "files": tree_fingerprint(emotion_files + facs_files + [p for p in landmark_files if p] + image_files)}

    def build() -> FaceSet:
        return _build(root, items, image_files, landmark_files, class_names, size, name, protocol)

    return warn_left_out(cached(name, key, build, use_cache=use_cache))


def _build(root: Path, items: list[_Item], image_files: list[Path], landmark_files: list[Path | None],
           class_names: tuple[str, ...], size: int, name: str, protocol: dict) -> FaceSet:
    # Folds first, from every planned image: a subject keeps its fold whatever the crop leaves out.
    subjects = np.array([it.seq.subject for it in items], dtype=str)
    labelled = np.array([it.label is not None for it in items], dtype=bool)
    fold_of_subject = subject_folds(subjects[labelled], N_FOLDS)
    if len(fold_of_subject) < N_FOLDS:
        raise CKPlusFormatError(f"{root}: {len(fold_of_subject)} subjects have labelled images under this "
                                f"protocol; {N_FOLDS} subject-independent folds need at least {N_FOLDS}")
    haar = protocol["crop"] == "haar"

    def crop_one(i: int):
        """(face uint8 (size, size), landmarks (68, 2) in crop pixels), or None when no face is found."""
        gray = _read_gray(image_files[i])
        points = read_landmarks(landmark_files[i]) if landmark_files[i] is not None else None
        box = haar_box(gray) if haar else landmark_box(points)
        if box is None:
            return None
        crop_points = (to_crop_coords(points, box, size) if points is not None
                       else np.full((N_LANDMARKS, 2), np.nan, dtype=np.float32))
        return crop_square(gray, box, size), crop_points

    n = len(items)
    images = np.zeros((n, 1, size, size), dtype=np.uint8)
    landmarks = np.zeros((n, N_LANDMARKS, 2), dtype=np.float32)
    found = np.ones(n, dtype=bool)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        progress = tqdm(pool.map(crop_one, range(n)), total=n, desc=f"{name}: cropping faces",
                        unit="img", disable=n < 200)
        for i, result in enumerate(progress):
            if result is None:
                found[i] = False
            else:
                images[i, 0], landmarks[i] = result
    if haar:
        protocol = dict(protocol, left_out={"no_face": [p.relative_to(root).as_posix()
                                                        for p, ok in zip(image_files, found, strict=True) if not ok]})
    keep = np.flatnonzero(found)
    if n and not len(keep):
        raise CKPlusFormatError(f"{root}: the Haar cascade found no face in any of the {n} frames of the protocol "
                                f"(first: {image_files[0]}); are these face images?")
    items = [items[i] for i in keep]
    image_files = [image_files[i] for i in keep]
    images, landmarks, subjects, labelled = images[keep], landmarks[keep], subjects[keep], labelled[keep]

    aus, au_codes = _au_table(items)
    labels = np.array([NO_LABEL if it.label is None else class_names.index(it.label) for it in items],
                      dtype=np.int64)
    fold = np.array([fold_of_subject[s] if ok else -1 for s, ok in zip(subjects, labelled, strict=True)],
                    dtype=np.int64)
    meta = pd.DataFrame({
        "path": [p.relative_to(root).as_posix() for p in image_files],
        "subject": subjects,
        "sequence": [it.seq.sequence for it in items],
        "frame": [it.index + 1 for it in items],
        "n_frames": [len(it.seq.frames) for it in items],
        "role": [it.role for it in items],
        "emotion": ["" if it.seq.emotion is None else CKPLUS_EMOTIONS[it.seq.emotion] for it in items],
        "labelled": labelled,
        "fold": fold,
    })
    return FaceSet(name=name, images=torch.from_numpy(images), labels=torch.from_numpy(labels),
                   classes=list(class_names), subjects=subjects, aus=torch.from_numpy(aus), au_codes=au_codes,
                   landmarks=torch.from_numpy(landmarks), meta=meta, splits=rotating_splits(fold, N_FOLDS),
                   protocol=protocol)


def _au_table(items: list[_Item]) -> tuple[np.ndarray, list[str]]:
    """int8 (N, A) FACS codes and their column names, from the FACS files of the used sequences."""
    facs: dict[Path, dict[int, int]] = {}
    for it in items:
        path = it.seq.facs_file
        if path is not None and path not in facs:
            facs[path] = _facs_codes(path)
    numbers = sorted({au for codes in facs.values() for au in codes})
    column = {au: k for k, au in enumerate(numbers)}
    table = np.full((len(items), len(numbers)), AU_NOT_CODED, dtype=np.int8)
    for row, it in enumerate(items):
        if it.role == "neutral":
            table[row] = AU_ABSENT
            continue
        path = it.seq.facs_file
        if path is None or path.name[: -len("_facs.txt")] + ".png" != it.frame:
            continue  # FACS codes belong to the frame the file names (the last one)
        table[row] = AU_ABSENT
        for au, code in facs[path].items():
            table[row, column[au]] = code
    return table, [au_code(au) for au in numbers]


def _facs_codes(path: Path) -> dict[int, int]:
    """AU -> FaceSet code (1-5, or 9 for CK+'s intensity 0); a repeated AU keeps its coded intensity."""
    codes: dict[int, int] = {}
    for au, intensity in read_facs(path):
        code = AU_PRESENT_UNKNOWN if intensity == 0 else intensity
        old = codes.get(au)
        if old is None or old == AU_PRESENT_UNKNOWN:
            codes[au] = code
        elif code != AU_PRESENT_UNKNOWN:
            codes[au] = max(old, code)
    return codes


def _read_gray(path: Path) -> np.ndarray:
    """uint8 (H, W); colour sequences (24-bit in some CK+ copies) are converted to gray."""
    return read_gray(path, CKPlusFormatError)
