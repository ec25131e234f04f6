"""``fercore bench train``: images per second of three ways to feed the same training step, side by side."""

from __future__ import annotations

import itertools
import random
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from fercore.augment import AugmentConfig, normalize, prepare_batch
from fercore.config import TrainConfig
from fercore.execution import Execution, cpu_has_native_bf16, describe_device, synchronize
from fercore.models import ModelConfig, build_model, get_arch
from fercore.train import _sample_batch


def bench_train(device: str = "cpu", profile: str = "paper", steps: int | None = None, warmup: int | None = None,
                n_images: int = 1040, seed: int = 0, arch: str = "zero_bias_cnn") -> dict:
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
    config = TrainConfig.from_profile(profile, arch, seed=seed)
    execution = Execution(device=device).resolved(get_arch(arch).cpu_bf16)  # what training would use
    on_cuda = execution.torch_device.type == "cuda"
    steps = steps or (100 if on_cuda else 10)
    warmup = warmup if warmup is not None else (10 if on_cuda else 2)
    images = torch.randint(0, 256, (n_images, 1, config.image_size, config.image_size),
                           generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    labels = torch.arange(n_images) % 8

    results = {}
    pipelines = {"a_bare": _bare_batches, "b_fercore": _fercore_batches, "c_dataloader": _loader_batches}
    for name, batches in pipelines.items():
        model, optimizer = _fresh_model(config, execution)
        with batches(images, labels, config, execution.device, warmup + steps) as stream:
            results[name] = _time_steps(model, optimizer, stream, config, execution, warmup, steps)
    a, b, c = (results[k]["images_per_s"] for k in ("a_bare", "b_fercore", "c_dataloader"))
    summary = {"device": describe_device(device), "precision": execution.resolved_precision(), "profile": profile,
               "image_size": config.image_size,
               "width": config.width, "batch_size": config.batch_size, "steps": steps,
               "torch_threads": torch.get_num_threads(), **results,
               "b_over_a": b / a, "b_over_c": b / c}
    print(f"training step, {profile} {arch} ({config.image_size}x{config.image_size}, width {config.width}, cnn_ad), "
          f"batch {config.batch_size}, {summary['device']}, {steps} timed steps each:")
    for key, label in (("a_bare", "(a) bare step on a ready batch"), ("b_fercore", "(b) fercore full step"),
                       ("c_dataloader", "(c) DataLoader, 2 workers, torchvision")):
        memory = f", peak {results[key]['peak_memory_mb']:.0f} MB" if on_cuda else ""
        print(f"  {label:<42} {results[key]['images_per_s']:8.1f} images/s{memory}")
    print(f"  (b)/(a) = {b / a:.2f}  (target >= 0.90)")
    print(f"  (b)/(c) = {b / c:.2f}  (target >= 1.30)")
    summary["executions"] = compare_executions(images, labels, config, device, warmup, steps)
    return summary


def compare_executions(images, labels, config: TrainConfig, device: str, warmup: int, steps: int) -> dict:
    """fercore's full step (b) under each precision the device can run, with and without channels_last,
    side by side in this process (interleaved twice; the better of the two timings is kept)."""
    precisions = ["fp32", "bf16"] + (["fp16"] if torch.device(device).type == "cuda" else [])
    executions = {f"{p}{', channels_last' if cl else ''}": Execution(device=device, precision=p, channels_last=cl)
                  for p in precisions for cl in (False, True)}
    rates = {name: 0.0 for name in executions}
    for _ in range(2):
        for name, execution in executions.items():
            model, optimizer = _fresh_model(config, execution)
            with _fercore_batches(images, labels, config, device, warmup + steps) as stream:
                timing = _time_steps(model, optimizer, stream, config, execution, warmup, steps)
            rates[name] = max(rates[name], timing["images_per_s"])
    base = rates["fp32, channels_last"]
    native = "yes" if cpu_has_native_bf16() else "no"
    print(f"fercore's full step by execution ({'CPU native bf16: ' + native if device == 'cpu' else device}):")
    for name, rate in rates.items():
        print(f"  {name:<24} {rate:8.1f} images/s   {rate / base:5.2f}x fp32, channels_last")
    return {"images_per_s": rates, "bf16_over_fp32": rates["bf16, channels_last"] / base,
            "cpu_native_bf16": cpu_has_native_bf16()}




def _fresh_model(config: TrainConfig, execution: Execution):
    model = build_model(ModelConfig(image_size=config.image_size, width=config.width, dropout=True), config.seed,
                        config.arch)
    model = model.to(execution.device)
    if execution.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    return model.train(), optimizer


def _time_steps(model, optimizer, stream, config: TrainConfig, execution: Execution, warmup: int, steps: int) -> dict:
    """Run warmup + steps training steps on the batches of ``stream``; time the last ``steps``."""
    device = execution.torch_device
    for k in range(warmup + steps):
        if k == warmup:
            synchronize(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
        x, y = next(stream)
        with execution.autocast():
            logits = model(execution.layout(x))
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    seconds = time.perf_counter() - start
    result = {"images_per_s": steps * config.batch_size / seconds, "seconds": seconds}
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


@contextmanager
def _bare_batches(images, labels, config, device, n):
    """(a): the same ready, normalised batch every step, already on the device."""
    x = prepare_batch(images[: config.batch_size].to(device))
    y = labels[: config.batch_size].to(device)
    yield itertools.repeat((x, y))


@contextmanager
def _fercore_batches(images, labels, config, device, n):
    """(b): exactly what fercore.train does each step (sampling, augmentation, normalisation on the device)."""
    images, labels = images.to(device), labels.to(device)
    sampler = torch.Generator(device).manual_seed(1)
    augmenter = torch.Generator(device).manual_seed(2)
    yield (_sample_batch(images, labels, config.batch_size, sampler, AugmentConfig(), augmenter) for _ in range(n))


@contextmanager
def _loader_batches(images, labels, config, device, n):
    """(c): a DataLoader with 2 workers applying torchvision transforms image by image."""
    dataset = _PILFaces(images, labels, _usual_transform())
    sampler = RandomSampler(dataset, replacement=True, num_samples=n * config.batch_size,
                            generator=torch.Generator().manual_seed(1))
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=2,
                        pin_memory=torch.device(device).type == "cuda", drop_last=True)
    iterator = iter(loader)
    try:
        yield ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in iterator)
    finally:
        del iterator  # shuts the workers down


class _PILFaces:
    """A map-style dataset of PIL gray images, as a typical FER training script holds them."""

    def __init__(self, images, labels, transform):
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
        return TF.adjust_gamma(image, random.uniform(0.25, 4.0))


class _MinMaxAndNormalize:
    """Per-image min-max to [0, 1], then the paper's x2 and 5x5 local-mean subtraction."""

    def __call__(self, x):
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
        return normalize(x[None])[0]


def _usual_transform():
    """The paper's augmentation written the usual way: torchvision transforms, one image at a time."""
    return T.Compose([
        T.RandomHorizontalFlip(),
        # The paper's window scale s ~ U(0.7, 1.4) zooms the content by 1/s; shift up to |1 - s| / 2.
        T.RandomAffine(degrees=5, translate=(0.15, 0.15), scale=(1 / 1.4, 1 / 0.7),
                       interpolation=T.InterpolationMode.BILINEAR),
        _RandomGamma(),
        T.ToTensor(),
        _MinMaxAndNormalize(),
    ])
