"""fercore.facs: every AU's face region sits where the AU acts."""

from __future__ import annotations

import numpy as np
import pytest
from builders import AU_SIZE as SIZE
from builders import template_landmarks

from fercore.facs import SYNTH_AUS, au_region


def test_au_regions_sit_where_the_au_acts():
    lm = template_landmarks()
    for au in SYNTH_AUS:
        mask = au_region(au, lm, SIZE)
        assert 20 < mask.sum() < SIZE * SIZE / 4, au
    rows = lambda au: np.nonzero(au_region(au, lm, SIZE))[0].mean()  # noqa: E731
    brows, mouth = lm[17:27, 1].mean(), lm[48:60, 1].mean()
    assert rows(1) < brows and rows(2) < brows and rows(12) > lm[33, 1] and rows(17) > mouth
    corner = au_region(12, lm, SIZE)
    for i in (48, 54):
        x, y = lm[i].round().astype(int)
        assert corner[y, x]
    with pytest.raises(KeyError, match="AU3"):
        au_region(3, lm, SIZE)
    with pytest.raises(ValueError, match="missing"):
        au_region(12, np.full((68, 2), np.nan), SIZE)
