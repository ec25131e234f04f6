"""Neuron inspection of any network: layers and receptive fields, hooks, top-k mining, patches, map geometry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.models import ModelConfig, build_model


def _faceset(images: np.ndarray) -> FaceSet:
    """A FaceSet around uint8 (N, S, S) images (labels and the rest are placeholders)."""
    n = len(images)
    return FaceSet(name="test", images=torch.from_numpy(images[:, None].astype(np.uint8)),
                   labels=torch.zeros(n, dtype=torch.int64), classes=["x"],
                   subjects=np.array([f"S{i}" for i in range(n)]),
                   aus=torch.zeros((n, 0), dtype=torch.int8), au_codes=[],
                   landmarks=torch.full((n, 68, 2), float("nan")), meta=pd.DataFrame({"i": range(n)}))


def test_receptive_fields_of_the_paper_network():
    model = build_model(ModelConfig(), seed=0)
    assert units.receptive_field(model, "conv1") == units.ReceptiveField(size=5, stride=1, start=0.0)
    assert units.receptive_field(model, "conv2") == units.ReceptiveField(size=14, stride=2, start=0.5)
    assert units.receptive_field(model, "pool2") == units.ReceptiveField(size=16, stride=4, start=1.5)
    conv3 = units.receptive_field(model, "conv3")
    assert (conv3.size, conv3.stride) == (32, 4)  # paper.md: 32x32 input pixels, stride 4
    assert conv3.box(0, 0) == (-14, -14, 18, 18)
    assert conv3.box(5, 7) == (6, 14, 38, 46)
    with pytest.raises(KeyError, match="conv9"):
        units.receptive_field(model, "conv9")


def test_layers_by_dotted_name_and_the_default_layer():
    paper = build_model(ModelConfig(image_size=48, width=0.25))
    table = units.layers(paper).set_index("name")
    assert list(table.index[:4]) == ["conv1", "relu1", "pool1", "conv2"]
    assert table.loc["conv3", "shape"] == (1, 64, 12, 12) and table.loc["conv3", "rf_size"] == 32
    assert np.isnan(table.loc["fc4", "rf_size"])  # after flattening every unit sees the whole face
    assert units.default_layer(paper) == "conv3"
    resnet = build_model(ModelConfig(image_size=48, width=0.25), arch="resnet18")
    assert units.default_layer(resnet) == "layer3.1.conv2"  # layer4's maps are 2x2 at 48x48
    assert "layer2.0.downsample.0" in set(units.layers(resnet)["name"])
    assert units.default_layer(build_model(ModelConfig(image_size=96, width=0.25), arch="resnet18")) == "layer4.1.conv2"


def test_hooks_are_removed_also_after_an_exception():
    model = build_model(ModelConfig(image_size=32, width=0.25), seed=0)
    with units.record(model, ["conv1", "conv3"]) as out:
        model(torch.zeros(2, 1, 32, 32))
        assert out["conv1"].shape == (2, 16, 32, 32) and out["conv3"].shape == (2, 64, 8, 8)
    with pytest.raises(RuntimeError, match="boom"), units.record(model, ["conv2"]):
        raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(KeyError, match="conv7"), units.record(model, ["conv7"]):
        pass


def test_a_recording_that_stops_computes_nothing_after_its_layers():
    model = build_model(ModelConfig(image_size=48, width=0.25), seed=0).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad(), units.record(model, ["conv2"]) as full:
        logits = model(x)
    ran = []
    model.out.register_forward_hook(lambda *_: ran.append("out"))
    with torch.no_grad(), units.record(model, ["conv1", "conv2"], stop=True) as out:
        units.forward_to(model, x, out)
        assert sorted(out) == ["conv1", "conv2"] and not ran  # stopped at conv2: out never ran
        torch.testing.assert_close(out["conv2"], full["conv2"])
        units.forward_to(model, x[:1], out)
        assert out["conv2"].shape[0] == 1  # a fresh pass replaces the last one
    assert logits.shape == (3, 8) and torch.equal(model(x), logits) and ran == ["out"]  # hooks removed


def test_mining_finds_hand_computed_top_k():
    """conv1 with one delta filter: its activation is the normalised input, known by hand."""
    model = build_model(ModelConfig(image_size=32, width=1 / 64), seed=0)  # conv1 has one filter
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.weight[0, 0, 2, 2] = 1.0
    brightness = np.array([40, 255, 90, 200, 10, 160])
    spots = [(3, 4), (10, 20), (16, 16), (25, 6), (8, 8), (30, 29)]
    images = np.zeros((6, 32, 32), np.uint8)
    for k, ((r, c), v) in enumerate(zip(spots, brightness, strict=True)):
        images[k, r, c] = v
    top = units.mine_topk(model, _faceset(images), "conv1", k=3, batch_size=4, progress=False)
    expected = np.argsort(-brightness)[:3]  # images 1, 3, 5
    assert top["image"].tolist() == expected.tolist()
    assert list(zip(top.y, top.x, strict=True)) == [spots[i] for i in expected]
    # x/255*2 minus the 5x5 local mean (x/255*2/25) at the spot itself.
    assert np.allclose(top["activation"], brightness[expected] / 255 * 2 * (1 - 1 / 25), atol=1e-6)


def test_mining_matches_brute_force():
    rng = np.random.default_rng(0)
    faceset = _faceset(rng.integers(0, 256, (37, 48, 48)))
    model = build_model(ModelConfig(image_size=48, width=0.125), seed=3)
    top = units.mine_topk(model, faceset, "conv3", k=5, batch_size=8, progress=False)
    with torch.no_grad(), units.record(model, ["conv3"]) as out:
        model(units.model_inputs(faceset.images, model))
    acts = out["conv3"].flatten(2)  # (N, C, HW)
    peak, where = acts.max(dim=2)
    for f in range(acts.shape[1]):
        order = torch.argsort(peak[:, f], descending=True)[:5]
        rows = top[top["filter"] == f]
        assert rows["image"].tolist() == order.tolist()
        assert np.allclose(rows["activation"], peak[order, f].numpy(), atol=1e-5)
        assert (rows["y"] * out["conv3"].shape[-1] + rows["x"]).tolist() == where[order, f].tolist()
    table, peaks = units.mine(model, faceset, "conv3", k=5, batch_size=8, progress=False)
    pd.testing.assert_frame_equal(table, top)
    np.testing.assert_allclose(peaks, peak.numpy(), atol=1e-5)  # every image's peak per filter, in image order


def test_patches_are_padded_at_the_border_and_scale_with_the_input():
    image = np.arange(96 * 96, dtype=np.int64).reshape(96, 96) % 251 + 1
    faceset = _faceset(image[None])
    model = build_model(ModelConfig(), seed=0)
    field = units.receptive_field(model, "conv3")
    corner = units.patches(faceset, pd.DataFrame({"image": [0], "y": [0], "x": [0]}), field)[0]
    assert corner.shape == (32, 32)
    assert np.all(corner[:14] == 0) and np.all(corner[:, :14] == 0)  # box starts at -14
    assert np.array_equal(corner[14:, 14:], image[:18, :18])
    small = build_model(ModelConfig(image_size=48), seed=0)
    scale = units.input_scale(small, faceset)
    assert scale == 2
    assert units.patches(faceset, pd.DataFrame({"image": [0], "y": [3], "x": [3]}), field, scale).shape == (1, 64, 64)


def test_maps_on_faces_follow_the_receptive_field_geometry():
    """A map whose value is each unit's own x index lands where that unit's receptive field is centred."""
    field = units.ReceptiveField(size=7, stride=4, start=1.5)  # centres at 1.5, 5.5, 9.5, ... model pixels
    maps = torch.arange(6, dtype=torch.float32).repeat(1, 1, 6, 1)  # (1, 1, 6, 6): value = x index
    on_faces = units.maps_on_faces(maps, field, scale=2.0, size=48)[0, 0]  # model input 24 = faces 48 / 2
    # Crop pixel p sits at model pixel (p + 0.5) / 2 - 0.5; unit u is centred at 1.5 + 4 u (between units: linear).
    expected = [min(max(((p + 0.5) / 2 - 0.5 - 1.5) / 4, 0.0), 5.0) for p in range(48)]
    torch.testing.assert_close(on_faces[0], torch.tensor(expected))
    assert on_faces[0, 11].item() == pytest.approx(0.9375) and on_faces[0, 12].item() == pytest.approx(1.0625)
    # Same-padded networks: the same as a bilinear resize of the map (align_corners=False).
    resized = torch.nn.functional.interpolate(maps, size=(24, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(units.maps_on_faces(maps, field, 1.0, 24), resized)
