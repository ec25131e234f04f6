"""fercore.projections: deconvolution and guided backprop stay inside the receptive field, work on any network
whose ReLUs are modules, and name the ReLU that breaks them; Grad-CAM maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fercore import projections, units
from fercore.data.faceset import FaceSet
from fercore.models import ModelConfig, build_model


def _faceset(images: np.ndarray) -> FaceSet:
    n = len(images)
    return FaceSet(name="test", images=torch.from_numpy(images[:, None].astype(np.uint8)),
                   labels=torch.zeros(n, dtype=torch.int64), classes=["x"],
                   subjects=np.array([f"S{i}" for i in range(n)]),
                   aus=torch.zeros((n, 0), dtype=torch.int8), au_codes=[],
                   landmarks=torch.full((n, 68, 2), float("nan")), meta=pd.DataFrame({"i": range(n)}))


@pytest.mark.parametrize("method", projections.METHODS)
def test_projections_stay_inside_the_receptive_field(method):
    rng = np.random.default_rng(1)
    faceset = _faceset(rng.integers(0, 256, (2, 96, 96)))
    model = build_model(ModelConfig(), seed=1)
    field = units.receptive_field(model, "conv3")
    for y, x in ((0, 0), (10, 13), (23, 23)):
        projection = projections.project(model, faceset, 1, "conv3", (7, y, x), method=method)
        top, left, bottom, right = field.box(y, x)
        inside = np.zeros_like(projection, dtype=bool)
        inside[max(top, 0):bottom, max(left, 0):right] = True
        assert np.abs(projection[inside]).max() > 0
        assert np.all(projection[~inside] == 0)


@pytest.mark.parametrize("method", projections.METHODS)
def test_projections_on_a_residual_network(method, recwarn):
    faceset = _faceset(np.random.default_rng(3).integers(0, 256, (1, 96, 96)))
    model = build_model(ModelConfig(image_size=96, width=0.25), seed=0, arch="resnet18")
    field = units.receptive_field(model, "layer2.0")
    projection = projections.project(model, faceset, 0, "layer2.0", (3, 5, 6), method=method)
    top, left, bottom, right = field.box(5, 6)
    outside = np.ones_like(projection, dtype=bool)
    outside[max(top, 0):bottom, max(left, 0):right] = False
    assert np.abs(projection).max() > 0 and np.all(projection[outside] == 0)
    assert not [w for w in recwarn if "captum" in str(w.filename)]  # expected captum warnings are silenced


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x)).mean(dim=(2, 3))


def test_a_functional_relu_gets_a_clear_error():
    faceset = _faceset(np.zeros((1, 16, 16)))
    with pytest.raises(ValueError, match="a ReLU applied as a function in the model \\(Functional\\)"):
        projections.project(Functional(), faceset, 0, "conv", (0, 1, 1), preprocess=lambda faces: faces.float())


def test_grad_cam_is_a_normalised_map_per_image():
    rng = np.random.default_rng(2)
    faceset = _faceset(rng.integers(0, 256, (3, 48, 48)))
    model = build_model(ModelConfig(image_size=48, width=0.25), seed=0)
    cams = projections.grad_cam(model, faceset, [0, 2], layer="conv3")
    assert cams.shape == (2, 48, 48)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
