"""Tests for fercore.experiment: plans, cross-validation that skips finished runs, tables, parallel workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fercore.experiment as experiment
from fercore.config import RunDirError, get_profile
from fercore.experiment import (
    confusion,
    confusions,
    cross_validate,
    per_class_accuracy,
    plan,
    predictions,
    runs_table,
    summarize,
)
from fercore.store import run_dir_of
from fercore.train import is_finished, load_result

TINY = dict(image_size=32, width=0.125, iterations=8, batch_size=16, eval_every=4)


@pytest.fixture(scope="module")
def faceset(tiny_faceset):
    return tiny_faceset


def test_plan_follows_the_profile(faceset):
    configs = plan(faceset, "quick", seed=3)
    quick = get_profile("quick")
    assert [(c.variant, c.fold) for c in configs] == [(v, k) for v in quick.variants for k in quick.folds]
    assert all(c.dataset == "tiny" and c.profile == "quick" and c.seed == 3 for c in configs)
    paper = plan(faceset, "paper", variants=["cnn"])
    assert [c.fold for c in paper] == list(range(len(faceset.splits)))  # the paper runs every fold
    with pytest.raises(ValueError, match="do not exist"):
        plan(faceset, "quick", folds=[7])


@pytest.mark.slow
def test_cross_validation_skips_finished_runs_and_summarises(faceset, tmp_path, monkeypatch):
    runs = cross_validate(faceset, tmp_path, "quick", variants=["cnn", "cnn_ad"], folds=[0, 1, 2],
                          progress=False, **TINY)
    assert runs[["variant", "fold"]].values.tolist() == [[v, k] for v in ("cnn", "cnn_ad") for k in (0, 1, 2)]
    assert all(is_finished(run_dir_of(tmp_path, v, k)) for v, k in runs[["variant", "fold"]].values)
    for row in runs.itertuples():
        assert row.test_accuracy == load_result(run_dir_of(tmp_path, row.variant, row.fold)).test_accuracy

    # Again, with one more fold: only the three new runs train.
    trained = []
    real_train = experiment.train
    monkeypatch.setattr(experiment, "train", lambda fs, config, run_dir, execution, progress: trained.append(
        (config.variant, config.fold)) or real_train(fs, config, run_dir, execution, progress))
    again = cross_validate(faceset, tmp_path, "quick", variants=["cnn", "cnn_ad", "cnn_d"], folds=[0, 1, 2],
                           progress=False, **TINY)
    assert trained == [("cnn_d", 0), ("cnn_d", 1), ("cnn_d", 2)]
    pd.testing.assert_frame_equal(again[again.variant != "cnn_d"].reset_index(drop=True), runs)

    # Summary: mean and sample std over folds, one column per fold; also written to summary.csv.
    summary = summarize(again)
    assert summary.variant.tolist() == ["cnn", "cnn_d", "cnn_ad"]  # the paper's order
    for row in summary.itertuples():
        accuracies = again[again.variant == row.variant].test_accuracy.to_numpy()
        assert row.folds == 3
        assert row.mean == pytest.approx(accuracies.mean())
        assert row.std == pytest.approx(np.std(accuracies, ddof=1))
        assert [row.fold0, row.fold1, row.fold2] == pytest.approx(accuracies.tolist())
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), summary, check_dtype=False)
    pd.testing.assert_frame_equal(runs_table(tmp_path), again)

    # Finished runs of another config are refused, not read back as this grid's.
    with pytest.raises(RunDirError, match=r"holds another run \(iterations: 8 -> 12\)"):
        cross_validate(faceset, tmp_path, "quick", variants=["cnn"], folds=[0], progress=False,
                       **{**TINY, "iterations": 12})


@pytest.mark.slow
def test_predictions_confusion_and_per_class(faceset, tmp_path):
    cross_validate(faceset, tmp_path, "quick", variants=["cnn"], folds=[0, 1], progress=False, **TINY)
    table = predictions(tmp_path, "cnn")
    split = faceset.splits
    assert table["index"].tolist() == split[0].test.tolist() + split[1].test.tolist()
    assert table.fold.tolist() == [0] * len(split[0].test) + [1] * len(split[1].test)

    counts = confusion(table, faceset.classes, normalize=False)
    assert counts.to_numpy().sum() == len(table)
    assert counts.to_numpy().trace() == (table.label == table.prediction).sum()
    for k in range(3):
        assert counts.iloc[k].sum() == (table.label == k).sum()
    rates = confusion(table, faceset.classes)
    np.testing.assert_allclose(rates.sum(axis=1), 1)
    runs = runs_table(tmp_path)
    per_class = per_class_accuracy(tmp_path, faceset.classes, runs)
    assert per_class.index.tolist() == ["cnn"]
    np.testing.assert_allclose(per_class.loc["cnn"], np.diag(rates))
    np.testing.assert_allclose(confusions(tmp_path, faceset.classes, runs)["cnn"], rates)
    one_fold = confusions(tmp_path, faceset.classes, runs[runs.fold == 1], normalize=False)["cnn"]
    assert one_fold.to_numpy().sum() == len(split[1].test)
    with pytest.raises(FileNotFoundError, match="fercore cv"):
        predictions(tmp_path, "cnn_ad")


def test_confusion_by_hand():
    table = pd.DataFrame({"label": [0, 0, 0, 1, 1, 2], "prediction": [0, 0, 1, 1, 1, 0]})
    np.testing.assert_array_equal(confusion(table, ["a", "b", "c"], normalize=False),
                                  [[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_allclose(confusion(table, ["a", "b", "c"]).loc["a"], [2 / 3, 1 / 3, 0])
