"""FAU analysis: do a network's units line up with facial action units?

The paper showed pictures; these functions turn the claim into numbers that can fail, by stage:
- ``enrichment``: is an AU over-represented among the images that excite a unit most? (Fisher, BH q,
  optionally conditioned on the emotion label);
- ``alignment``: do a unit's top activations sit in the AU's face region (``spatial_alignment``), the
  recovery score (``recovery``) and its curve over k with a bootstrap band (``recovery_curve``);
- ``scores``: threshold-free ROC AUC and average precision of every (unit, AU), each AU's best unit with a
  subject-bootstrap interval (``best_unit_auc``), linear probes, an AU-trained network's own outputs
  (``output_auc``);
- ``dissection``: network dissection with AU regions as concepts, against a permutation null;
- ``controls``: a planted network (units built to detect AUs), counterfactual faces (SynthFACS);
- ``analysis``: all of it for one network (``measure``), side by side over networks, the controls' quality bars
  (``calibration``), stability over networks, the verdict per AU.
Every measure is applied with the same settings to the controls (planted, AU-trained, random weights)
before the expression network, so that a low score can be told apart from a blind instrument.
"""

from __future__ import annotations

from fercore.data.faceset import FaceSet
from fercore.fau.alignment import (
    RegionCache,
    best_per_au,
    centres_in_faceset_pixels,
    inside,
    recovery,
    recovery_curve,
    spatial_alignment,
)
from fercore.fau.analysis import (
    VERDICTS,
    Analysis,
    Measures,
    analyse,
    calibration,
    measure,
    scores_by_layer,
    side_by_side,
    stability,
    verdict_text,
    verdicts,
)
from fercore.fau.controls import PlantedNetwork, counterfactual_faces, counterfactual_selectivity, planted_network
from fercore.fau.dissection import Dissection, netdissect
from fercore.fau.enrichment import benjamini_hochberg, enrichment
from fercore.fau.scores import best_unit_auc, output_auc, pooled_features, probes, scored_aus, unit_scores


def coded_frames(faceset: FaceSet) -> FaceSet:
    """The FACS-coded frames (apex frames, and neutral first frames coded as no AU), each in the folds of its
    subject (so a network trained on them, the AU-supervised control, keeps the protocol's folds)."""
    return faceset.subset(faceset.au_coded(), keep_splits=True)


__all__ = ["Analysis", "Dissection", "Measures", "PlantedNetwork", "RegionCache", "VERDICTS", "analyse",
           "benjamini_hochberg", "best_per_au", "best_unit_auc", "calibration", "centres_in_faceset_pixels",
           "coded_frames", "counterfactual_faces", "counterfactual_selectivity", "enrichment", "inside", "measure",
           "netdissect", "output_auc", "planted_network", "pooled_features", "probes", "recovery", "recovery_curve",
           "scored_aus", "scores_by_layer", "side_by_side", "spatial_alignment", "stability", "unit_scores",
           "verdict_text", "verdicts"]
