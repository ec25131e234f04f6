"""Dataset loaders: every one returns a ``FaceSet``; ``load(name, root)`` picks the loader by name.

| name | loader | on disk |
|---|---|---|
| ``ckplus`` | ``ckplus.load_ckplus`` | the unzipped CK+ folders |
| ``synthfacs`` | ``ckplus.load_ckplus`` | the built-in dataset, written as a CK+ tree on first use |
| ``tfd`` | ``tfd.load_tfd`` | ``TFD_96x96.mat`` / ``TFD_48x48.mat`` |
| ``fer2013`` | ``fer2013.load_fer2013`` | ``fer2013.csv`` or ``icml_face_data.csv`` |
| ``ferplus`` | ``fer2013.load_ferplus`` | ``fer2013.csv`` + ``fer2013new.csv`` |
| ``jaffe`` | ``folders.load_jaffe`` | a folder of ``KA.AN1.39.tiff`` |
| ``kdef`` | ``folders.load_kdef`` | ``KDEF/AF01/AF01ANS.JPG`` |
| ``rafdb`` | ``folders.load_rafdb`` | ``basic/EmoLabel`` + ``basic/Image/aligned`` |
| ``folder`` | ``folders.load_folder`` | ``root/<class>/*.png`` (class names passed as ``classes=``) |
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from fercore.data.common import DatasetFormatError
from fercore.data.faceset import NO_LABEL, FaceSet, Split
from fercore.store import data_dir

__all__ = ["DATASETS", "NO_LABEL", "DatasetFormatError", "FaceSet", "Split", "dataset_root", "load", "loader"]

# name -> (module, function); modules are imported on first use (SynthFACS rendering, h5py, OpenCV).
_LOADERS = {
    "ckplus": ("fercore.data.ckplus", "load_ckplus"),
    "synthfacs": ("fercore.data.ckplus", "load_ckplus"),
    "tfd": ("fercore.data.tfd", "load_tfd"),
    "fer2013": ("fercore.data.fer2013", "load_fer2013"),
    "ferplus": ("fercore.data.fer2013", "load_ferplus"),
    "jaffe": ("fercore.data.folders", "load_jaffe"),
    "kdef": ("fercore.data.folders", "load_kdef"),
    "rafdb": ("fercore.data.folders", "load_rafdb"),
    "folder": ("fercore.data.folders", "load_folder"),
}
DATASETS = tuple(_LOADERS)
_DEFAULT_FOLDER = {"ferplus": "fer2013"}  # fer2013new.csv sits beside fer2013.csv


def dataset_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``fercore.store.data_dir() / name`` (``data/synthfacs``; FER+: ``data/fer2013``)."""
    if root is not None:
        return Path(root).expanduser()
    if name == "folder":
        raise ValueError("the 'folder' dataset has no default location: pass root=")
    return data_dir() / _DEFAULT_FOLDER.get(name, name)


def loader(name: str):
    """The loader function of dataset ``name`` (its docstring lists the protocol options)."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    module, function = _LOADERS[name]
    return getattr(importlib.import_module(module), function)


def load(name: str, root: str | os.PathLike | None = None, **protocol) -> FaceSet:
    """Load dataset ``name`` from ``root`` under a protocol.

    Args:
        name: one of ``DATASETS``: ``"ckplus"``, ``"synthfacs"`` (the built-in dataset, written to
            ``root`` first when that folder is missing or empty), ``"tfd"``, ``"fer2013"``,
            ``"ferplus"``, ``"jaffe"``, ``"kdef"``, ``"rafdb"``, ``"folder"`` (needs ``classes=``).
        root: dataset folder; None means ``fercore.store.data_dir() / name``.
        **protocol: options of the loader, e.g. ``frames="paper", classes=8, size=96`` for CK+
            (see ``loader(name)``'s docstring).

    Returns:
        FaceSet.

    Raises:
        DatasetFormatError: the copy does not match its layout (the message names the file).
    """
    function = loader(name)
    folder = dataset_root(name, root)
    if name == "synthfacs":
        synthfacs = importlib.import_module("fercore.data.synthfacs")
        if not folder.exists() or not any(folder.iterdir()):
            synthfacs.write_tree(folder)
        synthfacs.warn_if_outdated(folder)
        return function(folder, name="synthfacs", **protocol)
    return function(folder, **protocol)
