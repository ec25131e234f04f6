"""What a run learns to predict (``TrainConfig.target``): the emotion of a face, or which action units it shows.

The paper's networks learn emotions (cross-entropy over the classes, scored by accuracy). The FAU
analysis's positive control learns AUs (one output per AU, binary cross-entropy on AU presence,
scored by the mean of the per-AU ROC AUCs), through the same engine, on the FACS-coded frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fercore import stats
from fercore.data.faceset import FaceSet

TARGETS = ("emotion", "aus")


class Emotion:
    """Classes by cross-entropy; the score is accuracy."""

    name, score_name = "emotion", "accuracy"

    def names(self, faceset: FaceSet) -> list[str]:
        return list(faceset.classes)

    def labels(self, faceset: FaceSet, index: torch.Tensor) -> torch.Tensor:
        return faceset.labels[index]  # (n,) int64

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def right(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Right predictions in a batch (a tensor on the device, not read back)."""
        return (logits.argmax(1) == y).sum()

    def score(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        return (logits.argmax(1) == y).float().mean().item()

    def predictions(self, faceset: FaceSet, index, logits: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
        """One row per test image: index, subject, label, prediction, correct, p_<class> per class."""
        probs = logits.softmax(1).cpu().numpy()  # (n, n_classes)
        labels, index = y.cpu().numpy(), np.asarray(index)
        table = pd.DataFrame({"index": index, "subject": faceset.subjects[index], "label": labels,
                              "prediction": probs.argmax(1), "correct": probs.argmax(1) == labels})
        for k, name in enumerate(faceset.classes):
            table[f"p_{name}"] = probs[:, k]
        return table

    def test_score(self, predictions: pd.DataFrame) -> float:
        return float(predictions["correct"].mean())


class ActionUnits:
    """AU presence by binary cross-entropy, one output per AU; the score is the mean per-AU ROC AUC."""

    name, score_name = "aus", "mean AU AUC"

    def names(self, faceset: FaceSet) -> list[str]:
        if not faceset.au_codes:
            raise ValueError(f"target 'aus' needs FACS codes; {faceset.name} has none")
        return list(faceset.au_codes)

    def labels(self, faceset: FaceSet, index: torch.Tensor) -> torch.Tensor:
        coded = faceset.au_coded()[index]
        if not bool(coded.all()):
            raise ValueError(f"target 'aus' trains on FACS-coded frames; {int((~coded).sum())} images of this split "
                             "are not coded: use fercore.fau.coded_frames(faceset)")
        return faceset.au_present()[index].float()  # (n, A)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Summed over AUs, averaged over images: each AU's gradient as strong as a one-label loss's (a mean over
        19 AUs would scale the step down 19-fold under the emotion task's learning rate)."""
        return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / len(y)

    def right(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per image, the share of AUs predicted right at p = 0.5, summed over the batch."""
        return ((logits > 0) == (y > 0.5)).float().mean(1).sum()

    def score(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        return float(np.nanmean(self.aucs(logits, y)))

    def aucs(self, logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        """(A,) ROC AUC of each AU's own output (NaN where the split has no positive or no negative)."""
        return torch.diagonal(stats.roc_auc(logits.float().cpu(), y.cpu() > 0.5)[0]).numpy()

    def predictions(self, faceset: FaceSet, index, logits: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
        """One row per test image: index, subject, then per AU its presence (y_<AU>) and probability (p_<AU>)."""
        index = np.asarray(index)
        table = pd.DataFrame({"index": index, "subject": faceset.subjects[index]})
        probs, truth = torch.sigmoid(logits).cpu().numpy(), y.cpu().numpy()
        for k, au in enumerate(faceset.au_codes):
            table[f"y_{au}"], table[f"p_{au}"] = truth[:, k].astype(bool), probs[:, k]
        return table

    def test_score(self, predictions: pd.DataFrame) -> float:
        aus = [c[2:] for c in predictions.columns if c.startswith("y_")]
        scores = torch.as_tensor(predictions[[f"p_{au}" for au in aus]].to_numpy())
        truth = torch.as_tensor(predictions[[f"y_{au}" for au in aus]].to_numpy())
        return float(np.nanmean(self.aucs(scores, truth)))


def get_target(name: str):
    """The target called ``name`` ("emotion" or "aus"); ValueError lists the valid names."""
    if name == "emotion":
        return Emotion()
    if name == "aus":
        return ActionUnits()
    raise ValueError(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")


__all__ = ["TARGETS", "ActionUnits", "Emotion", "get_target"]
