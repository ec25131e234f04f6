"""Architectures by name: the paper's zero-bias CNN and torchvision families adapted to 1-channel faces.

    model = build_model(ModelConfig(n_classes=8, image_size=48, width=0.25, dropout=True), seed=0, arch="resnet18")
    archs_table()        # every registered arch with its parameter count and settings

Every model fercore builds carries ``model.arch`` (its registry name), ``model.config`` (its
``ModelConfig``) and ``model.preprocess`` (the input it is trained on, ``PaperInput``), so a
checkpoint can rebuild it and every inspection function can feed it. A model of your own needs
none of this: hand it to the inspection and FAU functions with a ``preprocess`` function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from fercore.models.base import ModelConfig, PaperInput
from fercore.models.zero_bias import ZeroBiasCNN, build_zero_bias_cnn, init_paper_


def build_resnet18(config: ModelConfig, seed: int = 0) -> nn.Module:
    """``torchvision_archs.build_resnet18``, imported on first use: torchvision takes a second to import."""
    from fercore.models.torchvision_archs import build_resnet18 as build

    return build(config, seed)


def build_mobilenet_v2(config: ModelConfig, seed: int = 0) -> nn.Module:
    """``torchvision_archs.build_mobilenet_v2``, imported on first use."""
    from fercore.models.torchvision_archs import build_mobilenet_v2 as build

    return build(config, seed)


@dataclass(frozen=True)
class ArchSettings:
    """The settings of an arch that a profile fixes (the rest of a run's settings are the profile's)."""

    image_size: int  # input side; the FaceSet's 96x96 crops are resized once on the device
    width: float  # multiplier on the arch's channel widths
    lr: float  # constant SGD learning rate (momentum 0.9, weight decay 1e-5: the paper's)
    batch_size: int | None = None  # images per step; None: the profile's (``fercore.config.PROFILES``)


@dataclass(frozen=True)
class Arch:
    """A registered architecture: how to build it, and its settings per profile."""

    name: str
    build: Callable[[ModelConfig, int], nn.Module]  # (config, seed) -> model in train mode, on the CPU
    description: str
    settings: dict[str, ArchSettings]  # profile name -> settings
    chosen: str  # how the settings were chosen (on validation data only)
    stages: tuple[str, ...]  # modules whose outputs follow the network's depth, for layer-by-layer views
    cpu_bf16: bool = True  # bf16 autocast trains it faster than fp32 on a CPU with native bf16 ("auto" uses it)


ARCHS: dict[str, Arch] = {
    "zero_bias_cnn": Arch(
        "zero_bias_cnn", build_zero_bias_cnn, "the paper's network: 3 bias-free 5x5 convolutions, quadrant pooling",
        {"paper": ArchSettings(96, 1.0, 0.01), "quick": ArchSettings(48, 0.25, 0.03)},
        "paper: the authors' settings; quick: lr from {0.01, 0.03} by validation accuracy of cnn_ad, folds 0-2",
        ("conv1", "conv2", "conv3")),
    "resnet18": Arch(
        "resnet18", build_resnet18, "torchvision ResNet-18 (residual basic blocks, batch norm), 1 input channel",
        {"paper": ArchSettings(96, 1.0, 0.03), "quick": ArchSettings(48, 0.25, 0.03)},
        "quick: lr from {0.01, 0.03, 0.1} by mean validation accuracy of cnn_ad, folds 0-2 (0.896, 0.911, 0.886); "
        "paper: full width at the quick lr",
        ("conv1", "layer1", "layer2", "layer3", "layer4")),
    "mobilenet_v2": Arch(
        "mobilenet_v2", build_mobilenet_v2, "torchvision MobileNetV2 (inverted residuals, depthwise), 1 input channel",
        {"paper": ArchSettings(96, 1.0, 0.01), "quick": ArchSettings(48, 0.25, 0.01, batch_size=64)},
        "quick: lr by validation accuracy of cnn_ad: 0.01 (mean of folds 0-2: 0.762) over 0.03 (fold 0: 0.553, "
        "stopped there), batch 64 kept where the profile went to 32 (fold 0 at 32: 36.4% test, training loss "
        "still 1.9 after 1,200 steps; at 64: 88.6%); paper: full width at the quick lr",
        ("features.1", "features.3", "features.6", "features.13", "features.17"),
        # Its depthwise convolutions train 1.7x slower in bf16 than in fp32 on a CPU with AMX (quick size, 200
        # steps: 28.8 s vs 16.6 s, measured side by side); ResNet-18 and the paper's network gain from bf16.
        cpu_bf16=False),
}
DEFAULT_ARCH = "zero_bias_cnn"


def get_arch(name: str) -> Arch:
    """The registered arch ``name``; ValueError lists the valid names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown arch {name!r}; registered archs: {', '.join(ARCHS)}") from None


def build_model(config: ModelConfig | None = None, seed: int = 0, arch: str = DEFAULT_ARCH) -> nn.Module:
    """Build a registered arch on the CPU, initialised deterministically from ``seed`` (the caller's RNG is left
    alone); it carries ``arch``, ``config`` and ``preprocess``. Move it with ``.to(device)``."""
    config = config or ModelConfig()
    model = get_arch(arch).build(config, seed)
    model.arch, model.config, model.preprocess = arch, config, PaperInput(config.image_size)
    return model


def reinitialised(model: nn.Module, seed: int = 1) -> nn.Module:
    """The same architecture with fresh random weights, in eval mode on the model's device: the control of
    every analysis. A registered arch is built anew (its own init); any other model is copied and every
    submodule's ``reset_parameters`` is called under ``seed``."""
    device = next(model.parameters()).device
    if getattr(model, "arch", None) in ARCHS:
        fresh = build_model(model.config, seed=seed, arch=model.arch)
    else:
        fresh = copy.deepcopy(model).cpu()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            reset = [m for m in fresh.modules() if hasattr(m, "reset_parameters")]
            for module in reset:
                module.reset_parameters()
        if not reset:
            raise ValueError(f"{type(model).__name__} has no module with reset_parameters(): build its random "
                             "control yourself and pass it")
    return fresh.to(device).eval()


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def archs_table(n_classes: int = 8) -> pd.DataFrame:
    """One row per registered arch: name, parameters at the paper's and the quick settings, settings, description."""
    rows = []
    for arch in ARCHS.values():
        row = {"arch": arch.name}
        for profile in ("paper", "quick"):
            s = arch.settings[profile]
            model = build_model(ModelConfig(n_classes=n_classes, image_size=s.image_size, width=s.width), 0, arch.name)
            row[f"parameters_{profile}"] = n_parameters(model)
            batch = f", batch {s.batch_size}" if s.batch_size else ""
            row[f"{profile}"] = f"{s.image_size}x{s.image_size}, width {s.width:g}, lr {s.lr:g}{batch}"
        rows.append({**row, "description": arch.description})
    return pd.DataFrame(rows)


__all__ = ["ARCHS", "DEFAULT_ARCH", "Arch", "ArchSettings", "ModelConfig", "PaperInput", "ZeroBiasCNN",
           "archs_table", "build_model", "get_arch", "init_paper_", "n_parameters", "reinitialised"]
