"""``fercore bench mine``: top-k mining of every channel of a layer against a forward pass alone, per arch."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from fercore import units
from fercore.data.common import make_faceset
from fercore.inference import batches, evaluating, model_inputs
from fercore.models import ARCHS, ModelConfig, build_model, get_arch


def bench_mine(profile: str = "paper", arch: str | None = None, images: int = 512, device: str = "cpu",
               repeats: int = 3) -> dict:
    """Images per second of top-k mining (every channel of the arch's default layer) against a forward pass
    alone: same model, same images, same batches; the best of ``repeats`` timings of each, interleaved.

    Args:
        profile: the arch's input size and width under this profile.
        arch: one registered arch; None: every one.

    Returns:
        {arch: {"layer", "forward_images_per_s", "mining_images_per_s", "ratio"}}; also printed.
    """
    rng = np.random.default_rng(0)
    faceset = make_faceset("bench", rng.integers(0, 256, (images, 1, 96, 96), dtype=np.uint8), np.zeros(images),
                           ["x"], subjects=np.arange(images), meta=pd.DataFrame({"i": range(images)}), splits=[],
                           protocol={})
    results = {}
    for name in [arch] if arch else list(ARCHS):
        settings = get_arch(name).settings[profile]
        config = ModelConfig(image_size=settings.image_size, width=settings.width)
        model = build_model(config, seed=0, arch=name).to(device).eval()
        results[name] = _time(model, faceset, units.default_layer(model), images, repeats)
        r = results[name]
        print(f"{name} ({profile}: {settings.image_size}x{settings.image_size}, width {settings.width:g}), "
              f"{images} images on {device}, layer {r['layer']}: forward {r['forward_images_per_s']:.1f} images/s, "
              f"mining {r['mining_images_per_s']:.1f} images/s, mining / forward {r['ratio']:.2f} (target >= 0.9)")
    return results


def _time(model, faceset, layer: str, images: int, repeats: int, batch: int = 128) -> dict:
    def forward_only():
        with evaluating(model):
            for chunk in batches(images, batch):
                model(model_inputs(faceset.images[chunk], model))

    def mining():
        units.mine_topk(model, faceset, layer, k=9, batch_size=batch, progress=False)

    best = {"forward": float("inf"), "mining": float("inf")}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for name, work in (("forward", forward_only), ("mining", mining)):
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: images / seconds for name, seconds in best.items()}
    return {"layer": layer, "forward_images_per_s": rates["forward"], "mining_images_per_s": rates["mining"],
            "ratio": rates["mining"] / rates["forward"]}
