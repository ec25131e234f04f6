"""Tests for fercore.train: reproducibility, exact resume, honest selection, NaN stop, atomic checkpoints.

Every run here is tiny (a 24-image-per-class FaceSet of 32x32 blobs, a quarter-width model,
a dozen steps), so the whole file takes seconds on a CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from builders import interrupt_training_at

import fercore.train as train_module
from fercore.config import RunDirError, TrainConfig, config_record, data_identity
from fercore.data.faceset import FaceSet
from fercore.execution import Execution
from fercore.store import RunFiles
from fercore.train import ResumeWarning, is_finished, load_model, load_result, train

N_CLASSES = 3  # classes of the conftest's tiny_faceset
BEST, LAST, METRICS, PREDICTIONS = (getattr(RunFiles("."), name).name for name in ("best", "last", "metrics",
                                                                                     "predictions"))


def tiny_config(**overrides) -> TrainConfig:
    settings = dict(dataset="tiny", variant="cnn_ad", fold=0, profile="test", image_size=32, width=0.125,
                    iterations=12, batch_size=16, lr=0.01, eval_every=4, seed=0)
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def faceset(tiny_faceset) -> FaceSet:
    return tiny_faceset


def state_dict(path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_same_run(dir_a, dir_b) -> None:
    """Same selected weights, same last weights, same metrics, same test predictions."""
    assert_same_weights(state_dict(dir_a / BEST), state_dict(dir_b / BEST))
    assert_same_weights(state_dict(dir_a / LAST), state_dict(dir_b / LAST))
    pd.testing.assert_frame_equal(pd.read_csv(dir_a / METRICS), pd.read_csv(dir_b / METRICS))
    pd.testing.assert_frame_equal(pd.read_csv(dir_a / PREDICTIONS), pd.read_csv(dir_b / PREDICTIONS))


# ----------------------------------------------------------------------------- outputs


def test_run_directory_contents(faceset, tmp_path):
    result = train(faceset, tiny_config(), tmp_path, progress=False)
    assert is_finished(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == config_record(tiny_config(),
                                                                               data_identity(faceset, 0))
    metrics = result.metrics()
    assert list(metrics.columns) == ["iteration", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert metrics.iteration.tolist() == [4, 8, 12]
    assert metrics[["train_acc", "val_acc"]].stack().between(0, 1).all()
    # The selected checkpoint is the best validation row (ties: the lower validation loss).
    best = metrics.sort_values(["val_acc", "val_loss"], ascending=[False, True]).iloc[0]
    assert result.best_iteration == best.iteration
    assert result.best_val_accuracy == pytest.approx(best.val_acc)
    # Predictions: one row per test image, probabilities that sum to one, accuracy consistent.
    predictions = result.predictions()
    test = faceset.splits[0].test
    assert predictions["index"].tolist() == test.tolist()
    assert predictions["label"].tolist() == faceset.labels[test].tolist()
    assert list(predictions.columns[-N_CLASSES:]) == ["p_left", "p_centre", "p_right"]
    np.testing.assert_allclose(predictions.iloc[:, -N_CLASSES:].sum(axis=1), 1, atol=1e-5)
    assert result.test_accuracy == pytest.approx((predictions.label == predictions.prediction).mean())
    assert load_result(tmp_path) == result


def test_learns_the_tiny_task(faceset, tmp_path):
    result = train(faceset, tiny_config(variant="cnn", iterations=60, eval_every=20, width=0.25), tmp_path,
                   progress=False)
    assert result.best_val_accuracy > 0.9 and result.test_accuracy > 0.9


# ----------------------------------------------------------------------------- reproducibility and resume


def test_same_seed_same_weights_and_metrics(faceset, tmp_path):
    train(faceset, tiny_config(), tmp_path / "a", progress=False)
    train(faceset, tiny_config(), tmp_path / "b", progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    train(faceset, tiny_config(seed=1), tmp_path / "c", progress=False)
    assert not torch.equal(state_dict(tmp_path / "a" / LAST)["conv1.weight"],
                           state_dict(tmp_path / "c" / LAST)["conv1.weight"])


def test_leaves_the_global_rng_alone(faceset, tmp_path):
    before = torch.get_rng_state()
    train(faceset, tiny_config(), tmp_path, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("variant, stop_at", [("cnn_ad", 7), ("cnn_ad", 9), ("cnn_d", 5), ("cnn_a", 11), ("cnn", 2)])
def test_resume_equals_uninterrupted_run(faceset, tmp_path, monkeypatch, variant, stop_at):
    """Interrupt inside step ``stop_at`` (mid-interval or right after an evaluation), resume, compare
    (deterministic algorithms, as bit-exactness on a GPU needs them)."""
    config, execution = tiny_config(variant=variant), Execution(deterministic=True)
    train(faceset, config, tmp_path / "whole", execution, progress=False)

    interrupt_training_at(monkeypatch, stop_at, Interrupted)
    with pytest.raises(Interrupted):
        train(faceset, config, tmp_path / "resumed", execution, progress=False)
    monkeypatch.undo()
    evaluated = (stop_at - 1) // 4 * 4  # the last evaluation before the crash (every 4 steps)
    if evaluated:
        assert torch.load(tmp_path / "resumed" / LAST, weights_only=True)["iteration"] == evaluated
    else:
        assert not (tmp_path / "resumed" / LAST).exists()  # nothing to resume from: starts over
    assert not is_finished(tmp_path / "resumed")
    train(faceset, config, tmp_path / "resumed", execution, progress=False)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after each run
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")


def test_finished_run_is_read_back_and_config_must_match(faceset, tmp_path, monkeypatch):
    first = train(faceset, tiny_config(), tmp_path, progress=False)
    monkeypatch.setattr(train_module, "_sample_batch", None)  # a second training would fail
    assert train(faceset, tiny_config(), tmp_path, progress=False) == first
    with pytest.raises(RunDirError, match=r"holds another run \(lr: 0.01 -> 0.02\)"):
        train(faceset, tiny_config(lr=0.02), tmp_path, progress=False)
    other_classes = FaceSet(**{**faceset.__dict__, "classes": ["a", "b", "c"]})
    with pytest.raises(RunDirError, match=r"data outputs: \['left', 'centre', 'right'\] -> \['a', 'b', 'c'\]"):
        train(other_classes, tiny_config(), tmp_path, progress=False)


# ----------------------------------------------------------------------------- honest selection


def poisoned(faceset: FaceSet, fold: int) -> FaceSet:
    """The same FaceSet with the test fold's images replaced by noise and its labels shifted."""
    test = torch.as_tensor(faceset.splits[fold].test)
    images, labels = faceset.images.clone(), faceset.labels.clone()
    images[test] = torch.randint(0, 256, images[test].shape, generator=torch.Generator().manual_seed(1),
                                 dtype=torch.uint8)
    labels[test] = (labels[test] + 1) % N_CLASSES
    return FaceSet(**{**faceset.__dict__, "images": images, "labels": labels})


def test_poisoned_test_fold_changes_nothing_but_the_test_score(faceset, tmp_path):
    clean = train(faceset, tiny_config(), tmp_path / "clean", progress=False)
    dirty = train(poisoned(faceset, 0), tiny_config(), tmp_path / "dirty", progress=False)
    assert_same_weights(state_dict(tmp_path / "clean" / BEST), state_dict(tmp_path / "dirty" / BEST))
    assert_same_weights(state_dict(tmp_path / "clean" / LAST), state_dict(tmp_path / "dirty" / LAST))
    pd.testing.assert_frame_equal(clean.metrics(), dirty.metrics())
    assert clean.best_iteration == dirty.best_iteration
    assert not clean.predictions().equals(dirty.predictions())  # the test fold was read, at the end


class RecordedTensor(torch.Tensor):
    """A tensor that logs which rows are read from it (``images[index]``); results are plain tensors."""

    log: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.__getitem__:
            rows = torch.as_tensor(args[1]).flatten().tolist()
            cls.log.append(("read", set(rows)))
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


def test_test_rows_are_read_only_after_the_last_validation(faceset, tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(RecordedTensor, "log", log)
    recorded = FaceSet(**{**faceset.__dict__, "images": faceset.images.as_subclass(RecordedTensor),
                          "labels": faceset.labels.as_subclass(RecordedTensor)})
    evaluate = train_module._Run._evaluate_and_save

    def logged_evaluate(self, *args, **kwargs):
        log.append(("evaluate", None))
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(train_module._Run, "_evaluate_and_save", logged_evaluate)
    train(recorded, tiny_config(), tmp_path, progress=False)

    split = faceset.splits[0]
    test_rows = set(split.test.tolist())
    events = [kind for kind, _ in log]
    last_evaluation = len(events) - 1 - events[::-1].index("evaluate")
    assert events.count("evaluate") == 3
    reads = [(k, rows) for k, (kind, rows) in enumerate(log) if kind == "read"]
    assert {frozenset(rows) for _, rows in reads} == {frozenset(split.train), frozenset(split.val),
                                                      frozenset(split.test)}
    for k, rows in reads:
        assert (k > last_evaluation) == bool(rows & test_rows), "test rows read before selection was over"


# ----------------------------------------------------------------------------- failures and checkpoints


def test_nan_loss_stops_with_a_clear_message(faceset, tmp_path, monkeypatch):
    sample_batch, calls = train_module._sample_batch, []

    def nan_at_step_6(*args, **kwargs):
        calls.append(1)
        x, y = sample_batch(*args, **kwargs)
        return (x * float("nan"), y) if len(calls) == 6 else (x, y)

    monkeypatch.setattr(train_module, "_sample_batch", nan_at_step_6)
    with pytest.raises(FloatingPointError, match=r"loss is nan at iteration 6; .*variant=cnn_ad fold=0 lr=0.01"):
        train(faceset, tiny_config(), tmp_path, progress=False)
    assert torch.load(tmp_path / LAST, weights_only=True)["iteration"] == 4  # the state before it is kept


def test_diverging_lr_stops(faceset, tmp_path):
    with pytest.raises(FloatingPointError, match="at iteration"):
        train(faceset, tiny_config(variant="cnn", lr=1e8, width=0.25), tmp_path, progress=False)


def test_checkpoints_are_atomic_and_load_weights_only(faceset, tmp_path, monkeypatch):
    config = tiny_config()
    train(faceset, config, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["config.json", "metrics.csv", "best.pt", "last.pt", "predictions.csv", "result.json"])  # no temp files
    for name in (BEST, LAST):
        checkpoint = torch.load(tmp_path / name, weights_only=True)
        assert checkpoint["config"] == config.__dict__ if name == BEST else checkpoint["iteration"] == 12
    model = load_model(tmp_path)
    assert not model.training and model.config.width == 0.125

    # A crash while writing leaves the previous file whole and no temporary file behind.
    before = (tmp_path / LAST).read_bytes()

    def crash_while_writing(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(train_module.torch, "save", crash_while_writing)
    with pytest.raises(OSError, match="disk full"):
        train_module._save(tmp_path / LAST, {"x": torch.zeros(1)})
    assert (tmp_path / LAST).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- devices and sizes


def test_resizes_on_the_device_and_leaves_the_faceset_alone(faceset, tmp_path):
    images = faceset.images.clone()
    result = train(faceset, tiny_config(image_size=16), tmp_path, progress=False)
    assert torch.equal(faceset.images, images)
    assert load_model(tmp_path).config.image_size == 16 and 0 <= result.test_accuracy <= 1
    with pytest.raises(ValueError, match="larger than"):
        train(faceset, tiny_config(image_size=40), tmp_path / "big", progress=False)


def test_bf16_autocast_runs_on_cpu(faceset, tmp_path):
    """The autocast path (bf16, channels_last) exercised on the CPU: finite, recorded and loadable."""
    result = train(faceset, tiny_config(), tmp_path, Execution(precision="bf16"), progress=False)
    assert np.isfinite(result.metrics()[["train_loss", "val_loss"]].to_numpy()).all()
    assert result.execution["precision"] == "bf16" and result.execution["sessions"][0]["precision"] == "bf16"
    model = load_model(tmp_path)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, N_CLASSES)
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        Execution(precision="fp16")


def test_auto_precision_follows_the_arch_on_a_bf16_cpu(faceset, tmp_path, monkeypatch):
    """On a CPU with native bf16, "auto" trains the paper's network in bf16 and MobileNetV2 (slower in bf16) in
    fp32; result.json records what was used."""
    monkeypatch.setattr("fercore.execution.cpu_has_native_bf16", lambda: True)
    for arch, precision in (("zero_bias_cnn", "bf16"), ("mobilenet_v2", "fp32")):
        result = train(faceset, tiny_config(arch=arch, width=0.25, iterations=2, eval_every=2), tmp_path / arch,
                       progress=False)
        assert result.execution["precision"] == precision, arch


# ----------------------------------------------------------------------------- identity vs execution


def test_a_run_is_read_back_under_other_execution_settings(faceset, tmp_path, monkeypatch):
    trained_with = Execution(channels_last=False, eval_batch_size=5, precision="fp32")
    first = train(faceset, tiny_config(), tmp_path, trained_with, progress=False)
    assert first.execution["channels_last"] is False and first.execution["eval_batch_size"] == 5
    monkeypatch.setattr(train_module, "_sample_batch", None)  # a second training would fail
    for reader in (Execution(), Execution(channels_last=True, eval_batch_size=256, precision="bf16"),
                   Execution(deterministic=True)):
        assert train(faceset, tiny_config(), tmp_path, reader, progress=False) == first
    # What a GPU run writes (its device and precision are in result.json) reads back on the CPU too.
    result = json.loads((tmp_path / "result.json").read_text())
    result["execution"].update(device="cuda", device_name="NVIDIA H100 80GB HBM3", precision="bf16")
    (tmp_path / "result.json").write_text(json.dumps(result))
    assert train(faceset, tiny_config(), tmp_path, progress=False).execution["device"] == "cuda"
    assert load_model(tmp_path, device="cpu").conv1.weight.device.type == "cpu"


def test_resuming_under_another_precision_continues_and_warns(faceset, tmp_path, monkeypatch):
    interrupt_training_at(monkeypatch, 6, Interrupted)
    with pytest.raises(Interrupted):
        train(faceset, tiny_config(), tmp_path, Execution(precision="bf16"), progress=False)
    monkeypatch.undo()
    with pytest.warns(ResumeWarning, match="bit for bit only on the same device and precision"):
        result = train(faceset, tiny_config(), tmp_path, Execution(precision="fp32"), progress=False)
    sessions = result.execution["sessions"]
    assert [(s["precision"], s["from_iteration"], s["to_iteration"]) for s in sessions] == [("bf16", 0, 4),
                                                                                            ("fp32", 4, 12)]


def test_run_directories_of_other_fercore_versions(faceset, tmp_path, monkeypatch):
    first = train(faceset, tiny_config(), tmp_path / "run", progress=False)
    config = tmp_path / "run" / "config.json"
    record = json.loads(config.read_text())
    monkeypatch.setattr(train_module, "_sample_batch", None)  # nothing may be retrained

    # fercore 0.1 (format 1): no format key, execution settings inside, no arch, no data identity: migrated.
    old = {k: v for k, v in record.items() if k not in ("format", "data", "arch")}
    config.write_text(json.dumps({**old, "device": "cuda", "mixed_precision": None, "channels_last": True,
                                  "eval_batch_size": 256}))
    assert train(faceset, tiny_config(), tmp_path / "run", progress=False) == first

    # A newer fercore: a clear error, never a retrain.
    config.write_text(json.dumps({**record, "format": 99}))
    with pytest.raises(RunDirError, match="written by a newer fercore .*config format 99"):
        train(faceset, tiny_config(), tmp_path / "run", progress=False)
    config.write_text(json.dumps({**record, "optimizer": "adam"}))
    with pytest.raises(RunDirError, match=r"unknown fields \['optimizer'\]"):
        train(faceset, tiny_config(), tmp_path / "run", progress=False)
    config.write_text(json.dumps({k: v for k, v in record.items() if k != "lr"}))
    with pytest.raises(RunDirError, match=r"missing fields \['lr'\]"):
        train(faceset, tiny_config(), tmp_path / "run", progress=False)


@pytest.mark.parametrize("arch", ["zero_bias_cnn", "resnet18", "mobilenet_v2"])
def test_every_arch_trains_and_its_checkpoint_rebuilds_itself(faceset, tmp_path, arch):
    """A checkpoint names its arch, config and preprocessing: load_model rebuilds it on the CPU, and it gives the
    test predictions the run wrote."""
    from fercore.inference import evaluating, model_inputs

    result = train(faceset, tiny_config(arch=arch, width=0.25), tmp_path, Execution(precision="fp32"), progress=False)
    assert result.config["arch"] == arch
    model = load_model(tmp_path, device="cpu")
    assert model.arch == arch and model.preprocess.image_size == 32 and not model.training
    predictions = result.predictions()
    with evaluating(model):
        probs = model(model_inputs(faceset.images[predictions["index"].to_numpy().copy()], model)).softmax(1)
    np.testing.assert_allclose(probs.numpy(), predictions[[f"p_{c}" for c in faceset.classes]].to_numpy(), atol=1e-5)


def test_the_au_loss_sums_over_aus_and_averages_over_images():
    """Each AU's gradient is as strong as a one-label loss's: the BCE of 19 AUs is summed, not averaged over them."""
    import torch.nn.functional as F

    from fercore.targets import get_target

    logits, y = torch.randn(8, 19, generator=torch.Generator().manual_seed(0)), (torch.arange(8 * 19) % 3 == 0)
    y = y.reshape(8, 19).float()
    per_au = [F.binary_cross_entropy_with_logits(logits[:, a], y[:, a]) for a in range(19)]
    assert get_target("aus").loss(logits, y) == pytest.approx(float(sum(per_au)), rel=1e-6)
