"""fercore.config: profiles, what identifies a run, and the data identity of a fold."""

from __future__ import annotations

import pytest

from fercore.config import PROFILES, TrainConfig, data_identity, differences, get_profile
from fercore.data.faceset import FaceSet, Split


def test_profiles():
    paper = TrainConfig.from_profile("paper", variant="cnn_d", fold=3)
    assert (paper.image_size, paper.width, paper.iterations, paper.batch_size, paper.lr) == (96, 1.0, 31_000, 64, 0.01)
    assert (paper.momentum, paper.weight_decay, paper.variant, paper.fold) == (0.9, 1e-5, "cnn_d", 3)
    assert get_profile("paper").folds is None and set(get_profile("paper").variants) == {"cnn", "cnn_a", "cnn_d",
                                                                                      "cnn_ad"}
    quick = TrainConfig.from_profile("quick")
    assert quick.iterations < paper.iterations and quick.image_size <= 96 and set(PROFILES) == {"paper", "quick"}
    resnet = TrainConfig.from_profile("quick", "resnet18", variant="cnn")
    assert (resnet.arch, resnet.iterations, resnet.variant) == ("resnet18", quick.iterations, "cnn")
    assert all(p.cell_timeout_s > 0 for p in PROFILES.values())
    with pytest.raises(ValueError, match="valid profiles"):
        get_profile("fast")
    with pytest.raises(ValueError, match="valid variants"):
        TrainConfig(variant="cnn_x")
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['device'\]"):
        TrainConfig.from_profile("quick", device="cuda")  # execution is not identity


def test_data_identity_tells_protocols_apart(tiny_faceset):
    same = data_identity(tiny_faceset, 1)
    assert same == data_identity(tiny_faceset, 1) and same["outputs"] == ["left", "centre", "right"]
    split = tiny_faceset.splits[1]
    train, val = split.train.copy(), split.val.copy()
    train[0], val[0] = val[0], train[0]  # one image moved between train and validation: same sizes
    other = FaceSet(**{**tiny_faceset.__dict__, "splits": [tiny_faceset.splits[0], Split(train, val, split.test)]})
    moved = data_identity(other, 1)
    assert differences(TrainConfig(), same, TrainConfig(), moved) == [
        f"data split_sha1: {same['split_sha1']!r} -> {moved['split_sha1']!r}"]
    assert differences(TrainConfig(), None, TrainConfig(lr=0.1), same) == ["lr: 0.01 -> 0.1"]
