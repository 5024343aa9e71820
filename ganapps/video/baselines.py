"""The classical answers a video predictor must beat - copy-last-frame and Farneback flow extrapolation with 1 and
2 frame pairs - as functions and as a net (`Classical`), and the *guard*: a backtest on the clip's own earlier
frames that keeps the learned net only where it predicted those frames at least as well as every fallback, and
otherwise hands the clip to the best of them. The fallbacks are the baselines and one more classical answer, DIS
flow extrapolation with 2 pairs (`dis_flow2`: a sharper flow than the baselines' Farneback; measured in
docs/video.md, "The guard"). Imports torch and `nets` only; no data format or training code.
"""

from __future__ import annotations

import torch
from torch import nn

from .nets import flow_memo, motion_prior, warp

BASELINES = ("copy_last", "flow1", "flow2")  # what a predictor is scored against
FALLBACKS = (*BASELINES, "dis_flow2")  # what the guard may hand a clip to


def copy_last(context: torch.Tensor, frames: int) -> torch.Tensor:
    """The copy-last-frame baseline: (B, T, C, H, W) -> (B, frames, C, H, W)."""
    return context[:, -1:].expand(-1, frames, -1, -1, -1).clone()


def flow_extrapolate(context: torch.Tensor, frames: int, pairs: int = 1, method: str = "farneback") -> torch.Tensor:
    """Optical-flow extrapolation baseline: OpenCV Farneback (or `method` "dis") flow from the last frame back to the
    one before (pairs=1; more pairs average the flows to earlier frames, divided by their distance, as the
    flowprior head does), assumed constant, warps the last frame k steps ahead (bilinear, border replicated).
    (B, T>=2, C, H, W) -> (B, frames, C, H, W)."""
    last = context[:, -1].float()
    back = motion_prior(context.float(), pairs, method)  # (B, 2, H, W) pixels per frame
    return torch.stack([warp(last, k * back) for k in range(1, frames + 1)], 1)


def classical(name: str, context: torch.Tensor, frames: int) -> torch.Tensor:
    """One of FALLBACKS on a context (B, T, C, H, W) -> (B, frames, C, H, W)."""
    if name == "copy_last":
        return copy_last(context, frames)
    if name in ("flow1", "flow2"):
        return flow_extrapolate(context, frames, int(name[-1]))
    if name == "dis_flow2":
        return flow_extrapolate(context, frames, 2, "dis")
    raise ValueError(f"unknown baseline {name!r}; expected one of {FALLBACKS}")


class Classical(nn.Module):
    """A fallback (a baseline or DIS flow extrapolation) as a predictor net: forward(context (B, T, C, H, W),
    future) -> (B, future, C, H, W); at a clip's own size through `predict_hires` (what a learned net's `Predictor`
    calls for frames of another size)."""

    def __init__(self, name: str):
        super().__init__()
        if name not in FALLBACKS:
            raise ValueError(f"unknown baseline {name!r}; expected one of {FALLBACKS}")
        self.name = name

    def forward(self, context: torch.Tensor, future: int, **_) -> torch.Tensor:
        return classical(self.name, context, future)

    @torch.no_grad()
    def predict_hires(self, context: torch.Tensor, future: int, hires: torch.Tensor) -> torch.Tensor:
        return classical(self.name, hires, future).clamp(-1, 1)


@torch.no_grad()
def backtest(net: nn.Module, frames: torch.Tensor, context: int, horizons: int, windows: int = 5) -> dict[str, float]:
    """Score `net` and each of FALLBACKS on a clip's known frames (T, C, H, W) in [-1, 1]: the last `windows`
    windows of `context` frames that have at least one known frame after them predict up to `horizons` of those
    frames. -> {name: mean over windows and horizons of log10(MSE + 1e-8)} (lower is better); {} when the clip has
    fewer than context + 1 frames."""
    t = frames.shape[0]
    starts = list(range(max(0, t - context - windows), t - context))
    if not starts:
        return {}
    # every candidate on all windows at once (a batch of contexts, the longest horizon; predictors are causal, so a
    # window's first k predictions do not depend on the horizons after them), scored on each window's known k
    ks = [min(horizons, t - context - s) for s in starts]
    ctx = torch.stack([frames[s:s + context] for s in starts])  # (S, context, C, H, W)
    with flow_memo():  # neighbouring windows and the candidates share most frame pairs' flows
        preds = {"model": net(ctx, max(ks)).clamp(-1, 1), **{b: classical(b, ctx, max(ks)) for b in FALLBACKS}}
    errors = {name: torch.cat([(p[i, :k].float() - frames[s + context:s + context + k]).pow(2).mean((1, 2, 3))
                               for i, (s, k) in enumerate(zip(starts, ks, strict=True))])
              for name, p in preds.items()}  # (sum of k,) per candidate
    return {name: float(torch.log10(e + 1e-8).mean()) for name, e in errors.items()}


def guard_choice(scores: dict[str, float]) -> str:
    """The guard's decision from `backtest` scores: "model" unless a fallback scored strictly better (ties keep
    the model); "model" also when there was nothing to backtest on."""
    if not scores:
        return "model"
    best = min((b for b in FALLBACKS if b in scores), key=lambda b: scores[b])
    return best if scores[best] < scores["model"] else "model"
