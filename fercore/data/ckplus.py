"""CK+ (Extended Cohn-Kanade) loader: a user's unzipped copy -> FaceSet.

Reads the official layout as it is on disk (see docs/datasets.md), applies the paper's
protocol (first frame neutral + last three frames of each of the labelled sequences,
subject-independent folds by sorted subject id) and caches the cropped result outside the
dataset folder. The built-in SynthFACS dataset is written in the same layout, so this loader
reads it too.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fercore.data.cache import cached, tree_fingerprint
from fercore.data.common import DatasetFormatError, read_gray, warn_left_out
from fercore.data.crop import crop_square, landmark_box, to_crop_coords
from fercore.data.faceset import NO_LABEL, FaceSet, rotating_splits, subject_folds
from fercore.data.haar import haar_box
from fercore.facs import AU_ABSENT, AU_NOT_CODED, AU_PRESENT_UNKNOWN, CKPLUS_EMOTIONS, au_code

IMAGES, EMOTION, FACS, LANDMARKS = "cohn-kanade-images", "Emotion", "FACS", "Landmarks"
FOLDER_NAMES = (IMAGES, EMOTION, FACS, LANDMARKS)
_ZIP_OF = {IMAGES: "extended-cohn-kanade-images.zip", EMOTION: "Emotion_labels.zip",
           FACS: "FACS_labels.zip", LANDMARKS: "Landmarks.zip"}
_SEARCH_DEPTH = 3
_SKIP_DIRS = {"__MACOSX"}  # macOS zip debris mirrors the whole tree
_SUBJECT = re.compile(r"S\d+")
_SEQUENCE = re.compile(r"\d+")

FRAME_PROTOCOLS = ("paper", "last3", "peak")
CLASS_SETS: dict[int, tuple[str, ...]] = {
    8: CKPLUS_EMOTIONS,
    7: tuple(e for e in CKPLUS_EMOTIONS if e != "neutral"),
    6: tuple(e for e in CKPLUS_EMOTIONS if e not in ("neutral", "contempt")),
}
N_FOLDS = 10
CROPS = ("auto", "landmarks", "haar")
_LOADER_VERSION = 1  # part of the cache key: bump when the output changes for the same input
_N_LANDMARKS = 68


class CKPlusFormatError(DatasetFormatError):
    """The copy on disk does not match the CK+ layout; the message names the file (and line)."""


# ---------------------------------------------------------------- folders


def find_ckplus_folders(root: str | os.PathLike) -> dict[str, Path | None]:
    """Find the four CK+ folders below ``root``, however the zips were unzipped.

    Users often unzip each zip into a folder named after it (``ROOT/Emotion_labels/Emotion``),
    so the folders are searched up to 3 levels below ``root`` (hidden and ``__MACOSX``
    folders skipped). A folder counts only if it holds ``S###`` subject folders: unzipping
    ``Landmarks.zip`` into ``Landmarks/`` gives ``Landmarks/Landmarks/S005``. The shallowest
    match wins.

    Args:
        root: folder that holds the unzipped CK+ copy.

    Returns:
        ``{"cohn-kanade-images": Path, "Emotion": Path, "FACS": Path | None, "Landmarks": Path | None}``.

    Raises:
        CKPlusFormatError: root is not a folder, or the images or Emotion folder is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise CKPlusFormatError(f"CK+ root {root} is not a folder (pass the folder where the CK+ zips "
                                f"were unzipped, e.g. `fercore info ckplus --root DIR`)")
    found: dict[str, Path] = {}
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        matches: dict[str, list[Path]] = {}
        deeper = []
        for folder in level:
            for child in _subfolders(folder):
                if child.name in FOLDER_NAMES and _holds_subjects(child):
                    matches.setdefault(child.name, []).append(child)
                else:
                    deeper.append(child)
        for name, paths in matches.items():
            if name in found:
                continue
            if len(paths) > 1:
                raise CKPlusFormatError(f"several CK+ '{name}' folders below {root}, at the same depth: "
                                        f"{', '.join(map(str, paths))}; keep one or pass a narrower root")
            found[name] = paths[0]
        level = deeper
    missing = [name for name in (IMAGES, EMOTION) if name not in found]
    if missing:
        expected = ", ".join(f"{n} (from {_ZIP_OF[n]})" for n in FOLDER_NAMES)
        top = sorted(p.name for p in root.iterdir())[:20]
        have = ", ".join(f"{n} at {p}" for n, p in found.items()) or "none of them"
        raise CKPlusFormatError(
            f"no CK+ {' and '.join(missing)} folder below {root} (searched {_SEARCH_DEPTH} levels deep). "
            f"Expected the folders {expected}; found {have}. Top level of the root holds: "
            f"{', '.join(top) or 'nothing'} (a folder counts only if it holds S### subject folders)")
    return {name: found.get(name) for name in FOLDER_NAMES}


def _holds_subjects(folder: Path) -> bool:
    return any(_SUBJECT.fullmatch(p.name) for p in _subfolders(folder))


def _subfolders(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:  # unreadable folders are not part of a CK+ copy
        return []
    return [Path(e.path) for e in entries
            if e.is_dir() and not e.name.startswith(".") and e.name not in _SKIP_DIRS]


# ---------------------------------------------------------------- parsers


def read_emotion(path: str | os.PathLike) -> int:
    """Read a CK+ emotion file: one number in MATLAB ascii format, e.g. ``   3.0000000e+00``.

    Returns:
        the CK+ emotion id 0-7 (index into ``fercore.facs.CKPLUS_EMOTIONS``).
    """
    lines = _lines(path)
    if not lines:
        raise CKPlusFormatError(f"{path}: empty file, expected one emotion id 0-7 like '   3.0000000e+00'")
    if len(lines) > 1:
        raise CKPlusFormatError(f"{path}, line {lines[1][0]}: expected only one number (the emotion id), "
                                f"got a second line {lines[1][1].strip()!r}")
    lineno, line = lines[0]
    (value,) = _row(path, lineno, line, 1, "one emotion id 0-7 like '   3.0000000e+00'")
    if not 0 <= value <= 7:
        raise CKPlusFormatError(f"{path}, line {lineno}: emotion id {value} is outside 0-7")
    return value


def read_facs(path: str | os.PathLike) -> list[tuple[int, int]]:
    """Read a CK+ FACS file: one row ``AU intensity`` per action unit (blank lines allowed).

    Returns:
        [(au, intensity)], intensity 0-5 as written (0 = present, intensity not coded).
    """
    rows = []
    for lineno, line in _lines(path):
        au, intensity = _row(path, lineno, line, 2, "two numbers 'AU intensity' like "
                                                     "'   9.0000000e+00   4.0000000e+00'")
        if au <= 0:
            raise CKPlusFormatError(f"{path}, line {lineno}: action unit number {au} must be positive")
        if not 0 <= intensity <= 5:
            raise CKPlusFormatError(f"{path}, line {lineno}: intensity {intensity} of AU{au} is outside 0-5")
        rows.append((au, intensity))
    return rows


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """Read a CK+ landmarks file: 68 rows ``x y`` in frame pixels (split on whitespace).

    Returns:
        float32 (68, 2), (x, y).
    """
    lines = _lines(path)
    if len(lines) != _N_LANDMARKS:
        raise CKPlusFormatError(f"{path}: expected {_N_LANDMARKS} rows 'x y', found {len(lines)}")
    out = np.empty((_N_LANDMARKS, 2), dtype=np.float32)
    for k, (lineno, line) in enumerate(lines):
        out[k] = _row(path, lineno, line, 2, "two numbers 'x y'", integer=False)
    return out


def _lines(path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; LF or CRLF."""
    try:
        text = Path(path).read_bytes().decode("latin-1")
    except OSError as e:
        raise CKPlusFormatError(f"cannot read {path}: {e.strerror or e}") from e
    return [(k, line) for k, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _row(path, lineno: int, line: str, count: int, expected: str, integer: bool = True) -> list:
    parts = line.split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(parts) != count or len(values) != count or not all(np.isfinite(values)):
        raise CKPlusFormatError(f"{path}, line {lineno}: expected {expected}, got {line.strip()!r}")
    if not integer:
        return values
    if any(v != int(v) for v in values):
        raise CKPlusFormatError(f"{path}, line {lineno}: expected whole numbers, got {line.strip()!r}")
    return [int(v) for v in values]


# ---------------------------------------------------------------- scan


@dataclass
class _Sequence:
    subject: str
    sequence: str
    folder: Path  # image folder
    frames: list[str]  # sorted PNG names, up to the labelled frame
    emotion: int | None  # CK+ id; None = unlabelled
    emotion_file: Path | None
    facs_file: Path | None


def _sequence_dirs(top: Path) -> dict[str, tuple[str, str, Path]]:
    """``"S005/001" -> (subject, sequence, folder)`` for every ``S###/###`` folder under ``top``."""
    out = {}
    for subject_dir in _subfolders(top):
        if _SUBJECT.fullmatch(subject_dir.name):
            for seq_dir in _subfolders(subject_dir):
                if _SEQUENCE.fullmatch(seq_dir.name):
                    out[f"{subject_dir.name}/{seq_dir.name}"] = (subject_dir.name, seq_dir.name, seq_dir)
    return out


def _one_file(folder: Path | None, suffix: str) -> Path | None:
    """The single ``*suffix`` file in ``folder`` (None when the folder or file is absent)."""
    if folder is None or not folder.is_dir():
        return None
    names = sorted(n for n in os.listdir(folder) if n.endswith(suffix) and not n.startswith("."))
    if len(names) > 1:
        raise CKPlusFormatError(f"{folder} holds {len(names)} '*{suffix}' files ({', '.join(names)}); "
                                "expected one")
    return folder / names[0] if names else None


def _scan(folders: dict[str, Path | None]) -> list[_Sequence]:
    """Every image sequence, with its emotion id (read) and FACS file (not read)."""
    images = _sequence_dirs(folders[IMAGES])
    emotions = {key: _one_file(folder, "_emotion.txt") for key, (_, _, folder) in
                _sequence_dirs(folders[EMOTION]).items()}
    sequences = []
    for key, emotion_file in emotions.items():
        if emotion_file is not None and key not in images:
            frame = emotion_file.name[: -len("_emotion.txt")] + ".png"
            raise CKPlusFormatError(f"{emotion_file} labels frame {frame}, which has no image: "
                                    f"{folders[IMAGES] / key / frame} is missing")
    for key, (subject, sequence, folder) in sorted(images.items()):
        frames = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png") and not n.startswith("."))
        emotion_file = emotions.get(key)
        if not frames and emotion_file is None:
            continue
        emotion = None
        if emotion_file is not None:
            emotion = read_emotion(emotion_file)
            labelled_frame = emotion_file.name[: -len("_emotion.txt")] + ".png"
            if labelled_frame not in frames:
                raise CKPlusFormatError(f"{emotion_file} labels frame {labelled_frame}, which has no image: "
                                        f"{folder / labelled_frame} is missing")
            # CK+ labels the last frame; should a copy hold frames past it, they are not the apex.
            frames = frames[: frames.index(labelled_frame) + 1]
        facs_file = _one_file(folders[FACS] / key, "_facs.txt") if folders[FACS] else None
        sequences.append(_Sequence(subject, sequence, folder, frames, emotion, emotion_file, facs_file))
    return sequences


def scan_ckplus(root: str | os.PathLike) -> pd.DataFrame:
    """One row per image sequence of a CK+ copy, without reading any image.

    Returns:
        DataFrame with columns subject, sequence, n_frames, emotion (name, "" when unlabelled),
        labelled (bool), facs (bool: the sequence has a FACS file).
    """
    rows = [{"subject": s.subject, "sequence": s.sequence, "n_frames": len(s.frames),
             "emotion": "" if s.emotion is None else CKPLUS_EMOTIONS[s.emotion],
             "labelled": s.emotion is not None, "facs": s.facs_file is not None}
            for s in _scan(find_ckplus_folders(root))]
    return pd.DataFrame(rows, columns=["subject", "sequence", "n_frames", "emotion", "labelled", "facs"])


# ---------------------------------------------------------------- protocol


@dataclass
class _Item:
    """One image the protocol uses."""

    seq: _Sequence
    index: int  # position in seq.frames
    role: str  # "neutral" / "onset" / "apex"
    label: str | None  # class name; None = unlabelled

    @property
    def frame(self) -> str:
        return self.seq.frames[self.index]


def _plan(sequences: list[_Sequence], frames: str, classes: tuple[str, ...], unlabelled: bool) -> list[_Item]:
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
    sequences = _scan(folders)
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
                       else np.full((_N_LANDMARKS, 2), np.nan, dtype=np.float32))
        return crop_square(gray, box, size), crop_points

    n = len(items)
    images = np.zeros((n, 1, size, size), dtype=np.uint8)
    landmarks = np.zeros((n, _N_LANDMARKS, 2), dtype=np.float32)
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
