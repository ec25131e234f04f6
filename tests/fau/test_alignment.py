"""fercore.fau.alignment: a planted unit is found by enrichment and alignment; the recovery curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from builders import AU_SIZE as SIZE
from builders import au_faceset, template_landmarks

from fercore import fau, units
from fercore.models import ModelConfig, build_model


def _planted_model() -> torch.nn.Module:
    """conv3 filter 0 copies the (normalised) input: it fires where the image is brightest."""
    model = build_model(ModelConfig(image_size=SIZE, width=1 / 16), seed=0)
    with torch.no_grad():
        for conv in (model.conv1, model.conv2, model.conv3):
            conv.weight.zero_()
            conv.weight[0, 0, 2, 2] = 1.0
    return model


def test_a_planted_filter_is_found_by_enrichment_and_spatial_alignment(monkeypatch):
    lm = template_landmarks()
    n = 40
    present = np.zeros((n, 2), bool)
    present[:20, 0] = True  # AU12: a bright spot at the right lip corner
    images = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        r, c = (lm[48] if present[i, 0] else lm[19] - [0, 12])[::-1].round().astype(int)  # else: on the forehead
        images[i, r - 1:r + 1, c - 1:c + 1] = 255 - i  # distinct strengths: a strict ranking
    present[::3, 1] = True  # AU1 present in a third of the images, unrelated to the spot
    faceset = au_faceset(images, present, ["AU12", "AU1"])
    model = _planted_model()
    top = units.mine_topk(model, faceset, "conv3", k=20, progress=False)
    assert sorted(top.loc[top["filter"] == 0, "image"]) == list(range(20))
    enrich = fau.enrichment(top[top["filter"] == 0], faceset)
    field = units.receptive_field(model, "conv3")
    align = fau.spatial_alignment(top[top["filter"] == 0], faceset, field)
    assert align.set_index("AU").loc["AU12", "inside"] == 1.0
    score, table = fau.recovery(enrich, align, min_images=5)
    assert table.loc["AU12", "recovered"] and not table.loc["AU1", "recovered"]
    assert score == 0.5
    curve = fau.recovery_curve(top, faceset, field, 1.0, [5, 10], min_images=5, n_boot=20)
    # Unweighted, the curve is the recovery of the top k (the enrichment of the other units included).
    for k in (5, 10):
        head = top[top["rank"] < k]
        expected, _ = fau.recovery(fau.enrichment(head, faceset), fau.spatial_alignment(head, faceset, field),
                                   min_images=5)
        assert curve.set_index("k").loc[k, "recovery"] == expected
    assert (curve["recovery_low"] <= curve["recovery_high"]).all()
    # the resamples are scored a chunk at a time: the chunk size changes nothing
    monkeypatch.setattr(fau.alignment, "_WEIGHTS_PER_CHUNK", 3)
    pd.testing.assert_frame_equal(fau.recovery_curve(top, faceset, field, 1.0, [5, 10], min_images=5, n_boot=20),
                                  curve)


@pytest.mark.parametrize("stride", [4, 32])
def test_a_centre_counts_inside_within_half_a_stride_of_the_region(stride):
    """A unit's position is known to its map cell: a centre half a stride (in face pixels) from a thin region
    counts, one farther does not; on a coarse map the growth stops at 4 face pixels (of 96)."""
    faceset = au_faceset(np.zeros((1, SIZE, SIZE), np.uint8), np.ones((1, 1), bool), ["AU12"])
    region = fau.RegionCache(faceset)(0, "AU12")
    rows, cols = np.nonzero(region)
    r, c = rows.min(), cols[rows == rows.min()][0]  # the region's top pixel
    field = units.ReceptiveField(size=2 * stride, stride=stride, start=0.0)
    scale = 2.0  # face pixels per model pixel: half a stride is `stride` face pixels, capped at 4

    def share(row):  # the centre of map position (y, x) lands on face pixel (2 * stride * y + 1, ...)
        top = pd.DataFrame({"filter": [0], "image": [0], "y": [(row - 1) / (2 * stride)],
                            "x": [(c - 1) / (2 * stride)]})
        return fau.inside(top, faceset, field, scale, ["AU12"])[0, 0]

    assert share(r) == 1.0 and share(r - 4) == 1.0 and share(r - 5) == 0.0


@pytest.mark.parametrize("margin", [1, 4])
def test_a_grown_region_is_the_square_dilation_of_the_region(margin):
    """The grown region (a separable maximum filter) equals scipy's binary dilation by a square, at the border too."""
    from scipy.ndimage import binary_dilation

    faceset = au_faceset(np.zeros((1, SIZE, SIZE), np.uint8), np.ones((1, 1), bool), ["AU12"])
    regions = fau.RegionCache(faceset)
    region = regions(0, "AU12")
    assert region.sum() > 0
    square = np.ones((2 * margin + 1,) * 2, bool)
    assert np.array_equal(regions(0, "AU12", margin), binary_dilation(region, square))
    edge = np.zeros((SIZE, SIZE), bool)
    edge[0, :3] = edge[5, SIZE - 1] = True
    regions._masks[(0, "edge", 0)] = edge
    assert np.array_equal(regions(0, "edge", margin), binary_dilation(edge, square))
