"""Tests for fercore.experiment and the ``fercore train`` / ``fercore cv`` commands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fercore.experiment as experiment
from fercore.cli import main
from fercore.data import load, synthfacs
from fercore.experiment import (
    confusion,
    cross_validate,
    per_class_accuracy,
    plan,
    predictions,
    run_dir_of,
    runs_table,
    summarize,
    train_in_parallel,
)
from fercore.train import TrainConfig, get_profile, is_finished, load_result, train

TINY = dict(image_size=32, width=0.125, iterations=8, batch_size=16, eval_every=4)


@pytest.fixture(scope="module")
def faceset(tiny_faceset):
    return tiny_faceset


def test_plan_follows_the_profile(faceset):
    configs = plan(faceset, "quick", device="cpu")
    quick = get_profile("quick")
    assert [(c.variant, c.fold) for c in configs] == [(v, k) for v in quick.variants for k in quick.folds]
    assert all(c.dataset == "tiny" and c.profile == "quick" for c in configs)
    paper = plan(faceset, "paper", variants=["cnn"])
    assert [c.fold for c in paper] == list(range(len(faceset.splits)))  # the paper runs every fold
    with pytest.raises(ValueError, match="do not exist"):
        plan(faceset, "quick", folds=[7])


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
    monkeypatch.setattr(experiment, "train", lambda fs, config, run_dir, progress: trained.append(
        (config.variant, config.fold)) or real_train(fs, config, run_dir, progress))
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
    per_class = per_class_accuracy(tmp_path, faceset.classes)
    assert per_class.index.tolist() == ["cnn"]
    np.testing.assert_allclose(per_class.loc["cnn"], np.diag(rates))
    with pytest.raises(FileNotFoundError, match="fercore cv"):
        predictions(tmp_path, "cnn_ad")


def test_confusion_by_hand():
    table = pd.DataFrame({"label": [0, 0, 0, 1, 1, 2], "prediction": [0, 0, 1, 1, 1, 0]})
    np.testing.assert_array_equal(confusion(table, ["a", "b", "c"], normalize=False),
                                  [[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_allclose(confusion(table, ["a", "b", "c"]).loc["a"], [2 / 3, 1 / 3, 0])


def test_parallel_workers_give_the_same_runs(faceset, tmp_path):
    """The several-GPU path, with two CPU processes: same results as one after another."""
    configs = [TrainConfig(dataset="tiny", variant="cnn_ad", fold=k, **TINY) for k in (0, 1, 2)]
    train_in_parallel(faceset, configs, tmp_path / "parallel", workers=[None, None], progress=False)
    for config in configs:
        serial = train(faceset, config, run_dir_of(tmp_path / "serial", "cnn_ad", config.fold), progress=False)
        parallel = load_result(run_dir_of(tmp_path / "parallel", "cnn_ad", config.fold))
        assert parallel.test_accuracy == serial.test_accuracy
        pd.testing.assert_frame_equal(parallel.metrics(), serial.metrics())


# ----------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    """A tiny SynthFACS tree (10 subjects, one per fold) written once for the CLI tests."""
    root = tmp_path_factory.mktemp("synth") / "synthfacs"
    synthfacs.write_tree(root, subjects=10, workers=2, progress=False)
    return root


def test_cli_train_and_cv_end_to_end(synth_root, tmp_path, capsys):
    common = ["--dataset", "synthfacs", "--root", str(synth_root), "--iterations", "6", "--eval-every", "3",
              "--no-progress"]
    run = tmp_path / "one"
    assert main(["train", "--variant", "cnn_a", "--fold", "2", "--out", str(run), *common]) == 0
    assert "cnn_a fold 2: test accuracy" in capsys.readouterr().out
    result = load_result(run)
    assert result.config["profile"] == "quick" and result.config["image_size"] == get_profile("quick").image_size
    assert result.iterations == 6 and len(result.metrics()) == 2
    assert len(result.predictions()) == len(load("synthfacs", synth_root).splits[2].test)

    cv = tmp_path / "cv"
    assert main(["cv", "--variants", "cnn", "cnn_d", "--folds", "0", "1", "--out", str(cv), *common]) == 0
    out = capsys.readouterr().out
    assert "cnn_d" in out and "summary.csv" in out
    summary = pd.read_csv(cv / "summary.csv")
    assert summary.variant.tolist() == ["cnn", "cnn_d"] and summary.folds.tolist() == [2, 2]
    assert all(is_finished(run_dir_of(cv, v, k)) for v in ("cnn", "cnn_d") for k in (0, 1))
