"""The Frechet distance between Gaussians fitted to features (FID over any features), in float64.
Must not import Typer or any task package.
"""

from __future__ import annotations

import numpy as np

from ganapps.engine.errors import InputError
from ganapps.engine.metrics.features import feature_statistics


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues
    (rounding) are clipped to zero."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2).

        d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))

    (Dowson & Landau 1982; used as FID by Heusel et al. 2017, "GANs trained by a two time-scale update
    rule converge to a local Nash equilibrium"). mu: (F,), sigma: (F, F) symmetric PSD. Computed in
    float64 with tr((s1 s2)^(1/2)) = tr((s1^(1/2) s2 s1^(1/2))^(1/2)), both roots by symmetric
    eigendecomposition: no complex parts, no eps retry, exact for singular (N < F) covariances, and equal
    to pytorch-fid's scipy.linalg.sqrtm route to rounding for well-conditioned ones. Result >= 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    f = mu1.shape[0]
    if mu1.shape != (f,) or mu2.shape != (f,) or sigma1.shape != (f, f) or sigma2.shape != (f, f):
        raise InputError(
            f"frechet_distance: shapes mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, "
            f"sigma2 {sigma2.shape}; expected (F,), (F, F) twice with one F"
        )
    for name, arr in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise InputError(f"frechet_distance: {name} holds NaN or infinite values")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    d2 = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(d2, 0.0))


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to features_a (N, F) and features_b (M, F).

    With Inception pool3 features (`InceptionExtractor`) this is FID; with any other extractor it is the
    same distance in that feature space (name it after the extractor when reporting). Needs N, M >= 2.
    Small sets (N M <= F^2) take an exact shortcut in the samples' space instead of two F x F
    eigendecompositions: with centred features A, B, the nonzero eigenvalues of sigma_a sigma_b are those of
    C C^T / k, C = A B^T, k = (N - 1)(M - 1), so tr((sigma_a sigma_b)^(1/2)) = ||C||_* / sqrt(k) (the nuclear
    norm: the sum of C's singular values), and tr(sigma) = ||A||_F^2 / (N - 1).
    """
    a, b = np.asarray(features_a), np.asarray(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError(f"fid_from_features: shapes {a.shape} and {b.shape}, expected (N, F) and (M, F)")
    (n, f), m = a.shape, b.shape[0]
    if n * m > f * f:
        return frechet_distance(*feature_statistics(a), *feature_statistics(b))
    return frechet_in_sample_space(a, b)


def frechet_in_sample_space(a: np.ndarray, b: np.ndarray) -> float:
    """`fid_from_features` through the (N, M) matrix C = A B^T of centred features instead of F x F
    covariances (see there); exact for any N, M >= 2, fastest when N M is small against F^2."""
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise InputError(f"fid_from_features: {n} and {m} samples; expected at least 2 in each set")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    for name, arr in (("features_a", a), ("features_b", b)):
        if not np.isfinite(arr).all():
            raise InputError(f"fid_from_features: {name} holds NaN or infinite values")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b  # (N, F), (M, F)
    nuclear = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    d2 = diff @ diff + (ca * ca).sum() / (n - 1) + (cb * cb).sum() / (m - 1) - 2.0 * nuclear / np.sqrt((n - 1) * (m - 1))
    return float(max(d2, 0.0))


FID_FULL_RANK_IMAGES = 2048  # pool3 features: fewer images give a rank-deficient covariance


def small_sample_note(n_a: int, n_b: int, dims: int = FID_FULL_RANK_IMAGES) -> str | None:
    """A warning to print beside an FID computed on fewer images than feature dimensions, else None."""
    if min(n_a, n_b) >= dims:
        return None
    return (f"FID on {min(n_a, n_b)} < {dims} images: the {dims}-d covariance is rank-deficient, so the value is "
            f"biased (high) and not comparable with FIDs on other set sizes; compare models with KID instead")
