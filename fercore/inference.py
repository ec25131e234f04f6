"""Running a trained network over images: eval mode that is always undone, the input it was trained on,
and passes in bounded chunks.

Every pass over a dataset in fercore (evaluation, mining, probes, dissection) goes through
``batches`` so memory stays bounded whatever the dataset size, and every helper that needs eval
mode uses ``evaluating``, which restores the caller's mode afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from torch import nn

from fercore.models.base import PaperInput

DEFAULT_BATCH = 128  # images per forward pass in inspection and analysis


@contextmanager
def evaluating(model: nn.Module, grad: bool = False) -> Iterator[nn.Module]:
    """Eval mode (dropout off) inside the block, and no autograd unless ``grad``; the previous mode is
    restored after, also on an exception."""
    was_training = model.training
    model.eval()
    try:
        with nullcontext() if grad else torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def preprocess_of(model: nn.Module, preprocess: Callable | None = None) -> Callable:
    """The function from uint8 faces (B, 1, S, S) to the model's input: ``preprocess`` if given, else the one a
    fercore model carries (``model.preprocess``), else the paper's scaling at ``model.config.image_size``."""
    if preprocess is not None:
        return preprocess
    if getattr(model, "preprocess", None) is not None:
        return model.preprocess
    size = getattr(getattr(model, "config", None), "image_size", None)
    if size is None:
        raise ValueError(f"{type(model).__name__} carries no input preprocessing: pass preprocess=, a function from "
                         "uint8 faces (B, 1, S, S) to the model's input (e.g. fercore.models.PaperInput(48))")
    return PaperInput(size)


def model_inputs(images: torch.Tensor, model: nn.Module, preprocess: Callable | None = None) -> torch.Tensor:
    """uint8 faces (B, 1, S, S) -> the input the model was trained on, on the model's device (``preprocess_of``;
    for fercore's models: resized as training does, ``augment.resize``, and normalised)."""
    return preprocess_of(model, preprocess)(images.to(model_device(model)))


def batches(index, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """``index`` (an int array, or a count meaning ``range(count)``) in consecutive chunks of ``batch_size``."""
    index = np.arange(index) if np.isscalar(index) else np.array(index)  # a writable copy: torch indexes with it
    for start in range(0, len(index), batch_size):
        yield index[start:start + batch_size]


__all__ = ["DEFAULT_BATCH", "batches", "evaluating", "model_device", "model_inputs", "preprocess_of"]
