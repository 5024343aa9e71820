"""2D Gaussian mixtures from the mode-collapse literature (PacGAN, VEEGAN) and their evaluation.

ring: 8 modes on a circle of radius 2, std 0.02. grid: 25 modes at {-4,-2,0,2,4}^2, std 0.05.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset


def mode_centers(name: str) -> tuple[torch.Tensor, float]:
    """(K, 2) mode centres and the per-mode standard deviation."""
    if name == "ring":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles)], 1).float(), 0.02
    if name == "grid":
        v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(v, v), 0.05
    raise ValueError(f"unknown toy dataset '{name}': expected ring or grid")


def sample(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    centers, std = mode_centers(name)
    k = torch.randint(len(centers), (n,), generator=generator)
    return centers[k] + std * torch.randn(n, 2, generator=generator)  # (n, 2)


class MixtureDataset(Dataset):
    """A nominal epoch of `size` points; every batch is drawn fresh from the mixture (seeded per batch)."""

    def __init__(self, name: str, size: int = 100_000):
        self.name, self.size = name, size
        mode_centers(name)  # validates the name

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        return sample(self.name, 1)[0]

    def get_batch(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return sample(self.name, len(indices), generator)


def evaluate_samples(name: str, points: torch.Tensor) -> dict[str, float]:
    """PacGAN's protocol: a sample is high quality within 3 std of its nearest mode; a mode is covered
    when it holds at least 20 high-quality samples (of 2,500); reverse KL of the mode histogram of the
    high-quality samples against the uniform mixture, KL(q || p)."""
    centers, std = mode_centers(name)
    points = points.detach().float().cpu()
    dist = torch.cdist(points, centers)  # (n, K)
    nearest, mode = dist.min(1)
    hq = nearest < 3 * std
    counts = torch.bincount(mode[hq], minlength=len(centers)).double()
    modes = int((counts >= 20).sum())
    if counts.sum() > 0:
        q = counts / counts.sum()
        p = 1.0 / len(centers)
        nz = q > 0
        reverse_kl = float((q[nz] * (q[nz] / p).log()).sum())
    else:
        reverse_kl = float("inf")
    return {"modes": modes, "high_quality": float(hq.float().mean()), "reverse_kl": reverse_kl}
