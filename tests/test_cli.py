"""The ``fercore`` command: train and cv end to end, loader options, and one-line errors with exit code 2."""

from __future__ import annotations

import pandas as pd
import pytest

from fercore.cli import main, parse_options
from fercore.data import load
from fercore.models import get_arch
from fercore.store import run_dir_of
from fercore.train import is_finished, load_result


def test_parse_options():
    assert parse_options(["resolution=48", "frames=peak", "unlabelled=True", "classes=['a', 'b']", "x=1.5"]) == {
        "resolution": 48, "frames": "peak", "unlabelled": True, "classes": ["a", "b"], "x": 1.5}
    assert parse_options(None) == {}


@pytest.mark.parametrize("args, message", [
    (["info", "synthfacs", "--option", "frames"], "expected KEY=VALUE"),
    (["train", "--device", "gpu"], "Expected one of"),
    (["train", "--dataset", "nonexistent"], "unknown dataset"),
    (["train", "--precision", "fp16"], "fp16 autocast needs a CUDA device"),
])
def test_bad_options_are_one_line_errors(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_train_and_cv_end_to_end(synth_root, tmp_path, capsys):
    common = ["--dataset", "synthfacs", "--root", str(synth_root), "--iterations", "6", "--eval-every", "3",
              "--no-progress", "--option", "frames=last3"]
    run = tmp_path / "one"
    assert main(["train", "--variant", "cnn_a", "--fold", "2", "--out", str(run), *common]) == 0
    assert "cnn_a fold 2: test accuracy" in capsys.readouterr().out
    result = load_result(run)
    quick = get_arch("zero_bias_cnn").settings["quick"]
    assert (result.config["profile"], result.config["image_size"], result.config["lr"]) == ("quick", quick.image_size,
                                                                                           quick.lr)
    assert result.iterations == 6 and len(result.metrics()) == 2
    assert len(result.predictions()) == len(load("synthfacs", synth_root, frames="last3").splits[2].test)
    assert result.execution["device"] == "cpu" and result.execution["precision"] in ("fp32", "bf16")
    aus = tmp_path / "aus"
    assert main(["train", "--target", "aus", "--variant", "cnn", "--out", str(aus), *common]) == 0
    assert "cnn fold 0: mean per-AU test AUC" in capsys.readouterr().out
    assert load_result(aus).config["target"] == "aus"  # on the FACS-coded apex and neutral frames

    cv = tmp_path / "cv"
    assert main(["cv", "--variants", "cnn", "cnn_d", "--folds", "0", "1", "--out", str(cv), *common]) == 0
    out = capsys.readouterr().out
    assert "cnn_d" in out and "summary.csv" in out
    summary = pd.read_csv(cv / "summary.csv")
    assert summary.variant.tolist() == ["cnn", "cnn_d"] and summary.folds.tolist() == [2, 2]
    assert all(is_finished(run_dir_of(cv, v, k)) for v in ("cnn", "cnn_d") for k in (0, 1))


def test_a_run_dir_holding_another_run_is_a_one_line_error(synth_root, tmp_path, capsys):
    common = ["train", "--root", str(synth_root), "--iterations", "2", "--eval-every", "2", "--no-progress",
              "--out", str(tmp_path / "run")]
    assert main(common) == 0
    assert main([*common[:3], "--iterations", "4", *common[5:]]) == 2
    err = capsys.readouterr().err
    assert "holds another run (iterations: 2 -> 4)" in err and "Traceback" not in err
