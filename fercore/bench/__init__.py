"""Speed benchmarks: ``fercore bench <what>`` prints measured rates and ratios, side by side in one run.

Never asserted in tests (speed depends on the machine): the tests only check that each benchmark runs.

| what | module | measures |
|---|---|---|
| ``synth`` | ``bench.synth`` | SynthFACS frames written per second |
| ``load`` | ``bench.load`` | a full-size FER2013 csv loaded, then loaded from the cache |
| ``train`` | ``bench.train`` | training images per second: bare step, fercore's pipeline, a DataLoader |
| ``mine`` | ``bench.mine`` | top-k mining against a forward pass alone |
"""

from __future__ import annotations

import importlib

BENCHMARKS = {"synth": "bench_synth", "load": "bench_load", "train": "bench_train", "mine": "bench_mine"}


def run(what: str, **options) -> dict:
    """Run benchmark ``what`` (one of ``BENCHMARKS``) with its options; returns what it printed, as a dict."""
    if what not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {what!r}; benchmarks: {', '.join(BENCHMARKS)}")
    return getattr(importlib.import_module(f"fercore.bench.{what}"), BENCHMARKS[what])(**options)


__all__ = ["BENCHMARKS", "run"]
