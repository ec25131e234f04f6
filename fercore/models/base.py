"""What every architecture shares: its settings (``ModelConfig``) and the input it is trained on (``PaperInput``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fercore.augment import normalize, resize


@dataclass
class ModelConfig:
    """Settings of one network; a checkpoint stores these (with the arch name) so it can rebuild its model."""

    n_classes: int = 8  # 8 (CK+), 7 (TFD), 6 (CK+ six-class)
    image_size: int = 96  # side of the square gray input
    width: float = 1.0  # multiplier on the architecture's channel widths
    dropout: bool = False  # the `d` variants: dropout p=0.5 before the classifier

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")


@dataclass(frozen=True)
class PaperInput:
    """The paper's input scaling for any network: uint8 faces (B, 1, S, S) resized to ``image_size`` (area,
    rounded as in training), scaled to [0, 2], 5x5 local mean removed -> float32 (B, 1, s, s)."""

    image_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return normalize(resize(images, self.image_size))

    def record(self) -> dict:
        """What a checkpoint stores of it."""
        return {"kind": "paper", "image_size": self.image_size}

    @classmethod
    def from_record(cls, record: dict) -> PaperInput:
        if record.get("kind") != "paper":
            raise ValueError(f"unknown input preprocessing {record!r}; fercore knows {{'kind': 'paper', ...}}")
        return cls(int(record["image_size"]))


__all__ = ["ModelConfig", "PaperInput"]
