"""fercore.study: a notebook's set-up in a line, and its summary written where the next notebook reads it."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from builders import interrupt_training_at

from fercore.study import Study
from fercore.summaries import NeuronsSummary


@pytest.mark.slow
def test_study_trains_reads_back_and_writes(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FERCORE_RUNS", str(tmp_path / "runs"))
    study = Study("synthfacs", "quick", data_root=synth_root, options={"frames": "last3"})
    assert study.run_dir == tmp_path / "runs" / "quick-synthfacs"
    faceset = study.faceset()
    assert study.faceset() is faceset and faceset.protocol["frames"] == "last3"
    with pytest.raises(FileNotFoundError, match="run notebooks/01_training.ipynb"):
        study.result("cnn", 0)
    config = study.train_config("cnn", 0, iterations=2, eval_every=2)
    assert (config.dataset, config.profile, config.variant, config.seed) == ("synthfacs", "quick", "cnn", 0)

    from fercore.train import train

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):  # checkpointed at step 2, stops in 3
        interrupt_training_at(patch, 3)
        train(faceset, study.train_config("cnn", 1, iterations=4, eval_every=2), study.run_files("cnn", 1).dir,
              progress=False)
    with pytest.raises(FileNotFoundError, match="no finished run .* stopped early resumes"):
        study.model("cnn", 1)  # a run that stopped early is not read as a result
    train(faceset, config, study.run_files("cnn", 0).dir, progress=False)
    assert study.result("cnn", 0).iterations == 2
    assert not study.model("cnn", 0).training
    assert study.trained_folds("cnn") == [0]
    seeded = study.with_seed(1)  # the same run from another seed lives in its own folder, beside the first
    assert (seeded.seed, seeded.run_dir) == (1, study.run_dir / "seeds" / "1") and seeded.faceset() is faceset
    assert seeded.train("cnn", 0, progress=False, iterations=2, eval_every=2).config["seed"] == 1
    assert study.result("cnn", 0).config["seed"] == 0 and study.trained_folds("cnn") == [0]

    from fercore import fau

    coded = fau.coded_frames(study.faceset(frames="peak", unlabelled=True))
    result = study.train("cnn", 0, target="aus", faceset=coded, progress=False, iterations=4, eval_every=2)
    assert result.run_dir == str(study.run_files("cnn", 0, "aus").dir) and 0 <= result.test_accuracy <= 1
    assert study.model("cnn", 0, target="aus").out.out_features == len(coded.au_codes)

    fig = plt.figure()
    assert study.save_figure(fig, "03_x") is None  # a cell's last expression: nothing but the figure is shown
    assert (study.figures / "03_x.png").stat().st_size > 0
    summary = NeuronsSummary(arch="zero_bias_cnn", variant="cnn", fold=0, layer="conv3", k=9,
                             filters_mined={"conv3": 64}, images_mined=10, receptive_fields=[],
                             checks={"x": float("nan")}, strongest_filters=[1], figures=["03_x.png"])
    path = study.write(summary)
    assert path == study.run_dir / "03_neuron_visualization.json"
    assert json.loads(path.read_text())["checks"] == {"x": None}
    assert study.read("03_neuron_visualization")["layer"] == "conv3"
    with pytest.raises(FileNotFoundError, match="Run notebooks/00_datasets.ipynb first"):
        study.read("00_datasets")
