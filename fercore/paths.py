"""Where fercore keeps data, caches and runs, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path | None:
    """The fercore checkout this package runs from (editable install), or None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """``$FERCORE_DATA``, else ``data/`` of the checkout, else ``~/fercore-data``."""
    if os.environ.get("FERCORE_DATA"):
        return Path(os.environ["FERCORE_DATA"])
    root = repo_root()
    return root / "data" if root else Path.home() / "fercore-data"


def runs_dir() -> Path:
    """``$FERCORE_RUNS``, else ``runs/`` of the checkout, else ``~/fercore-runs``."""
    if os.environ.get("FERCORE_RUNS"):
        return Path(os.environ["FERCORE_RUNS"])
    root = repo_root()
    return root / "runs" if root else Path.home() / "fercore-runs"


def cache_dir() -> Path:
    """``$FERCORE_CACHE``, else ``$XDG_CACHE_HOME/fercore`` (``~/.cache/fercore``).

    Never inside a dataset folder: fercore does not write under the user's data.
    """
    if os.environ.get("FERCORE_CACHE"):
        return Path(os.environ["FERCORE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fercore"
