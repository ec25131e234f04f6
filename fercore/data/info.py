"""``fercore info``: what a dataset copy holds under the default protocol (classes, subjects, folds)."""

from __future__ import annotations

import json
import os

from fercore.data import dataset_root, load
from fercore.data.ckplus import scan_ckplus


def info(name: str, root: str | os.PathLike | None = None) -> dict:
    """Summarise a dataset copy under its default protocol.

    Args:
        name: dataset name (``"ckplus"`` or ``"synthfacs"``).
        root: dataset folder; None means the default location (see ``fercore.data.load``).

    Returns:
        JSON-ready dict: name, root, protocol, images, classes ({class: images}), class_subjects
        ({class: subjects}), subjects (in the copy / with labelled images), sequences
        (labelled / unlabelled), aus (column codes), folds ([{fold, train, val, test, ...}]).
    """
    faceset = load(name, root)
    folder = dataset_root(name, root)
    sequences = scan_ckplus(folder)  # both known datasets use the CK+ layout
    counts = faceset.class_counts()
    labelled = faceset.labels.numpy() >= 0
    return {
        "name": name,
        "root": str(folder),
        "protocol": faceset.protocol,
        "images": len(faceset),
        "classes": dict(zip(counts["class"], counts["images"].astype(int).tolist(), strict=True)),
        "class_subjects": dict(zip(counts["class"], counts["subjects"].astype(int).tolist(), strict=True)),
        "subjects": {"total": int(sequences["subject"].nunique()),
                     "labelled": int(len(set(faceset.subjects[labelled])))},
        "sequences": {"labelled": int(sequences["labelled"].sum()),
                      "unlabelled": int((~sequences["labelled"]).sum())},
        "aus": list(faceset.au_codes),
        "folds": [{k: int(v) for k, v in row.items()} for row in faceset.fold_sizes().to_dict("records")],
    }


def print_info(name: str, root: str | os.PathLike | None = None, as_json: bool = False) -> None:
    """Print ``info(name, root)`` as tables (pandas) or, with ``as_json``, as JSON."""
    import pandas as pd

    summary = info(name, root)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{name} at {summary['root']}")
    print(f"protocol: {', '.join(f'{k}={v}' for k, v in summary['protocol'].items())}")
    print(f"{summary['images']} images; subjects: {summary['subjects']['total']} "
          f"({summary['subjects']['labelled']} with labelled images); sequences: "
          f"{summary['sequences']['labelled']} labelled, {summary['sequences']['unlabelled']} unlabelled")
    print(f"{len(summary['aus'])} FACS action units: {' '.join(summary['aus']) or 'none'}\n")
    classes = pd.DataFrame({"class": list(summary["classes"]), "images": list(summary["classes"].values()),
                            "subjects": list(summary["class_subjects"].values())})
    print(classes.to_string(index=False), end="\n\n")
    print(pd.DataFrame(summary["folds"]).to_string(index=False))
