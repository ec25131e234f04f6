"""Speed benchmarks: ``fercore bench <what>`` prints measured rates and ratios, side by side in one run.

Never asserted in tests (speed depends on the machine): the tests only check that each benchmark runs.

| what | module | measures |
|---|---|---|
| ``synth`` | ``bench.synth`` | SynthFACS frames written per second |
| ``load`` | ``bench.load`` | a full-size FER2013 csv loaded, then loaded from the cache |
| ``train`` | ``bench.train`` | training images per second: bare step, fercore's pipeline, a DataLoader |
| ``mine`` | ``bench.mine`` | top-k mining against a forward pass alone, per arch |
| ``grid`` | ``bench.grid`` | a small grid one run after another, and as Ray tasks (and runs per GPU) |
| ``precision`` | ``bench.precision`` | the quick grid in fp32 and in bf16: paired accuracy difference, training time |
| ``realism`` | ``data.synthfacs.realism`` | how a classifier trained on real photographs reads SynthFACS; Haar's rate |
"""

from __future__ import annotations

import importlib

BENCHMARKS = {"synth": "fercore.bench.synth:bench_synth", "load": "fercore.bench.load:bench_load",
              "train": "fercore.bench.train:bench_train", "mine": "fercore.bench.mine:bench_mine",
              "grid": "fercore.bench.grid:bench_grid", "precision": "fercore.bench.precision:bench_precision",
              "realism": "fercore.data.synthfacs.realism:bench_realism"}


def run(what: str, **options) -> dict:
    """Run benchmark ``what`` (one of ``BENCHMARKS``) with its options; returns what it printed, as a dict."""
    if what not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {what!r}; benchmarks: {', '.join(BENCHMARKS)}")
    module, function = BENCHMARKS[what].split(":")
    return getattr(importlib.import_module(module), function)(**options)


__all__ = ["BENCHMARKS", "run"]
