"""A unit's projection to pixel space, and class saliency, through captum, for any network whose ReLUs captum
can hook.

Deconvolution (Zeiler & Fergus) and guided backprop change how gradients pass each ReLU, so they are
right only where every ReLU is its own ``nn.ReLU`` module, called once per pass and not in place:
``project`` checks that first (``fercore.tracing.relu_problems``) and names any ReLU that is not.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import numpy as np
from torch import nn

from fercore import tracing
from fercore.data.faceset import FaceSet
from fercore.inference import evaluating, model_inputs

METHODS = ("deconvolution", "guided backprop")


def project(model: nn.Module, faceset: FaceSet, image: int, layer: str, unit: tuple[int, int, int],
            method: str = "deconvolution", preprocess: Callable | None = None) -> np.ndarray:
    """A unit's input-space projection for one face, via captum.

    Args:
        image: index into the faceset.
        layer: convolution name, e.g. ``"conv3"``.
        unit: (filter, y, x) in the layer's output map.
        method: ``"deconvolution"`` (Zeiler & Fergus: ReLU backward passes positive signals
            only) or ``"guided backprop"`` (also masked by the forward ReLU pattern).

    Returns:
        float32 (s, s) projection in the model's input resolution; zero outside the unit's
        receptive field.

    Raises:
        ValueError: a ReLU of the model is functional, shared or in place (the message names it).
    """
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    classes = {"deconvolution": NeuronDeconvolution, "guided backprop": NeuronGuidedBackprop}
    if method not in classes:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    module = dict(model.named_modules())[layer]
    x = model_inputs(faceset.images[image:image + 1], model, preprocess)
    check_relus(model, x)
    x = x.requires_grad_(True)
    with evaluating(model, grad=True), _expected_captum_warnings():
        attribution = classes[method](model, module).attribute(x, neuron_selector=tuple(int(u) for u in unit))
    return attribution[0, 0].detach().float().cpu().numpy()


def grad_cam(model: nn.Module, faceset: FaceSet, images, layer: str, target=None,
             preprocess: Callable | None = None) -> np.ndarray:
    """Grad-CAM class saliency (captum ``LayerGradCam``), upsampled to the model input.

    Args:
        images: indices into the faceset (one batch: pass a handful).
        target: class index per image (default: the model's prediction).

    Returns:
        float32 (len(images), s, s), ReLU'd and scaled to a maximum of 1 per image.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    x = model_inputs(faceset.images[np.asarray(images)], model, preprocess)
    if target is None:
        with evaluating(model):
            target = model(x).argmax(dim=1)
    module = dict(model.named_modules())[layer]
    with evaluating(model, grad=True), _expected_captum_warnings():
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    cam = cam[:, 0].detach().float().cpu()
    return (cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]).numpy()


@contextlib.contextmanager
def _expected_captum_warnings() -> Iterator[None]:
    """Silence what captum always says about fercore's models (every ReLU is a module it hooks, and the input
    is a fresh tensor); any other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations", category=UserWarning)
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients",
                                category=UserWarning)
        yield


def check_relus(model: nn.Module, x) -> None:
    """Raise ValueError naming every ReLU that would make deconvolution or guided backprop wrong."""
    problems = tracing.relu_problems(model, x.detach())
    if problems:
        raise ValueError(f"deconvolution and guided backprop need every ReLU to be its own nn.ReLU module, called "
                         f"once per pass and not in place; {type(model).__name__} has: {'; '.join(problems)}")


__all__ = ["METHODS", "check_relus", "grad_cam", "project"]
