"""The accuracy of a protocol's grid (notebook 02 and ``fercore reproduce``): the table beside the cited
numbers, per class, confusions, what it cost.

A dataset's protocol is one or more *tasks*: CK+ (and SynthFACS, written as a CK+ tree) is scored
with 8 classes and with 6 (no neutral, no contempt); TFD has one task over its 5 official folds.
Each task is one experiment folder of ``fercore.experiment`` below the run directory:

    <run_dir>/<variant>/fold<k>/            the main task (CK+ 8-class): where notebook 01 trains
    <run_dir>/classes6/<variant>/fold<k>/   CK+ 6-class

Published numbers come from ``fercore.references`` (as cited, unconfirmed); paired tests of the
variants from ``fercore.stats``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fercore import experiment, store
from fercore.config import VARIANTS, arch_folder
from fercore.execution import Execution
from fercore.models import DEFAULT_ARCH
from fercore.references import REFERENCE_STATUS, reference_of
from fercore.train import holds_finished

# ----------------------------------------------------------------------------- tasks of a protocol


@dataclass(frozen=True)
class Task:
    """One column of the accuracy table: a dataset under one protocol, in its own experiment folder."""

    label: str  # e.g. "CK+ 8-class"
    dataset: str  # loader name (fercore.data.load)
    protocol: dict = field(default_factory=dict)  # loader options, e.g. {"classes": 6}
    folder: str = ""  # experiment folder below the run directory ("" = the run directory itself)
    reference: str | None = None  # the task of REFERENCES it is set beside

    def name(self, stem: str) -> str:
        """A file name for this task: ``stem`` for the main task, ``stem_<folder>`` for the others."""
        return f"{stem}_{self.folder}" if self.folder else stem


def tasks(dataset: str) -> list[Task]:
    """The tasks of a dataset's protocol, the main one first (the one notebooks 00, 01, 03 and 04 use).

    CK+ and SynthFACS (a CK+ tree; its column is set beside CK+'s references for orientation only):
    8 classes, then 6. TFD: its 5 official folds, 7 classes. Any other dataset: its loader's default.
    """
    if dataset in ("ckplus", "synthfacs"):
        name = "CK+" if dataset == "ckplus" else "SynthFACS"
        return [Task(f"{name} 8-class", dataset, {"classes": 8}, "", "CK+ 8-class"),
                Task(f"{name} 6-class", dataset, {"classes": 6}, "classes6", "CK+ 6-class")]
    if dataset == "tfd":
        return [Task("TFD", "tfd", {}, "", "TFD")]
    return [Task(dataset, dataset)]


@dataclass
class TaskRuns:
    """The finished runs of one task's grid."""

    task: Task
    experiment_dir: Path
    classes: list[str]  # class names in label order
    runs: pd.DataFrame  # experiment.runs_table: variant, fold, test_accuracy, seconds, images_per_s, device
    missing: int  # runs of the grid that are not finished (and were not trained here)
    trained: int  # runs this call trained
    wall_s: float  # wall time this call spent training

    def confusions(self, normalize: bool = True) -> dict[str, pd.DataFrame]:
        """Per variant: the confusion matrix of its test predictions pooled over the folds of ``runs``."""
        return experiment.confusions(self.experiment_dir, self.classes, self.runs, normalize)

    def per_class(self) -> pd.DataFrame:
        """Per variant (rows) and class (columns): recall pooled over the folds of ``runs``."""
        return experiment.per_class_accuracy(self.experiment_dir, self.classes, self.runs)

    def histories(self) -> pd.DataFrame:
        """The learning curves of every run (``experiment.histories``)."""
        return experiment.histories(self.experiment_dir, self.runs)


def collect(dataset: str, data_root: str | os.PathLike | None, run_dir: str | os.PathLike, profile: str = "quick",
            train: str = "all", execution: Execution | None = None, options: dict | None = None,
            arch: str = DEFAULT_ARCH, cluster: str | None = None, runs_per_gpu: int = 1, progress: bool = True,
            **overrides) -> list[TaskRuns]:
    """The grid of every task of ``dataset`` (profile's variants x folds), training what is missing.

    Args:
        dataset, data_root: as for ``fercore.data.load``.
        run_dir: the run directory; task experiments go below it (see ``tasks``).
        profile: "quick" or "paper" (its variants and folds make the grid).
        train: which tasks' missing runs to train: "all", "main" (the first task only; notebook 02
            in CI) or "none". Finished runs are never retrained.
        execution: device, precision, ... of the runs trained here.
        options: loader options for every task (the task's own protocol wins, e.g. ``classes``).
        arch: a registered architecture; its grids go below ``<run_dir>/<arch>`` (the paper's: ``run_dir``).
        cluster, runs_per_gpu: train as Ray tasks (``experiment.cross_validate``).
        progress: progress bars.
        **overrides: TrainConfig fields for every run (seed, iterations, ...).

    Returns:
        One TaskRuns per task with at least one finished run of its grid.
    """
    from fercore.data import load

    if train not in ("all", "main", "none"):
        raise ValueError(f"train must be 'all', 'main' or 'none', got {train!r}")
    collected = []
    for k, task in enumerate(tasks(dataset)):
        faceset = load(task.dataset, data_root, **{**(options or {}), **task.protocol})
        folder = store.experiment_dir(run_dir, task.folder, arch_folder(arch))
        configs = experiment.plan(faceset, profile, arch=arch, **{"dataset": dataset, **overrides})
        done = [c for c in configs if holds_finished(faceset, c, store.run_dir_of(folder, c.variant, c.fold))]
        start, trained = time.perf_counter(), 0
        if train == "all" or (train == "main" and k == 0):
            experiment.cross_validate(faceset, folder, profile, execution=execution, cluster=cluster,
                                      runs_per_gpu=runs_per_gpu, progress=progress, arch=arch,
                                      **{"dataset": dataset, **overrides})
            trained, done = len(configs) - len(done), configs
        if done:
            collected.append(TaskRuns(task, folder, list(faceset.classes), experiment.runs_table(folder, done),
                                      missing=len(configs) - len(done), trained=trained,
                                      wall_s=time.perf_counter() - start))
    return collected


# ----------------------------------------------------------------------------- accuracy table


def accuracy_table(collected: list[TaskRuns]) -> pd.DataFrame:
    """One row per task and variant: task, variant, folds, per_fold (lists, in fold order), n, mean, std
    (sample std over folds, ddof=1, as ``experiment.summarize``), reference (cited accuracy in %, or "")."""
    rows = []
    for t in collected:
        for variant, runs in t.runs.groupby("variant", sort=False):
            runs = runs.sort_values("fold")
            acc = runs["test_accuracy"].to_numpy()
            rows.append({"task": t.task.label, "variant": variant, "folds": runs["fold"].tolist(),
                         "per_fold": acc.tolist(), "n": len(acc), "mean": acc.mean(),
                         "std": acc.std(ddof=1) if len(acc) > 1 else math.nan,
                         "reference": reference_of(t.task.reference, variant)})
    return pd.DataFrame(rows)


def format_accuracy_table(table: pd.DataFrame, collected: list[TaskRuns]) -> pd.DataFrame:
    """The accuracy table as printed: rows variants; per task "mean +- std" in % (and the number of
    folds), then the reference column of that task, headed "as cited, unconfirmed"."""
    variants = [v for v in VARIANTS if v in set(table["variant"])]  # the paper's order
    out = pd.DataFrame(index=pd.Index(variants, name="variant"))
    for t in collected:
        rows = table[table["task"] == t.task.label].set_index("variant")
        out[f"{t.task.label} (%)"] = [_mean_std(rows.loc[v]) if v in rows.index else "-" for v in variants]
        if t.task.reference:
            out[f"{t.task.reference}, paper ({REFERENCE_STATUS})"] = [
                reference_of(t.task.reference, v) or "-" for v in variants]
    return out


def _mean_std(row) -> str:
    if row["n"] < 2:
        return f"{100 * row['mean']:.1f} (1 fold)"
    return f"{100 * row['mean']:.1f} +- {100 * row['std']:.1f} ({row['n']} folds)"


def summary_table(collected: list[TaskRuns]) -> pd.DataFrame:
    """``summary.csv`` of a report: one row per task and variant (task first, then as
    ``experiment.summarize``: variant, folds, mean, std, fold<k>...)."""
    parts = [experiment.summarize(t.runs).assign(task=t.task.label) for t in collected]
    table = pd.concat(parts, ignore_index=True)
    return table[["task"] + [c for c in table.columns if c != "task"]]


# ----------------------------------------------------------------------------- curves, classes, cost


def cost(collected: list[TaskRuns]) -> pd.DataFrame:
    """Per task and variant: runs, training wall time per fold (mean, s), images per second (mean), device."""
    runs = pd.concat([t.runs.assign(task=t.task.label) for t in collected], ignore_index=True)
    table = runs.groupby(["task", "variant"], sort=False).agg(
        runs=("fold", "size"), seconds_per_fold=("seconds", "mean"), images_per_s=("images_per_s", "mean"),
        device=("device", lambda d: ", ".join(sorted(set(d)))))
    return table.reset_index()


def pixel_margin(runs: pd.DataFrame, pixel_per_fold: list[dict], variant: str = "cnn_ad") -> dict:
    """``variant`` against the pixel-logistic yardstick of notebook 00 on the same folds.

    Args:
        runs: runs table of the main task.
        pixel_per_fold: ``00_datasets.json``'s ``pixel_logistic.per_fold`` (fold, test_accuracy).
    """
    mine = runs[runs["variant"] == variant].set_index("fold")["test_accuracy"]
    pixel = pd.DataFrame(pixel_per_fold).set_index("fold")["test_accuracy"].reindex(mine.index)
    return {"variant": variant, "folds": mine.index.tolist(), "accuracy_mean": float(mine.mean()),
            "pixel_mean": float(pixel.mean()), "margin": float(mine.mean() - pixel.mean())}


__all__ = ["Task", "TaskRuns", "accuracy_table", "collect", "cost", "format_accuracy_table", "pixel_margin",
           "summary_table", "tasks"]
