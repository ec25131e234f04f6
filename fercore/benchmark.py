"""The benchmark of notebook 02 and ``fercore reproduce``: the protocol's grid, its accuracy table beside
the reference numbers, paired comparisons of the variants over the same folds, and what it cost.

(Speed benchmarks of single training steps are ``fercore.bench``; this module is about whole grids.)

A dataset's protocol is one or more *tasks*: CK+ (and SynthFACS, written as a CK+ tree) is scored
with 8 classes and with 6 (no neutral, no contempt); TFD has one task over its 5 official folds.
Each task is one experiment folder of ``fercore.experiment`` below the run directory:

    <run_dir>/<variant>/fold<k>/            the main task (CK+ 8-class): where notebook 01 trains
    <run_dir>/classes6/<variant>/fold<k>/   CK+ 6-class

The reference numbers are in ``REFERENCES``, the one table of published numbers in fercore. None
of them is confirmed against the paper's own tables: they are shown "as cited, unconfirmed".
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from fercore import experiment
from fercore.model import VARIANTS
from fercore.train import is_finished

# ----------------------------------------------------------------------------- reference numbers

REFERENCE_STATUS = "as cited, unconfirmed"
_KHORRAMI = "zero-bias CNN, augmentation + dropout (Khorrami et al. 2015)"
_QUOTED = ("quoted by papers citing Khorrami et al., arXiv 1510.02969 (whose v3 corrected Tables 2 and 3); "
           "not checked against those tables")
_FN2EN = "comparison tables of FaceNet2ExpNet (FG 2017), person-independent protocols"


@dataclass(frozen=True)
class Reference:
    """One published accuracy, as someone cited it."""

    task: str  # "CK+ 8-class", "CK+ 6-class" or "TFD"
    method: str
    variant: str | None  # the fercore variant it corresponds to; None for other methods (context)
    low: float  # accuracy in percent, as cited
    high: float  # the top of a cited range (= low for a single number)
    source: str  # who cites it, where


# The one table of reference numbers in fercore (docs/paper.md, "Reported numbers").
REFERENCES: tuple[Reference, ...] = (
    Reference("CK+ 8-class", _KHORRAMI, "cnn_ad", 95.7, 96.4, _QUOTED),
    Reference("CK+ 8-class", _KHORRAMI, "cnn_ad", 96.0, 96.0,
              "'around 96%': a user of the authors' code, github.com/ifp-uiuc/"
              "do-neural-networks-learn-faus-iccvw-2015 issue #1 (who reached about 50-55% with it)"),
    Reference("CK+ 6-class", _KHORRAMI, "cnn_ad", 98.3, 98.3, _QUOTED),
    Reference("TFD", _KHORRAMI, "cnn_ad", 88.6, 88.6, _QUOTED),
    Reference("CK+ 8-class", "AUDN", None, 92.1, 92.1, _FN2EN),
    Reference("CK+ 8-class", "FaceNet2ExpNet", None, 96.8, 96.8, _FN2EN),
    Reference("CK+ 6-class", "BDBN", None, 96.7, 96.7, _FN2EN),
    Reference("CK+ 6-class", "DTAGN", None, 97.3, 97.3, _FN2EN),
    Reference("CK+ 6-class", "PPDN", None, 97.3, 97.3, _FN2EN),
    Reference("CK+ 6-class", "FaceNet2ExpNet", None, 98.6, 98.6, _FN2EN),
    Reference("TFD", "CDA+CCA", None, 85.0, 85.0, _FN2EN),
    Reference("TFD", "disRBM", None, 85.4, 85.4, _FN2EN),
    Reference("TFD", "bootstrap-recon", None, 86.8, 86.8, _FN2EN),
    Reference("TFD", "FaceNet2ExpNet", None, 88.9, 88.9, _FN2EN),
)


def reference_table(task: str | None = None) -> pd.DataFrame:
    """``REFERENCES`` as a table (of one task, or all): task, method, variant, accuracy (text), low,
    high, source, status (always "as cited, unconfirmed")."""
    rows = [{"task": r.task, "method": r.method, "variant": r.variant, "accuracy": _cited(r.low, r.high),
             "low": r.low, "high": r.high, "source": r.source, "status": REFERENCE_STATUS}
            for r in REFERENCES if task is None or r.task == task]
    return pd.DataFrame(rows)


def _cited(low: float, high: float) -> str:
    return f"{low:.1f}" if low == high else f"{low:.1f}-{high:.1f}"


def _reference_of(task: str | None, variant: str) -> str:
    """The cited accuracy of the paper's network for ``variant`` on ``task`` ("" where none is cited)."""
    cited = [r for r in REFERENCES if r.task == task and r.variant == variant]
    return _cited(min(r.low for r in cited), max(r.high for r in cited)) if cited else ""


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


def collect(dataset: str, data_root: str | os.PathLike | None, run_dir: str | os.PathLike, profile: str = "quick",
            train: str = "all", progress: bool = True, **overrides) -> list[TaskRuns]:
    """The grid of every task of ``dataset`` (profile's variants x folds), training what is missing.

    Args:
        dataset, data_root: as for ``fercore.data.load``.
        run_dir: the run directory; task experiments go below it (see ``tasks``).
        profile: "quick" or "paper" (its variants and folds make the grid).
        train: which tasks' missing runs to train: "all", "main" (the first task only; notebook 02
            in CI) or "none". Finished runs are never retrained.
        progress: progress bars.
        **overrides: TrainConfig fields for every run (device, seed, iterations, ...).

    Returns:
        One TaskRuns per task with at least one finished run of its grid.
    """
    from fercore.data import load

    if train not in ("all", "main", "none"):
        raise ValueError(f"train must be 'all', 'main' or 'none', got {train!r}")
    collected = []
    for k, task in enumerate(tasks(dataset)):
        faceset = load(task.dataset, data_root, **task.protocol)
        folder = Path(run_dir) / task.folder
        configs = experiment.plan(faceset, profile, **{"dataset": dataset, **overrides})
        done = [c for c in configs if is_finished(experiment.run_dir_of(folder, c.variant, c.fold))]
        start, trained = time.perf_counter(), 0
        if train == "all" or (train == "main" and k == 0):
            experiment.cross_validate(faceset, folder, profile, progress=progress, **{"dataset": dataset, **overrides})
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
                         "reference": _reference_of(t.task.reference, variant)})
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
                _reference_of(t.task.reference, v) or "-" for v in variants]
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


# ----------------------------------------------------------------------------- paired comparisons

# (effect, a, b): b differs from a only by the effect; the difference is b - a, fold by fold.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("augmentation", "cnn", "cnn_a"),
    ("augmentation", "cnn_d", "cnn_ad"),
    ("dropout", "cnn", "cnn_d"),
    ("dropout", "cnn_a", "cnn_ad"),
    ("both", "cnn", "cnn_ad"),
)
_WILCOXON_MIN_N = 6  # fewer non-zero differences cannot reach two-sided p < 0.05 (smallest p = 2 / 2**n)


def paired_comparisons(runs: pd.DataFrame, pairs=PAIRS, alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Paired comparison of variants over the folds both ran (the same train / test splits).

    For each (effect, a, b): the fold-by-fold differences d = acc(b) - acc(a); the paired t-test
    (``scipy.stats.ttest_rel(b, a)``), the effect size (mean difference and Cohen's d_z = mean(d) / sd(d)),
    Holm-adjusted p over the comparisons made, the Wilcoxon signed-rank test where it can reach
    ``alpha`` (at least 6 non-zero differences; else NaN and the smallest p it could give), and the
    smallest d_z that a t-test over this many folds detects with probability ``power``.

    Args:
        runs: ``experiment.runs_table`` of one task (variant, fold, test_accuracy).

    Returns:
        One row per pair whose variants both ran: effect, a, b, n, folds, diffs, mean_a, mean_b,
        mean_diff, sd_diff, d_z, t, df, p, p_holm, wilcoxon_p, wilcoxon_min_p, detectable_d_z.
    """
    wide = runs.pivot(index="fold", columns="variant", values="test_accuracy")
    rows = []
    for effect, a, b in pairs:
        if a not in wide or b not in wide:
            continue
        both = wide[[a, b]].dropna()
        x, y = both[a].to_numpy(), both[b].to_numpy()
        d, n = y - x, len(both)
        sd = d.std(ddof=1) if n > 1 else math.nan
        with warnings.catch_warnings():  # identical differences (sd 0) or one fold: NaN, said in the table
            warnings.simplefilter("ignore", RuntimeWarning)
            t, p = stats.ttest_rel(y, x) if n > 1 else (math.nan, math.nan)
        nonzero = int(np.count_nonzero(d))
        rows.append({"effect": effect, "a": a, "b": b, "n": n, "folds": both.index.tolist(), "diffs": d.tolist(),
                     "mean_a": x.mean(), "mean_b": y.mean(), "mean_diff": d.mean(), "sd_diff": sd,
                     "d_z": d.mean() / sd if sd > 0 else math.nan, "t": float(t), "df": n - 1, "p": float(p),
                     "wilcoxon_p": (float(stats.wilcoxon(y, x).pvalue) if nonzero >= _WILCOXON_MIN_N else math.nan),
                     "wilcoxon_min_p": min(1.0, 2 / 2 ** nonzero) if nonzero else 1.0,
                     "detectable_d_z": detectable_effect(n, alpha, power)})
    table = pd.DataFrame(rows)
    if len(table):
        table.insert(table.columns.get_loc("p") + 1, "p_holm", holm(table["p"].to_numpy()))
    return table


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values (NaN entries are left out and stay NaN)."""
    p = np.asarray(p, dtype=float)
    adjusted = np.full_like(p, np.nan)
    index = np.flatnonzero(~np.isnan(p))
    order = index[np.argsort(p[index])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest Cohen's d_z a two-sided paired t-test over ``n`` pairs detects with probability
    ``power`` at level ``alpha`` (noncentral t); NaN for n < 2."""
    if n < 2:
        return math.nan
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(d_z: float) -> float:
        shift = d_z * math.sqrt(n)
        return stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift) - power

    high = 1.0
    while shortfall(high) < 0:  # bracket the root; the noncentral t is NaN far out (df = 1 only)
        high *= 1.5
        if high > 100 or math.isnan(shortfall(high)):
            return math.nan
    return float(optimize.brentq(shortfall, 1e-6, high))


def conclusions(comparisons: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """One sentence per comparison: the effect in points, d_z, p, and whether the folds can tell."""
    lines = []
    for r in comparisons.itertuples():
        size = f"d_z = {r.d_z:.2f}" if not math.isnan(r.d_z) else "d_z undefined (identical differences)"
        p = f"p = {r.p:.3f}" if not math.isnan(r.p) else "p undefined"
        verdict = ("significant" if r.p_holm < alpha else "not significant") if not math.isnan(r.p_holm) else "untested"
        lines.append(f"{r.effect} ({r.a} -> {r.b}): {100 * r.mean_diff:+.1f} points over {r.n} folds, {size}, "
                     f"paired t-test {p} (Holm {r.p_holm:.3f}): {verdict} at {alpha:g}; "
                     f"{r.n} folds detect only d_z >= {r.detectable_d_z:.1f} with 80% power.")
    return lines


# ----------------------------------------------------------------------------- curves, classes, cost


def histories(experiment_dir: str | os.PathLike, runs: pd.DataFrame) -> pd.DataFrame:
    """The learning curves of every run in ``runs``: metrics.csv stacked, with variant, fold and
    ``selected`` (the evaluation whose checkpoint validation chose)."""
    tables = []
    for r in runs.itertuples():
        metrics = pd.read_csv(experiment.run_dir_of(experiment_dir, r.variant, r.fold) / "metrics.csv")
        tables.append(metrics.assign(variant=r.variant, fold=r.fold, selected=metrics["iteration"] == r.best_iteration))
    return pd.concat(tables, ignore_index=True)


def confusions(t: TaskRuns, normalize: bool = True) -> dict[str, pd.DataFrame]:
    """Per variant: the confusion matrix of its test predictions pooled over the folds of ``t.runs``."""
    return {v: experiment.confusion(experiment.predictions(t.experiment_dir, v, set(g["fold"])), t.classes, normalize)
            for v, g in t.runs.groupby("variant", sort=False)}


def per_class(t: TaskRuns) -> pd.DataFrame:
    """Per variant (rows) and class (columns): recall pooled over the folds of ``t.runs``."""
    rows = {v: np.diag(m.to_numpy()) for v, m in confusions(t).items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=t.classes).rename_axis("variant")


def cost(collected: list[TaskRuns]) -> pd.DataFrame:
    """Per task and variant: runs, training wall time per fold (mean, s), images per second (mean), device."""
    runs = pd.concat([t.runs.assign(task=t.task.label) for t in collected], ignore_index=True)
    table = runs.groupby(["task", "variant"], sort=False).agg(
        runs=("fold", "size"), seconds_per_fold=("seconds", "mean"), images_per_s=("images_per_s", "mean"),
        device=("device", lambda d: ", ".join(sorted(set(d)))))
    return table.reset_index()


def describe_device(device: str) -> str:
    """The device in words: the GPU's name, or the CPU's model, cores and torch threads."""
    import platform

    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    return f"{dev.type}: {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


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


def plain(value):
    """``value`` with NaN floats as None, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["PAIRS", "REFERENCES", "REFERENCE_STATUS", "Reference", "Task", "TaskRuns", "accuracy_table", "collect",
           "conclusions", "confusions", "cost", "describe_device", "detectable_effect", "format_accuracy_table",
           "histories", "holm", "paired_comparisons", "per_class", "pixel_margin", "plain", "reference_table",
           "summary_table", "tasks"]
