"""What one forward pass reveals about any network: the input window of every module's output, and the ReLUs
that captum can hook.

Receptive fields are computed analytically, by following the tensors of one forward pass (a
``TorchFunctionMode`` sees every function the model calls, functional or inside a module, and forward
hooks read each module's output). Each tensor carries the input window of its positions, per axis:
position i covers input pixels ``[low + i * stride, high + i * stride]``. A convolution or pool with
kernel k, stride t, padding p and dilation d maps (s, low, high) to (s * t, low - p * s, high + (d (k - 1) - p) * s);
an elementwise function of several maps (a residual add, a concatenation, a batch norm, an activation)
takes the union of its inputs' windows; global pooling, flattening and a broadcast 1x1 map (a
squeeze-excitation gate) make every position see the whole input. This is exact for any topology,
where a walk over the modules in order (or the gradient of a unit, which a max pool routes through one
pixel) is not. A function that resamples a map in another way (interpolation) is named in the error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

GLOBAL = "the whole input"  # the window of a position that depends on every input pixel


@dataclass(frozen=True)
class Axis:
    """Position i along one axis covers input pixels [low + i * stride, high + i * stride]."""

    stride: int
    low: int
    high: int

    def union(self, other: Axis) -> Axis:
        if self.stride != other.stride:
            raise _Unknown(f"maps of strides {self.stride} and {other.stride} combined position by position")
        return Axis(self.stride, min(self.low, other.low), max(self.high, other.high))

    def through(self, kernel: int, stride: int, padding: int, dilation: int) -> Axis:
        return Axis(self.stride * stride, self.low - padding * self.stride,
                    self.high + (dilation * (kernel - 1) - padding) * self.stride)


class _Unknown(Exception):
    """A function whose effect on positions fercore does not know."""


_SAME_GRID = ("conv2d", "max_pool2d", "avg_pool2d", "max_pool2d_with_indices")


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, tuple | list) else (int(value), int(value))


def _argument(args, kwargs, index: int, name: str, default):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _through(window, name: str, args, kwargs):
    """The window of a convolution's or pool's output."""
    if name == "conv2d":
        kernel = tuple(args[1].shape[-2:]) if len(args) > 1 else tuple(kwargs["weight"].shape[-2:])
        stride = _pair(_argument(args, kwargs, 3, "stride", 1))
        padding = _argument(args, kwargs, 4, "padding", 0)
        dilation = _pair(_argument(args, kwargs, 5, "dilation", 1))
        if padding == "valid":
            padding = 0
        elif padding == "same":
            padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel, strict=True))
    else:
        kernel = _pair(_argument(args, kwargs, 1, "kernel_size", None))
        stride = _pair(_argument(args, kwargs, 2, "stride", None) or kernel)
        padding = _argument(args, kwargs, 3, "padding", 0)
        dilation = _pair(_argument(args, kwargs, 4, "dilation", 1) if "max" in name else 1)
    padding = _pair(padding)
    return tuple(axis.through(k, t, p, d) for axis, k, t, p, d in zip(window, kernel, stride, padding, dilation,
                                                                       strict=True))


class _Tracker(TorchFunctionMode):
    """Carries the input window of every tensor through one forward pass, and watches ReLU calls."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: dict[int, tuple[torch.Tensor, object]] = {}  # id -> (tensor, window): the tensor stays alive
        self.stack: list[tuple[str, nn.Module]] = []  # modules being run, innermost last
        self.functional_relus: list[str] = []  # modules that apply ReLU as a function

    def window(self, tensor):
        entry = self.windows.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def mark(self, tensor, window) -> None:
        self.windows[id(tensor)] = (tensor, window)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        if name in ("relu", "relu_") and not (self.stack and isinstance(self.stack[-1][1], nn.ReLU)):
            where = self.stack[-1][0] if self.stack else "the model's forward"
            self.functional_relus.append(f"{where or 'the model'} ({type(self.stack[-1][1]).__name__})"
                                         if self.stack else where)
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        inputs = [(t, w) for t in tensors if (w := self.window(t)) is not None]
        if not inputs:
            return out
        for result in out if isinstance(out, tuple | list) else (out,):
            if isinstance(result, torch.Tensor):
                self.mark(result, self._propagate(name, args, kwargs, inputs, result))
        return out

    def _propagate(self, name: str, args, kwargs, inputs, result):
        windows = [w for _, w in inputs]
        if any(isinstance(w, _Unknown) for w in windows):
            return next(w for w in windows if isinstance(w, _Unknown))
        if result.dim() != 4 or GLOBAL in windows or name.startswith("adaptive_"):
            return GLOBAL
        spatial = [t for t, _ in inputs if t.dim() == 4]
        if name in _SAME_GRID:
            return _through(windows[0], name, args, kwargs)
        if any(t.shape[-2:] == (1, 1) and result.shape[-2:] != (1, 1) for t in spatial):
            return GLOBAL  # a 1x1 map broadcast over every position (a squeeze-excitation gate)
        if any(t.shape[-2:] != result.shape[-2:] for t in spatial):
            return _Unknown(f"{name} maps {tuple(spatial[0].shape[-2:])} positions to {tuple(result.shape[-2:])}")
        try:
            merged = windows[0]
            for window in windows[1:]:
                merged = tuple(a.union(b) for a, b in zip(merged, window, strict=True))
            return merged
        except _Unknown as error:
            return error


@dataclass(frozen=True)
class ModuleTrace:
    """What one forward pass saw of a module."""

    name: str  # dotted path ("" is the model itself)
    kind: str  # class name
    shape: tuple  # output shape for the traced batch of one
    window: object  # (Axis y, Axis x), GLOBAL, or an _Unknown error
    calls: int  # times the module ran in the pass


@contextmanager
def _hooks(model: nn.Module, tracker: _Tracker) -> Iterator[dict[str, dict]]:
    seen: dict[str, dict] = {}
    handles = []

    def before(name):
        def hook(module, _inputs):
            tracker.stack.append((name, module))
        return hook

    def after(name):
        def hook(module, _inputs, output):
            tracker.stack.pop()
            entry = seen.setdefault(name, {"module": module, "calls": 0})
            entry["calls"] += 1
            if isinstance(output, torch.Tensor):
                entry["shape"], entry["window"] = tuple(output.shape), tracker.window(output)
        return hook

    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(before(name)))
            handles.append(module.register_forward_hook(after(name)))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def trace(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, ModuleTrace], list[str]]:
    """One forward pass of ``model`` on ``x`` (B, C, H, W; B = 1 is enough), in eval mode and without gradients.

    Returns:
        (module name -> ModuleTrace in the order modules finished, modules that apply ReLU as a function).
    """
    from fercore.inference import evaluating

    tracker = _Tracker()
    with evaluating(model), _hooks(model, tracker) as seen, tracker:
        tracker.mark(x, (Axis(1, 0, 0), Axis(1, 0, 0)))
        model(x)
    traces = {name: ModuleTrace(name, type(e["module"]).__name__, e.get("shape", ()), e.get("window"), e["calls"])
              for name, e in seen.items()}
    return traces, sorted(set(tracker.functional_relus))


def relu_problems(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Why captum's deconvolution and guided backprop would be wrong on this model ([] if they are right):
    ReLUs applied as functions, ReLU modules called more than once per pass, in-place ReLU modules."""
    traces, functional = trace(model, x)
    modules = dict(model.named_modules())
    problems = [f"a ReLU applied as a function in {where}" for where in functional]
    problems += [f"ReLU module {t.name!r} runs {t.calls} times per forward pass (shared)" for t in traces.values()
                 if isinstance(modules[t.name], nn.ReLU) and t.calls > 1]
    problems += [f"ReLU module {name!r} is in place" for name, m in modules.items()
                 if isinstance(m, nn.ReLU) and m.inplace]
    return problems


__all__ = ["GLOBAL", "Axis", "ModuleTrace", "relu_problems", "trace"]
