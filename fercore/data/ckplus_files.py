"""CK+ on disk: find the four folders of a user's unzipped copy, read its text files, list its sequences.

Reads the official layout exactly as it ships (``docs/datasets.md``): MATLAB ascii numbers, CRLF or
LF, ``.DS_Store`` and ``__MACOSX`` debris, folders one level below a zip-named folder. Every
problem is a ``CKPlusFormatError`` naming the file (and line).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.data.common import N_LANDMARKS, DatasetFormatError
from fercore.facs import CKPLUS_EMOTIONS

IMAGES, EMOTION, FACS, LANDMARKS = "cohn-kanade-images", "Emotion", "FACS", "Landmarks"
FOLDER_NAMES = (IMAGES, EMOTION, FACS, LANDMARKS)
_ZIP_OF = {IMAGES: "extended-cohn-kanade-images.zip", EMOTION: "Emotion_labels.zip",
           FACS: "FACS_labels.zip", LANDMARKS: "Landmarks.zip"}
_SEARCH_DEPTH = 3
_SKIP_DIRS = {"__MACOSX"}  # macOS zip debris mirrors the whole tree
_SUBJECT = re.compile(r"S\d+")
_SEQUENCE = re.compile(r"\d+")


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
    if len(lines) != N_LANDMARKS:
        raise CKPlusFormatError(f"{path}: expected {N_LANDMARKS} rows 'x y', found {len(lines)}")
    out = np.empty((N_LANDMARKS, 2), dtype=np.float32)
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
class SequenceFiles:
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


def scan_sequences(folders: dict[str, Path | None]) -> list[SequenceFiles]:
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
        sequences.append(SequenceFiles(subject, sequence, folder, frames, emotion, emotion_file, facs_file))
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
            for s in scan_sequences(find_ckplus_folders(root))]
    return pd.DataFrame(rows, columns=["subject", "sequence", "n_frames", "emotion", "labelled", "facs"])
