"""What identifies a training run: ``TrainConfig``, the named ``PROFILES`` it is built from, and config.json.

A run's identity is what decides its result: the data, the variant, the fold, the model size and
every optimisation setting, the seed. How it is executed (device, precision, memory layout,
evaluation batch size: ``fercore.execution.Execution``) is recorded with the run but is not part
of its identity, so a run trained on a GPU is read back on a laptop.

config.json holds ``{"format": CONFIG_FORMAT, <TrainConfig fields>, "data": <data identity>}``.
Reading one written by another fercore follows ``MIGRATIONS`` where one is documented and stops
with a clear error otherwise; it never silently retrains.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fercore.models import DEFAULT_ARCH, get_arch
from fercore.targets import get_target

CONFIG_FORMAT = 2
# Fields of config.json written by fercore 0.1 (format 1, no "format" key) that are execution
# settings now. Migration 1 -> 2: drop them, and the arch is the paper's (the only one then); the
# run's identity is otherwise unchanged, and a format-1 run has no data identity to check.
_EXECUTION_FIELDS_V1 = ("device", "mixed_precision", "channels_last", "eval_batch_size")
MIGRATIONS = {1: "fercore 0.1 run: device, mixed_precision, channels_last and eval_batch_size are execution "
                 "settings now and are dropped; arch is zero_bias_cnn, target emotion; no data identity is checked"}


class Variant(NamedTuple):
    """What distinguishes the paper's four variants: `a` = augmentation, `d` = dropout (before the classifier)."""

    augment: bool
    dropout: bool


VARIANTS: dict[str, Variant] = {
    "cnn": Variant(augment=False, dropout=False),
    "cnn_a": Variant(augment=True, dropout=False),
    "cnn_d": Variant(augment=False, dropout=True),
    "cnn_ad": Variant(augment=True, dropout=True),
}


def get_variant(name: str) -> Variant:
    """The (augment, dropout) flags of a variant name such as ``"cnn_ad"``; ValueError lists the valid ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; valid variants: {', '.join(VARIANTS)}") from None


class RunDirError(ValueError):
    """A run directory holds another run, or a config this fercore cannot read; nothing was retrained."""


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """A named preset of the settings that trade cost for fidelity (``architecture.md``); the input size,
    width and lr of each arch under a profile are the arch's (``fercore.models.ARCHS``)."""

    iterations: int  # SGD steps per run
    eval_every: int  # validate, keep the best and write last.pt every this many steps
    cell_timeout_s: int  # the longest a notebook cell may run under this profile (FERCORE_CELL_TIMEOUT overrides)
    batch_size: int = 64
    folds: tuple[int, ...] | None = None  # folds a cross-validation runs; None = all of them
    variants: tuple[str, ...] = tuple(VARIANTS)  # variants a cross-validation runs


PROFILES: dict[str, Profile] = {
    # The authors' settings: 96x96, full width, 31,000 steps of batch 64, checkpoint every 1,000.
    # A cell may train one paper run (notebook 01): about 12.5 h on a 2-core CPU, so a day per cell.
    "paper": Profile(iterations=31_000, eval_every=1_000, cell_timeout_s=24 * 3600),
    # Same code path, sized for a 2-core CPU and CI (about 12 s per run of the paper's network in bf16,
    # measured): each arch at half the input side and a fraction of its widths (the paper's network: a
    # quarter, about 1/64 of its FLOPs per image), 1,200 steps of batch 32, three folds. Batch 32 halves the
    # cost of batch 64 and finds the same on SynthFACS 4's 8 classes (cnn_ad over folds 0-2: 92.5% vs 94.4%,
    # other variants within 2.5 points, against a fold-to-fold spread of 4-7). The longest quick cell (notebook
    # 02 training 11 runs of the grid) takes 2-5 minutes on 2 idle cores and several times that on busy ones:
    # an hour is the bound (a retry continues from the runs already finished).
    "quick": Profile(iterations=1_200, eval_every=100, folds=(0, 1, 2), cell_timeout_s=3_600, batch_size=32),
}


def arch_folder(arch: str) -> str:
    """The folder of an arch's runs below a study's run directory: "" for the paper's network, else its name."""
    return "" if arch == DEFAULT_ARCH else get_arch(arch).name


def get_profile(name: str) -> Profile:
    """The preset called ``name`` ("paper" or "quick"); ValueError lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None


# ----------------------------------------------------------------------------- identity


@dataclass
class TrainConfig:
    """Everything that decides one run's result; config.json and both checkpoints carry it."""

    dataset: str = "synthfacs"  # name of the FaceSet (its classes and split are checked too: ``data_identity``)
    arch: str = DEFAULT_ARCH  # a registered architecture (fercore.models.ARCHS)
    target: str = "emotion"  # what it learns: "emotion" (the paper's), or "aus" (AU presence: the FAU control)
    variant: str = "cnn_ad"  # cnn, cnn_a, cnn_d or cnn_ad: with augmentation (a), with dropout (d)
    fold: int = 0  # index into faceset.splits: that fold tests, the next one validates, the rest train
    profile: str = "paper"  # the preset the settings below came from (see PROFILES)
    image_size: int = 96  # input side; smaller than the FaceSet's: resized once on the device (area)
    width: float = 1.0  # multiplier on the arch's channel widths
    iterations: int = 31_000  # SGD steps
    batch_size: int = 64  # images per step, drawn uniformly with replacement from the train split
    lr: float = 0.01  # constant learning rate
    momentum: float = 0.9  # classical momentum (PyTorch's form is the same for a constant lr)
    weight_decay: float = 1e-5  # L2 on all parameters, biases included, as in the authors' code
    eval_every: int = 1_000  # validate, keep the best and write last.pt every this many steps
    seed: int = 0  # decides the init, the batches, the augmentation and the dropout masks

    def __post_init__(self) -> None:
        get_variant(self.variant)  # fail early on a typo
        get_arch(self.arch)
        get_target(self.target)
        if min(self.iterations, self.batch_size, self.eval_every) < 1:
            raise ValueError("iterations, batch_size and eval_every must be positive")

    @classmethod
    def from_profile(cls, profile: str, arch: str = DEFAULT_ARCH, **overrides) -> TrainConfig:
        """A config with the settings of a profile for ``arch``; ``overrides`` set any field (variant, fold, ...)."""
        p = get_profile(profile)
        settings = get_arch(arch).settings[profile]
        preset = dict(profile=profile, arch=arch, image_size=settings.image_size, width=settings.width,
                      lr=settings.lr, iterations=p.iterations, eval_every=p.eval_every,
                      batch_size=settings.batch_size or p.batch_size)
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; fields: {[f.name for f in fields(cls)]}")
        return cls(**{**preset, **overrides})


def data_identity(faceset, fold: int, target: str = "emotion") -> dict:
    """What a run's result depends on in the data: what it predicts (the classes, or the AU codes), and the
    fold's train / val / test images.

    The indices are hashed (sha1), so a copy with other images or another protocol is told apart
    even when the sizes agree.
    """
    split = faceset.splits[fold]
    digest = hashlib.sha1()
    for part in (split.train, split.val, split.test):
        digest.update(np.asarray(part, dtype=np.int64).tobytes())
        digest.update(b"|")
    return {"outputs": get_target(target).names(faceset), "train": len(split.train), "val": len(split.val),
            "test": len(split.test), "split_sha1": digest.hexdigest()}


def config_record(config: TrainConfig, data: dict) -> dict:
    """The content of config.json."""
    return {"format": CONFIG_FORMAT, **asdict(config), "data": data}


def read_config(path: str | Path) -> tuple[TrainConfig, dict | None]:
    """(TrainConfig, data identity or None) of a config.json, migrated from an older format if documented.

    Raises:
        RunDirError: the file was written by a newer fercore, or lacks fields no migration supplies.
    """
    path = Path(path)
    stored = json.loads(path.read_text())
    version = stored.pop("format", 1)
    if not isinstance(version, int) or version > CONFIG_FORMAT:
        raise RunDirError(f"{path} was written by a newer fercore (config format {version}; this fercore reads "
                         f"formats 1-{CONFIG_FORMAT}): upgrade fercore, or use another run directory")
    if version == 1:
        for name in _EXECUTION_FIELDS_V1:
            stored.pop(name, None)
        stored.setdefault("arch", DEFAULT_ARCH)
        stored.setdefault("target", "emotion")
    data = stored.pop("data", None)
    known = {f.name for f in fields(TrainConfig)}
    unknown, missing = sorted(set(stored) - known), sorted(known - set(stored))
    if unknown or missing:
        raise RunDirError(f"{path} does not hold a fercore run config of format {version}: "
                         f"unknown fields {unknown}, missing fields {missing}. Upgrade fercore if a newer one "
                         "wrote it; otherwise use another run directory (nothing was retrained)")
    return TrainConfig(**stored), data


def differences(stored: TrainConfig, stored_data: dict | None, config: TrainConfig, data: dict) -> list[str]:
    """What differs between a stored run and the one asked for ("field: stored -> asked"); [] if it is the same."""
    changes = [f"{f.name}: {getattr(stored, f.name)!r} -> {getattr(config, f.name)!r}"
               for f in fields(TrainConfig) if getattr(stored, f.name) != getattr(config, f.name)]
    if stored_data is not None:
        changes += [f"data {key}: {stored_data.get(key)!r} -> {value!r}"
                    for key, value in data.items() if stored_data.get(key) != value]
    return changes


__all__ = ["CONFIG_FORMAT", "MIGRATIONS", "PROFILES", "VARIANTS", "Profile", "RunDirError", "TrainConfig", "Variant",
           "arch_folder", "config_record", "data_identity", "differences", "get_profile", "get_variant", "read_config"]
