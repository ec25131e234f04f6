"""Benchmarks: ``fercore bench <what>`` prints measured rates (never asserted in tests)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def run(what: str, **options) -> dict:
    if what == "load":
        from fercore.data.bench_load import bench_load

        return bench_load(**options)
    return {"synth": bench_synth, "train": bench_train, "mine": bench_mine}[what](**options)


def bench_synth(subjects: int = 120, workers: int | None = None) -> dict:
    """Frames per second of writing a SynthFACS tree (render + PNG + text files), and of rendering alone."""
    from fercore.data import synthfacs

    workers = workers or os.cpu_count() or 1
    identity = synthfacs.identity_of(0, 0)
    n = 50
    start = time.perf_counter()
    for k in range(n):
        synthfacs.render_face(identity, {"AU6": 3, "AU12": 4, "AU25": 2}, seed=k)
    render_fps = n / (time.perf_counter() - start)

    tmp = Path(tempfile.mkdtemp(prefix="fercore-bench-"))
    try:
        start = time.perf_counter()
        root = synthfacs.write_tree(tmp / "synthfacs", subjects=subjects, workers=workers)
        seconds = time.perf_counter() - start
        frames = len(synthfacs.read_truth(root))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"subjects": subjects, "frames": frames, "workers": workers, "seconds": round(seconds, 1),
              "frames_per_s": round(frames / seconds, 1), "render_only_frames_per_s_1core": round(render_fps, 1),
              "megabytes": round(size / 1e6)}
    print(f"SynthFACS tree: {subjects} subjects, {frames} frames of 640x490 in {seconds:.1f} s "
          f"with {workers} workers = {frames / seconds:.1f} frames/s ({size / 1e6:.0f} MB)")
    print(f"render alone, one core: {render_fps:.1f} frames/s; "
          f"tree writing per core vs render alone: {frames / seconds / workers / render_fps:.2f}")
    return result


# ----------------------------------------------------------------------------- training throughput


def bench_train(device: str = "cpu", profile: str = "paper", steps: int | None = None, warmup: int | None = None,
                n_images: int = 1040, seed: int = 0) -> dict:
    """Images per second of three ways to feed the same training step, side by side in one process.

    (a) bare: the step alone, on one ready, already normalised batch on the device (an upper bound);
    (b) fercore: ``fercore.train``'s step: sample with replacement from a device-resident uint8
        tensor, augment and normalise on the device (batched tensor ops), then the step;
    (c) usual: a torch DataLoader (2 workers) over PIL images with per-image torchvision transforms
        of the same augmentation (flip, RandomAffine rotation / scale / translation, gamma, min-max,
        then the paper's normalisation), batches copied to the device, then the step.

    All three train the ``cnn_ad`` model of ``profile`` (default "paper": 96x96, width 1, batch 64)
    with SGD as in training; the images are random (speed does not depend on pixel values).

    Args:
        device: "cpu", "cuda", ...
        profile: the model size and batch size to measure with.
        steps: timed steps per pipeline (default 10 on a CPU, 100 on a GPU).
        warmup: untimed steps first (default 2 on a CPU, 10 on a GPU; also starts the workers of c).
        n_images: size of the training set the batches are drawn from (a CK+ fold has about 1,040).

    Returns:
        dict with images/s of a, b, c, the ratios b/a and b/c, and on CUDA the peak memory of each.
    """
    import torch

    from fercore.train import TrainConfig

    config = TrainConfig.from_profile(profile, device=device, seed=seed)
    dev = torch.device(device)
    on_cuda = dev.type == "cuda"
    steps = steps or (100 if on_cuda else 10)
    warmup = warmup if warmup is not None else (10 if on_cuda else 2)
    images = torch.randint(0, 256, (n_images, 1, config.image_size, config.image_size),
                           generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    labels = torch.arange(n_images) % 8

    results = {}
    pipelines = {"a_bare": _bare_batches, "b_fercore": _fercore_batches, "c_dataloader": _loader_batches}
    for name, batches in pipelines.items():
        model, optimizer = _fresh_model(config)
        with batches(images, labels, config, warmup + steps) as stream:
            results[name] = _time_steps(model, optimizer, stream, config, warmup, steps)
    a, b, c = (results[k]["images_per_s"] for k in ("a_bare", "b_fercore", "c_dataloader"))
    summary = {"device": _device_name(dev), "profile": profile, "image_size": config.image_size,
               "width": config.width, "batch_size": config.batch_size, "steps": steps,
               "torch_threads": torch.get_num_threads(), **results,
               "b_over_a": b / a, "b_over_c": b / c}
    print(f"training step, {profile} model ({config.image_size}x{config.image_size}, width {config.width}, cnn_ad), "
          f"batch {config.batch_size}, {summary['device']}, {steps} timed steps each:")
    for key, label in (("a_bare", "(a) bare step on a ready batch"), ("b_fercore", "(b) fercore full step"),
                       ("c_dataloader", "(c) DataLoader, 2 workers, torchvision")):
        memory = f", peak {results[key]['peak_memory_mb']:.0f} MB" if on_cuda else ""
        print(f"  {label:<42} {results[key]['images_per_s']:8.1f} images/s{memory}")
    print(f"  (b)/(a) = {b / a:.2f}  (target >= 0.90)")
    print(f"  (b)/(c) = {b / c:.2f}  (target >= 1.30)")
    return summary


def _device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def _fresh_model(config):
    import torch

    from fercore.model import ModelConfig, build_model

    model = build_model(ModelConfig(image_size=config.image_size, width=config.width, dropout=True), config.seed)
    model = model.to(config.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    return model.train(), optimizer


def _time_steps(model, optimizer, stream, config, warmup: int, steps: int) -> dict:
    """Run warmup + steps training steps on the batches of ``stream``; time the last ``steps``."""
    import torch
    import torch.nn.functional as F

    device = torch.device(config.device)
    mixed, channels_last = config.uses_mixed_precision(), config.channels_last
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for k in range(warmup + steps):
        if k == warmup:
            sync()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
        x, y = next(stream)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            logits = model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync()
    seconds = time.perf_counter() - start
    result = {"images_per_s": steps * config.batch_size / seconds, "seconds": seconds}
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


@contextmanager
def _bare_batches(images, labels, config, n):
    """(a): the same ready, normalised batch every step, already on the device."""
    from fercore.augment import prepare_batch

    x = prepare_batch(images[: config.batch_size].to(config.device))
    y = labels[: config.batch_size].to(config.device)
    yield itertools.repeat((x, y))


@contextmanager
def _fercore_batches(images, labels, config, n):
    """(b): exactly what fercore.train does each step (sampling, augmentation, normalisation on the device)."""
    import torch

    from fercore.augment import AugmentConfig
    from fercore.train import _sample_batch

    images, labels = images.to(config.device), labels.to(config.device)
    sampler = torch.Generator(config.device).manual_seed(1)
    augmenter = torch.Generator(config.device).manual_seed(2)
    yield (_sample_batch(images, labels, config.batch_size, sampler, AugmentConfig(), augmenter) for _ in range(n))


@contextmanager
def _loader_batches(images, labels, config, n):
    """(c): a DataLoader with 2 workers applying torchvision transforms image by image."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    dataset = _PILFaces(images, labels, _usual_transform())
    sampler = RandomSampler(dataset, replacement=True, num_samples=n * config.batch_size,
                            generator=torch.Generator().manual_seed(1))
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=2,
                        pin_memory=torch.device(config.device).type == "cuda", drop_last=True)
    iterator = iter(loader)
    try:
        yield ((x.to(config.device, non_blocking=True), y.to(config.device, non_blocking=True))
               for x, y in iterator)
    finally:
        del iterator  # shuts the workers down


class _PILFaces:
    """A map-style dataset of PIL gray images, as a typical FER training script holds them."""

    def __init__(self, images, labels, transform):
        from PIL import Image

        self.images = [Image.fromarray(im[0].numpy()) for im in images]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, k):
        return self.transform(self.images[k]), self.labels[k]


class _RandomGamma:
    """I ** a with a ~ U(0.25, 4), as in the paper's intensity augmentation (per image, on PIL)."""

    def __call__(self, image):
        import random

        from torchvision.transforms import functional as TF

        return TF.adjust_gamma(image, random.uniform(0.25, 4.0))


class _MinMaxAndNormalize:
    """Per-image min-max to [0, 1], then the paper's x2 and 5x5 local-mean subtraction."""

    def __call__(self, x):
        from fercore.augment import normalize

        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
        return normalize(x[None])[0]


def _usual_transform():
    """The paper's augmentation written the usual way: torchvision transforms, one image at a time."""
    from torchvision import transforms as T

    return T.Compose([
        T.RandomHorizontalFlip(),
        # The paper's window scale s ~ U(0.7, 1.4) zooms the content by 1/s; shift up to |1 - s| / 2.
        T.RandomAffine(degrees=5, translate=(0.15, 0.15), scale=(1 / 1.4, 1 / 0.7),
                       interpolation=T.InterpolationMode.BILINEAR),
        _RandomGamma(),
        T.ToTensor(),
        _MinMaxAndNormalize(),
    ])


def bench_mine(profile: str = "paper", images: int = 512, device: str = "cpu", repeats: int = 3) -> dict:
    """Images per second of top-k mining (every conv3 filter) against a forward pass alone.

    Same model, same images, same batches; the best of ``repeats`` timings of each.
    """
    import numpy as np
    import pandas as pd
    import torch

    from fercore import units
    from fercore.data.common import make_faceset
    from fercore.model import ModelConfig, build_model
    from fercore.train import get_profile

    preset = get_profile(profile)
    model = build_model(ModelConfig(image_size=preset.image_size, width=preset.width), seed=0).to(device).eval()
    rng = np.random.default_rng(0)
    faceset = make_faceset("bench", rng.integers(0, 256, (images, 1, 96, 96), dtype=np.uint8), np.zeros(images),
                           ["x"], subjects=np.arange(images), meta=pd.DataFrame({"i": range(images)}), splits=[],
                           protocol={})
    faces = faceset.images
    batch = 128

    @torch.no_grad()
    def forward_only():
        for start in range(0, images, batch):
            model(units.model_inputs(faces[start:start + batch], model))

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
