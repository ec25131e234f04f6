"""fercore.fau.controls: counterfactual selectivity; a planted network is recovered exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fercore import fau
from fercore.models import ModelConfig, build_model


def test_counterfactual_selectivity_shapes_and_determinism():
    model = build_model(ModelConfig(image_size=48, width=0.125), seed=0)
    faces = fau.counterfactual_faces([12, 26], n_faces=2, progress=False)
    assert len(faces) == 2 * 3
    a = fau.counterfactual_selectivity(model, faces, "conv3")
    b = fau.counterfactual_selectivity(model, fau.counterfactual_faces([12, 26], n_faces=2, progress=False), "conv3")
    assert len(a) == 2 * 32 and set(a["AU"]) == {"AU12", "AU26"}
    pd.testing.assert_frame_equal(a, b)
    assert np.isfinite(a["selectivity"]).all()


def test_a_planted_network_is_recovered_exactly():
    """Faces with a bright blob where each AU acts (when it does): the planted network's unit for an AU is the
    best unit for that AU, by far, and recovers it."""
    from builders import AU_SIZE as SIZE
    from builders import au_faceset, template_landmarks

    from fercore import units
    from fercore.facs import au_region

    rng = np.random.default_rng(0)
    aus = ["AU1", "AU9", "AU17"]  # brows, nose, chin: apart
    present = rng.random((90, 3)) < 0.4
    images = rng.integers(40, 80, (90, SIZE, SIZE)).astype(np.uint8)
    for a, au in enumerate(aus):
        r, c = np.argwhere(au_region(int(au[2:]), template_landmarks(), SIZE)).mean(0).astype(int)
        images[present[:, a], r - 3:r + 3, c - 3:c + 3] = 230
    faceset = au_faceset(images, present, aus)
    network = fau.planted_network(faceset, image_size=48, min_images=10)
    assert network.aus == aus
    best = fau.best_unit_auc(fau.pooled_features(network, faceset, "units"), faceset, min_images=10, n_boot=200)
    assert best["unit"].tolist() == [0, 1, 2] and (best["auc"] > 0.99).all()
    analysis = fau.analyse(network, faceset, "units", k=20, min_images=10, by_emotion=False, progress=False)
    assert analysis.score == 1.0 and analysis.recovery["filter"].tolist() == [0, 1, 2]
    assert units.layers(network).set_index("name").loc["units", "rf_size"] == 17  # a third of the 48x48 input
