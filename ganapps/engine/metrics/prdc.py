"""Precision, recall, density and coverage: k-nearest-neighbour manifold estimates over any features, plus the
chunked distance helpers they share with the memorization audit. Must not import Typer or any task package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganapps.engine.errors import InputError

_CHUNK = 1024  # rows of a distance block: bounds memory at _CHUNK x N float64


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, coverage in [0, 1]; density >= 0 (about 1 when fakes match reals)."""

    precision: float
    recall: float
    density: float
    coverage: float


def _as_features(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if t.ndim != 2 or t.shape[0] == 0:
        raise InputError(f"{name}: shape {tuple(t.shape)}, expected features (N, F) with N >= 1")
    if not torch.isfinite(t).all():
        raise InputError(f"{name}: holds NaN or infinite values")
    return t


def pairwise_distance_blocks(x: torch.Tensor, y: torch.Tensor, chunk: int = _CHUNK):
    """Yield (start, block) with block (chunk, M) the Euclidean distances from rows x[start:start+chunk]
    to every row of y (M, F), in float64 by matrix products (identical rows give about 1e-8 x their norm,
    not exactly 0)."""
    for start in range(0, x.shape[0], chunk):
        yield start, torch.cdist(x[start : start + chunk], y, compute_mode="use_mm_for_euclid_dist")


def kth_neighbour_distance(x: torch.Tensor, k: int, chunk: int = _CHUNK) -> torch.Tensor:
    """Distance (N,) from each row of x (N, F) to its k-th nearest other row (the row itself excluded by
    taking the (k+1)-th smallest distance, as the prdc reference code does)."""
    if not 1 <= k < x.shape[0]:
        raise InputError(f"k={k} nearest neighbours need more than k samples, got {x.shape[0]}")
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for start, block in pairwise_distance_blocks(x, x, chunk):
        out[start : start + block.shape[0]] = block.kthvalue(k + 1, dim=1).values
    return out


def prdc(real_features: np.ndarray, fake_features: np.ndarray, k: int = 5, chunk: int = _CHUNK) -> PRDC:
    """Precision, recall, density and coverage of fake_features (M, F) against real_features (N, F)
    (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models"; precision and
    recall as in Kynkaanniemi et al. 2019), with k-NN balls of radius the distance to the k-th nearest
    neighbour within each set. Matches clovaai/generative-evaluation-prdc (strict `<` comparisons); the
    paper uses k=5 with VGG16 fc2 features, this function takes any features.

    - precision: share of fakes inside some real ball (fidelity).
    - recall: share of reals inside some fake ball (diversity; 0 for a generator that repeats one image).
    - density: mean number of real balls containing a fake, / k (about 1 when distributions match).
    - coverage: share of reals whose ball contains a fake.
    Distances in float64, computed `chunk` rows at a time; the result does not depend on `chunk`.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise InputError(f"prdc: feature sizes differ, real {tuple(real.shape)} vs fake {tuple(fake.shape)}")
    real_radii = kth_neighbour_distance(real, k, chunk)  # (N,)
    fake_radii = kth_neighbour_distance(fake, k, chunk)  # (M,)
    fake_in_real = torch.zeros(fake.shape[0], dtype=torch.bool)
    balls_per_fake = torch.zeros(fake.shape[0], dtype=torch.float64)
    real_in_fake = torch.empty(real.shape[0], dtype=torch.bool)
    real_covered = torch.empty(real.shape[0], dtype=torch.bool)
    for start, block in pairwise_distance_blocks(real, fake, chunk):  # block (chunk, M): real rows x fakes
        stop = start + block.shape[0]
        inside_real_ball = block < real_radii[start:stop, None]
        fake_in_real |= inside_real_ball.any(dim=0)
        balls_per_fake += inside_real_ball.sum(dim=0)
        real_in_fake[start:stop] = (block < fake_radii[None, :]).any(dim=1)
        real_covered[start:stop] = block.min(dim=1).values < real_radii[start:stop]
    return PRDC(
        precision=float(fake_in_real.double().mean()),
        recall=float(real_in_fake.double().mean()),
        density=float(balls_per_fake.mean() / k),
        coverage=float(real_covered.double().mean()),
    )
