"""Figures of training (notebook 01) and of a grid's accuracy (notebook 02)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fercore.data.faceset import FaceSet
from fercore.stats import format_p


def learning_curves(metrics: pd.DataFrame, best_iteration: int | None = None, title: str | None = None):
    """Loss and accuracy against the iteration, training batches and validation split side by side.

    Args:
        metrics: ``metrics.csv`` of a run (iteration, train_loss, train_acc, val_loss, val_acc).
        best_iteration: marks the selected (best-validation) checkpoint with a dotted line.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, what, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        ax.plot(metrics["iteration"], metrics[f"train_{what}"], label="train (augmented batches)", color="0.5")
        ax.plot(metrics["iteration"], metrics[f"val_{what}"], label="validation", color="tab:blue", marker=".")
        if best_iteration is not None:
            ax.axvline(best_iteration, color="tab:red", linestyle=":", label="selected checkpoint")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def prediction_grid(faceset: FaceSet, predictions: pd.DataFrame, n: int = 12, seed: int = 0, ncols: int = 6):
    """A handful of test faces titled with truth and prediction (red: wrong); up to a third are mistakes.

    Args:
        faceset: the FaceSet the predictions index into.
        predictions: ``predictions.csv`` of a run (index, label, prediction, p_<class>...).
    """
    rng = np.random.default_rng(seed)
    right = predictions[predictions.label == predictions.prediction]
    wrong = predictions[predictions.label != predictions.prediction]
    n_wrong = min(len(wrong), n // 3)
    picks = pd.concat([wrong.sample(n_wrong, random_state=rng), right.sample(min(len(right), n - n_wrong),
                                                                               random_state=rng)])
    nrows = max(1, int(np.ceil(len(picks) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 2.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, picks.to_dict("records"), strict=False):
        true, guess = faceset.classes[row["label"]], faceset.classes[row["prediction"]]
        p = row[f"p_{guess}"]
        ax.imshow(faceset.images[row["index"], 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{true}\n-> {guess} ({p:.0%})", fontsize=8, color="black" if true == guess else "tab:red")
    fig.tight_layout()
    return fig


def fold_accuracies(runs: pd.DataFrame, title: str | None = None):
    """Test accuracy of every fold per variant; a grey line joins the runs of one fold (the pairs the
    paired tests compare), red marks mean +- std over folds.

    Args:
        runs: ``experiment.runs_table`` of one task (variant, fold, test_accuracy).
    """
    variants = list(dict.fromkeys(runs["variant"]))
    x = {v: k for k, v in enumerate(variants)}
    fig, ax = plt.subplots(figsize=(1.5 * len(variants) + 2.5, 3.4))
    for fold, group in runs.groupby("fold"):
        group = group.sort_values("variant", key=lambda s: s.map(x))
        ax.plot(group["variant"].map(x), group["test_accuracy"], color="0.6", marker="o", lw=1, zorder=1)
        last = group.iloc[-1]
        ax.annotate(f"fold {fold}", (x[last["variant"]], last["test_accuracy"]), xytext=(6, 0),
                    textcoords="offset points", fontsize=7, color="0.4", va="center")
    stats = runs.groupby("variant")["test_accuracy"].agg(["mean", "std"]).reindex(variants)
    ax.errorbar(range(len(variants)), stats["mean"], yerr=stats["std"].fillna(0), color="tab:red", marker="D",
                ls="none", capsize=4, label="mean +- std over folds", zorder=2)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_xlim(-0.4, len(variants) - 0.3)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "test accuracy per fold")
    fig.tight_layout()
    return fig


def paired_differences(comparisons: pd.DataFrame, title: str | None = None):
    """Fold-by-fold differences of each paired comparison (``stats.paired_comparisons``), in points,
    with their mean; the dotted line is no difference."""
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(comparisons) + 1.3))
    labels = []
    for k, r in enumerate(comparisons.itertuples()):
        diffs = 100 * np.asarray(r.diffs)
        ax.scatter(diffs, np.full(len(diffs), k), color="0.45", s=22, zorder=2)
        ax.scatter([100 * r.mean_diff], [k], color="tab:red", marker="|", s=400, lw=2.5, zorder=3)
        labels.append(f"{r.effect}: {r.a} -> {r.b}\n({format_p(r.p)}, n = {r.n})")
    ax.axvline(0, color="0.2", ls=":", lw=1)
    ax.set_yticks(range(len(comparisons)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy difference, b - a (points); grey: folds, red: mean")
    ax.set_title(title or "paired differences over the same folds")
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: pd.DataFrame, title: str | None = None, ax=None):
    """A row-normalised confusion matrix (``experiment.confusion``: rows the true class, summing to 100%;
    columns what it was read as) as a seaborn heatmap, on ``ax`` or a new figure; returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * matrix.shape[1] + 2.2, 0.42 * matrix.shape[0] + 1.6))
    sns.heatmap(matrix, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, cbar=False, square=True, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion (rows sum to 100%)", fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def confusion_grid(matrices: dict[str, pd.DataFrame], title: str | None = None, ncols: int = 2):
    """Row-normalised confusion matrices (one per variant, or one run's) side by side, each titled with its mean
    per-class recall."""
    n = len(matrices)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    k = len(next(iter(matrices.values())))
    side = 0.42 * k + 1.4
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols, side * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (variant, matrix) in zip(axes.flat, matrices.items(), strict=False):
        confusion_heatmap(matrix, f"{variant}: mean recall {np.diag(matrix.to_numpy()).mean():.1%}", ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_class_heatmap(table: pd.DataFrame, title: str | None = None):
    """Per-class accuracy (``TaskRuns.per_class``: variants x classes) as a seaborn heatmap."""
    fig, ax = plt.subplots(figsize=(0.8 * table.shape[1] + 2, 0.45 * table.shape[0] + 1.4))
    sns.heatmap(table, annot=True, fmt=".0%", cmap="viridis", vmin=0, vmax=1, cbar=False, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set_xlabel("")
    ax.set_title(title or "per-class accuracy, pooled over folds")
    fig.tight_layout()
    return fig


def learning_curves_grid(histories: pd.DataFrame, title: str | None = None):
    """Learning curves of every run: one row per variant, validation accuracy and training loss, a line
    per fold; dots mark the checkpoint validation selected.

    Args:
        histories: ``experiment.histories`` (variant, fold, iteration, train_loss, val_acc, selected, ...).
    """
    variants = list(dict.fromkeys(histories["variant"]))
    folds = sorted(histories["fold"].unique())
    colors = dict(zip(folds, sns.color_palette("viridis", len(folds)), strict=True))
    fig, axes = plt.subplots(len(variants), 2, figsize=(10, 2.3 * len(variants)), squeeze=False, sharex=True)
    for row, variant in zip(axes, variants, strict=True):
        for fold, run in histories[histories["variant"] == variant].groupby("fold"):
            for ax, column in zip(row, ("val_acc", "train_loss"), strict=True):
                ax.plot(run["iteration"], run[column], color=colors[fold], lw=1.2, label=f"fold {fold}")
            chosen = run[run["selected"]]
            row[0].scatter(chosen["iteration"], chosen["val_acc"], color=colors[fold], s=30, zorder=3, edgecolor="k")
        row[0].set_ylabel(f"{variant}\nvalidation accuracy", fontsize=9)
        row[0].set_ylim(0, 1.02)
        row[1].set_ylabel("training loss", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=2, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("iteration")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
