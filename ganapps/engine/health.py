"""Per-batch health signals of a GAN step: D accuracy and mean outputs on real and fake, sample diversity and
improved k-NN recall, ready to log as `health/*`. Imports torch only: never Typer, a task package or the trainer.
"""

from __future__ import annotations

import math

import torch


def _per_sample(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"batch_health: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"batch_health: {name} must have a non-empty batch dimension, got shape {tuple(x.shape)}")
    return x.detach().reshape(x.shape[0], -1).double().mean(dim=1)  # (B,)


def _flat(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"batch_health: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError(f"batch_health: {name} must be a batch (B, ...), got a scalar")
    return x.detach().reshape(x.shape[0], -1).double()  # (B, F)


def _mean_pairwise(x: torch.Tensor) -> float:
    return float(torch.pdist(x).mean())  # x: (B, F), B >= 2


def _knn_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> float:
    """Improved recall (Kynkäänniemi et al. 2019): share of reals inside the union of k-NN balls of fakes."""
    k = min(k, fake.shape[0] - 1)
    d_ff = torch.cdist(fake, fake)  # (Bf, Bf); the diagonal zero is each fake's own distance
    radii = torch.kthvalue(d_ff, k + 1, dim=1).values  # (Bf,) distance to the k-th nearest other fake
    d_rf = torch.cdist(real, fake)  # (Br, Bf)
    inside = (d_rf <= radii.unsqueeze(0)).any(dim=1)  # (Br,)
    return float(inside.double().mean())


def batch_health(
    d_real: torch.Tensor | None = None,
    d_fake: torch.Tensor | None = None,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    *,
    threshold: float = 0.0,
) -> dict[str, float]:
    """Health signals of one batch, as `health/*` floats ready to log.

    Args:
        d_real, d_fake: discriminator outputs (logits or critic values) on a real and a fake batch, any shape
            with the batch first, e.g. `(B,)`, `(B, 1)` or patch maps `(B, 1, H, W)`; each sample's output is
            the mean over the non-batch dims.
        real, fake: sample batches `(B, ...)` (images `(B, C, H, W)`, points `(B, 2)`, ...) with the same
            per-sample size; only used when both have `B >= 2`.
        threshold: the decision boundary of D (0 for logits and critics, 0.5 for probabilities).

    Returns:
        `health/d_acc_real` (share of reals with output > threshold, in [0, 1]), `health/d_acc_fake` (share of
        fakes with output < threshold), `health/d_real_mean`, `health/d_fake_mean`; `health/diversity` (mean
        pairwise L2 distance within `fake` / that within `real`: ~1 when G covers the data, 0 when all fakes
        are identical; NaN if all reals are identical) and `health/recall` (improved k-NN recall,
        Kynkäänniemi et al. 2019, k = min(3, B_fake - 1): share of reals inside at least one fake's k-NN
        ball, in [0, 1]). Keys whose inputs are missing are omitted. Computed in float64, without gradients.

    Example:
        >>> h = batch_health(torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5]))
        >>> h["health/d_acc_real"], h["health/d_acc_fake"]
        (1.0, 0.5)
    """
    out: dict[str, float] = {}
    with torch.no_grad():
        if d_real is not None:
            r = _per_sample(d_real, "d_real")
            out["health/d_acc_real"] = float((r > threshold).double().mean())
            out["health/d_real_mean"] = float(r.mean())
        if d_fake is not None:
            f = _per_sample(d_fake, "d_fake")
            out["health/d_acc_fake"] = float((f < threshold).double().mean())
            out["health/d_fake_mean"] = float(f.mean())
        if real is not None and fake is not None:
            xr, xf = _flat(real, "real"), _flat(fake, "fake")
            if xr.shape[1] != xf.shape[1]:
                raise ValueError(
                    f"batch_health: real and fake must have the same per-sample size, got {tuple(real.shape)} "
                    f"and {tuple(fake.shape)}"
                )
            if xr.shape[0] >= 2 and xf.shape[0] >= 2:
                xf = xf.to(xr.device)
                spread_real = _mean_pairwise(xr)
                spread_fake = _mean_pairwise(xf)
                out["health/diversity"] = spread_fake / spread_real if spread_real > 0 else math.nan
                out["health/recall"] = _knn_recall(xr, xf)
    return out
