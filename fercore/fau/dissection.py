"""Network dissection for action units (Bau et al. 2017): how much of a unit's most active area, over the whole
dataset, overlaps the region of an AU on the faces that show it, against a permutation null."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.fau.alignment import RegionCache


@dataclass
class Dissection:
    """Network dissection of one layer for AUs (Bau et al. 2017, with AU regions as the concepts)."""

    iou: pd.DataFrame  # (units x scored AUs) IoU summed over all coded images
    units: pd.DataFrame  # per unit: AU (its best), iou, detects (iou > threshold), null_iou (mean over
    #                      permutations), null_p (share of permutations at least as high, +1 smoothed)
    units_detecting: float  # share of units that detect some AU
    aus_detected: int  # distinct AUs detected by some unit
    null_units_detecting: float  # the same share under the permutation null (mean over permutations)
    threshold: float  # the IoU a detection needs


def netdissect(model: nn.Module, faceset: FaceSet, layer: str, quantile: float = 0.005, threshold: float = 0.04,
               permutations: int = 10, size: int = 32, min_images: int = 20, seed: int = 0,
               preprocess: Callable | None = None) -> Dissection:
    """NetDissect for AUs: each unit's map, laid on the face (``units.maps_on_faces``, at ``size`` x ``size``), is
    active above a dataset-wide threshold (its top ``quantile`` over every position of every image); an AU's
    concept mask is its region on the images that show it (empty elsewhere); IoU sums intersections and unions
    over all images; a unit detects an AU at IoU > ``threshold``. The null pairs each image's maps with the AU
    masks of another image (a random permutation), ``permutations`` times.
    """
    from fercore.fau.scores import scored_aus

    aus = scored_aus(faceset, min_images)
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    scale = size / (faceset.image_size / units.input_scale(model, faceset, preprocess))  # size / model input side
    masks = _concept_masks(faceset, aus, size)  # (N, A, size * size) float32 0/1
    rng = np.random.default_rng(seed)
    orders = [np.arange(len(faceset))] + [rng.permutation(len(faceset)) for _ in range(permutations)]
    cut = _thresholds(model, faceset, layer, field, scale, size, quantile, preprocess)  # (C,)
    inter = torch.zeros(len(orders), len(cut), len(aus), dtype=torch.float64)
    active_sum = torch.zeros(len(cut), dtype=torch.float64)
    for batch, maps in units.layer_maps(model, faceset, layer, preprocess=preprocess):
        active = (units.maps_on_faces(maps, field, scale, size).cpu() >= cut[None, :, None, None]).float()
        active = active.transpose(0, 1).flatten(1)  # (C, b * P): every image's positions side by side
        active_sum += active.sum(1).double()
        for p, order in enumerate(orders):  # one float32 product per order (a batch's sums are exact), float64 totals
            inter[p] += (active @ masks[order[batch]].transpose(1, 2).flatten(0, 1)).double()  # (C, b*P) @ (b*P, A)
    union = active_sum[None, :, None] + masks.sum((0, 2), dtype=torch.float64)[None, None, :] - inter
    ious = (inter / union.clamp_min(1)).numpy()  # (1 + P, C, A)
    return _dissection(ious, aus, threshold)


def _concept_masks(faceset: FaceSet, aus: list[str], size: int) -> torch.Tensor:
    """float32 (N, A, size * size): each AU's region (1) on the images that show it, nothing (0) on the others."""
    regions = RegionCache(faceset, size)
    present = faceset.au_present().numpy()
    masks = torch.zeros(len(faceset), len(aus), size * size)
    for a, au in enumerate(aus):
        showing = np.flatnonzero(present[:, faceset.au_codes.index(au)])
        masks[showing, a] = torch.as_tensor(regions.stack(au, showing).reshape(len(showing), -1), dtype=torch.float32)
    return masks


def _thresholds(model, faceset, layer, field, scale, size, quantile, preprocess) -> torch.Tensor:
    """(C,) each unit's activation at the top ``quantile`` of all its positions on all images (a running top-k)."""
    keep = max(1, int(round(quantile * len(faceset) * size * size)))
    best = None
    for _, maps in units.layer_maps(model, faceset, layer, preprocess=preprocess):
        values = units.maps_on_faces(maps, field, scale, size).cpu().transpose(0, 1).flatten(1)  # (C, b * P)
        values = values if best is None else torch.cat([best, values], dim=1)
        best = values.topk(min(keep, values.shape[1]), dim=1).values
    return best[:, -1]


def _dissection(ious: np.ndarray, aus: list[str], threshold: float) -> Dissection:
    observed, null = ious[0], ious[1:]  # (C, A), (P, C, A)
    best = observed.argmax(1)
    rows = np.arange(len(best))
    best_iou = observed[rows, best]
    null_best = null[:, rows, best]  # (P, C): the permuted IoU of each unit's best AU
    units_table = pd.DataFrame({"unit": rows, "AU": np.asarray(aus)[best], "iou": best_iou,
                                "detects": best_iou > threshold, "null_iou": null_best.mean(0),
                                "null_p": (1 + (null_best >= best_iou).sum(0)) / (1 + len(null))})
    detecting = units_table["detects"]
    return Dissection(iou=pd.DataFrame(observed, columns=aus).rename_axis("unit"), units=units_table,
                      units_detecting=float(detecting.mean()),
                      aus_detected=int(units_table.loc[detecting, "AU"].nunique()),
                      null_units_detecting=float((null.max(2) > threshold).mean()), threshold=threshold)
