"""fercore.fau.dissection: NetDissect's IoU on a hand-computed example, and its permutation null."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builders import AU_SIZE as SIZE
from builders import au_faceset, template_landmarks
from torch import nn

from fercore import fau
from fercore.facs import au_region


class Copy(nn.Module):
    """One unit whose map is the input itself (a 1x1 convolution of weight 1)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward(self, x):
        return self.conv(x).amax(dim=(2, 3))


def test_netdissect_iou_by_hand():
    """Ten faces: on the five that show AU12 the left half of its region is bright, on the others a 6x6 square
    on the forehead. The unit's top positions (a quantile of exactly the bright pixels' share) are those pixels."""
    region = au_region(12, template_landmarks(), SIZE)
    left = region & (np.arange(SIZE) < np.argwhere(region)[:, 1].mean())[None, :]
    images = np.zeros((10, SIZE, SIZE), np.uint8)
    present = np.zeros((10, 1), bool)
    present[:5] = True
    for i in range(10):
        if present[i, 0]:
            images[i][left] = 200
        else:
            images[i, 5:11, 37 + i:43 + i] = 200
    faceset = au_faceset(images, present, ["AU12"])
    bright = images == 200
    inter = (bright[:5] & region).sum()
    union = bright.sum() + 5 * region.sum() - inter  # every face's active area, the region where AU12 shows
    quantile = bright.sum() / bright.size
    d = fau.netdissect(Copy(), faceset, "conv", quantile=quantile, size=SIZE, min_images=5,
                       permutations=20, preprocess=lambda faces: faces.float())
    assert d.iou.loc[0, "AU12"] == pytest.approx(inter / union)
    unit = d.units.iloc[0]
    assert (unit["AU"], bool(unit["detects"])) == ("AU12", True) and d.units_detecting == 1.0 and d.aus_detected == 1
    assert unit["null_iou"] < unit["iou"] and unit["null_p"] < 0.1  # shuffled masks rarely land on the squares
    torch.manual_seed(0)  # nothing random outside the permutation generator
    again = fau.netdissect(Copy(), faceset, "conv", quantile=quantile, size=SIZE, min_images=5,
                           permutations=20, preprocess=lambda faces: faces.float())
    assert again.units.equals(d.units)
