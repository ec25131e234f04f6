"""FaceSet: the one in-memory dataset type that every loader returns.

Training, neuron inspection and FAU analysis only ever see a FaceSet, so they never need
to know which dataset (or which on-disk format) the faces came from.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fercore.facs import AU_NOT_CODED, AU_PRESENT_UNKNOWN

NO_LABEL = -1  # label of an image without an emotion label (e.g. FACS-only CK+ sequences)


@dataclass
class Split:
    """Image indices of one fold of a protocol. Validation is never the test set."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class FaceSet:
    """Cropped gray faces with labels, subjects, FACS codes, landmarks and protocol splits.

    Attributes:
        name: dataset name, e.g. ``"ckplus"`` or ``"synthfacs"``.
        images: uint8 (N, 1, S, S), cropped and resized.
        labels: int64 (N,), index into ``classes``; ``NO_LABEL`` (-1) for unlabelled images.
        classes: ordered class names.
        subjects: str (N,), subject id per image (the unit of every split).
        aus: int8 (N, A) FACS codes, columns named by ``au_codes`` (``"AU12"``): -1 frame not
            coded, 0 absent, 1-5 intensity A-E, 9 present with intensity not coded.
        au_codes: the A column names of ``aus``; empty for datasets without FACS.
        landmarks: float32 (N, 68, 2) as (x, y) in crop pixels; NaN where unknown.
        meta: one row per image (source file, sequence, frame, ...).
        splits: one ``Split`` per fold of the protocol.
        protocol: the options the loader was called with (for provenance and caching).
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    subjects: np.ndarray
    aus: torch.Tensor
    au_codes: list[str]
    landmarks: torch.Tensor
    meta: pd.DataFrame
    splits: list[Split] = field(default_factory=list)
    protocol: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.images)
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be uint8 (N, 1, S, S), got {self.images.dtype} {tuple(self.images.shape)}")
        for what, value in (("labels", self.labels), ("subjects", self.subjects), ("aus", self.aus),
                            ("landmarks", self.landmarks), ("meta", self.meta)):
            if len(value) != n:
                raise ValueError(f"FaceSet.{what} has {len(value)} rows, images have {n}")
        if self.aus.shape[1] != len(self.au_codes):
            raise ValueError(f"aus has {self.aus.shape[1]} columns but {len(self.au_codes)} au_codes")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        size = self.images.shape[-1]
        return (f"FaceSet({self.name!r}, {len(self)} images {size}x{size}, {len(self.classes)} classes, "
                f"{len(np.unique(self.subjects))} subjects, {len(self.au_codes)} AUs, {len(self.splits)} folds)")

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def au_present(self) -> torch.Tensor:
        """bool (N, A): the AU is coded as present (any intensity)."""
        return self.aus > 0

    def au_coded(self) -> torch.Tensor:
        """bool (N,): the frame carries FACS codes (apex and neutral frames in CK+)."""
        if not self.au_codes:
            return torch.zeros(len(self), dtype=torch.bool)
        return (self.aus != AU_NOT_CODED).all(dim=1)

    def au_intensity(self) -> torch.Tensor:
        """float (N, A): 0-5 intensity, NaN where not coded or the intensity is unknown."""
        out = self.aus.float()
        out[(self.aus == AU_NOT_CODED) | (self.aus == AU_PRESENT_UNKNOWN)] = float("nan")
        return out

    def subset(self, index, keep_splits: bool = False) -> FaceSet:
        """The images at ``index`` (an index array or bool mask).

        Args:
            keep_splits: put each image in the parts of every fold that hold its subject (an image of a subject
                in no split is in none), else drop the splits. The splits must be subject-independent.
        """
        index = torch.as_tensor(np.asarray(index))
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        np_index = index.numpy()
        splits = self._subject_splits(self.subjects[np_index]) if keep_splits else []
        return FaceSet(
            name=self.name, images=self.images[index], labels=self.labels[index], classes=list(self.classes),
            subjects=self.subjects[np_index], aus=self.aus[index], au_codes=list(self.au_codes),
            landmarks=self.landmarks[index], meta=self.meta.iloc[np_index].reset_index(drop=True),
            splits=splits, protocol=dict(self.protocol),
        )

    def _subject_splits(self, subjects: np.ndarray) -> list[Split]:
        """The splits carried over to images of ``subjects`` (N',) by subject membership."""
        out, position = [], np.arange(len(subjects))
        for k, split in enumerate(self.splits):
            parts = {part: set(self.subjects[getattr(split, part)]) for part in ("train", "val", "test")}
            shared = (parts["train"] & parts["val"]) | (parts["train"] & parts["test"]) | (parts["val"] & parts["test"])
            if shared:
                raise ValueError(f"fold {k} is not subject-independent (e.g. subject {sorted(shared)[0]}): its splits "
                                 "cannot be carried over by subject")
            out.append(Split(*(position[np.isin(subjects, sorted(parts[p]))] for p in ("train", "val", "test"))))
        return out

    def class_counts(self) -> pd.DataFrame:
        """Images and subjects per class (unlabelled images are left out)."""
        labels = self.labels.numpy()
        rows = []
        for k, name in enumerate(self.classes):
            mask = labels == k
            rows.append({"class": name, "images": int(mask.sum()),
                         "subjects": len(np.unique(self.subjects[mask]))})
        return pd.DataFrame(rows)

    def fold_sizes(self) -> pd.DataFrame:
        """Images and subjects in train / val / test of every fold."""
        rows = []
        for k, split in enumerate(self.splits):
            row = {"fold": k}
            for part in ("train", "val", "test"):
                idx = getattr(split, part)
                row[part] = len(idx)
                row[f"{part}_subjects"] = len(np.unique(self.subjects[idx]))
            rows.append(row)
        return pd.DataFrame(rows)

    # ---- persistence (used by the loader cache) ----

    def save(self, path: str | os.PathLike) -> None:
        """Write to one ``.npz`` file atomically (temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "images": self.images.numpy(), "labels": self.labels.numpy(), "subjects": self.subjects.astype(str),
            "aus": self.aus.numpy(), "landmarks": self.landmarks.numpy(),
            "header": np.array(json.dumps({"name": self.name, "classes": self.classes, "au_codes": self.au_codes,
                                           "protocol": self.protocol, "n_splits": len(self.splits)})),
            "meta": np.array(self.meta.to_json(orient="table", index=False)),
        }
        for k, split in enumerate(self.splits):
            for part in ("train", "val", "test"):
                arrays[f"split{k}_{part}"] = np.asarray(getattr(split, part), dtype=np.int64)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaceSet:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            meta = pd.read_json(StringIO(str(z["meta"])), orient="table")
            splits = [Split(*(z[f"split{k}_{part}"] for part in ("train", "val", "test")))
                      for k in range(header["n_splits"])]
            return cls(
                name=header["name"], images=torch.from_numpy(z["images"]), labels=torch.from_numpy(z["labels"]),
                classes=header["classes"], subjects=z["subjects"], aus=torch.from_numpy(z["aus"]),
                au_codes=header["au_codes"], landmarks=torch.from_numpy(z["landmarks"]), meta=meta,
                splits=splits, protocol=header["protocol"],
            )


def subject_folds(subjects, n_folds: int = 10) -> dict[str, int]:
    """The paper's fold rule: sort the subject ids; the subject at position i goes to fold i mod n."""
    return {s: i % n_folds for i, s in enumerate(sorted(set(subjects)))}


def rotating_splits(fold_of_image: np.ndarray, n_folds: int = 10) -> list[Split]:
    """Test fold t, validation fold (t + 1) mod n, train on the rest; images with fold -1 are left out."""
    fold_of_image = np.asarray(fold_of_image)
    index = np.arange(len(fold_of_image))
    splits = []
    for t in range(n_folds):
        v = (t + 1) % n_folds
        used = fold_of_image >= 0
        splits.append(Split(
            train=index[used & (fold_of_image != t) & (fold_of_image != v)],
            val=index[fold_of_image == v],
            test=index[fold_of_image == t],
        ))
    return splits
