"""fercore.fau.scores: linear probes; every (unit, AU) AUC and AP equal sklearn; the best unit's interval."""

from __future__ import annotations

import numpy as np
import pytest
from builders import au_faceset
from scipy.stats import norm

from fercore import fau


def test_probes_decode_a_feature_that_carries_the_au():
    rng = np.random.default_rng(3)
    present = rng.random((200, 2)) < 0.3
    faceset = au_faceset(None, present, ["AU4", "AU9"])
    features = np.c_[present[:, 0] + rng.normal(0, 0.3, 200), rng.normal(size=(200, 5))]
    result = fau.probes(features, faceset).set_index("AU")
    assert result.loc["AU4", "auc"] > 0.95
    assert 0.3 < result.loc["AU9", "auc"] < 0.7


def test_every_unit_and_au_scored_as_sklearn_does():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(4)
    present = rng.random((90, 3)) < [0.3, 0.4, 0.5]
    features = np.c_[present[:, 0] + rng.normal(0, 1, 90), np.round(rng.normal(size=(90, 2)))]  # ties too
    table = fau.unit_scores(features, au_faceset(None, present, ["AU1", "AU4", "AU12"]), min_images=5)
    for row in table.itertuples():
        a = ["AU1", "AU4", "AU12"].index(row.AU)
        assert row.auc == pytest.approx(roc_auc_score(present[:, a], features[:, row.unit]), abs=1e-12)
        assert row.ap == pytest.approx(average_precision_score(present[:, a], features[:, row.unit]), abs=1e-12)


def test_the_best_unit_interval_covers_the_truth():
    """A known effect: unit 0 detects the AU with a true AUC of 0.80 (scores share a subject effect), seven units
    are noise; the 95% interval of the best unit's AUC, the unit re-chosen in every resample, covers 0.80."""
    delta = norm.ppf(0.8) * np.sqrt(2 * (0.5**2 + 1))  # AUC = P(pos > neg) = Phi(delta / sqrt(2 var))
    covered, chosen = [], []
    for rep in range(40):
        rng = np.random.default_rng(100 + rep)
        subjects = np.repeat(np.arange(50), 3)  # 50 people, 3 images each
        present = rng.random(150) < 0.3
        shared = rng.normal(0, 0.5, 50)[subjects]
        features = rng.normal(size=(150, 8))
        features[:, 0] = delta * present + shared + rng.normal(size=150)
        faceset = au_faceset(None, present[:, None], ["AU12"], subjects=subjects.astype(str))
        row = fau.best_unit_auc(features, faceset, min_images=5, n_boot=1000, seed=rep).loc["AU12"]
        covered.append(row.ci_low <= 0.8 <= row.ci_high)
        chosen.append(row.unit)
    assert np.mean(covered) >= 0.9, f"coverage {np.mean(covered):.2f}"
    assert np.mean(np.array(chosen) == 0) > 0.9


def test_output_auc_scores_an_au_trained_networks_own_outputs_as_sklearn_does():
    """A network whose output a is the mean brightness of image rows band a: its AUC per AU equals sklearn's on
    those scores; a network with another number of outputs than AUs is refused, naming both."""
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn

    rng = np.random.default_rng(5)
    present = rng.random((60, 2)) < 0.4
    images = rng.integers(0, 256, (60, 96, 96), dtype=np.uint8)
    faceset = au_faceset(images, present, ["AU4", "AU12"])

    class Bands(nn.Module):
        def __init__(self, outputs: int) -> None:
            super().__init__()
            self.outputs, self.scale = outputs, nn.Parameter(torch.ones(1))

        def forward(self, x):  # (B, 1, 96, 96) -> (B, outputs)
            return torch.stack([x[:, 0, 10 * a:10 * a + 10].mean((1, 2)) for a in range(self.outputs)], 1) * self.scale

    auc = fau.output_auc(Bands(2), faceset, min_images=5, preprocess=lambda x: x.float())
    scores = np.stack([images[:, 10 * a:10 * a + 10].mean((1, 2)) for a in range(2)], 1)
    assert list(auc.index) == ["AU4", "AU12"]
    for a, au in enumerate(["AU4", "AU12"]):
        assert auc[au] == pytest.approx(roc_auc_score(present[:, a], scores[:, a]), abs=1e-6)
    with pytest.raises(ValueError, match="3 outputs, the FaceSet 2 AUs"):
        fau.output_auc(Bands(3), faceset, min_images=5, preprocess=lambda x: x.float())
