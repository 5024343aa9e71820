"""MLP generator and discriminator for 2D points. Constructors take plain integers."""

from __future__ import annotations

import torch
from torch import nn

from ..engine.stabilizers import MinibatchStdDev


class Generator(nn.Module):
    def __init__(self, z_dim: int = 16, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.z_dim = z_dim
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, z_dim) -> (B, 2)


class Discriminator(nn.Module):
    def __init__(self, hidden: int = 256, layers: int = 3, minibatch_std: bool = False):
        super().__init__()
        blocks: list[nn.Module] = []
        width = 2
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.mbstd = MinibatchStdDev(group_size=4) if minibatch_std else None
        self.head = nn.Linear(width + (1 if minibatch_std else 0), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (B, hidden)
        if self.mbstd is not None:
            h = self.mbstd(h)  # (B, hidden + 1)
        return self.head(h).squeeze(1)  # (B,)
