"""Test data built by hand: tiny CK+ trees with the quirks of real copies, and a tiny FaceSet for training.

The CK+ trees follow docs/datasets.md byte for byte where it matters (MATLAB ascii numbers
with leading spaces, CRLF in some files, .DS_Store files, zip-named parent folders) and carry
the quirks seen in real copies, so loader tests exercise what users' copies look like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# ---------------------------------------------------------------- tiny CK+ trees

# FACS rows (AU, intensity) written for a sequence of each CK+ emotion id; intensity 0 = "present, not coded".
FACS_OF_EMOTION = {
    0: [],
    1: [(4, 3), (5, 2), (7, 0), (23, 2)],
    2: [(12, 1), (14, 1)],
    3: [(9, 4), (17, 2)],
    4: [(1, 2), (2, 2), (4, 1), (20, 3)],
    5: [(6, 3), (12, 4), (25, 0)],
    6: [(1, 2), (4, 1), (15, 3)],
    7: [(1, 3), (2, 3), (5, 1), (27, 5)],
}
SUBJECTS = ("S005", "S010", "S011", "S014", "S022", "S026", "S032", "S034", "S037", "S042", "S044", "S046")
FRAME_W, FRAME_H = 80, 60
DOT = 30  # landmark index drawn as a bright dot in every frame
NEGATIVE_SUBJECT = "S026"  # its faces reach past the left and top edges of the frame


@dataclass
class SeqSpec:
    """One sequence of a tiny CK+ tree."""

    subject: str
    sequence: str
    n_frames: int
    emotion: int | None = None  # CK+ id; None = unlabelled
    facs: list[tuple[int, int]] | None = None  # None = no FACS file
    emotion_folder: bool = True  # unlabelled: write an empty Emotion folder (else none at all)
    rgb: bool = False  # 24-bit colour PNGs
    crlf: bool = False  # text files with CRLF line ends
    extra_landmark: bool = False  # a landmark file for a frame that has no image

    @property
    def stem(self) -> str:
        return f"{self.subject}_{self.sequence}"

    def frame_name(self, frame: int) -> str:
        """1-based frame number -> ``S005_001_00000003``."""
        return f"{self.stem}_{frame:08d}"


@dataclass
class CKTree:
    """A written tree: its root, its sequences and where each kind of file went."""

    root: Path
    sequences: list[SeqSpec]
    folders: dict[str, Path] = field(default_factory=dict)

    def seq(self, subject: str, sequence: str) -> SeqSpec:
        return next(s for s in self.sequences if s.subject == subject and s.sequence == sequence)

    def image_path(self, s: SeqSpec, frame: int) -> Path:
        return self.folders["cohn-kanade-images"] / s.subject / s.sequence / f"{s.frame_name(frame)}.png"

    def landmark_path(self, s: SeqSpec, frame: int) -> Path:
        return self.folders["Landmarks"] / s.subject / s.sequence / f"{s.frame_name(frame)}_landmarks.txt"

    def emotion_path(self, s: SeqSpec) -> Path:
        return self.folders["Emotion"] / s.subject / s.sequence / f"{s.frame_name(s.n_frames)}_emotion.txt"

    def facs_path(self, s: SeqSpec) -> Path:
        return self.folders["FACS"] / s.subject / s.sequence / f"{s.frame_name(s.n_frames)}_facs.txt"

    def labelled(self) -> list[SeqSpec]:
        return [s for s in self.sequences if s.emotion is not None]


def matlab(*values: float) -> str:
    """One row in MATLAB ``save -ascii`` format: 3 spaces before a positive number, 2 before a negative."""
    return "".join(f"{v:16.7e}" for v in values)


def landmarks_of(s: SeqSpec, frame: int) -> np.ndarray:
    """float (68, 2) landmarks of a frame: an oval face that drifts a little from frame to frame.

    Landmark ``DOT`` sits on a whole pixel (where the bright dot is drawn); the faces of
    ``NEGATIVE_SUBJECT`` reach past the frame edges, so some coordinates are negative.
    """
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    radius = 0.45 + 0.55 * ((np.arange(68) * 7) % 11) / 10
    seed = sum(map(ord, s.stem))
    cx, cy = (9.0, 8.0) if s.subject == NEGATIVE_SUBJECT else (36.0 + seed % 7, 28.0 + seed % 5)
    cx, cy = cx + 0.5 * (frame - 1), cy + 0.25 * (frame - 1)
    xy = np.stack([cx + 15.3 * radius * np.cos(angles), cy + 17.1 * radius * np.sin(angles)], axis=1)
    xy[DOT] = (round(cx), round(cy))
    return xy


def frame_image(s: SeqSpec, frame: int) -> np.ndarray:
    """uint8 (H, W): a dim gradient (brighter in later frames) with a bright dot on landmark ``DOT``."""
    y, x = np.mgrid[0:FRAME_H, 0:FRAME_W]
    gray = (10 + x // 4 + y // 6 + 3 * frame).astype(np.uint8)
    dx, dy = landmarks_of(s, frame)[DOT].astype(int)
    gray[dy, dx] = 255
    return gray


def default_sequences() -> list[SeqSpec]:
    """12 subjects, 2 labelled sequences each (all 7 emotions), plus the quirks of real copies."""
    seqs = []
    for i, subject in enumerate(SUBJECTS):
        for k in (1, 2):
            j = 2 * i + k - 1
            emotion = 1 + j % 7
            seqs.append(SeqSpec(subject, f"{k:03d}", n_frames=5 + (i + k) % 3, emotion=emotion,
                                facs=list(FACS_OF_EMOTION[emotion]), crlf=j % 3 == 0))
    quirks = {
        ("S011", "001"): {"n_frames": 3},  # fewer than 4 frames
        ("S014", "002"): {"rgb": True},  # 24-bit colour
        ("S022", "001"): {"extra_landmark": True},  # a landmark file without an image
    }
    for s in seqs:
        for key, value in quirks.get((s.subject, s.sequence), {}).items():
            setattr(s, key, value)
    seqs += [
        # unlabelled, with FACS codes (one of intensity 0) and an empty Emotion folder
        SeqSpec("S005", "003", n_frames=4, facs=[(12, 2), (38, 0)], crlf=True),
        # unlabelled, no Emotion folder at all, no FACS
        SeqSpec("S010", "004", n_frames=4, emotion_folder=False),
        # unlabelled with FACS, no Emotion folder
        SeqSpec("S046", "005", n_frames=5, facs=[(43, 5)], emotion_folder=False),
    ]
    return seqs


def write_ckplus_tree(root: Path, sequences: list[SeqSpec] | None = None, zipped: bool = True,
                      landmarks: bool = True, facs: bool = True) -> CKTree:
    """Write a tiny CK+ copy under ``root``.

    Args:
        root: folder to write (created).
        sequences: what to write; default ``default_sequences()``.
        zipped: put each CK+ folder one level down in a folder named after its zip
            (``root/Emotion_labels/Emotion``), as users unzip it; else directly under ``root``.
        landmarks, facs: write the Landmarks / FACS folders.
    """
    sequences = default_sequences() if sequences is None else sequences
    parents = {"cohn-kanade-images": "extended-cohn-kanade-images", "Emotion": "Emotion_labels",
               "FACS": "FACS_labels", "Landmarks": "Landmarks"}
    folders = {name: (root / parent / name if zipped else root / name) for name, parent in parents.items()}
    tree = CKTree(root, sequences, folders)
    for s in sequences:
        newline = "\r\n" if s.crlf else "\n"
        for frame in range(1, s.n_frames + 1):
            path = tree.image_path(s, frame)
            path.parent.mkdir(parents=True, exist_ok=True)
            gray = frame_image(s, frame)
            Image.fromarray(np.stack([gray] * 3, axis=-1) if s.rgb else gray).save(path)
        if landmarks:
            for frame in range(1, s.n_frames + 1 + s.extra_landmark):
                path = tree.landmark_path(s, frame)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes("".join(matlab(*xy) + newline for xy in landmarks_of(s, frame)).encode())
        if s.emotion is not None or s.emotion_folder:
            tree.emotion_path(s).parent.mkdir(parents=True, exist_ok=True)
        if s.emotion is not None:
            tree.emotion_path(s).write_bytes((matlab(s.emotion) + newline).encode())
        if facs and s.facs is not None:
            path = tree.facs_path(s)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(("".join(matlab(au, i) + newline for au, i in s.facs) + newline).encode())
    for junk in (folders["cohn-kanade-images"] / "S005", folders["cohn-kanade-images"] / "S005" / "001",
                 folders["Emotion"] / "S005"):
        if junk.is_dir():
            (junk / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return tree


def make_tiny_faceset(size: int = 32, per_class: int = 24, n_subjects: int = 8, n_folds: int = 4, seed: int = 0):
    """A FaceSet whose class is where a bright square sits (left, centre, right), with noise.

    ``per_class`` images per class, spread over ``n_subjects`` subjects; subject-independent
    rotating splits over ``n_folds`` folds (so every split has two subjects or more).
    """
    import pandas as pd
    import torch

    from fercore.data.faceset import FaceSet, rotating_splits, subject_folds

    g = torch.Generator().manual_seed(seed)
    n = per_class * 3
    labels = torch.arange(n) % 3
    images = torch.randint(0, 60, (n, 1, size, size), generator=g).to(torch.uint8)
    q = size // 4
    for i, label in enumerate(labels.tolist()):
        x0 = q // 2 + label * q + int(torch.randint(0, 3, (), generator=g))
        images[i, 0, q : 2 * q, x0 : x0 + q] = 200
    subjects = np.array([f"S{k % n_subjects:03d}" for k in range(n)])
    fold_of = subject_folds(subjects, n_folds)
    return FaceSet(
        name="tiny", images=images, labels=labels, classes=["left", "centre", "right"], subjects=subjects,
        aus=torch.zeros(n, 0, dtype=torch.int8), au_codes=[], landmarks=torch.full((n, 68, 2), float("nan")),
        meta=pd.DataFrame({"k": range(n)}), splits=rotating_splits(np.array([fold_of[s] for s in subjects]), n_folds),
    )


# ---------------------------------------------------------------- FaceSets with AU codes for the FAU analysis

AU_SIZE = 96


def template_landmarks(size: int = AU_SIZE) -> np.ndarray:
    """(68, 2) SynthFACS's template face, in crop pixels of a ``size`` crop."""
    from fercore.data.crop import landmark_box, to_crop_coords
    from fercore.data.synthfacs.face import TEMPLATE

    frame = TEMPLATE * 120 + [320, 200]
    return to_crop_coords(frame, landmark_box(frame), size)


def au_faceset(images, present: np.ndarray, au_codes, labels=None, subjects=None):
    """A FaceSet of uint8 (N, 96, 96) ``images`` (None: black) whose FACS codes are ``present`` (N, A) at
    intensity C, every face with the template's landmarks; one subject per image unless given."""
    import pandas as pd
    import torch

    from fercore.data.faceset import FaceSet

    n = len(present)
    images = np.zeros((n, AU_SIZE, AU_SIZE), np.uint8) if images is None else images
    subjects = np.array([f"S{i:03d}" for i in range(n)]) if subjects is None else np.asarray(subjects)
    return FaceSet(name="test", images=torch.from_numpy(np.ascontiguousarray(images[:, None])),
                   labels=torch.as_tensor(np.zeros(n) if labels is None else labels, dtype=torch.int64),
                   classes=["a", "b"], subjects=subjects, aus=torch.from_numpy(present.astype(np.int8) * 3),
                   au_codes=list(au_codes), landmarks=torch.from_numpy(np.repeat(template_landmarks()[None], n, 0)),
                   meta=pd.DataFrame({"i": range(n)}))


def interrupt_training_at(monkeypatch, step: int, error: type[BaseException] = KeyboardInterrupt) -> None:
    """Make fercore.train raise ``error`` when it samples the batch of step ``step`` (a run killed mid-interval;
    the checkpoints written before stay). ``monkeypatch.undo()`` restores training."""
    from fercore import train as train_module

    sample_batch, calls = train_module._sample_batch, []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise error
        return sample_batch(*args, **kwargs)

    monkeypatch.setattr(train_module, "_sample_batch", crash)
