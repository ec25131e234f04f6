"""fercore.execution: the precision each device gets, determinism restored, what result.json records."""

from __future__ import annotations

import pytest
import torch

from fercore.execution import Execution, cpu_has_native_bf16, describe_device, deterministic_mode

NATIVE = "bf16" if cpu_has_native_bf16() else "fp32"  # what "auto" gives on this machine's CPU


def test_precision_on_a_cpu(monkeypatch):
    assert Execution().resolved_precision() == NATIVE
    assert Execution(precision="fp32").resolved_precision() == "fp32"
    monkeypatch.setattr("fercore.execution.cpu_has_native_bf16", lambda: True)
    assert Execution().resolved_precision() == "bf16"
    monkeypatch.setattr("fercore.execution.cpu_has_native_bf16", lambda: False)
    assert Execution().resolved_precision() == "fp32"
    assert Execution(precision="bf16").resolved_precision() == "bf16"
    monkeypatch.setattr("fercore.execution.cpu_has_native_bf16", lambda: True)
    assert Execution().resolved_precision(cpu_bf16=False) == "fp32", "an arch slower in bf16 keeps fp32"
    assert Execution(precision="bf16").resolved_precision(cpu_bf16=False) == "bf16", "asked for: given"
    assert Execution().resolved(cpu_bf16=True).precision == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        Execution(precision="int8")
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        Execution(precision="fp16")
    with pytest.raises(RuntimeError):
        Execution(device="gpu")


def test_autocast_and_layout():
    x = torch.randn(2, 3, 4, 4)
    with Execution(precision="bf16").autocast():
        assert (x @ x).dtype == torch.bfloat16
    with Execution(precision="fp32").autocast():
        assert (x @ x).dtype == torch.float32
    assert Execution().layout(x).is_contiguous(memory_format=torch.channels_last)
    assert Execution(channels_last=False).layout(x).is_contiguous()
    assert not Execution().grad_scaler().is_enabled()


def test_deterministic_mode_is_restored():
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


def test_record():
    record = Execution(eval_batch_size=7).record()
    assert record == {"device": "cpu", "device_name": "cpu", "precision": NATIVE, "channels_last": True,
                      "eval_batch_size": 7, "deterministic": False}
    assert "cores" in describe_device("cpu")
