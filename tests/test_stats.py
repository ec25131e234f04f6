"""fercore.stats: paired comparisons, Holm and power, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fercore import stats


def _runs(table: dict[str, list[float]]) -> pd.DataFrame:
    """A runs table (variant, fold, test_accuracy, ...) from per-fold accuracies."""
    rows = [{"variant": v, "fold": k, "test_accuracy": a, "best_iteration": 1, "best_val_accuracy": a,
             "seconds": 10.0 + k, "images_per_s": 100.0, "device": "cpu"}
            for v, accs in table.items() for k, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_paired_comparisons_by_hand():
    runs = _runs({"cnn": [0.60, 0.70, 0.65, 0.62], "cnn_a": [0.70, 0.75, 0.80, 0.66],
                  "cnn_d": [0.61, 0.72, 0.64, 0.65], "cnn_ad": [0.72, 0.78, 0.81, 0.70]})
    table = stats.paired_comparisons(runs).set_index(["a", "b"])
    row = table.loc[("cnn", "cnn_a")]
    d = np.array([0.10, 0.05, 0.15, 0.04])
    assert row["diffs"] == pytest.approx(d.tolist())
    assert row["mean_diff"] == pytest.approx(0.085)
    assert row["sd_diff"] == pytest.approx(d.std(ddof=1))
    assert row["d_z"] == pytest.approx(0.085 / d.std(ddof=1))
    t = 0.085 / (d.std(ddof=1) / 2)  # mean / (sd / sqrt(n)), df = 3
    assert row["t"] == pytest.approx(t)
    assert row["p"] == pytest.approx(2 * scipy_stats.t.sf(t, 3))
    assert math.isnan(row["wilcoxon_p"]) and row["wilcoxon_min_p"] == pytest.approx(2 / 16)  # 4 folds: floor 1/8
    assert set(table["effect"]) == {"augmentation", "dropout", "both"} and len(table) == 5
    assert (table["p_holm"] >= table["p"] - 1e-12).all()


def test_wilcoxon_only_where_it_can_reach_5_percent():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 8)
    runs = _runs({"cnn": base.tolist(), "cnn_a": (base + rng.uniform(0.01, 0.05, 8)).tolist()})
    row = stats.paired_comparisons(runs).iloc[0]
    assert row["wilcoxon_p"] == pytest.approx(scipy_stats.wilcoxon(base + np.array(row["diffs"]), base).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**8)  # all 8 differences positive: the exact floor


def test_holm_and_detectable_effect():
    assert stats.holm(np.array([0.01, 0.04, np.nan, 0.03])) == pytest.approx([0.03, 0.06, np.nan, 0.06],
                                                                                  nan_ok=True)
    # Power of the paired t-test at the returned d_z is 80% (noncentral t), and more folds detect less.
    n = 3
    d = stats.detectable_effect(n)
    critical = scipy_stats.t.ppf(0.975, n - 1)
    shift = d * math.sqrt(n)
    power = scipy_stats.nct.sf(critical, n - 1, shift) + scipy_stats.nct.cdf(-critical, n - 1, shift)
    assert power == pytest.approx(0.8, abs=1e-6)
    assert stats.detectable_effect(10) < d and math.isnan(stats.detectable_effect(1))


def test_p_values_are_written_for_people():
    assert [stats.format_p(p) for p in (0.0, 2e-5, 0.00099, 0.001, 0.0042, 0.0123, 0.2149, 1.0)] == [
        "p < 0.001", "p < 0.001", "p < 0.001", "p = 0.001", "p = 0.004", "p = 0.01", "p = 0.21", "p = 1.00"]
    assert stats.format_p(math.nan) == stats.format_p(None) == "p undefined"
    runs = _runs({"cnn": [0.60, 0.70, 0.65, 0.62, 0.61, 0.64], "cnn_a": [0.90, 0.99, 0.95, 0.93, 0.92, 0.96]})
    line = stats.conclusions(stats.paired_comparisons(runs))[0]
    assert "paired t-test p < 0.001 (Holm-adjusted < 0.001): significant at 0.05" in line
    assert "0.000" not in line


def test_a_readable_table_keeps_every_comparison_in_points():
    runs = _runs({"cnn": [0.60, 0.70, 0.65, 0.62, 0.61, 0.64], "cnn_a": [0.90, 0.99, 0.95, 0.93, 0.92, 0.96]})
    table = stats.paired_comparisons(runs)
    readable = stats.readable(table)
    assert list(readable["p"]) == ["< 0.001"] and readable["mean_diff (points)"].iloc[0] == pytest.approx(
        round(100 * table["mean_diff"].iloc[0], 1))
    assert "diffs" not in readable and readable["wilcoxon_p"].iloc[0] == "0.03"  # 6 positive differences: 2 / 64


def test_hypergeometric_tail_equals_scipy():
    rng = np.random.default_rng(0)
    successes = rng.integers(0, 400, (1, 19))  # (1, A): images with each AU
    draws = np.array([[30]] * 60 + [[12]] * 4)  # (C, 1): top k of each unit, a few with fewer
    at_least = np.minimum(rng.integers(0, 31, (64, 19)), np.minimum(successes, draws))  # (C, A)
    expected = scipy_stats.hypergeom.sf(at_least - 1, 920, successes, draws)
    got = stats.hypergeom_at_least(at_least, 920, successes, draws)
    assert got.shape == (64, 19)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-300)
    # every resample of a bootstrap at once: populations, marked items and draws all vary
    population = np.array([900, 920, 950])[:, None, None]  # (W, 1, 1)
    marked = np.minimum(successes[None] + np.array([0, 5, 9])[:, None, None], population)  # (W, 1, A)
    expected = scipy_stats.hypergeom.sf(at_least - 1, population, marked, draws)
    np.testing.assert_allclose(stats.hypergeom_at_least(at_least, population, marked, draws), expected,
                               rtol=1e-9, atol=1e-300)
    assert stats.hypergeom_at_least(0, 10, 3, 4) == pytest.approx(1.0)  # always at least 0
    assert stats.hypergeom_at_least(4, 10, 3, 4) == 0.0  # more than the marked items
    assert stats.hypergeom_at_least(2, 10, 8, 4) == pytest.approx(1.0)  # only 2 unmarked: at least 2 marked
