"""FAU statistics against scipy and direct computations; a planted filter is found; AU regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import fisher_exact

from fercore import fau, units
from fercore.data.crop import landmark_box, to_crop_coords
from fercore.data.faceset import FaceSet
from fercore.data.synthfacs.face import TEMPLATE
from fercore.facs import SYNTH_AUS, au_region
from fercore.models import ModelConfig, build_model

SIZE = 96


def _landmarks() -> np.ndarray:
    frame = TEMPLATE * 120 + [320, 200]
    return to_crop_coords(frame, landmark_box(frame), SIZE)


def _faceset(images, present: np.ndarray, au_codes, labels=None) -> FaceSet:
    n = len(present)
    images = np.zeros((n, SIZE, SIZE), np.uint8) if images is None else images
    return FaceSet(name="test", images=torch.from_numpy(images[:, None]),
                   labels=torch.as_tensor(np.zeros(n) if labels is None else labels, dtype=torch.int64),
                   classes=["a", "b"], subjects=np.array([f"S{i:03d}" for i in range(n)]),
                   aus=torch.from_numpy(present.astype(np.int8) * 3), au_codes=list(au_codes),
                   landmarks=torch.from_numpy(np.repeat(_landmarks()[None], n, axis=0)),
                   meta=pd.DataFrame({"i": range(n)}))


def test_enrichment_matches_scipy_fisher_on_hand_made_tables():
    rng = np.random.default_rng(0)
    present = rng.random((60, 3)) < [0.1, 0.3, 0.6]
    faceset = _faceset(None, present, ["AU1", "AU12", "AU25"])
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
    faceset = _faceset(None, au6[:, None], ["AU6"], labels=labels)
    class_picker = np.r_[60:84, 108:114]  # 30 class-1 images, AU6 at the class's own rate (24 of 30)
    au_picker = np.r_[0:6, 60:84]  # every AU6 image of class 0, and 24 with AU6 from class 1
    top = pd.DataFrame({"filter": np.repeat([0, 1], 30), "image": np.r_[class_picker, au_picker]})
    table = fau.enrichment(top, faceset, by_emotion=True).set_index("filter")
    assert table.loc[0, "p"] < 1e-3 and table.loc[0, "p_emotion"] > 0.2
    assert table.loc[1, "p"] < 1e-3 and table.loc[1, "p_emotion"] < 1e-3


def _planted_model() -> torch.nn.Module:
    """conv3 filter 0 copies the (normalised) input: it fires where the image is brightest."""
    model = build_model(ModelConfig(image_size=SIZE, width=1 / 16), seed=0)
    with torch.no_grad():
        for conv in (model.conv1, model.conv2, model.conv3):
            conv.weight.zero_()
            conv.weight[0, 0, 2, 2] = 1.0
    return model


def test_a_planted_filter_is_found_by_enrichment_and_spatial_alignment():
    lm = _landmarks()
    n = 40
    present = np.zeros((n, 2), bool)
    present[:20, 0] = True  # AU12: a bright spot at the right lip corner
    images = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        r, c = (lm[48] if present[i, 0] else lm[19] - [0, 12])[::-1].round().astype(int)  # else: on the forehead
        images[i, r - 1:r + 1, c - 1:c + 1] = 255 - i  # distinct strengths: a strict ranking
    present[::3, 1] = True  # AU1 present in a third of the images, unrelated to the spot
    faceset = _faceset(images, present, ["AU12", "AU1"])
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
    iou = fau.dissection_iou(model, faceset, top, "conv3", pd.DataFrame({"filter": [0], "AU": ["AU12"]}))
    assert iou["iou"].iloc[0] > 0


def test_probes_decode_a_feature_that_carries_the_au():
    rng = np.random.default_rng(3)
    present = rng.random((200, 2)) < 0.3
    faceset = _faceset(None, present, ["AU4", "AU9"])
    features = np.c_[present[:, 0] + rng.normal(0, 0.3, 200), rng.normal(size=(200, 5))]
    result = fau.probes(features, faceset).set_index("AU")
    assert result.loc["AU4", "auc"] > 0.95
    assert 0.3 < result.loc["AU9", "auc"] < 0.7


def test_counterfactual_selectivity_shapes_and_determinism():
    model = build_model(ModelConfig(image_size=48, width=0.125), seed=0)
    a = fau.counterfactual_selectivity(model, [12, 26], "conv3", n_faces=2, progress=False)
    b = fau.counterfactual_selectivity(model, [12, 26], "conv3", n_faces=2, progress=False)
    assert len(a) == 2 * 32 and set(a["AU"]) == {"AU12", "AU26"}
    pd.testing.assert_frame_equal(a, b)
    assert np.isfinite(a["selectivity"]).all()


def test_au_regions_sit_where_the_au_acts():
    lm = _landmarks()
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


def test_the_analysis_runs_on_a_ckplus_copys_facs_files(ckplus_tree):
    """Real FACS: the apex frames of every sequence with a FACS file, labelled or not."""
    from fercore.data import load

    faceset = fau.coded_frames(load("ckplus", ckplus_tree.root, frames="peak", unlabelled=True, size=32))
    assert (faceset.labels == -1).any(), "FACS-only sequences are part of the analysis"
    model = build_model(ModelConfig(image_size=32, width=0.125), seed=0)
    analysis = fau.analyse(model, faceset, k=3, min_images=1, progress=False)
    assert set(analysis.enrichment["AU"]) == set(faceset.au_codes)
    assert len(analysis.recovery) == len(faceset.au_codes)
    assert 0 <= analysis.score <= 1 and analysis.iou["iou"].between(0, 1).all()


class Nested(torch.nn.Module):
    """A network of the user's own: nested blocks, a residual add, its own input scaling."""

    def __init__(self):
        super().__init__()
        conv = torch.nn.Conv2d
        self.stem = torch.nn.Sequential(conv(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.block = torch.nn.ModuleDict({"a": conv(8, 8, 3, padding=1), "b": conv(8, 8, 3, padding=1)})
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block["b"](torch.relu(self.block["a"](x))))
        return self.head(x.mean(dim=(2, 3)))


def test_a_users_own_network_is_mined_and_analysed(ckplus_tree):
    from fercore.data import load

    faceset = fau.coded_frames(load("ckplus", ckplus_tree.root, frames="peak", unlabelled=True, size=32))
    model = Nested().eval()

    def preprocess(faces):  # uint8 (B, 1, 32, 32) -> the network's input
        return faces.float() / 127.5 - 1

    analysis = fau.analyse(model, faceset, k=3, min_images=1, progress=False, preprocess=preprocess)
    assert analysis.layer == "block.b"  # the last convolution with a map of at least 3x3
    assert set(analysis.top["filter"]) == set(range(8)) and analysis.top["y"].max() < 16
    field = units.receptive_field(model, "block.b", preprocess, 32)
    assert (field.size, field.stride) == (12, 2)  # 3x3 conv (3), 2x2 pool (+1), two 3x3 convs at stride 2 (+4, +4)
    assert 0 <= analysis.score <= 1
    with pytest.raises(ValueError, match="carries no input preprocessing: pass preprocess="):
        fau.analyse(model, faceset, k=3, progress=False)
