"""The study on disk: where data, caches, runs, figures, results and reports live, and how files are written.

    data/<dataset>/                          dataset copies and the generated SynthFACS (``data_dir``)
    ~/.cache/fercore/                        loaded FaceSets (``cache_dir``)
    runs/<profile>-<dataset>/                one study (``default_run_dir``):
        <variant>/fold<k>/                   a training run of the main task (``RunFiles``)
        <task>/<variant>/fold<k>/            a run of another task of the protocol (CK+ 6-class: ``classes6``)
        NN_name.json                         what notebook NN measured (``write_json``)
        figures/NN_*.png                     the study's figures (``save_figure``)
    reports/<profile>-<dataset>/             ``fercore reproduce``'s report (``ReportFiles``)

This is the one module that knows these places. Every file fercore writes goes through
``atomic_path`` (a temporary file beside the target, renamed over it when complete), so a reader
sees the old file or the new one, never a partial one; JSON goes through one sanitiser
(``jsonable``) so every result file is strict JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- places


def repo_root() -> Path | None:
    """The fercore checkout this package runs from (editable install), or None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def _place(variable: str, folder: str, fallback: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser()
    root = repo_root()
    return root / folder if root else Path.home() / fallback


def data_dir() -> Path:
    """``$FERCORE_DATA``, else ``data/`` of the checkout, else ``~/fercore-data``."""
    return _place("FERCORE_DATA", "data", "fercore-data")


def runs_dir() -> Path:
    """``$FERCORE_RUNS``, else ``runs/`` of the checkout, else ``~/fercore-runs``."""
    return _place("FERCORE_RUNS", "runs", "fercore-runs")


def reports_dir() -> Path:
    """``$FERCORE_REPORTS``, else ``reports/`` of the checkout, else ``~/fercore-reports``."""
    return _place("FERCORE_REPORTS", "reports", "fercore-reports")


def cache_dir() -> Path:
    """``$FERCORE_CACHE``, else ``$XDG_CACHE_HOME/fercore`` (``~/.cache/fercore``).

    Never inside a dataset folder: fercore does not write under the user's data.
    """
    if os.environ.get("FERCORE_CACHE"):
        return Path(os.environ["FERCORE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fercore"


def notebook_dir() -> Path:
    """The numbered notebooks (``notebooks/`` of the checkout, else of the working directory)."""
    return (repo_root() or Path.cwd()) / "notebooks"


def default_run_dir(dataset: str, profile: str) -> Path:
    """``runs/<profile>-<dataset>``: where the notebooks and commands of one study share their runs and results."""
    return runs_dir() / f"{profile}-{dataset}"


def default_report_dir(dataset: str, profile: str) -> Path:
    """``reports/<profile>-<dataset>``: where ``fercore reproduce`` writes its report."""
    return reports_dir() / f"{profile}-{dataset}"


def experiment_dir(run_dir: str | os.PathLike, task_folder: str = "", arch_folder: str = "") -> Path:
    """The folder of one task's grid of one arch below a study's run directory: ``<run_dir>[/<arch>][/<task>]``
    (the paper's network on the main task: the run directory itself; ``fercore.config.arch_folder``)."""
    return Path(run_dir) / arch_folder / task_folder


def run_dir_of(experiment: str | os.PathLike, variant: str, fold: int) -> Path:
    """``<experiment>/<variant>/fold<k>``: one run of a cross-validation."""
    return Path(experiment) / variant / f"fold{fold}"


def experiment_runs(experiment: str | os.PathLike) -> list[tuple[str, int, Path]]:
    """(variant, fold, run directory) of every run folder below an experiment folder, by variant and fold."""
    found = [(d.parent.name, int(d.name[4:]), d) for d in Path(experiment).glob("*/fold*")
             if d.is_dir() and d.name[4:].isdigit()]
    return sorted(found, key=lambda entry: entry[:2])


def experiment_summary(experiment: str | os.PathLike) -> Path:
    """``<experiment>/summary.csv``: one row per variant of a cross-validation."""
    return Path(experiment) / "summary.csv"


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run directory (written by ``fercore.train``)."""

    dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    config = property(lambda self: self.dir / "config.json")  # the run's identity
    metrics = property(lambda self: self.dir / "metrics.csv")  # one row per evaluation
    best = property(lambda self: self.dir / "best.pt")  # the checkpoint validation selected
    last = property(lambda self: self.dir / "last.pt")  # everything needed to resume
    predictions = property(lambda self: self.dir / "predictions.csv")  # test predictions of best.pt
    result = property(lambda self: self.dir / "result.json")  # written last: the run is finished

    @property
    def finished(self) -> bool:
        return self.result.exists()


@dataclass(frozen=True)
class ReportFiles:
    """The folder ``fercore reproduce`` writes."""

    dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    notebooks = property(lambda self: self.dir / "notebooks")  # executed notebooks and their HTML copies
    figures = property(lambda self: self.dir / "figures")  # every figure of the study
    results = property(lambda self: self.dir / "results")  # each notebook's JSON
    summary = property(lambda self: self.dir / "summary.csv")  # per task and variant: folds, mean, std
    record = property(lambda self: self.dir / "reproduce.json")  # the command's settings and times


# ----------------------------------------------------------------------------- writing


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The parent folder is created. On POSIX and Windows the rename is atomic: readers see the old
    file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def jsonable(value):
    """``value`` as plain JSON types: dataclasses as dicts, numpy scalars and arrays as numbers and lists,
    paths as strings, tuples as lists, and NaN or infinite floats as None (strict JSON has no NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r:.80}")


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` (a dict or a dataclass) as strict, indented JSON, atomically."""
    return write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, produced_by: str = "") -> dict:
    """Read a JSON file; if it is missing, say which notebook or command produces it."""
    path = Path(path)
    if not path.exists():
        hint = f" Run {produced_by} first." if produced_by else ""
        raise FileNotFoundError(f"{path} not found.{hint}")
    return json.loads(path.read_text(encoding="utf-8"))


def save_figure(fig, folder: str | os.PathLike, name: str, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` (atomically) and return the path; the figure stays open."""
    path = Path(folder) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path


__all__ = ["ReportFiles", "RunFiles", "atomic_path", "cache_dir", "data_dir", "default_report_dir",
           "default_run_dir", "experiment_dir", "experiment_runs", "experiment_summary", "jsonable", "notebook_dir",
           "read_json", "repo_root", "reports_dir", "run_dir_of", "runs_dir", "save_figure", "write_json",
           "write_text"]
