"""fercore.inference: eval mode always undone, inputs as in training, bounded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fercore.augment import normalize, resize
from fercore.inference import batches, evaluating, model_inputs
from fercore.models import ModelConfig, build_model


def test_evaluating_restores_the_mode_also_on_errors():
    model = build_model(ModelConfig(image_size=16, width=0.125, dropout=True)).train()
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training
    with pytest.raises(KeyError), evaluating(model, grad=True):
        assert not model.training and torch.is_grad_enabled()
        raise KeyError
    assert model.training
    model.eval()
    with evaluating(model):
        pass
    assert not model.training


def test_model_inputs_resize_like_training():
    model = build_model(ModelConfig(image_size=16, width=0.125))
    faces = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(model_inputs(faces, model), normalize(resize(faces, 16)))


def test_batches():
    assert [b.tolist() for b in batches(5, 2)] == [[0, 1], [2, 3], [4]]
    index = np.array([7, 3, 9])
    index.setflags(write=False)
    chunks = list(batches(index, 2))
    assert [c.tolist() for c in chunks] == [[7, 3], [9]] and all(c.flags.writeable for c in chunks)
