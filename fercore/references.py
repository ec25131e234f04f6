"""The one table of published numbers in fercore: what the paper's network (and others) are cited with.

None of them is confirmed against the paper's own tables (arXiv 1510.02969 v3 corrected Tables 2
and 3): every number is shown "as cited, unconfirmed", with who cites it (``docs/paper.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

REFERENCE_STATUS = "as cited, unconfirmed"
_KHORRAMI = "zero-bias CNN, augmentation + dropout (Khorrami et al. 2015)"
_QUOTED = ("quoted by papers citing Khorrami et al., arXiv 1510.02969 (whose v3 corrected Tables 2 and 3); "
           "not checked against those tables")
_FN2EN = "comparison tables of FaceNet2ExpNet (FG 2017), person-independent protocols"


@dataclass(frozen=True)
class Reference:
    """One published accuracy, as someone cited it."""

    task: str  # "CK+ 8-class", "CK+ 6-class" or "TFD"
    method: str
    variant: str | None  # the fercore variant it corresponds to; None for other methods (context)
    low: float  # accuracy in percent, as cited
    high: float  # the top of a cited range (= low for a single number)
    source: str  # who cites it, where


# The one table of reference numbers in fercore (docs/paper.md, "Reported numbers").
REFERENCES: tuple[Reference, ...] = (
    Reference("CK+ 8-class", _KHORRAMI, "cnn_ad", 95.7, 96.4, _QUOTED),
    Reference("CK+ 8-class", _KHORRAMI, "cnn_ad", 96.0, 96.0,
              "'around 96%': a user of the authors' code, github.com/ifp-uiuc/"
              "do-neural-networks-learn-faus-iccvw-2015 issue #1 (who reached about 50-55% with it)"),
    Reference("CK+ 6-class", _KHORRAMI, "cnn_ad", 98.3, 98.3, _QUOTED),
    Reference("TFD", _KHORRAMI, "cnn_ad", 88.6, 88.6, _QUOTED),
    Reference("CK+ 8-class", "AUDN", None, 92.1, 92.1, _FN2EN),
    Reference("CK+ 8-class", "FaceNet2ExpNet", None, 96.8, 96.8, _FN2EN),
    Reference("CK+ 6-class", "BDBN", None, 96.7, 96.7, _FN2EN),
    Reference("CK+ 6-class", "DTAGN", None, 97.3, 97.3, _FN2EN),
    Reference("CK+ 6-class", "PPDN", None, 97.3, 97.3, _FN2EN),
    Reference("CK+ 6-class", "FaceNet2ExpNet", None, 98.6, 98.6, _FN2EN),
    Reference("TFD", "CDA+CCA", None, 85.0, 85.0, _FN2EN),
    Reference("TFD", "disRBM", None, 85.4, 85.4, _FN2EN),
    Reference("TFD", "bootstrap-recon", None, 86.8, 86.8, _FN2EN),
    Reference("TFD", "FaceNet2ExpNet", None, 88.9, 88.9, _FN2EN),
)


def reference_table(task: str | None = None) -> pd.DataFrame:
    """``REFERENCES`` as a table (of one task, or all): task, method, variant, accuracy (text), low,
    high, source, status (always "as cited, unconfirmed")."""
    rows = [{"task": r.task, "method": r.method, "variant": r.variant, "accuracy": _cited(r.low, r.high),
             "low": r.low, "high": r.high, "source": r.source, "status": REFERENCE_STATUS}
            for r in REFERENCES if task is None or r.task == task]
    return pd.DataFrame(rows)


def _cited(low: float, high: float) -> str:
    return f"{low:.1f}" if low == high else f"{low:.1f}-{high:.1f}"


def reference_of(task: str | None, variant: str) -> str:
    """The cited accuracy of the paper's network for ``variant`` on ``task`` ("" where none is cited)."""
    matching = [r for r in REFERENCES if r.task == task and r.variant == variant]
    return _cited(min(r.low for r in matching), max(r.high for r in matching)) if matching else ""


__all__ = ["REFERENCES", "REFERENCE_STATUS", "Reference", "reference_of", "reference_table"]
