"""The zero-bias CNN of Khorrami et al. (ICCVW 2015) and its initialisation (registered as ``zero_bias_cnn``).

Three 5x5 convolutions without bias (the "zero-bias" of the title), each followed by a ReLU
and a max pool, the last one pooling each quadrant of the map down to a single value; then a
300-unit fully connected layer and the class logits. Every ReLU is its own module (not
``F.relu``, not in-place) so that captum's deconvolution and guided backprop can hook it, and
the module names (``conv1`` ... ``out``) are the layer names used everywhere in fercore.
"""

from __future__ import annotations

import torch
from torch import nn

from fercore.models.base import ModelConfig

# Widths of the paper's network (multiplied by ModelConfig.width).
_CONV_WIDTHS = (64, 128, 256)
_FC_WIDTH = 300
_KERNEL = 5  # every convolution is 5x5, stride 1, padding 2 ("same")
_K_RANGE = (0.2, 1.2)  # init scale k ~ U(0.2, 1.2), drawn once per model


def _widths(config: ModelConfig) -> tuple[int, int, int, int]:
    """Channels of conv1, conv2, conv3 and units of fc4 after applying ``config.width``."""
    c1, c2, c3 = (max(1, round(c * config.width)) for c in _CONV_WIDTHS)
    return c1, c2, c3, max(1, round(_FC_WIDTH * config.width))


class ZeroBiasCNN(nn.Module):
    """conv-relu-pool x3 (no conv bias), quadrant pooling, [dropout], fc4-relu, out (logits).

    Shapes for the paper's 96x96 input at width 1: (B, 1, 96, 96) -> conv1/pool1 (B, 64, 48, 48)
    -> conv2/pool2 (B, 128, 24, 24) -> conv3/pool3 (B, 256, 2, 2) -> (B, 1024) -> fc4 (B, 300)
    -> out (B, n_classes). Softmax is left to the loss.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        if config.image_size % 8 != 0:
            raise ValueError(f"zero_bias_cnn needs an image_size that is a multiple of 8 (3 pools), "
                             f"got {config.image_size}")
        c1, c2, c3, f4 = _widths(config)
        pad = _KERNEL // 2
        self.conv1 = nn.Conv2d(1, c1, _KERNEL, padding=pad, bias=False)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, _KERNEL, padding=pad, bias=False)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(c2, c3, _KERNEL, padding=pad, bias=False)
        self.relu3 = nn.ReLU()
        # Quadrant pooling: after two 2x2 pools the map is image_size/4 wide, so a kernel of
        # image_size/8 (12 for 96x96) leaves one max per quadrant, 2x2, whatever the input size.
        self.pool3 = nn.MaxPool2d(config.image_size // 8)
        # Identity in the plain variants, so every variant has the same layer names.
        self.dropout = nn.Dropout(0.5) if config.dropout else nn.Identity()
        self.fc4 = nn.Linear(c3 * 4, f4)
        self.relu4 = nn.ReLU()
        self.out = nn.Linear(f4, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: normalised images (B, 1, S, S). Returns: logits (B, n_classes)."""
        x = self.pool1(self.relu1(self.conv1(x)))  # (B, c1, S/2, S/2)
        x = self.pool2(self.relu2(self.conv2(x)))  # (B, c2, S/4, S/4)
        x = self.pool3(self.relu3(self.conv3(x)))  # (B, c3, 2, 2)
        x = torch.flatten(x, 1)  # (B, 4*c3); flatten copies if channels_last, never .view
        x = self.relu4(self.fc4(self.dropout(x)))  # (B, f4)
        return self.out(x)  # (B, n_classes)


@torch.no_grad()
def init_paper_(model: ZeroBiasCNN, generator: torch.Generator) -> float:
    """Initialise in place as the authors did: N(0, (k / sqrt(fan_in))^2), one k per model.

    k ~ U(0.2, 1.2) is drawn once from ``generator``; conv fan_in = 25 * C_in, linear
    fan_in = in_features. fc4's bias starts at 1.0 (so its ReLUs start active), out's at 0.
    The original code computed fc4's std as k/256 because it counted the batch dimension in
    fan_in; fercore implements the intended k / sqrt(1024) instead.

    Args:
        model: the network to initialise; its parameters must live on ``generator``'s device.
        generator: source of all random numbers (k and every weight), for reproducibility.

    Returns:
        The drawn k, worth logging with the run.
    """
    lo, hi = _K_RANGE
    k = lo + (hi - lo) * torch.rand((), generator=generator, device=generator.device).item()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()  # C_in*5*5 for conv, in_features for linear
            module.weight.normal_(0.0, k / fan_in**0.5, generator=generator)
    model.fc4.bias.fill_(1.0)
    model.out.bias.zero_()
    return k


def build_zero_bias_cnn(config: ModelConfig, seed: int = 0) -> ZeroBiasCNN:
    """A ZeroBiasCNN on the CPU with the paper's initialisation, deterministic in ``seed``; the drawn init
    scale is stored as ``model.init_k``. The caller's RNG is left alone (PyTorch's default init, overwritten
    here, would draw from it)."""
    with torch.random.fork_rng(devices=[]):
        model = ZeroBiasCNN(config)
    model.init_k = init_paper_(model, torch.Generator().manual_seed(seed))
    return model
