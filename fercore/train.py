"""One training run of any registered arch: loop, validation-based selection, checkpoints, resume.

``train(faceset, config, run_dir)`` reads top to bottom: the fold's train and validation images
go to the device once (uint8); every step samples a batch with replacement (as the authors did),
augments and normalises it on the device and takes one SGD step; every ``eval_every`` steps it
validates, keeps the best-validation checkpoint and writes ``last.pt``. Only when the loop is over
are the test images touched, to score the selected checkpoint. The run directory
(``fercore.store.RunFiles``) holds:

    config.json      the run's identity (``fercore.config``): TrainConfig and data identity
    metrics.csv      one row per evaluation: iteration, train_loss, train_acc, val_loss, val_acc (the *_acc
                     columns are the target's score: accuracy, or for target "aus" per-AU accuracy at
                     p = 0.5 (train) and the mean per-AU ROC AUC (val); ``fercore.targets``)
    best.pt          the checkpoint with the best validation accuracy: the one that is tested
    last.pt          everything needed to resume (model, optimiser, generators, history, best so far)
    predictions.csv  the test predictions of best.pt (index, subject, label, prediction, p_<class>)
    result.json      written last; a run directory with it is finished

A run interrupted at any point resumes from ``last.pt`` and ends with exactly the result of an
uninterrupted run on the same device and precision (with ``Execution(deterministic=True)`` on a
GPU): all randomness comes from generators whose states the checkpoint carries. Resuming on
another device continues the run, with a warning that bit-exactness no longer holds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore import store
from fercore.augment import AugmentConfig, prepare_batch, resize
from fercore.config import RunDirError, TrainConfig, config_record, data_identity, differences, get_variant, read_config
from fercore.data.faceset import FaceSet
from fercore.execution import Execution, deterministic_mode, device_name
from fercore.inference import batches, evaluating
from fercore.models import DEFAULT_ARCH, ModelConfig, PaperInput, build_model, get_arch
from fercore.progress import tqdm
from fercore.store import RunFiles
from fercore.targets import get_target

_CHECK_EVERY = 10  # read the loss back from the device (NaN check, progress bar) every this many steps
_SAMPLER, _AUGMENTER, _DROPOUT = 1, 2, 3  # random streams of a run, each seeded from (seed, stream)


class ResumeWarning(UserWarning):
    """A run resumes under other execution settings than it was started with."""


# ----------------------------------------------------------------------------- result


@dataclass
class TrainResult:
    """What a finished run reports (result.json); the tables are read from the run directory."""

    run_dir: str
    test_accuracy: float  # of the best-validation checkpoint on the test split (target "aus": mean per-AU ROC AUC)
    test_loss: float
    best_iteration: int  # the step whose checkpoint was selected (on validation)
    best_val_accuracy: float
    iterations: int
    seconds: float  # training wall time (summed over sessions for a resumed run); testing excluded
    images_per_s: float  # training images per second (iterations * batch_size / seconds)
    device: str  # where the last session ran, e.g. "cpu" or "NVIDIA H100 80GB HBM3"
    config: dict = field(default_factory=dict)  # the TrainConfig (identity)
    execution: dict = field(default_factory=dict)  # Execution.record() of the last session, and "sessions"

    def metrics(self) -> pd.DataFrame:
        """One row per evaluation: iteration, train_loss, train_acc, val_loss, val_acc."""
        return pd.read_csv(RunFiles(self.run_dir).metrics)

    def predictions(self) -> pd.DataFrame:
        """One row per test image: index, subject, label, prediction, correct, p_<class>..."""
        return pd.read_csv(RunFiles(self.run_dir).predictions)


def is_finished(run_dir) -> bool:
    """Has this run directory a complete result (result.json is written last)?"""
    return RunFiles(run_dir).finished


def holds_finished(faceset: FaceSet, config: TrainConfig, run_dir) -> bool:
    """Is this run finished in ``run_dir``? As ``train`` does, a run directory that holds another run (another
    config or data, finished or not) raises RunDirError instead of being read back as this one."""
    files = RunFiles(run_dir)
    if files.config.exists():
        _claim(files, config, data_identity(faceset, config.fold, config.target))
    return files.finished


def load_result(run_dir) -> TrainResult:
    """The TrainResult of a finished run directory."""
    data = store.read_json(RunFiles(run_dir).result)
    data.setdefault("execution", {})  # result.json of fercore 0.1 has none
    return TrainResult(**{**data, "run_dir": str(run_dir)})


def load_model(path, device: str = "cpu") -> nn.Module:
    """Rebuild a trained model (eval mode) from a checkpoint alone, on any device: a run directory
    (its best.pt) or a .pt file. The checkpoint names its arch and input preprocessing."""
    path = Path(path)
    file = RunFiles(path).best if path.is_dir() or not path.suffix else path
    if not file.exists():
        raise FileNotFoundError(f"no trained model at {file}: train one first "
                                "(notebook 01_training.ipynb, `fercore train` or `fercore cv`)")
    checkpoint = torch.load(file, map_location=device, weights_only=True)
    model = build_model(ModelConfig(**checkpoint["model_config"]), arch=checkpoint.get("arch", DEFAULT_ARCH))
    model.load_state_dict(checkpoint["model"])
    if "preprocess" in checkpoint:
        model.preprocess = PaperInput.from_record(checkpoint["preprocess"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------- training


def train(faceset: FaceSet, config: TrainConfig, run_dir, execution: Execution | None = None,
          progress: bool = True) -> TrainResult:
    """Train one variant on one fold, select on validation, score the selection on test.

    A finished run directory is read back, not retrained, whatever ``execution`` says; an unfinished
    one with ``last.pt`` resumes from it. Either way its identity (config.json) must equal ``config``
    and the FaceSet's classes and fold.

    Args:
        faceset: images uint8 (N, 1, S, S) with S >= config.image_size, labels (N,) and splits.
        config: the run's identity (``TrainConfig.from_profile("quick", variant=..., fold=...)``).
        run_dir: folder for config, metrics, checkpoints and predictions (created).
        execution: device, precision, layout (default: ``Execution()``, the CPU).
        progress: show a tqdm progress bar with the loss and the validation accuracy.

    Returns:
        TrainResult; ``.metrics()`` and ``.predictions()`` read its tables.

    Raises:
        FloatingPointError: the training loss became NaN or infinite (names the step and config).
        RunDirError: run_dir holds another run (the message lists what differs), or a config this fercore
            cannot read.
    """
    files = RunFiles(run_dir)
    execution = (execution or Execution()).resolved(get_arch(config.arch).cpu_bf16)
    _claim(files, config, data_identity(faceset, config.fold, config.target))
    if files.finished:
        return load_result(files.dir)
    device = execution.torch_device
    # The global RNG decides dropout masks (and is consumed when layers are built): fork it, so the
    # caller's RNG state is left as it was and the run's own state can be saved and restored.
    with deterministic_mode(execution.deterministic), \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(_stream_seed(config.seed, _DROPOUT))
        run = _Run(faceset, config, execution, files)
        run.fit(progress)
        return run.test(faceset)


class _Run:
    """The state of one run while it trains: data on the device, model, optimiser, generators, history."""

    def __init__(self, faceset: FaceSet, config: TrainConfig, execution: Execution, files: RunFiles):
        self.config, self.execution, self.files = config, execution, files
        self.target = target = get_target(config.target)
        device = self.device = execution.torch_device
        split = faceset.splits[config.fold]
        # The train and validation images go to the device once, as uint8, resized there if the
        # profile asks for a smaller input. The test images stay in the FaceSet until selection is over.
        self.train_x, self.train_y = _to_device(faceset, split.train, config.image_size, device, target)  # (Ntr, ...)
        self.val_x, self.val_y = _to_device(faceset, split.val, config.image_size, device, target)
        variant = get_variant(config.variant)
        self.augment = AugmentConfig() if variant.augment else None
        # The arch's init (on the CPU, so every device starts from the same weights), SGD with
        # momentum and weight decay on all parameters, constant learning rate.
        self.model_config = ModelConfig(n_classes=len(target.names(faceset)), image_size=config.image_size,
                                        width=config.width, dropout=variant.dropout)
        model = build_model(self.model_config, seed=config.seed, arch=config.arch).to(device)
        self.model = model.to(memory_format=torch.channels_last) if execution.channels_last else model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.scaler = execution.grad_scaler()
        self.sampler = torch.Generator(device).manual_seed(_stream_seed(config.seed, _SAMPLER))  # which images
        self.augmenter = torch.Generator(device).manual_seed(_stream_seed(config.seed, _AUGMENTER))  # their warps
        self.state = {"iteration": 0, "history": [], "best": None, "seconds": 0.0, "sessions": []}
        if files.last.exists():  # resume: every tensor and generator as it was at that step
            self._restore()
        self.session = {**execution.record(), "from_iteration": self.state["iteration"]}

    def fit(self, progress: bool) -> None:
        """SGD steps until ``config.iterations``, validating and checkpointing every ``eval_every``."""
        config, state = self.config, self.state
        self.model.train()
        start, done_before = time.perf_counter(), state["seconds"]
        first = state["iteration"]  # step the current evaluation interval started from
        losses = torch.zeros(config.eval_every, device=self.device)  # (eval_every,) training loss per step
        correct = torch.zeros((), device=self.device)  # right training predictions (per-AU shares for "aus")
        val_acc = state["history"][-1]["val_acc"] if state["history"] else float("nan")
        with tqdm(total=config.iterations, initial=first, disable=not progress, unit="it",
                  desc=f"{config.variant} fold {config.fold}") as bar:
            while state["iteration"] < config.iterations:
                loss, right = self._step()
                state["iteration"] = step = state["iteration"] + 1
                losses[step - first - 1] = loss
                correct += right
                bar.update()
                evaluate_now = step % config.eval_every == 0 or step == config.iterations
                if step % _CHECK_EVERY == 0 or evaluate_now:  # reading back syncs the device: not every step
                    _check_finite(losses[: step - first], first, config)
                    bar.set_postfix(loss=f"{losses[step - first - 1].item():.3f}", val_acc=f"{val_acc:.3f}")
                if evaluate_now:
                    n = step - first
                    train_loss, train_acc = losses[:n].mean().item(), correct.item() / (n * config.batch_size)
                    state["seconds"] = done_before + time.perf_counter() - start
                    self.session.update(to_iteration=step, seconds=time.perf_counter() - start)
                    val_acc = self._evaluate_and_save(train_loss, train_acc)
                    first = step
                    correct.zero_()

    def _step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on a fresh batch; returns its loss and its number of right predictions (on the device)."""
        x, y = _sample_batch(self.train_x, self.train_y, self.config.batch_size, self.sampler, self.augment,
                             self.augmenter)
        with self.execution.autocast():
            logits = self.model(self.execution.layout(x))  # (B, outputs)
        loss = self.target.loss(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), self.target.right(logits, y)

    def _evaluate_and_save(self, train_loss: float, train_acc: float) -> float:
        """Validate; keep the best checkpoint (score first, lower loss breaks ties); write the tables and
        last.pt. Returns the validation score."""
        state, step = self.state, self.state["iteration"]
        logits = _predict(self.model, self.val_x, self.execution)
        val_loss, val_acc = self.target.loss(logits, self.val_y).item(), self.target.score(logits, self.val_y)
        row = {"iteration": step, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_acc}
        state["history"].append(row)
        best = state["best"]
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            state["best"] = row
            _save(self.files.best, {"model": self.model.state_dict(), "arch": self.config.arch,
                                    "model_config": asdict(self.model_config),
                                    "preprocess": self.model.preprocess.record(), "config": asdict(self.config),
                                    "iteration": step, "val_acc": val_acc})
        with store.atomic_path(self.files.metrics) as tmp:
            pd.DataFrame(state["history"]).to_csv(tmp, index=False)
        _save(self.files.last, self._snapshot())
        return val_acc

    def _snapshot(self) -> dict:
        """Everything that decides the rest of the run, for last.pt."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {**self.state, "sessions": [*self.state["sessions"], self.session]}
        return {**state, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "sampler": self.sampler.get_state(),
                "augmenter": self.augmenter.get_state(), "generator_device": self.device.type, "rng": rng}

    def _restore(self) -> None:
        """Load last.pt into the model, optimiser and generators; warn if the execution differs."""
        checkpoint = torch.load(self.files.last, map_location="cpu", weights_only=True)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.state = {k: checkpoint.get(k, []) for k in ("iteration", "history", "best", "seconds", "sessions")}
        previous = (self.state["sessions"] or [{}])[-1]
        now = self.execution.record()
        changed = [k for k in ("device", "precision") if previous.get(k, now[k]) != now[k]]
        torch.set_rng_state(checkpoint["rng"]["cpu"])
        same_device = checkpoint.get("generator_device", "cpu") == self.device.type
        if same_device:
            self.sampler.set_state(checkpoint["sampler"])
            self.augmenter.set_state(checkpoint["augmenter"])
            if self.device.type == "cuda" and "cuda" in checkpoint["rng"]:
                torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], self.device)
        else:  # generator states do not move between device types: continue from seeds of (seed, step)
            step = self.state["iteration"]
            self.sampler.manual_seed(_stream_seed(self.config.seed, _SAMPLER) + 7919 * step)
            self.augmenter.manual_seed(_stream_seed(self.config.seed, _AUGMENTER) + 7919 * step)
        if changed or not same_device:
            was = ", ".join(f"{k} {previous.get(k)}" for k in ("device", "precision"))
            warnings.warn(f"{self.files.dir}: resuming at step {self.state['iteration']} under {now['device']} "
                          f"({now['precision']}), started under {was}: the run continues, but it equals an "
                          "uninterrupted run bit for bit only on the same device and precision", ResumeWarning,
                          stacklevel=4)

    def test(self, faceset: FaceSet) -> TrainResult:
        """Score the selected checkpoint on the test split (touched only now); write predictions and result."""
        config, state, files = self.config, self.state, self.files
        self.model.load_state_dict(torch.load(files.best, map_location=self.device, weights_only=True)["model"])
        index = faceset.splits[config.fold].test
        test_x, test_y = _to_device(faceset, index, config.image_size, self.device, self.target)
        logits = _predict(self.model, test_x, self.execution)  # (Nte, outputs)
        predictions = self.target.predictions(faceset, index, logits, test_y)
        with store.atomic_path(files.predictions) as tmp:
            predictions.to_csv(tmp, index=False)
        sessions = [*state["sessions"], self.session]
        result = TrainResult(
            run_dir=str(files.dir), test_accuracy=self.target.test_score(predictions),
            test_loss=self.target.loss(logits, test_y).item(), best_iteration=state["best"]["iteration"],
            best_val_accuracy=state["best"]["val_acc"], iterations=config.iterations, seconds=state["seconds"],
            images_per_s=config.iterations * config.batch_size / max(state["seconds"], 1e-9),
            device=device_name(self.device), config=asdict(config),
            execution={**self.execution.record(), "sessions": sessions})
        store.write_json(files.result, result)
        return result


# ----------------------------------------------------------------------------- helpers


def _stream_seed(seed: int, stream: int) -> int:
    """Seed of one random stream of a run: distinct for every (seed, stream)."""
    return seed * 1_000 + stream


def _to_device(faceset: FaceSet, index: np.ndarray, size: int, device: torch.device, target):
    """The images and the target's labels at ``index`` on ``device``: uint8 (n, 1, size, size) and int64 (n,)
    (classes) or float (n, A) (AU presence).

    Images are resized there (area interpolation, rounded back to uint8) when ``size`` is
    smaller than the FaceSet's; the FaceSet itself is left untouched.
    """
    if size > faceset.image_size:
        raise ValueError(f"image_size {size} is larger than the FaceSet's {faceset.image_size}")
    index = torch.as_tensor(np.asarray(index), dtype=torch.long)
    images = resize(faceset.images[index].to(device), size)  # (n, 1, size, size) uint8
    return images, target.labels(faceset, index).to(device)


def _sample_batch(images, labels, batch_size, sampler, augment, augmenter):
    """A training batch: indices uniform with replacement, then augmentation (if any) and normalisation.

    Returns:
        x float32 (B, 1, S, S), the network input, and y (B,) or (B, A).
    """
    index = torch.randint(len(images), (batch_size,), generator=sampler, device=images.device)  # (B,)
    return prepare_batch(images[index], augment, augmenter), labels[index]


def _predict(model: nn.Module, images: torch.Tensor, execution: Execution) -> torch.Tensor:
    """Logits float32 (n, outputs) of uint8 images (n, 1, S, S), normalised like training batches."""
    outputs = []
    with evaluating(model), execution.autocast():
        for chunk in batches(len(images), execution.eval_batch_size):
            x = prepare_batch(images[chunk])  # (b, 1, S, S); no augmentation
            outputs.append(model(execution.layout(x)).float())
    return torch.cat(outputs)


def _check_finite(losses: torch.Tensor, first: int, config: TrainConfig) -> None:
    """Stop with a clear message at the first NaN or infinite loss (``losses[k]`` is step first + k + 1)."""
    bad = ~torch.isfinite(losses)
    if bad.any():
        step = first + int(bad.nonzero()[0]) + 1
        raise FloatingPointError(
            f"training loss is {losses[bad][0].item()} at iteration {step}; stopped. "
            f"Run: variant={config.variant} fold={config.fold} lr={config.lr} batch_size={config.batch_size} "
            f"image_size={config.image_size} width={config.width} seed={config.seed}. "
            f"A lower lr usually helps; last.pt holds the state of the last evaluation before it.")


def _claim(files: RunFiles, config: TrainConfig, data: dict) -> None:
    """Create the run directory with config.json, or check that the run already there is this one."""
    if files.config.exists():
        stored, stored_data = read_config(files.config)
        changes = differences(stored, stored_data, config, data)
        if changes:
            raise RunDirError(f"{files.dir} holds another run ({'; '.join(changes)}); "
                             "use another run directory, or delete it to start over")
        return
    store.write_json(files.config, config_record(config, data))


def _save(path: Path, payload: dict) -> None:
    """torch.save atomically; the payload holds only tensors and plain types (weights_only loads it)."""
    with store.atomic_path(path) as tmp:
        torch.save(payload, tmp)


__all__ = ["ResumeWarning", "TrainResult", "holds_finished", "is_finished", "load_model", "load_result", "train"]
