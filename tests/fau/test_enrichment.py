"""fercore.fau.enrichment against scipy and direct computations; conditioning on the emotion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import au_faceset
from scipy.stats import fisher_exact

from fercore import fau


def test_enrichment_matches_scipy_fisher_on_hand_made_tables():
    rng = np.random.default_rng(0)
    present = rng.random((60, 3)) < [0.1, 0.3, 0.6]
    faceset = au_faceset(None, present, ["AU1", "AU12", "AU25"])
    top = pd.DataFrame({"filter": np.repeat([0, 1], 8), "image": np.r_[np.arange(8), np.arange(20, 28)]})
    table = fau.enrichment(top, faceset).set_index(["filter", "AU"])
    for f, images in ((0, np.arange(8)), (1, np.arange(20, 28))):
        for a, au in enumerate(["AU1", "AU12", "AU25"]):
            row = table.loc[(f, au)]
            x, total = present[images, a].sum(), present[:, a].sum()
            contingency = [[x, 8 - x], [total - x, 60 - 8 - total + x]]
            assert row["in_top"] == x and row["present"] == total and row["k"] == 8
            assert row["p"] == pytest.approx(fisher_exact(contingency, alternative="greater").pvalue, rel=1e-9)
            (a11, a12), (a21, a22) = contingency
            assert row["odds_ratio"] == pytest.approx((a11 + 0.5) * (a22 + 0.5) / ((a12 + 0.5) * (a21 + 0.5)))


def test_benjamini_hochberg_matches_a_direct_computation():
    p = np.random.default_rng(1).random(50) ** 3
    order = np.argsort(p)
    m = len(p)
    direct = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):  # q_(i) = min over j >= i of p_(j) * m / j
        running = min(running, p[order[rank - 1]] * m / rank)
        direct[order[rank - 1]] = running
    assert np.allclose(fau.benjamini_hochberg(p), direct)


def test_conditioning_on_emotion_removes_an_au_that_rides_along_with_its_class():
    """AU6 marks class 1; a filter that picks class-1 images is enriched for AU6 only unconditionally."""
    labels = np.repeat([0, 1], 60)
    au6 = np.zeros(120, bool)
    au6[:6] = True  # 6 of 60 in class 0
    au6[60:108] = True  # 48 of 60 in class 1
    faceset = au_faceset(None, au6[:, None], ["AU6"], labels=labels)
    class_picker = np.r_[60:84, 108:114]  # 30 class-1 images, AU6 at the class's own rate (24 of 30)
    au_picker = np.r_[0:6, 60:84]  # every AU6 image of class 0, and 24 with AU6 from class 1
    top = pd.DataFrame({"filter": np.repeat([0, 1], 30), "image": np.r_[class_picker, au_picker]})
    table = fau.enrichment(top, faceset, by_emotion=True).set_index("filter")
    assert table.loc[0, "p"] < 1e-3 and table.loc[0, "p_emotion"] > 0.2
    assert table.loc[1, "p"] < 1e-3 and table.loc[1, "p_emotion"] < 1e-3
