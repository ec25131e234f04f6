"""Threshold-free scores of units for AUs: pooled features, per (unit, AU) ROC AUC and average precision, the
best unit per AU with a subject-bootstrap interval, and linear probes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore import units
from fercore.data.faceset import FaceSet


def pooled_features(model: nn.Module, faceset: FaceSet, layer: str, preprocess: Callable | None = None) -> np.ndarray:
    """(N, C) peak activation of every channel of ``layer`` on every image (global max pool)."""
    peaks = [maps.flatten(2).amax(dim=2).cpu().numpy()
             for _, maps in units.layer_maps(model, faceset, layer, preprocess=preprocess)]
    return np.concatenate(peaks)  # (N, C)


def probes(features: np.ndarray, faceset: FaceSet, n_folds: int = 5, min_images: int = 20, seed: int = 0):
    """AUC of a linear probe for each AU's presence, under subject-independent folds.

    Args:
        features: (N, C) from ``pooled_features``.

    Returns:
        One row per AU with at least ``min_images`` positives: AU, present, auc.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    aus, _, present = _scored_presence(faceset, min_images)
    scores = np.zeros(present.shape)  # (N, scored AUs) each image's probe score, from its test fold
    folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(features, groups=faceset.subjects)
    with threadpool_limits(1):  # one BLAS thread: faster on these small fits, and the same on any CPU
        for train, test in folds:  # the folds follow the subjects only: one scaling per fold serves every AU
            scaler = StandardScaler().fit(features[train])
            seen, unseen = scaler.transform(features[train]), scaler.transform(features[test])
            for a in range(len(aus)):
                probe = LogisticRegression(C=0.1, max_iter=2000).fit(seen, present[train, a])
                scores[test, a] = probe.predict_proba(unseen)[:, 1]
    rows = [{"AU": au, "present": int(present[:, a].sum()), "auc": float(roc_auc_score(present[:, a], scores[:, a]))}
            for a, au in enumerate(aus)]
    return pd.DataFrame(rows)


def scored_aus(faceset: FaceSet, min_images: int = 20) -> list[str]:
    """The AUs with at least ``min_images`` coded images showing them and as many not showing them."""
    present = faceset.au_present().numpy()
    return [au for a, au in enumerate(faceset.au_codes)
            if present[:, a].sum() >= min_images and (~present[:, a]).sum() >= min_images]


def _scored_presence(faceset: FaceSet, min_images: int) -> tuple[list[str], list[int], np.ndarray]:
    """The scored AUs (``scored_aus``), their columns in ``faceset.au_codes`` and bool (N, len(aus)) presence."""
    aus = scored_aus(faceset, min_images)
    columns = [faceset.au_codes.index(au) for au in aus]
    return aus, columns, faceset.au_present().numpy()[:, columns]


def unit_scores(features: np.ndarray, faceset: FaceSet, min_images: int = 20) -> pd.DataFrame:
    """Threshold-free score of every unit for every scored AU, over all coded images.

    Args:
        features: (N, C) each unit's peak activation on each image (``pooled_features``).

    Returns:
        One row per (unit, AU): unit, AU, auc (ROC AUC of the peak activation for the AU's presence), ap
        (average precision).
    """
    from fercore.stats import average_precision, roc_auc

    aus, _, present = _scored_presence(faceset, min_images)
    auc, ap = roc_auc(features, present)[0].numpy(), average_precision(features, present)  # (C, A)
    units_ = np.repeat(np.arange(features.shape[1]), len(aus))
    return pd.DataFrame({"unit": units_, "AU": np.tile(aus, features.shape[1]), "auc": auc.ravel(), "ap": ap.ravel()})


def output_auc(model: nn.Module, faceset: FaceSet, min_images: int = 20,
               preprocess: Callable | None = None) -> pd.Series:
    """Per scored AU, the ROC AUC of an AU-trained network's own output for that AU over all coded images: what
    the network as a whole detects, beside which its best single unit (``best_unit_auc``) is read. Where the whole
    network misses an AU, no unit of it can be expected to detect the AU, whatever the instrument.

    Args:
        model: trained with target "aus" on FaceSets with ``faceset.au_codes`` (one output per AU, in that order).

    Returns:
        Index AU (the scored AUs), values AUC.
    """
    from fercore.inference import batches, evaluating, model_inputs
    from fercore.targets import ActionUnits

    with evaluating(model):
        logits = torch.cat([model(model_inputs(faceset.images[chunk], model, preprocess)).float().cpu()
                            for chunk in batches(len(faceset))])  # (N, A)
    if logits.shape[1] != len(faceset.au_codes):
        raise ValueError(f"the network has {logits.shape[1]} outputs, the FaceSet {len(faceset.au_codes)} AUs "
                         f"({', '.join(faceset.au_codes)}): output_auc needs a network trained with target 'aus' "
                         "on these AUs")
    aus, columns, present = _scored_presence(faceset, min_images)
    auc = ActionUnits().aucs(logits[:, columns], torch.from_numpy(present))  # (A,) each output for its own AU
    return pd.Series(auc, index=pd.Index(aus, name="AU"), name="output AUC")


def best_unit_auc(features: np.ndarray, faceset: FaceSet, min_images: int = 20, n_boot: int = 1000,
                  level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per scored AU: the unit whose peak activation detects it best (ROC AUC), with a subject-bootstrap interval
    of that best AUC in which every resample chooses its best unit again (``stats.best_unit_intervals``).

    Returns:
        Index AU; columns unit, auc, ci_low, ci_high, ap (of that unit), present (coded images with the AU).
    """
    from fercore.stats import average_precision, best_unit_intervals

    aus, _, present = _scored_presence(faceset, min_images)
    table = best_unit_intervals(features, present, faceset.subjects, n_boot, level, seed)
    ap = average_precision(features, present)
    table["ap"] = [ap[u, a] for a, u in enumerate(table["unit"])]
    table["present"] = present.sum(0)
    return table.assign(AU=aus).drop(columns="label").set_index("AU")
