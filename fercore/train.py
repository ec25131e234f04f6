"""One training run of the zero-bias CNN: config, loop, validation-based selection, checkpoints, resume.

``train(faceset, config, run_dir)`` reads top to bottom: the fold's train and validation images
go to the device once (uint8); every step samples a batch with replacement (as the authors did),
augments and normalises it on the device and takes one SGD step; every ``eval_every`` steps it
validates, keeps the best-validation checkpoint and writes ``last.pt``. Only when the loop is over
are the test images touched, to score the selected checkpoint. The run directory
(``architecture.md``) holds:

    config.json      the TrainConfig
    metrics.csv      one row per evaluation: iteration, train_loss, train_acc, val_loss, val_acc
    best.pt          the checkpoint with the best validation accuracy: the one that is tested
    last.pt          everything needed to resume (model, optimiser, generators, history, best so far)
    predictions.csv  the test predictions of best.pt (index, subject, label, prediction, p_<class>)
    result.json      written last; a run directory with it is finished

A run interrupted at any point resumes from ``last.pt`` and ends with exactly the result of an
uninterrupted run (on the same device): all randomness comes from generators whose states the
checkpoint carries.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fercore.augment import AugmentConfig, prepare_batch, resize
from fercore.data.faceset import FaceSet
from fercore.model import VARIANTS, ModelConfig, ZeroBiasCNN, build_model, get_variant

CONFIG, METRICS, BEST, LAST, PREDICTIONS, RESULT = (
    "config.json", "metrics.csv", "best.pt", "last.pt", "predictions.csv", "result.json")
_CHECK_EVERY = 10  # read the loss back from the device (NaN check, progress bar) every this many steps
_SAMPLER, _AUGMENTER, _DROPOUT = 1, 2, 3  # random streams of a run, each seeded from (seed, stream)


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """A named preset of the settings that trade cost for fidelity (``architecture.md``)."""

    image_size: int  # input side; the FaceSet's 96x96 crops are resized once on the device
    width: float  # multiplier on the paper's widths (64, 128, 256 filters; 300 fc units)
    iterations: int  # SGD steps per run
    eval_every: int  # validate, keep the best and write last.pt every this many steps
    batch_size: int = 64
    lr: float = 0.01
    folds: tuple[int, ...] | None = None  # folds a cross-validation runs; None = all of them
    variants: tuple[str, ...] = tuple(VARIANTS)  # variants a cross-validation runs


PROFILES: dict[str, Profile] = {
    # The authors' settings: 96x96, full width, 31,000 steps of batch 64, checkpoint every 1,000.
    "paper": Profile(image_size=96, width=1.0, iterations=31_000, eval_every=1_000),
    # Same code path, sized for a 2-core CPU and CI (about 30 s per run, measured): half the input
    # side and a quarter of the widths (about 1/64 of the paper's FLOPs per image), 1,200 steps,
    # three folds. With 26x fewer steps the paper's lr 0.01 is still far from converged there, so
    # quick uses 0.03 (chosen on validation accuracy, cnn_ad, folds 0-2).
    "quick": Profile(image_size=48, width=0.25, iterations=1_200, eval_every=100, lr=0.03, folds=(0, 1, 2)),
}


def get_profile(name: str) -> Profile:
    """The preset called ``name`` ("paper" or "quick"); ValueError lists the valid names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None


# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything that decides one run; config.json and both checkpoints carry it."""

    dataset: str = "synthfacs"  # name of the FaceSet (recorded; train() is given the FaceSet itself)
    variant: str = "cnn_ad"  # cnn, cnn_a, cnn_d or cnn_ad: with augmentation (a), with dropout (d)
    fold: int = 0  # index into faceset.splits: that fold tests, the next one validates, 8 train
    profile: str = "paper"  # the preset the settings below came from (recorded; see PROFILES)
    image_size: int = 96  # input side; smaller than the FaceSet's: resized once on the device (area)
    width: float = 1.0  # multiplier on the paper's widths
    iterations: int = 31_000  # SGD steps
    batch_size: int = 64  # images per step, drawn uniformly with replacement from the train split
    lr: float = 0.01  # constant learning rate
    momentum: float = 0.9  # classical momentum (PyTorch's form is the same for a constant lr)
    weight_decay: float = 1e-5  # L2 on all parameters, biases included, as in the authors' code
    eval_every: int = 1_000  # validate, keep the best and write last.pt every this many steps
    eval_batch_size: int = 256  # images per forward pass when evaluating (no effect on results)
    seed: int = 0  # decides the init, the batches, the augmentation and the dropout masks
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...
    mixed_precision: bool | None = None  # bf16 autocast; None: on CUDA only (fp32 on a CPU)
    channels_last: bool = True  # NHWC activations: faster convolutions on CUDA and on CPUs (oneDNN)

    def __post_init__(self) -> None:
        get_variant(self.variant)  # fail early on a typo
        if min(self.iterations, self.batch_size, self.eval_every, self.eval_batch_size) < 1:
            raise ValueError("iterations, batch_size, eval_every and eval_batch_size must be positive")

    @classmethod
    def from_profile(cls, profile: str, **overrides) -> TrainConfig:
        """A config with the settings of a profile; ``overrides`` set any field (variant, fold, ...)."""
        p = get_profile(profile)
        preset = dict(profile=profile, image_size=p.image_size, width=p.width, iterations=p.iterations,
                      eval_every=p.eval_every, batch_size=p.batch_size, lr=p.lr)
        return cls(**{**preset, **overrides})

    def uses_mixed_precision(self) -> bool:
        return torch.device(self.device).type == "cuda" if self.mixed_precision is None else self.mixed_precision


# ----------------------------------------------------------------------------- result


@dataclass
class TrainResult:
    """What a finished run reports (result.json); the tables are read from the run directory."""

    run_dir: str
    test_accuracy: float  # of the best-validation checkpoint, on the fold's test split
    test_loss: float
    best_iteration: int  # the step whose checkpoint was selected (on validation)
    best_val_accuracy: float
    iterations: int
    seconds: float  # training wall time (summed over sessions for a resumed run); testing excluded
    images_per_s: float  # training images per second (iterations * batch_size / seconds)
    device: str  # e.g. "cpu" or "NVIDIA H100 80GB HBM3"
    config: dict = field(default_factory=dict)

    def metrics(self) -> pd.DataFrame:
        """One row per evaluation: iteration, train_loss, train_acc, val_loss, val_acc."""
        return pd.read_csv(Path(self.run_dir) / METRICS)

    def predictions(self) -> pd.DataFrame:
        """One row per test image: index, subject, label, prediction, correct, p_<class>..."""
        return pd.read_csv(Path(self.run_dir) / PREDICTIONS)


def is_finished(run_dir: str | os.PathLike) -> bool:
    """Has this run directory a complete result (result.json is written last)?"""
    return (Path(run_dir) / RESULT).exists()


def load_result(run_dir: str | os.PathLike) -> TrainResult:
    """The TrainResult of a finished run directory."""
    data = json.loads((Path(run_dir) / RESULT).read_text())
    return TrainResult(**{**data, "run_dir": str(run_dir)})


def load_model(path: str | os.PathLike, device: str = "cpu") -> ZeroBiasCNN:
    """Rebuild a trained model (eval mode) from a checkpoint alone: a run directory (best.pt) or a .pt file."""
    path = Path(path)
    file = path / BEST if path.is_dir() or not path.suffix else path
    if not file.exists():
        raise FileNotFoundError(f"no trained model at {file}: train one first "
                                "(notebook 01_training.ipynb, `fercore train` or `fercore cv`)")
    checkpoint = torch.load(file, map_location=device, weights_only=True)
    model = ZeroBiasCNN(ModelConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------- training


def train(faceset: FaceSet, config: TrainConfig, run_dir: str | os.PathLike, progress: bool = True) -> TrainResult:
    """Train one variant on one fold, select on validation, score the selection on test.

    A finished run directory is read back, not retrained; an unfinished one with ``last.pt``
    resumes from it. Either way its config.json must equal ``config``.

    Args:
        faceset: images uint8 (N, 1, S, S) with S >= config.image_size, labels (N,) and splits.
        config: the run's settings (``TrainConfig.from_profile("quick", variant=..., fold=...)``).
        run_dir: folder for config, metrics, checkpoints and predictions (created).
        progress: show a tqdm progress bar with the loss and the validation accuracy.

    Returns:
        TrainResult; ``.metrics()`` and ``.predictions()`` read its tables.

    Raises:
        FloatingPointError: the training loss became NaN or infinite (names the step and config).
        ValueError: run_dir holds a run with another config.
    """
    run_dir = Path(run_dir)
    _claim_run_dir(run_dir, config)
    if is_finished(run_dir):
        return load_result(run_dir)
    device = torch.device(config.device)
    variant = get_variant(config.variant)
    split = faceset.splits[config.fold]
    mixed, channels_last = config.uses_mixed_precision(), config.channels_last

    # Data: the train and validation images go to the device once, as uint8, resized there if the
    # profile asks for a smaller input. The test images stay in the FaceSet until selection is over.
    train_x, train_y = _to_device(faceset, split.train, config.image_size, device)  # (Ntr, 1, S, S), (Ntr,)
    val_x, val_y = _to_device(faceset, split.val, config.image_size, device)  # (Nva, 1, S, S), (Nva,)
    augment = AugmentConfig() if variant.augment else None

    # The global RNG decides dropout masks (and is consumed when layers are built): fork it, so the
    # caller's RNG state is left as it was and the run's own state can be saved and restored.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(_stream_seed(config.seed, _DROPOUT))

        # Model and optimiser: the paper's init (on the CPU, so every device starts from the same
        # weights), SGD with momentum and weight decay on all parameters, constant learning rate.
        model_config = ModelConfig(n_classes=len(faceset.classes), image_size=config.image_size,
                                   width=config.width, dropout=variant.dropout)
        model = build_model(model_config, seed=config.seed).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
        sampler = torch.Generator(device).manual_seed(_stream_seed(config.seed, _SAMPLER))  # which images
        augmenter = torch.Generator(device).manual_seed(_stream_seed(config.seed, _AUGMENTER))  # their warps

        state = {"iteration": 0, "history": [], "best": None, "seconds": 0.0}
        if (run_dir / LAST).exists():  # resume: every tensor and generator as it was at that step
            state = _restore(run_dir / LAST, model, optimizer, sampler, augmenter, device)

        model.train()
        start, done_before = time.perf_counter(), state["seconds"]
        first = state["iteration"]  # step the current evaluation interval started from
        losses = torch.zeros(config.eval_every, device=device)  # (eval_every,) training loss per step
        correct = torch.zeros((), dtype=torch.long, device=device)  # right training predictions
        val_acc = state["history"][-1]["val_acc"] if state["history"] else float("nan")
        with tqdm(total=config.iterations, initial=first, disable=not progress, unit="it",
                  desc=f"{config.variant} fold {config.fold}") as bar:
            while state["iteration"] < config.iterations:
                # One step: a batch drawn with replacement, augmented and normalised on the device.
                x, y = _sample_batch(train_x, train_y, config.batch_size, sampler, augment, augmenter)
                with _mixed_precision(device, mixed):
                    logits = model(_layout(x, channels_last))  # (B, n_classes)
                loss = F.cross_entropy(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state["iteration"] = step = state["iteration"] + 1
                losses[step - first - 1] = loss.detach()
                correct += (logits.argmax(1) == y).sum()
                bar.update()

                evaluate_now = step % config.eval_every == 0 or step == config.iterations
                if step % _CHECK_EVERY == 0 or evaluate_now:  # reading back syncs the device: not every step
                    _check_finite(losses[: step - first], first, config)
                    bar.set_postfix(loss=f"{losses[step - first - 1].item():.3f}", val_acc=f"{val_acc:.3f}")
                if not evaluate_now:
                    continue

                # Validate; keep the best checkpoint (accuracy first, lower loss breaks ties).
                val_loss, val_acc = _evaluate(model, val_x, val_y, config)
                n = step - first
                row = {"iteration": step, "train_loss": losses[:n].mean().item(),
                       "train_acc": correct.item() / (n * config.batch_size), "val_loss": val_loss, "val_acc": val_acc}
                state["history"].append(row)
                best = state["best"]
                if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
                    state["best"] = row
                    _save(run_dir / BEST, {"model": model.state_dict(), "model_config": asdict(model_config),
                                           "config": asdict(config), "iteration": step, "val_acc": val_acc})
                _write_csv(run_dir / METRICS, pd.DataFrame(state["history"]))
                state["seconds"] = done_before + time.perf_counter() - start
                _save(run_dir / LAST, _snapshot(state, model, optimizer, sampler, augmenter, device))
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
                first = step
                correct.zero_()

    # Test: only now do the test images leave the FaceSet, to score the checkpoint chosen above.
    model.load_state_dict(torch.load(run_dir / BEST, map_location=device, weights_only=True)["model"])
    test_x, test_y = _to_device(faceset, split.test, config.image_size, device)
    logits = _predict(model, test_x, config)  # (Nte, n_classes)
    predictions = _prediction_table(faceset, split.test, logits, test_y)
    _write_csv(run_dir / PREDICTIONS, predictions)
    result = TrainResult(
        run_dir=str(run_dir), test_accuracy=float(predictions["correct"].mean()),
        test_loss=F.cross_entropy(logits, test_y).item(), best_iteration=state["best"]["iteration"],
        best_val_accuracy=state["best"]["val_acc"], iterations=config.iterations, seconds=state["seconds"],
        images_per_s=config.iterations * config.batch_size / max(state["seconds"], 1e-9),
        device=_device_name(device), config=asdict(config))
    _write_text(run_dir / RESULT, json.dumps(asdict(result), indent=2) + "\n")
    return result


# ----------------------------------------------------------------------------- helpers of train()


def _stream_seed(seed: int, stream: int) -> int:
    """Seed of one random stream of a run: distinct for every (seed, stream)."""
    return seed * 1_000 + stream


def _to_device(faceset: FaceSet, index: np.ndarray, size: int, device: torch.device):
    """The images and labels at ``index`` on ``device``: uint8 (n, 1, size, size) and int64 (n,).

    Images are resized there (area interpolation, rounded back to uint8) when ``size`` is
    smaller than the FaceSet's; the FaceSet itself is left untouched.
    """
    if size > faceset.image_size:
        raise ValueError(f"image_size {size} is larger than the FaceSet's {faceset.image_size}")
    index = torch.as_tensor(np.asarray(index), dtype=torch.long)
    images = resize(faceset.images[index].to(device), size)  # (n, 1, size, size) uint8
    return images, faceset.labels[index].to(device)


def _sample_batch(images, labels, batch_size, sampler, augment, augmenter):
    """A training batch: indices uniform with replacement, then augmentation (if any) and normalisation.

    Returns:
        x float32 (B, 1, S, S), the network input, and y int64 (B,).
    """
    index = torch.randint(len(images), (batch_size,), generator=sampler, device=images.device)  # (B,)
    return prepare_batch(images[index], augment, augmenter), labels[index]


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (dropout off) and no gradients inside the block; the previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _mixed_precision(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` when enabled (a no-op context otherwise)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """The input in the model's memory layout."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _predict(model: nn.Module, images: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Logits float32 (n, n_classes) of uint8 images (n, 1, S, S), normalised like training batches."""
    outputs = []
    with evaluating(model), _mixed_precision(images.device, config.uses_mixed_precision()):
        for chunk in images.split(config.eval_batch_size):
            x = prepare_batch(chunk)  # (b, 1, S, S); no augmentation
            outputs.append(model(_layout(x, config.channels_last)).float())
    return torch.cat(outputs)


def _evaluate(model, images, labels, config) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on a labelled split."""
    logits = _predict(model, images, config)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def _check_finite(losses: torch.Tensor, first: int, config: TrainConfig) -> None:
    """Stop with a clear message at the first NaN or infinite loss (``losses[k]`` is step first + k + 1)."""
    bad = ~torch.isfinite(losses)
    if bad.any():
        step = first + int(bad.nonzero()[0]) + 1
        raise FloatingPointError(
            f"training loss is {losses[bad][0].item()} at iteration {step}; stopped. "
            f"Run: variant={config.variant} fold={config.fold} lr={config.lr} batch_size={config.batch_size} "
            f"image_size={config.image_size} width={config.width} seed={config.seed} device={config.device}. "
            f"A lower lr usually helps; last.pt holds the state of the last evaluation before it.")


def _prediction_table(faceset: FaceSet, index, logits: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """One row per test image: index, subject, label, prediction, correct, p_<class> per class."""
    probs = logits.softmax(1).cpu().numpy()  # (n, n_classes)
    labels, index = labels.cpu().numpy(), np.asarray(index)
    table = pd.DataFrame({"index": index, "subject": faceset.subjects[index], "label": labels,
                          "prediction": probs.argmax(1), "correct": probs.argmax(1) == labels})
    for k, name in enumerate(faceset.classes):
        table[f"p_{name}"] = probs[:, k]
    return table


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


# ----------------------------------------------------------------------------- run directory


def _claim_run_dir(run_dir: Path, config: TrainConfig) -> None:
    """Create run_dir with config.json, or check that the config.json already there is ``config``."""
    path = run_dir / CONFIG
    if path.exists():
        stored = json.loads(path.read_text())
        differ = sorted(k for k in {f.name for f in fields(TrainConfig)} if stored.get(k) != getattr(config, k))
        if differ:
            changes = ", ".join(f"{k}: {stored.get(k)!r} -> {getattr(config, k)!r}" for k in differ)
            raise ValueError(f"{run_dir} holds a run with another config ({changes}); "
                             f"use another run_dir, or delete it to start over")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps(asdict(config), indent=2) + "\n")


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old or the new file
    finally:
        Path(tmp).unlink(missing_ok=True)


def _save(path: Path, payload: dict) -> None:
    """torch.save atomically; the payload holds only tensors and plain types (weights_only loads it)."""
    with _atomic(path) as tmp:
        torch.save(payload, tmp)


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    with _atomic(path) as tmp:
        table.to_csv(tmp, index=False)


def _write_text(path: Path, text: str) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(text)


def _snapshot(state, model, optimizer, sampler, augmenter, device) -> dict:
    """Everything that decides the rest of the run, for last.pt."""
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "sampler": sampler.get_state(), "augmenter": augmenter.get_state(), "rng": rng}


def _restore(path, model, optimizer, sampler, augmenter, device) -> dict:
    """Load last.pt into the model, optimiser and generators; return the loop's state."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    sampler.set_state(checkpoint["sampler"])
    augmenter.set_state(checkpoint["augmenter"])
    torch.set_rng_state(checkpoint["rng"]["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
    return {k: checkpoint[k] for k in ("iteration", "history", "best", "seconds")}


__all__ = ["PROFILES", "Profile", "TrainConfig", "TrainResult", "evaluating", "get_profile", "is_finished",
           "load_model", "load_result", "train"]
