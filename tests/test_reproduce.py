"""fercore.benchmark (tables and paired tests, checked by hand) and `fercore reproduce` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fercore import benchmark
from fercore.cli import main
from fercore.data import synthfacs


def _runs(table: dict[str, list[float]]) -> pd.DataFrame:
    """A runs table (variant, fold, test_accuracy, ...) from per-fold accuracies."""
    rows = [{"variant": v, "fold": k, "test_accuracy": a, "best_iteration": 1, "best_val_accuracy": a,
             "seconds": 10.0 + k, "images_per_s": 100.0, "device": "cpu"}
            for v, accs in table.items() for k, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_paired_comparisons_by_hand():
    runs = _runs({"cnn": [0.60, 0.70, 0.65, 0.62], "cnn_a": [0.70, 0.75, 0.80, 0.66],
                  "cnn_d": [0.61, 0.72, 0.64, 0.65], "cnn_ad": [0.72, 0.78, 0.81, 0.70]})
    table = benchmark.paired_comparisons(runs).set_index(["a", "b"])
    row = table.loc[("cnn", "cnn_a")]
    d = np.array([0.10, 0.05, 0.15, 0.04])
    assert row["diffs"] == pytest.approx(d.tolist())
    assert row["mean_diff"] == pytest.approx(0.085)
    assert row["sd_diff"] == pytest.approx(d.std(ddof=1))
    assert row["d_z"] == pytest.approx(0.085 / d.std(ddof=1))
    t = 0.085 / (d.std(ddof=1) / 2)  # mean / (sd / sqrt(n)), df = 3
    assert row["t"] == pytest.approx(t)
    assert row["p"] == pytest.approx(2 * stats.t.sf(t, 3))
    assert math.isnan(row["wilcoxon_p"]) and row["wilcoxon_min_p"] == pytest.approx(2 / 16)  # 4 folds: floor 1/8
    assert set(table["effect"]) == {"augmentation", "dropout", "both"} and len(table) == 5
    assert (table["p_holm"] >= table["p"] - 1e-12).all()


def test_wilcoxon_only_where_it_can_reach_5_percent():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 8)
    runs = _runs({"cnn": base.tolist(), "cnn_a": (base + rng.uniform(0.01, 0.05, 8)).tolist()})
    row = benchmark.paired_comparisons(runs).iloc[0]
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(base + np.array(row["diffs"]), base).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**8)  # all 8 differences positive: the exact floor


def test_holm_and_detectable_effect():
    assert benchmark.holm(np.array([0.01, 0.04, np.nan, 0.03])) == pytest.approx([0.03, 0.06, np.nan, 0.06],
                                                                                  nan_ok=True)
    # Power of the paired t-test at the returned d_z is 80% (noncentral t), and more folds detect less.
    n = 3
    d = benchmark.detectable_effect(n)
    critical = stats.t.ppf(0.975, n - 1)
    power = stats.nct.sf(critical, n - 1, d * math.sqrt(n)) + stats.nct.cdf(-critical, n - 1, d * math.sqrt(n))
    assert power == pytest.approx(0.8, abs=1e-6)
    assert benchmark.detectable_effect(10) < d and math.isnan(benchmark.detectable_effect(1))


def test_one_reference_table_names_its_sources():
    table = benchmark.reference_table()
    assert (table["status"] == "as cited, unconfirmed").all() and table["source"].str.len().gt(20).all()
    assert set(table["task"]) == {"CK+ 8-class", "CK+ 6-class", "TFD"}
    paper = table[table["variant"] == "cnn_ad"]
    assert {"CK+ 8-class", "CK+ 6-class", "TFD"} == set(paper["task"])
    assert [t.label for t in benchmark.tasks("ckplus")] == ["CK+ 8-class", "CK+ 6-class"]
    assert [t.reference for t in benchmark.tasks("tfd")] == ["TFD"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "synthfacs"
    synthfacs.write_tree(root, subjects=10, workers=2, progress=False)
    return root


def test_reproduce_end_to_end_and_again(tiny_root, tmp_path, capsys):
    out, runs = tmp_path / "report", tmp_path / "runs"
    args = ["reproduce", "--dataset", "synthfacs", "--root", str(tiny_root), "--profile", "quick",
            "--iterations", "4", "--eval-every", "2", "--notebooks", "02", "--out", str(out), "--runs", str(runs),
            "--no-progress"]
    assert main(args) == 0
    record = json.loads((out / "reproduce.json").read_text())
    # The grid: quick profile folds (0, 1, 2) x 4 variants, for 8 classes and for 6.
    assert record["tasks"] == ["SynthFACS 8-class", "SynthFACS 6-class"]
    assert (record["trained"], record["skipped"]) == (24, 0)
    assert len(list(runs.glob("*/fold*/result.json"))) == 12
    assert len(list(runs.glob("classes6/*/fold*/result.json"))) == 12
    # The report: the executed notebook and its HTML copy, figures, result files, summary.csv.
    assert (out / "notebooks" / "02_benchmark.ipynb").exists()
    assert "<html" in (out / "notebooks" / "02_benchmark.html").read_text()[:2000].lower()
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"02_fold_accuracies.png", "02_confusion.png", "02_learning_curves_classes6.png"} <= figures
    assert (out / "results" / "02_benchmark.json").exists()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:5]) == ["task", "variant", "folds", "mean", "std"]
    assert len(summary) == 8 and (summary["folds"] == 3).all()
    def strict(constant):
        raise AssertionError(f"02_benchmark.json holds {constant}: not strict JSON")

    result = json.loads((out / "results" / "02_benchmark.json").read_text(), parse_constant=strict)
    assert result["overrides"] == {"iterations": 4, "eval_every": 2}
    assert {t["label"] for t in result["tasks"]} == {"SynthFACS 8-class", "SynthFACS 6-class"}
    assert "runs trained" in capsys.readouterr().out

    # Again: nothing is retrained, the report is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("**/result.json")}
    assert main(args) == 0
    record = json.loads((out / "reproduce.json").read_text())
    assert (record["trained"], record["skipped"]) == (0, 24)
    assert {p: p.stat().st_mtime_ns for p in runs.glob("**/result.json")} == stamps


def test_reproduce_refuses_overrides_with_notebook_01(tiny_root, tmp_path, capsys):
    args = ["reproduce", "--dataset", "synthfacs", "--root", str(tiny_root), "--iterations", "4",
            "--out", str(tmp_path / "report"), "--runs", str(tmp_path / "runs")]
    assert main(args) == 2
    assert "notebook 01" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
