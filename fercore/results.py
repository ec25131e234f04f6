"""Small JSON result files: each notebook writes what it measured, tests and later notebooks read it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from fercore.paths import runs_dir


def default_run_dir(dataset: str, profile: str) -> Path:
    """``runs/<profile>-<dataset>``: where the notebooks of one study share their results."""
    return runs_dir() / f"{profile}-{dataset}"


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` atomically (temp file, then rename); numpy scalars and arrays are converted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_plain)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | os.PathLike, produced_by: str = "") -> dict:
    """Read a result file; if it is missing, say which notebook or command produces it."""
    path = Path(path)
    if not path.exists():
        hint = f" Run {produced_by} first." if produced_by else ""
        raise FileNotFoundError(f"{path} not found.{hint}")
    return json.loads(path.read_text())


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save_figure(fig, run_dir: str | os.PathLike, name: str) -> Path:
    """Save a notebook figure as ``<run_dir>/figures/<name>.png`` (and leave it displayed)."""
    path = Path(run_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
