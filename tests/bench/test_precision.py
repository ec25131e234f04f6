"""``fercore bench precision`` pairs the fp32 and bf16 grids run by run (a smoke test: nothing about speed)."""

import pytest

from fercore.bench.precision import bench_precision


def test_bench_precision_pairs_every_run(synth_root, tmp_path, capsys):
    result = bench_precision(root=synth_root, out=tmp_path, iterations=4, eval_every=2)
    runs = result["runs"]
    assert {r["precision"] for r in runs} == {"fp32", "bf16"}
    pairs = {}
    for r in runs:
        pairs.setdefault((r["variant"], r["fold"]), {})[r["precision"]] = r["test_accuracy"]
    assert len(pairs) == 12 and all(len(p) == 2 for p in pairs.values())  # 4 variants x folds 0-2, both precisions
    diffs = [p["bf16"] - p["fp32"] for p in pairs.values()]
    assert result["mean_diff"] == pytest.approx(sum(diffs) / len(diffs))
    assert (tmp_path / "bf16" / "cnn_ad" / "fold2" / "result.json").exists()
    assert "within fold-to-fold noise" in capsys.readouterr().out
