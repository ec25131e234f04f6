"""How a run is executed: device, numeric precision, memory layout, determinism.

None of this is part of a run's identity (``fercore.config``): it is recorded in result.json, and a
finished run is read back whatever execution settings the reader uses.

Precision ``"auto"`` picks what the device does well: on CUDA, bf16 autocast where the GPU supports
it (``torch.cuda.is_bf16_supported()``), else fp16 autocast with a gradient scaler; on a CPU, bf16
autocast where the CPU computes bf16 natively (AVX-512 BF16 or AMX, ``cpu_has_native_bf16``), else
fp32 (emulated bf16 is slower than fp32). A model whose layers run slower in bf16 on a CPU (depthwise
convolutions: MobileNetV2) keeps fp32 there: training resolves "auto" with ``Execution.resolved``.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class Execution:
    """Settings that change how fast a run goes, not what it is."""

    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...
    precision: str = "auto"  # "auto", "fp32", "bf16" or "fp16" (autocast; fp16 with a gradient scaler)
    channels_last: bool = True  # NHWC activations: faster convolutions on CUDA and on CPUs (oneDNN)
    eval_batch_size: int = 256  # images per forward pass when evaluating
    deterministic: bool = False  # PyTorch's deterministic algorithms (slower; bit-exact resume on CUDA)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.eval_batch_size < 1:
            raise ValueError("eval_batch_size must be positive")
        if torch.device(self.device).type != "cuda" and self.precision == "fp16":  # also fails on a bad device
            raise ValueError("fp16 autocast needs a CUDA device; use bf16 or fp32 on a CPU")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def resolved_precision(self, cpu_bf16: bool = True) -> str:
        """The precision this run uses on its device: "fp32", "bf16" or "fp16". ``cpu_bf16``: whether the model
        runs faster in bf16 than in fp32 on a CPU that computes bf16 natively (``Arch.cpu_bf16``)."""
        device = self.torch_device
        if self.precision != "auto":
            return self.precision
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_bf16 and cpu_has_native_bf16() else "fp32"

    def resolved(self, cpu_bf16: bool = True) -> Execution:
        """A copy with "auto" replaced by the precision it means here, for a model with ``cpu_bf16``."""
        return replace(self, precision=self.resolved_precision(cpu_bf16))

    def autocast(self):
        """The autocast context of this precision (a no-op context for fp32)."""
        precision = self.resolved_precision()
        if precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.torch_device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for fp16 (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.torch_device.type, enabled=self.resolved_precision() == "fp16")

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory layout the model runs in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def record(self) -> dict:
        """What result.json records of this execution."""
        return {"device": self.device, "device_name": device_name(self.torch_device),
                "precision": self.resolved_precision(), "channels_last": self.channels_last,
                "eval_batch_size": self.eval_batch_size, "deterministic": self.deterministic}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX-BF16 in /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """PyTorch's deterministic algorithms and cuDNN flags inside the block (when ``enabled``); restored after."""
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic matmuls
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def device_name(device: torch.device | str) -> str:
    """"cpu", or the GPU's name ("NVIDIA H100 80GB HBM3")."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def describe_device(device: torch.device | str) -> str:
    """The device in words: the GPU's name, or the CPU's model, cores and torch threads."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{device.type}: {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work (timings); nothing on a CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["PRECISIONS", "Execution", "cpu_has_native_bf16", "describe_device", "deterministic_mode", "device_name",
           "synchronize"]
