"""Controls of the FAU analysis: counterfactual faces (one AU switched on and off on the same rendered face),
and a planted network whose units respond to given AU regions by construction."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore.data.faceset import FaceSet
from fercore.fau.scores import pooled_features
from fercore.progress import tqdm


def counterfactual_faces(aus: list[int], n_faces: int = 24, intensity: float = 4, seed: int = 0,
                         progress: bool = True) -> FaceSet:
    """SynthFACS faces with one AU off and on: per face (a random identity, pose and scene) its neutral crop,
    then one crop per AU in ``aus`` at ``intensity``, all cut with the neutral crop box so that only the AU
    differs. Rendered once, scored for any number of networks (``counterfactual_selectivity``).

    Returns:
        A FaceSet of n_faces * (1 + len(aus)) crops, face by face; its protocol names the AUs.
    """
    from fercore.data import synthfacs
    from fercore.data.common import make_faceset

    rng = np.random.default_rng([seed, 4242])
    crops = []  # per face: neutral, then each AU on
    for j in tqdm(range(n_faces), desc="rendering counterfactuals", disable=not progress):
        identity = synthfacs.sample_identity(rng)
        pose = synthfacs.sample_pose(rng)
        scene = synthfacs.sample_scene(rng, identity)
        neutral, _, box = synthfacs.render_crop(identity, {}, pose, scene, seed=j)
        crops.append(neutral)
        for au in aus:
            crops.append(synthfacs.render_crop(identity, {f"AU{au}": intensity}, pose, scene, seed=j, box=box)[0])
    n = len(crops)
    return make_faceset("counterfactual", np.stack(crops)[:, None], np.zeros(n), ["face"],
                        subjects=np.repeat(np.arange(n_faces), 1 + len(aus)), meta=pd.DataFrame({"face": range(n)}),
                        splits=[], protocol={"aus": list(aus), "intensity": intensity})


def counterfactual_selectivity(model: nn.Module, faces: FaceSet, layer: str,
                               preprocess: Callable | None = None) -> pd.DataFrame:
    """How each filter's peak activation changes when one AU is switched on (``counterfactual_faces``).

    Returns:
        One row per (filter, AU): filter, AU, delta (mean change of the peak activation),
        selectivity (delta / the filter's activation std over all rendered faces).
    """
    aus = faces.protocol["aus"]
    peaks = pooled_features(model, faces, layer, preprocess)
    peaks = peaks.reshape(-1, 1 + len(aus), peaks.shape[-1])  # (faces, 1 + A, C)
    delta = peaks[:, 1:] - peaks[:, :1]  # (faces, A, C)
    spread = peaks.reshape(-1, peaks.shape[-1]).std(axis=0) + 1e-6  # (C,)
    mean = delta.mean(axis=0)  # (A, C)
    channels = peaks.shape[-1]
    return pd.DataFrame({"filter": np.tile(np.arange(channels), len(aus)),
                         "AU": np.repeat([f"AU{au}" for au in aus], channels),
                         "delta": mean.ravel(), "selectivity": (mean / spread).ravel()})


class _Gate(nn.Module):
    """Multiplies each unit's map by a fixed weight map (C, s, s): the unit responds only around its place."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights


class PlantedNetwork(nn.Module):
    """One unit per AU by construction: unit a correlates the input with the mean change AU a makes to a face
    (a window of the difference of the mean inputs with and without the AU, centred on the AU's region) and is
    gated to that place, so it fires where and when the AU acts. The positive control of the instrument, next to
    the AU-trained network; its layer is ``"units"`` (unit a is AU ``aus[a]``).

    Shapes: (B, 1, s, s) -> conv (B, A, s, s) -> relu -> units (gated, B, A, s, s) -> global max (B, A) -> head.
    """

    def __init__(self, templates: torch.Tensor, gates: torch.Tensor, preprocess, aus: list[str]) -> None:
        super().__init__()
        n, _, k, _ = templates.shape
        self.conv = nn.Conv2d(1, n, k, padding=k // 2, bias=False)
        self.relu = nn.ReLU()
        self.units = _Gate(gates)
        self.head = nn.Linear(n, n)
        with torch.no_grad():
            self.conv.weight.copy_(templates)
            self.head.weight.copy_(torch.eye(n))
            self.head.bias.zero_()
        self.preprocess, self.aus = preprocess, aus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.units(self.relu(self.conv(x))).amax(dim=(2, 3)))


def planted_network(faceset: FaceSet, image_size: int, min_images: int = 20, window: int | None = None) -> nn.Module:
    """Build a ``PlantedNetwork`` for the scored AUs of ``faceset`` (FACS-coded frames, with landmarks) at the
    paper's input scaling for ``image_size`` x ``image_size`` inputs. ``window``: template side (odd; default
    about a third of the input side); each gate is a Gaussian of a quarter of it around the AU region's centre."""
    from fercore.fau.alignment import RegionCache
    from fercore.fau.scores import scored_aus
    from fercore.models import PaperInput

    preprocess = PaperInput(image_size)
    window = window or (image_size // 3) | 1
    x = torch.cat([preprocess(faceset.images[chunk]) for chunk in torch.arange(len(faceset)).split(256)])[:, 0]
    aus = scored_aus(faceset, min_images)
    present = faceset.au_present()
    regions = RegionCache(faceset, image_size)
    sample = np.linspace(0, len(faceset) - 1, min(len(faceset), 200)).astype(int)
    pad = window // 2
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    grid = torch.arange(image_size, dtype=torch.float32)
    templates, gates = [], []
    for au in aus:
        showing = present[:, faceset.au_codes.index(au)]
        difference = padded[showing].mean(0) - padded[~showing].mean(0)  # (s + 2 pad, s + 2 pad)
        cy, cx = np.argwhere(regions.stack(au, sample).mean(0) > 0.5).mean(0).round().astype(int)
        template = difference[cy:cy + window, cx:cx + window]  # centred on (cy, cx) of the unpadded input
        templates.append(template / template.norm().clamp_min(1e-12))
        spread = 2 * (window / 4) ** 2
        gates.append(torch.exp(-((grid[:, None] - cy) ** 2 + (grid[None, :] - cx) ** 2) / spread))
    return PlantedNetwork(torch.stack(templates)[:, None], torch.stack(gates), preprocess, aus).eval()
