"""``fercore reproduce`` end to end: the grid of both tasks, a notebook on it, the report, and again."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fercore.cli import main

pytestmark = pytest.mark.slow


def test_reproduce_end_to_end_and_again(synth_root, tmp_path, capsys):
    out, runs = tmp_path / "report", tmp_path / "runs"
    args = ["reproduce", "--dataset", "synthfacs", "--root", str(synth_root), "--profile", "quick",
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


def test_reproduce_refuses_overrides_with_notebook_01(synth_root, tmp_path, capsys):
    args = ["reproduce", "--dataset", "synthfacs", "--root", str(synth_root), "--iterations", "4",
            "--out", str(tmp_path / "report"), "--runs", str(tmp_path / "runs")]
    assert main(args) == 2
    assert "notebook 01" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
