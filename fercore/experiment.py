"""Cross-validation: every (variant, fold) of a profile trained into one experiment folder, and its summary.

    runs/<experiment>/<variant>/fold<k>/   one ``fercore.train`` run each (config, metrics, checkpoints, ...)
    runs/<experiment>/summary.csv          one row per variant: folds, mean and std over folds, each fold

Finished runs (those with result.json) are never retrained, so an interrupted cross-validation is
continued by running it again, and a run that notebook 01 trained is reused by the later ones.
Runs go one after another, or as Ray tasks on a local Ray instance or a cluster (``fercore.cluster``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from fercore import store
from fercore.config import TrainConfig, get_profile
from fercore.data.faceset import FaceSet
from fercore.execution import Execution
from fercore.models import DEFAULT_ARCH
from fercore.progress import tqdm
from fercore.store import RunFiles, run_dir_of
from fercore.train import holds_finished, is_finished, load_result, train


def plan(faceset: FaceSet, profile: str = "quick", variants=None, folds=None, arch: str = DEFAULT_ARCH,
         **overrides) -> list[TrainConfig]:
    """The runs of a cross-validation, variant by variant, fold by fold.

    Args:
        faceset: the dataset (its name and number of folds are used).
        profile: "quick" or "paper"; its variants and folds are the default.
        arch: a registered architecture (its settings under the profile).
        variants, folds: subsets to run instead of the profile's.
        **overrides: TrainConfig fields for every run (seed, iterations, ...).
    """
    p = get_profile(profile)
    variants = list(variants or p.variants)
    if folds is None:
        folds = range(len(faceset.splits)) if p.folds is None else p.folds
    folds = list(folds)
    if bad := [k for k in folds if not 0 <= k < len(faceset.splits)]:
        raise ValueError(f"folds {bad} do not exist: {faceset.name} has {len(faceset.splits)} folds")
    overrides.setdefault("dataset", faceset.name)
    return [TrainConfig.from_profile(profile, arch, variant=v, fold=k, **overrides) for v in variants for k in folds]


def cross_validate(faceset: FaceSet, experiment_dir: str | os.PathLike, profile: str = "quick", variants=None,
                   folds=None, execution: Execution | None = None, cluster: str | None = None, runs_per_gpu: int = 1,
                   progress: bool = True, **overrides) -> pd.DataFrame:
    """Train every run of ``plan(...)`` that is not finished yet, then summarise.

    Args:
        faceset: the dataset, with its protocol's splits.
        experiment_dir: the experiment folder (runs go to ``<variant>/fold<k>`` below it).
        profile, variants, folds, **overrides: as for ``plan`` (e.g. ``seed=1``, ``iterations=10``).
        execution: device, precision, ... of every run (default: the CPU).
        cluster: None: the runs one after another in this process; "local" or a Ray cluster's address: every
            run a Ray task (``fercore.cluster``), several side by side.
        runs_per_gpu: with a cluster on CUDA, runs that share one GPU.
        progress: progress bars (one per run, and one over the runs).

    Returns:
        One row per run: variant, fold, test_accuracy, best_iteration, best_val_accuracy, seconds,
        images_per_s, device. ``summary.csv`` (see ``summarize``) is written to ``experiment_dir``.
    """
    configs = plan(faceset, profile, variants, folds, **overrides)
    if not configs:
        raise ValueError("nothing to run: no variants or no folds")
    execution = execution or Execution()
    todo = [c for c in configs if not holds_finished(faceset, c, run_dir_of(experiment_dir, c.variant, c.fold))]
    if cluster and todo:
        from fercore.cluster import train_grid  # imports Ray: only with a cluster

        train_grid(faceset, todo, experiment_dir, execution, cluster, runs_per_gpu, progress)
    else:
        for config in tqdm(todo, desc="cross-validation", unit="run", disable=not progress or len(todo) < 2):
            train(faceset, config, run_dir_of(experiment_dir, config.variant, config.fold), execution,
                  progress=progress)
    runs = runs_table(experiment_dir, configs)
    with store.atomic_path(store.experiment_summary(experiment_dir)) as tmp:
        summarize(runs).to_csv(tmp, index=False)
    return runs


def runs_table(experiment_dir: str | os.PathLike, configs: list[TrainConfig] | None = None) -> pd.DataFrame:
    """One row per finished run (of ``configs``, or every finished run under ``experiment_dir``)."""
    if configs is None:
        dirs = [d for _, _, d in store.experiment_runs(experiment_dir) if is_finished(d)]
    else:
        dirs = [run_dir_of(experiment_dir, c.variant, c.fold) for c in configs]
    rows = []
    for run_dir in dirs:
        r = load_result(run_dir)
        rows.append({"variant": r.config["variant"], "fold": r.config["fold"], "test_accuracy": r.test_accuracy,
                     "best_iteration": r.best_iteration, "best_val_accuracy": r.best_val_accuracy,
                     "seconds": r.seconds, "images_per_s": r.images_per_s, "device": r.device})
    return _in_paper_order(pd.DataFrame(rows), "variant", "fold")


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant: number of folds, mean and std of the test accuracy over folds, and each fold's.

    The std is the sample standard deviation over folds (ddof=1; NaN for a single fold): the
    spread a reader should expect from one fold to the next, not a pooled per-image figure.

    Args:
        runs: the output of ``runs_table`` / ``cross_validate``.

    Returns:
        Columns variant, folds, mean, std, fold<k>... (one per fold run).
    """
    per_fold = runs.pivot(index="variant", columns="fold", values="test_accuracy")
    per_fold.columns = [f"fold{k}" for k in per_fold.columns]
    table = pd.DataFrame({"folds": per_fold.notna().sum(axis=1), "mean": per_fold.mean(axis=1),
                          "std": per_fold.std(axis=1, ddof=1)}).join(per_fold)
    return _in_paper_order(table.reset_index(), "variant")


def predictions(experiment_dir: str | os.PathLike, variant: str, folds=None) -> pd.DataFrame:
    """The test predictions of a variant's finished runs, folds stacked (a ``fold`` column first)."""
    tables = [pd.read_csv(RunFiles(d).predictions).assign(fold=k) for v, k, d in store.experiment_runs(experiment_dir)
              if v == variant and is_finished(d) and (folds is None or k in folds)]
    if not tables:
        raise FileNotFoundError(f"no finished {variant} runs in {experiment_dir}; run `fercore cv` first")
    table = pd.concat(tables, ignore_index=True)
    return table[["fold"] + [c for c in table.columns if c != "fold"]]


def confusion(predictions: pd.DataFrame, classes: list[str], normalize: bool = True) -> pd.DataFrame:
    """Confusion matrix: rows the true class, columns the predicted class.

    Args:
        predictions: rows with integer ``label`` and ``prediction`` (``predictions.csv``, one or more folds).
        classes: the class names, in label order.
        normalize: divide each row by its count (rows sum to 1; the diagonal is per-class recall).

    Returns:
        DataFrame (n_classes, n_classes), index and columns named by ``classes``.
    """
    k = len(classes)
    counts = np.bincount(predictions["label"] * k + predictions["prediction"], minlength=k * k).reshape(k, k)
    matrix = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    return pd.DataFrame(matrix, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def confusions(experiment_dir: str | os.PathLike, classes: list[str], runs: pd.DataFrame,
               normalize: bool = True) -> dict[str, pd.DataFrame]:
    """Per variant of ``runs`` (a ``runs_table``): the confusion matrix of its test predictions, pooled over
    the folds it ran (each image is tested in exactly one fold)."""
    return {v: confusion(predictions(experiment_dir, v, set(g["fold"])), classes, normalize)
            for v, g in runs.groupby("variant", sort=False)}


def per_class_accuracy(experiment_dir: str | os.PathLike, classes: list[str], runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant (rows) and class (columns): the share of that class's test images classified right,
    pooled over the folds of ``runs`` (the diagonal of ``confusions``)."""
    rows = {v: np.diag(m.to_numpy()) for v, m in confusions(experiment_dir, classes, runs).items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=classes).rename_axis("variant")


def histories(experiment_dir: str | os.PathLike, runs: pd.DataFrame) -> pd.DataFrame:
    """The learning curves of every run in ``runs``: metrics.csv stacked, with variant, fold and
    ``selected`` (the evaluation whose checkpoint validation chose)."""
    tables = []
    for r in runs.itertuples():
        metrics = pd.read_csv(RunFiles(run_dir_of(experiment_dir, r.variant, r.fold)).metrics)
        tables.append(metrics.assign(variant=r.variant, fold=r.fold, selected=metrics["iteration"] == r.best_iteration))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- ordering


_VARIANT_ORDER = ("cnn", "cnn_a", "cnn_d", "cnn_ad")


def _rank(variant: str) -> tuple[int, str]:
    """Sort key of a variant name: the paper's order (cnn, cnn_a, cnn_d, cnn_ad), then others by name."""
    return (_VARIANT_ORDER.index(variant), "") if variant in _VARIANT_ORDER else (len(_VARIANT_ORDER), variant)


def _in_paper_order(table: pd.DataFrame, *by: str) -> pd.DataFrame:
    """Rows sorted by ``by`` with variants in the paper's order."""
    key = table["variant"].map(_rank)
    return table.assign(_rank=key).sort_values(["_rank", *by[1:]]).drop(columns="_rank").reset_index(drop=True)
