"""Dataset loaders: every one returns a ``FaceSet``; ``load(name, root)`` picks the loader by name."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from fercore.data.faceset import NO_LABEL, FaceSet, Split
from fercore.paths import data_dir

__all__ = ["DATASETS", "NO_LABEL", "FaceSet", "Split", "dataset_root", "load"]

DATASETS = ("ckplus", "synthfacs")


def dataset_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``fercore.paths.data_dir() / name`` (e.g. ``data/synthfacs``)."""
    return Path(root).expanduser() if root is not None else data_dir() / name


def load(name: str, root: str | os.PathLike | None = None, **protocol) -> FaceSet:
    """Load dataset ``name`` from ``root`` under a protocol.

    Args:
        name: ``"ckplus"`` or ``"synthfacs"`` (the built-in dataset, written to ``root`` first
            when that folder is missing or empty).
        root: dataset folder; None means ``fercore.paths.data_dir() / name``.
        **protocol: options of the loader, e.g. ``frames="paper", classes=8, size=96``
            (see ``fercore.data.ckplus.load_ckplus``).

    Returns:
        FaceSet.
    """
    from fercore.data.ckplus import load_ckplus

    if name == "ckplus":
        return load_ckplus(dataset_root(name, root), **protocol)
    if name == "synthfacs":
        folder = dataset_root(name, root)
        if not folder.exists() or not any(folder.iterdir()):
            # Imported here: SynthFACS rendering is only needed the first time.
            importlib.import_module("fercore.data.synthfacs").write_tree(folder)
        return load_ckplus(folder, name="synthfacs", **protocol)
    raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
