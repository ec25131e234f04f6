"""``fercore bench mine``: top-k mining of every filter of a layer against a forward pass alone."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from fercore import units
from fercore.config import get_profile
from fercore.data.common import make_faceset
from fercore.inference import batches, evaluating, model_inputs
from fercore.model import ModelConfig, build_model


def bench_mine(profile: str = "paper", images: int = 512, device: str = "cpu", repeats: int = 3) -> dict:
    """Images per second of top-k mining (every conv3 filter) against a forward pass alone.

    Same model, same images, same batches; the best of ``repeats`` timings of each.
    """
    preset = get_profile(profile)
    model = build_model(ModelConfig(image_size=preset.image_size, width=preset.width), seed=0).to(device).eval()
    rng = np.random.default_rng(0)
    faceset = make_faceset("bench", rng.integers(0, 256, (images, 1, 96, 96), dtype=np.uint8), np.zeros(images),
                           ["x"], subjects=np.arange(images), meta=pd.DataFrame({"i": range(images)}), splits=[],
                           protocol={})
    faces = faceset.images
    batch = 128

    def forward_only():
        with evaluating(model):
            for chunk in batches(images, batch):
                model(model_inputs(faces[chunk], model))

    def mining():
        units.mine_topk(model, faceset, "conv3", k=9, batch_size=batch, progress=False)

    best = {"forward": float("inf"), "mining": float("inf")}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for name, work in (("forward", forward_only), ("mining", mining)):
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: images / seconds for name, seconds in best.items()}
    ratio = rates["mining"] / rates["forward"]
    size = preset.image_size
    print(f"{profile} model ({size}x{size}, width {preset.width}), {images} images on {device}:")
    print(f"  forward pass alone:          {rates['forward']:8.1f} images/s")
    print(f"  top-k mining, all conv3:     {rates['mining']:8.1f} images/s")
    print(f"  mining / forward:            {ratio:8.2f}  (target >= 0.8)")
    return {"profile": profile, "forward_images_per_s": rates["forward"], "mining_images_per_s": rates["mining"],
            "ratio": ratio}
