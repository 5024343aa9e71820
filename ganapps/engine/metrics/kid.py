"""Kernel Inception Distance over any features: unbiased MMD^2 with a cubic polynomial kernel, averaged over
random subsets. Must not import Typer or any task package.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ganapps.engine.errors import InputError


class KID(NamedTuple):
    """Mean and standard deviation of MMD^2 over the subsets (same units as torch-fidelity's KID)."""

    mean: float
    std: float


def polynomial_mmd2(
    features_a: np.ndarray,
    features_b: np.ndarray,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased MMD^2 between features_a (m, F) and features_b (n, F), m, n >= 2, with the kernel
    k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/F by default (Binkowski et al. 2018, "Demystifying
    MMD GANs"):

        MMD^2 = sum_{i!=j} k(a_i, a_j) / (m(m-1)) + sum_{i!=j} k(b_i, b_j) / (n(n-1)) - 2 sum_{i,j} k(a_i, b_j) / (mn)

    Can be slightly negative when the two sets come from one distribution. Computed in float64.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise InputError(
            f"polynomial_mmd2: shapes {a.shape} and {b.shape}, expected (m, F), (n, F), m, n >= 2"
        )
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    m, n = len(a), len(b)
    k_aa = (a @ a.T * gamma + coef0) ** degree
    k_bb = (b @ b.T * gamma + coef0) ** degree
    k_ab = (a @ b.T * gamma + coef0) ** degree
    sum_aa = k_aa.sum() - np.trace(k_aa)
    sum_bb = k_bb.sum() - np.trace(k_bb)
    return float(sum_aa / (m * (m - 1)) + sum_bb / (n * (n - 1)) - 2.0 * k_ab.sum() / (m * n))


def kid_from_features(
    features_a: np.ndarray,
    features_b: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KID:
    """KID between features_a (N, F) and features_b (M, F): `polynomial_mmd2` on `num_subsets` pairs of
    random subsets of `subset_size` drawn without replacement (clamped to min(N, M)), as in Binkowski et
    al. 2018 and torch-fidelity (100 subsets of 1000). Returns KID(mean, std) over subsets (std with
    ddof=0). Deterministic for a given `seed`. With Inception pool3 features this is KID; multiply by 1e3
    to compare with papers that report "KID x 10^3".
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError(f"kid_from_features: shapes {a.shape} and {b.shape}, expected (N, F) and (M, F)")
    if num_subsets < 1 or subset_size < 2:
        raise InputError(
            f"kid_from_features: num_subsets={num_subsets}, subset_size={subset_size}; expected >= 1, >= 2"
        )
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise InputError(f"kid_from_features: {len(a)} and {len(b)} samples, expected at least 2 in each set")
    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets)
    for i in range(num_subsets):
        sub_a = a[rng.choice(len(a), size, replace=False)]
        sub_b = b[rng.choice(len(b), size, replace=False)]
        mmds[i] = polynomial_mmd2(sub_a, sub_b)
    return KID(float(mmds.mean()), float(mmds.std()))
