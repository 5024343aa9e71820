"""Differentiable augmentation for D's inputs: DiffAugment (colour, translation, cutout) and the ADA controller
that tunes its probability. Pure torch ops; never imports a task package, Typer or a data format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganapps.engine.errors import InputError

POLICY_OPS: tuple[str, ...] = ("color", "translation", "cutout")


def rand_brightness(x: Tensor) -> Tensor:
    """Add one offset per sample, U[-0.5, 0.5). `(B, C, H, W)` -> same."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def rand_saturation(x: Tensor) -> Tensor:
    """Scale each pixel's deviation from its channel mean by U[0, 2) per sample; a no-op for C = 1."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def rand_contrast(x: Tensor) -> Tensor:
    """Scale the deviation from the per-sample mean by U[0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def rand_color(x: Tensor) -> Tensor:
    """Brightness, then saturation, then contrast, as DiffAugment's "color" policy."""
    return rand_contrast(rand_saturation(rand_brightness(x)))


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each sample by an integer offset in [-r, r] pixels per axis, r = round(ratio * size); pixels
    shifted in are 0. `(B, C, H, W)` -> same."""
    b, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, (b, 1, 1), device=x.device)
    grid_b, grid_y, grid_x = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    # Index into a one-pixel zero border: out-of-range sources land on the border.
    grid_y = (grid_y + dy + 1).clamp(0, h + 1)
    grid_x = (grid_x + dx + 1).clamp(0, w + 1)
    x_pad = nn.functional.pad(x, [1, 1, 1, 1])
    return x_pad.permute(0, 2, 3, 1)[grid_b, grid_y, grid_x].permute(0, 3, 1, 2)  # (B, C, H, W)


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Set a (ratio*H) x (ratio*W) rectangle per sample to 0, its centre uniform over the image (so it may be
    clipped at the border). `(B, C, H, W)` -> same."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - size_h % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - size_w % 2), (b, 1, 1), device=x.device)
    top, left = cy - size_h // 2, cx - size_w // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def _parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else [str(p) for p in policy]
    names = [n for n in names if n]
    bad = [n for n in names if n not in POLICY_OPS]
    if bad:
        raise InputError(
            f"unknown DiffAugment op {bad[0]!r} in policy {policy!r}: expected one of {', '.join(POLICY_OPS)}"
        )
    return tuple(names)


class DiffAugment(nn.Module):
    """Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
    Training"), with the reference implementation's maths and magnitudes.

    Apply the same module to every batch D sees, real and fake, in both D and G steps; parameters are drawn
    afresh per call and per sample (global torch RNG). Every op is differentiable w.r.t. the input, so G gets
    gradients through it. Ops, in policy order, each applied to a sample with probability `p`:
      - "color": brightness + U[-0.5, 0.5), saturation x U[0, 2) (no-op for 1 channel), contrast x U[0.5, 1.5).
        The reference works on [-1, 1] images, as here, so its magnitudes are kept unchanged.
      - "translation": integer shift up to 1/8 of H and W, zero padding.
      - "cutout": a rectangle of half H by half W set to 0. In [-1, 1] data 0 is mid-grey, not black; this is
        the reference's convention (it also multiplies a [-1, 1] image by a 0/1 mask).

    Input `(B, C, H, W)`, any C (1 or 3 for images), floats in [-1, 1] (colour can push values outside it; that
    is intended). Output has the same shape. `p` may be changed between calls (e.g. by `AdaptiveAugment`).

    Example:
        >>> aug = DiffAugment("translation,cutout")
        >>> aug(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout", p: float = 1.0) -> None:
        super().__init__()
        self.policy = _parse_policy(policy)
        self.p = p

    @property
    def p(self) -> float:
        """Per-sample probability of each op, in [0, 1]."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise InputError(f"DiffAugment: p={value}, expected a probability in [0, 1]")
        self._p = value

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}, p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"DiffAugment: expected images (B, C, H, W), got shape {tuple(x.shape)}")
        if self.p == 0.0:
            return x
        for name in self.policy:
            out = _OPS[name](x)
            if self.p < 1.0:
                apply = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p  # (B, 1, 1, 1)
                out = torch.where(apply, out, x)
            x = out
        return x


class AdaptiveAugment:
    """Adaptive discriminator augmentation controller (Karras et al. 2020, "Training Generative Adversarial
    Networks with Limited Data", ADA), as in StyleGAN2-ADA's training loop.

    The overfitting heuristic r_t = E[sign(D(real))] is accumulated with `accumulate`; every `interval`-th call
    of `update(batch_images)` sets p += sign(r_t - target) * batch_images * interval / adjust_images, clamped to
    [0, 1], and resets the accumulators, so p can go from 0 to 1 within `adjust_images` images. An interval with
    nothing accumulated leaves p alone. The caller copies p into the augmentation: `augment.p = ada.p`.

    Args:
        target: desired r_t in [0, 1) (0.6 in the paper).
        adjust_images: images for p to traverse [0, 1] (500k in the paper).
        interval: update calls (steps) between adjustments (4 in the paper).
        p: starting probability.
    """

    def __init__(
        self, target: float = 0.6, adjust_images: int = 500_000, interval: int = 4, *, p: float = 0.0
    ) -> None:
        if not 0.0 <= target < 1.0:
            raise InputError(f"AdaptiveAugment: target={target}, expected a value in [0, 1)")
        if adjust_images <= 0:
            raise InputError(f"AdaptiveAugment: adjust_images={adjust_images}, expected > 0")
        if int(interval) != interval or interval < 1:
            raise InputError(f"AdaptiveAugment: interval={interval}, expected an integer >= 1")
        if not 0.0 <= p <= 1.0:
            raise InputError(f"AdaptiveAugment: p={p}, expected a probability in [0, 1]")
        self.target = float(target)
        self.adjust_images = adjust_images
        self.interval = int(interval)
        self.p = float(p)
        self.last_rt = float("nan")  # the latest r_t used for an adjustment, for logging
        self._calls = 0
        self._sign_sum = torch.zeros(())
        self._count = 0

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add D's raw outputs on a real batch (any shape) to the running sign statistics."""
        signs = real_logits.detach().sign().sum().float()
        self._sign_sum = self._sign_sum.to(signs.device) + signs
        self._count += real_logits.numel()

    def update(self, batch_images: int) -> float:
        """Count one step of `batch_images` images; on every `interval`-th call adjust p. Returns p."""
        if batch_images < 1:
            raise ValueError(f"AdaptiveAugment.update: batch_images={batch_images}, expected >= 1")
        self._calls += 1
        if self._calls % self.interval:
            return self.p
        if self._count:
            rt = float(self._sign_sum) / self._count
            direction = (rt > self.target) - (rt < self.target)
            step = direction * batch_images * self.interval / self.adjust_images
            self.p = min(1.0, max(0.0, self.p + step))
            self.last_rt = rt
        self._sign_sum = torch.zeros(())
        self._count = 0
        return self.p

    def state_dict(self) -> dict[str, Any]:
        """{"p", "calls", "sign_sum", "count", "last_rt"}: plain numbers; hyperparameters come from the config."""
        return {
            "p": self.p,
            "calls": self._calls,
            "sign_sum": float(self._sign_sum),
            "count": self._count,
            "last_rt": self.last_rt,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.p = float(state["p"])
        self._calls = int(state["calls"])
        self._sign_sum = torch.as_tensor(float(state["sign_sum"]))
        self._count = int(state["count"])
        self.last_rt = float(state["last_rt"])
