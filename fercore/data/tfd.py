"""TFD (Toronto Face Database) loader: ``TFD_96x96.mat`` / ``TFD_48x48.mat`` -> FaceSet.

The file holds 102,236 pre-cropped gray faces, of which 4,178 carry an expression label, and the
5 official folds (each with its own train / valid / test). The paper trains on the labelled
images under those folds, so this loader keeps exactly them; TFD faces are already cropped and
aligned, so they are only resized. MATLAB v5 files are read with scipy, v7.3 (HDF5) files with
h5py, whose arrays come transposed (MATLAB is column-major).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.data.cache import cached, tree_fingerprint
from fercore.data.common import DatasetFormatError, find_below, make_faceset, ordered_classes, resize_faces
from fercore.data.faceset import NO_LABEL, FaceSet, Split

# TFD's expression ids -> fercore names (TFD writes "sad"; fercore says "sadness").
TFD_EXPRESSIONS = {1: "anger", 2: "disgust", 3: "fear", 4: "happy", 5: "sadness", 6: "surprise", 7: "neutral"}
CLASSES = ordered_classes(TFD_EXPRESSIONS.values())
FILES = {96: "TFD_96x96.mat", 48: "TFD_48x48.mat"}
KEYS = ("images", "labs_ex", "labs_id", "folds")
N_FOLDS = 5
FOLD_CODES = {0: "unlabelled", 1: "train", 2: "valid", 3: "test"}
_LOADER_VERSION = 1


def find_tfd_file(root: str | os.PathLike, resolution: int | None = None) -> Path:
    """The ``TFD_{resolution}x{resolution}.mat`` file: ``root`` itself or searched 2 levels below it.

    With ``resolution`` None, ``TFD_96x96.mat`` (the paper's) where present, else ``TFD_48x48.mat`` with a
    warning that says so.
    """
    if resolution is not None and resolution not in FILES:
        raise ValueError(f"resolution must be 96 or 48 (the two TFD files), got {resolution!r}")
    root = Path(root).expanduser()
    if root.is_file():
        return root
    if not root.is_dir():
        raise DatasetFormatError(f"TFD root {root} is neither a folder nor a .mat file")
    for candidate in ([resolution] if resolution else list(FILES)):
        folder = find_below(root, lambda p, name=FILES[candidate]: (p / name).is_file())
        if folder is not None:
            if resolution is None and candidate != 96:
                warnings.warn(f"{root} holds {FILES[candidate]} but no {FILES[96]}: using the "
                              f"{candidate}x{candidate} faces (the paper used 96x96)", stacklevel=3)
            return folder / FILES[candidate]
    others = sorted(p.name for p in root.rglob("*.mat"))[:10]
    hint = "".join(f"; for {f} pass resolution={r}" for r, f in FILES.items() if f in others)
    wanted = " or ".join(FILES[r] for r in ([resolution] if resolution else FILES))
    raise DatasetFormatError(f"no {wanted} found in {root} or 2 levels below it (the TFD release ships "
                             f"{' and '.join(FILES.values())}); .mat files found: {', '.join(others) or 'none'}"
                             f"{hint}")


def read_tfd(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check the four TFD arrays of a ``.mat`` file (v5 via scipy, v7.3 via h5py).

    Returns:
        {"images": uint8 (N, H, H), "labs_ex": int (N,) 1..7 or -1, "labs_id": int (N,) identity or -1,
        "folds": int (N, 5) codes 0 unlabelled / 1 train / 2 valid / 3 test}.

    Raises:
        DatasetFormatError naming the file and the key: a missing key, a wrong shape or a value
        outside its range.
    """
    path = Path(path)
    raw = _read_h5(path) if _is_hdf5(path) else _read_v5(path)
    images = raw["images"]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise DatasetFormatError(f"{path}: key 'images' must be (N, H, H) square gray faces, "
                                 f"got shape {images.shape}")
    n = images.shape[0]
    out = {"images": _as_pixels(path, images)}
    for key, columns in (("labs_ex", 1), ("labs_id", 1), ("folds", N_FOLDS)):
        value = raw[key]
        if value.ndim == 1 and columns == 1:
            value = value[:, None]
        if value.shape != (n, columns):
            raise DatasetFormatError(f"{path}: key '{key}' must have shape ({n}, {columns}) for {n} images, "
                                     f"got {value.shape}")
        value = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
            raise DatasetFormatError(f"{path}: key '{key}' must hold whole numbers")
        out[key] = value.astype(np.int64).squeeze(1) if columns == 1 else value.astype(np.int64)
    _check_values(path, "labs_ex", out["labs_ex"], {-1, *TFD_EXPRESSIONS}, "1..7 or -1 (unlabelled)")
    _check_values(path, "folds", out["folds"], set(FOLD_CODES), "0 (unlabelled), 1 (train), 2 (valid), 3 (test)")
    return out


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return h5py.is_hdf5(path)
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path}: {e}") from e


def _read_v5(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=KEYS)
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as e:
        raise DatasetFormatError(f"cannot read {path} as a MATLAB file: {e}") from e
    _check_keys(path, [k for k in data if not k.startswith("__")])
    return {k: np.asarray(data[k]) for k in KEYS}


def _read_h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            _check_keys(path, list(f.keys()))
            # MATLAB writes column-major: reversing every axis gives the (N, H, W) / (N, k) arrays.
            return {k: np.asarray(f[k]).T for k in KEYS}
    except OSError as e:
        raise DatasetFormatError(f"cannot read {path} as a MATLAB v7.3 (HDF5) file: {e}") from e


def _check_keys(path: Path, found: list[str]) -> None:
    missing = [k for k in KEYS if k not in found]
    if missing:
        raise DatasetFormatError(f"{path}: missing key(s) {', '.join(repr(k) for k in missing)}; a TFD file holds "
                                 f"{', '.join(KEYS)}; this one holds {', '.join(sorted(found)) or 'nothing'}")


def _as_pixels(path: Path, images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if images.size and (not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 255):
        raise DatasetFormatError(f"{path}: key 'images' must hold gray values 0-255, "
                                 f"got {images.min()}..{images.max()}")
    return np.round(images).astype(np.uint8)


def _check_values(path: Path, key: str, values: np.ndarray, allowed: set[int], expected: str) -> None:
    bad = ~np.isin(values, sorted(allowed))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DatasetFormatError(f"{path}: key '{key}', row {row + 1}: value {values[bad][0]} is not one of {expected}")


def load_tfd(root: str | os.PathLike, resolution: int | None = None, size: int = 96, unlabelled: bool = False,
             name: str = "tfd", use_cache: bool = True) -> FaceSet:
    """Load TFD under its official protocol: the 4,178 labelled images and the 5 official folds.

    Args:
        root: the TFD folder (searched 2 levels deep) or the ``.mat`` file itself.
        resolution: 96 reads ``TFD_96x96.mat`` (the paper's), 48 reads ``TFD_48x48.mat``; None: the 96x96
            file if present, else the 48x48 one (with a warning).
        size: side of the output faces (TFD faces are pre-cropped: resized only).
        unlabelled: also keep the unlabelled images (label ``NO_LABEL``, in no split).
        name: FaceSet name.
        use_cache: reuse / store the result in ``fercore.store.cache_dir()``.

    Returns:
        FaceSet with images uint8 (N, 1, size, size), labels (N,) over 7 classes in fercore's order
        (neutral, anger, disgust, fear, happy, sadness, surprise), subjects ``"tfd<labs_id>"``
        where the identity is known and a unique ``"tfd-row<row>"`` per image where it is -1
        (so an unknown identity never joins another image's subject), meta (row in the file,
        identity, emotion, fold1..fold5 codes) and 5 splits: for official fold k, train / val /
        test are the labelled images coded 1 / 2 / 3 in column k of ``folds``.
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    path = find_tfd_file(root, resolution).resolve()
    resolution = next((r for r, f in FILES.items() if path.name == f), resolution)
    protocol = {"dataset": name, "root": str(path), "resolution": resolution, "size": size,
                "unlabelled": unlabelled, "n_folds": N_FOLDS, "crop": "none (pre-cropped)"}
    key = {"loader": _LOADER_VERSION, "protocol": protocol, "files": tree_fingerprint([path])}
    return cached(name, key, lambda: _build(path, size, unlabelled, name, protocol), use_cache=use_cache)


def _build(path: Path, size: int, unlabelled: bool, name: str, protocol: dict) -> FaceSet:
    data = read_tfd(path)
    labelled = data["labs_ex"] > 0
    rows = np.arange(len(labelled)) if unlabelled else np.flatnonzero(labelled)
    labs_ex, labs_id, folds = data["labs_ex"][rows], data["labs_id"][rows], data["folds"][rows]
    emotions = [TFD_EXPRESSIONS.get(int(e), "") for e in labs_ex]
    labels = np.array([CLASSES.index(e) if e else NO_LABEL for e in emotions], dtype=np.int64)
    subjects = np.array([f"tfd{i}" if i >= 0 else f"tfd-row{r + 1}" for i, r in zip(labs_id, rows, strict=True)])
    index = np.arange(len(rows))
    has_label = labels != NO_LABEL
    splits = [Split(*(index[has_label & (folds[:, k] == code)] for code in (1, 2, 3))) for k in range(N_FOLDS)]
    meta = pd.DataFrame({"row": rows + 1, "identity": labs_id, "emotion": emotions,
                         **{f"fold{k + 1}": folds[:, k] for k in range(N_FOLDS)}})
    images = resize_faces(data["images"][rows], size)
    return make_faceset(name, images, labels, CLASSES, subjects, meta, splits, protocol)
