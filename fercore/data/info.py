"""``fercore info``: what a dataset copy holds under the default protocol (classes, subjects, folds).

Loading the copy is the check: a damaged or misplaced file stops it with an error that names
the file, and frames the protocol may skip (no face found, unreadable) are counted.
"""

from __future__ import annotations

import json
import os

from fercore.data import DATASETS, dataset_root, load
from fercore.data.faceset import FaceSet

_NO_SUBJECT_IDS = "{} has no subject ids: every image is its own subject, so its split is not subject-independent"


def info(name: str, root: str | os.PathLike | None = None, **protocol) -> dict:
    """Summarise a dataset copy under its default protocol (or the options in ``protocol``).

    Args:
        name: dataset name, one of ``fercore.data.DATASETS``. For ``"folder"`` without
            ``classes=``, the class folders found are listed in name order.
        root: dataset folder; None means the default location (see ``fercore.data.load``).
        **protocol: loader options, as for ``fercore.data.load``.

    Returns:
        JSON-ready dict: name, root, protocol, images, classes ({class: images}), class_subjects
        ({class: subjects}), subjects (total / with labelled images), left_out ({reason: count}),
        aus (column codes), folds ([{fold, train, val, test, ...}]), notes (what to know about
        this copy), and for the CK+ layout sequences (labelled / unlabelled).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    folder = dataset_root(name, root)
    notes = []
    if name == "folder" and "classes" not in protocol:
        protocol["classes"] = _class_folders(folder)
        notes.append(f"classes not given: the folders found, in name order ({', '.join(protocol['classes'])}); "
                     "pass classes= in label order to load()")
    faceset = load(name, root, **protocol)
    counts = faceset.class_counts()
    labelled = faceset.labels.numpy() >= 0
    summary = {
        "name": name,
        "root": str(folder),
        "protocol": {k: v for k, v in faceset.protocol.items() if k not in ("left_out", "dropped")},
        "images": len(faceset),
        "classes": dict(zip(counts["class"], counts["images"].astype(int).tolist(), strict=True)),
        "class_subjects": dict(zip(counts["class"], counts["subjects"].astype(int).tolist(), strict=True)),
        "subjects": {"total": len(set(faceset.subjects)), "labelled": len(set(faceset.subjects[labelled]))},
        "left_out": {k: len(v) for k, v in (faceset.protocol.get("left_out") or {}).items()},
        "aus": list(faceset.au_codes),
        "folds": [{k: int(v) for k, v in row.items()} for row in faceset.fold_sizes().to_dict("records")],
        "notes": notes + _notes(name, faceset),
    }
    if name in ("ckplus", "synthfacs"):
        from fercore.data.ckplus_files import scan_ckplus

        sequences = scan_ckplus(folder)
        summary["subjects"]["total"] = int(sequences["subject"].nunique())
        summary["sequences"] = {"labelled": int(sequences["labelled"].sum()),
                                "unlabelled": int((~sequences["labelled"]).sum())}
    if faceset.protocol.get("dropped"):
        summary["dropped"] = dict(faceset.protocol["dropped"])
    return summary


def _class_folders(folder) -> list[str]:
    from fercore.data.folders import SPLIT_FOLDERS

    names = set()
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name.casefold() in SPLIT_FOLDERS:
            names |= {p.name for p in sub.iterdir() if p.is_dir() and not p.name.startswith(".")}
        else:
            names.add(sub.name)
    return sorted(names)


def _notes(name: str, faceset: FaceSet) -> list[str]:
    notes = []
    if name in ("fer2013", "ferplus", "rafdb") or (name == "folder" and not faceset.protocol.get("subject")):
        notes.append(_NO_SUBJECT_IDS.format(name))
    if name == "tfd":
        unknown = int((faceset.meta["identity"] < 0).sum())
        notes.append(f"{unknown} images have no identity (labs_id -1): each is its own subject")
    left_out = faceset.protocol.get("left_out") or {}
    if left_out.get("no_face"):
        notes.append(f"{len(left_out['no_face'])} images left out: no face found by the Haar cascade")
    if left_out.get("unreadable"):
        notes.append(f"{len(left_out['unreadable'])} images left out: unreadable")
    for reason, count in (faceset.protocol.get("dropped") or {}).items():
        notes.append(f"{count} rows dropped: {reason.replace('_', ' ')}")
    return notes


def print_info(name: str, root: str | os.PathLike | None = None, as_json: bool = False, **protocol) -> None:
    """Print ``info(name, root, **protocol)`` as tables (pandas) or, with ``as_json``, as JSON."""
    import pandas as pd

    summary = info(name, root, **protocol)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{name} at {summary['root']}")
    print(f"protocol: {', '.join(f'{k}={v}' for k, v in summary['protocol'].items())}")
    line = (f"{summary['images']} images; subjects: {summary['subjects']['total']} "
            f"({summary['subjects']['labelled']} with labelled images)")
    if "sequences" in summary:
        line += (f"; sequences: {summary['sequences']['labelled']} labelled, "
                 f"{summary['sequences']['unlabelled']} unlabelled")
    print(line)
    print(f"{len(summary['aus'])} FACS action units: {' '.join(summary['aus']) or 'none'}")
    for note in summary["notes"]:
        print(f"note: {note}")
    print()
    classes = pd.DataFrame({"class": list(summary["classes"]), "images": list(summary["classes"].values()),
                            "subjects": list(summary["class_subjects"].values())})
    print(classes.to_string(index=False), end="\n\n")
    print(pd.DataFrame(summary["folds"]).to_string(index=False))
