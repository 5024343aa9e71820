"""TrustNet: a predictor that knows when to trust motion. Per pixel and per horizon it blends classical
candidates - the last frame, Farneback extrapolations with 1 and 2 frame pairs, a half-velocity hedge, a blurred
flow warp, a temporal mean and a motion-compensated mean of the context (both leaving out, pixel by pixel, frames
that disagree with the last one: a blink or an occluder is not averaged in) - with softmax weights, plus a learned
synthesis (a residual) for what no candidate holds. The weights come from a small U-Net that sees the frames, the
flows and a *context check*: how well each candidate would have predicted the last context frame from earlier
ones. At initialisation the head is zero, so copy-last and each flow extrapolation are exactly the model with one
gate bias raised (`set_choice`): training starts from the classical answers and learns when to trust which.
Two variants of the research net (/work/research/video, run w32q) are options: `flow_correction` adds an eighth
candidate, the 2-pair flow plus a learned per-pixel correction; `guard_means=False` gives the plain temporal means
(the last 4 frames; the last 3 warped by the 2-pair velocity) it was trained with.

Plain nn.Module with integer arguments; imports torch, `nets` (warp, farneback_prior) and `adapt` (keep_best) only.
The Farneback flows are not differentiable: training feeds precomputed ones (`forward(..., flows=)`), inference
computes them.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .adapt import keep_best
from .nets import farneback_prior, warp

CONTEXT = 6  # context frames c0..c5
FLOW_PAIRS = ((5, 4), (5, 3), (4, 3), (4, 2), (3, 2), (3, 1))  # (cur, prev) per flow: cur(p) ~ prev(p + flow(p))
CANDIDATES = ("copy_last", "flow1", "flow2", "half_flow2", "mean", "mc_mean", "flow2_blur")
N_CAND = len(CANDIDATES)
AGREE_TOL = 0.1
"""Scale (on the [-1, 1] range: ~13 grey levels) of the 5x5-averaged difference at which a context frame stops
counting in the temporal means: weight exp(-(d / AGREE_TOL)^2)."""
Gates = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
"""(weights (B, K, n_cand, H, W), synthesis (B, K, C, H, W), flow correction (B, 2, H, W) or None)."""
PRIOR_SCALE = 30.0
"""The two prior scales live on a scale of ~1-50; they are stored divided by this, so Adam moves them this much
faster than the convolution weights."""


def context_flows(ctx: torch.Tensor) -> torch.Tensor:
    """The Farneback flows of FLOW_PAIRS within the last CONTEXT frames of `ctx` (B, T>=6, C, H, W) in [-1, 1]
    -> (B, 6, 2, H, W) pixels (6 OpenCV calls per clip)."""
    if ctx.shape[1] < CONTEXT:
        raise ValueError(f"context of {ctx.shape[1]} frames; TrustNet needs {CONTEXT}")
    c = ctx[:, -CONTEXT:]
    return torch.stack([farneback_prior(c[:, a], c[:, b]) for a, b in FLOW_PAIRS], 1)


def anchor_flows(flows: torch.Tensor, anchor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(flow(anchor -> anchor-1), flow(anchor -> anchor-2)) for anchor 5, 4 or 3, each (B, 2, H, W)."""
    i = {5: 0, 4: 2, 3: 4}[anchor]
    return flows[:, i], flows[:, i + 1]


def box(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """k x k box mean, same size (edges average what is inside): (N, C, H, W) -> same."""
    return F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)


def blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap Gaussian (sigma 1), replicate padding: (N, C, H, W) -> same."""
    g = torch.exp(-torch.arange(-2.0, 3.0, dtype=x.dtype, device=x.device) ** 2 / 2)
    g = g / g.sum()
    n, ch = x.shape[:2]
    y = F.pad(x.reshape(n * ch, 1, *x.shape[2:]), (2, 2, 2, 2), mode="replicate")
    y = F.conv2d(F.conv2d(y, g.view(1, 1, 1, 5)), g.view(1, 1, 5, 1))
    return y.view_as(x)


def agreement(frame: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """How much `frame` (N, C, H, W) agrees with `ref` around each pixel: exp(-(d / AGREE_TOL)^2) with d the 5x5
    mean of the channel-mean |frame - ref| -> (N, 1, H, W) in (0, 1]."""
    d = box((frame - ref).abs().mean(1, keepdim=True))
    return torch.exp(-(d / AGREE_TOL) ** 2)


class Anchor:
    """Everything the candidates of one anchor frame need, computed once for all horizons: the frames up to
    `anchor`, the motion per frame step v1 (1 pair) and v2 (2 pairs, as `motion_prior`), and with `guard` the
    agreement weights of the earlier frames for the temporal mean and of the two flow-aligned earlier frames for the
    motion-compensated mean. Without `guard` the means are plain: the last 4 frames, and the last 3 each warped
    by (k + i) v2 (the research net's `mean4` and `mc_mean3`)."""

    def __init__(self, c: torch.Tensor, anchor: int, f1: torch.Tensor, f2: torch.Tensor, guard: bool = True):
        self.last, self.f1, self.f2, self.guard = c[:, anchor], f1, f2, guard
        self.v1, self.v2 = f1, (f1 + f2 / 2) / 2
        if guard:
            past = [c[:, anchor - j] for j in range(1, anchor + 1)]  # c[a-1], c[a-2], ... c[0]
            w = [agreement(p, self.last) for p in past]
            self.mean = (self.last + sum(wi * p for wi, p in zip(w, past, strict=True))) / (1 + sum(w))
        else:
            self.mean = c[:, anchor - 3:anchor + 1].mean(1)
        self.earlier = (c[:, anchor - 1], c[:, anchor - 2])
        self.aligned_w = [agreement(warp(p, f), self.last) for p, f in zip(self.earlier, (f1, f2), strict=True)] \
            if guard else None

    def baselines(self, k: int) -> torch.Tensor:
        """Frame anchor+k by the first three candidates, which are the baselines a predictor is scored against
        (copy-last, Farneback extrapolation with 1 and 2 frame pairs: `baselines.BASELINES`) -> (B, 3, C, H, W)."""
        return torch.stack([self.last, warp(self.last, k * self.v1), warp(self.last, k * self.v2)], 1)

    def candidates(self, k: int) -> torch.Tensor:
        """Frame anchor+k by each candidate -> (B, N_CAND, C, H, W) in the order of CANDIDATES."""
        step = k * self.v2
        base = self.baselines(k)
        f2 = base[:, 2]
        if self.guard:
            num, den = f2, 1.0
            for p, f, w in zip(self.earlier, (self.f1, self.f2), self.aligned_w, strict=True):
                wk = warp(w, step)
                num, den = num + wk * warp(p, f + step), den + wk
            mc = num / den
        else:
            mc = (f2 + sum(warp(p, (k + i) * self.v2) for i, p in enumerate(self.earlier, 1))) / 3
        return torch.cat([base, torch.stack([warp(self.last, step / 2), self.mean, mc, blur(f2)], 1)], 1)

    def learned(self, k: int, dv: torch.Tensor) -> torch.Tensor:
        """The flow-correction candidate: the last frame warped by k (v2 + dv), dv (B, 2, H, W) -> (B, 1, C, H, W)."""
        return warp(self.last, k * (self.v2 + dv))[:, None]


class TrustNet(nn.Module):
    """Per-pixel trust over CANDIDATES (+ "flow_learned" with `flow_correction`) + a learned synthesis, for
    `horizons` horizons at once.

    forward(context (B, T>=6, C, H, W) in [-1, 1], future, flows=None) -> (B, future, C, H, W); `flows`
    (B, 6, 2, H, W) from `context_flows` (computed here when None). The U-Net runs at 1/`down` resolution; its gates
    and synthesis are upsampled. Horizons beyond `horizons` reuse the last horizon's gates on their own candidates
    (a constant-velocity roll-out). The head is zero-initialised: at step 0 the synthesis is 0 and the gates are
    softmax(bias + context-check prior).
    """

    def __init__(self, channels: int = 3, width: int = 32, horizons: int = 5, down: int = 2, blocks: int = 2,
                 prior_pix: float = 20.0, prior_glob: float = 2.0, flow_correction: bool = False,
                 guard_means: bool = True):
        super().__init__()
        self.channels, self.horizons, self.down = channels, horizons, down
        self.flow_correction, self.guard_means = flow_correction, guard_means
        self.names = CANDIDATES + (("flow_learned",) if flow_correction else ())
        self.n_cand = len(self.names)
        cin = 2 * channels + 4 + channels * (N_CAND - 1) + 4 * N_CAND  # see features()
        self.stem = nn.Sequential(nn.Conv2d(cin, width, 3, padding=1), nn.GELU())
        self.downs = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU())
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GELU(),
                                                  nn.Conv2d(2 * width, 2 * width, 3, padding=1)) for _ in range(blocks))
        self.up = nn.Sequential(nn.Conv2d(3 * width, width, 3, padding=1), nn.GELU(),
                                nn.Conv2d(width, width, 3, padding=1), nn.GELU())
        # per horizon: gate logits, synthesis; then the flow correction (2 channels) when there is one
        self.head = nn.Conv2d(width, horizons * (self.n_cand + channels) + 2 * flow_correction, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # the context check as a prior on the gates: logit -= pix * local backtest error + glob * log clip error
        self.prior = nn.Parameter(torch.tensor([prior_pix, prior_glob]) / PRIOR_SCALE)

    @torch.no_grad()
    def set_choice(self, name: str, logit: float = 40.0) -> None:
        """Make the (untrained) model one candidate exactly: its gate bias `logit`, the others and the prior 0."""
        self.head.bias.zero_()
        self.prior.zero_()
        gates = self.head.bias[:self.horizons * (self.n_cand + self.channels)]
        gates.view(self.horizons, self.n_cand + self.channels)[:, self.names.index(name)] = logit

    def features(self, c: torch.Tensor, flows: torch.Tensor,
                 now: Anchor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Net input (B, cin, H, W): last frame, its change, v1 and v2 (/4), the k=1 candidates minus the last
        frame, and the context check: per candidate, |candidate - c5| (channel mean, x4) when predicting c5 from
        c4 (k=1) and from c3 (k=2), per pixel and as a clip-level log mean.
        -> (features, backtest error per pixel (B, n_cand, H, W), log clip error (B, n_cand, 1, 1)), the last two
        averaged over the two checks. `now`: the anchor-5 candidates' inputs, when already computed."""
        now = now or self.anchor(c, flows)
        cand1 = now.candidates(1)
        feats = [now.last, now.last - c[:, 4], now.v1 / 4, now.v2 / 4, (cand1[:, 1:] - now.last[:, None]).flatten(1, 2)]
        pix, glob = 0, 0
        for anchor, k in ((4, 1), (3, 2)):
            err = (Anchor(c, anchor, *anchor_flows(flows, anchor), self.guard_means).candidates(k)
                   - c[:, 5:6]).abs().mean(2)
            lg = torch.log(err.mean((2, 3), keepdim=True) + 1e-3)  # (B, N_CAND, 1, 1)
            feats += [err * 4, lg.expand_as(err) / 4]
            pix, glob = pix + err / 2, glob + lg / 2
        if self.flow_correction:  # the learned flow borrows the 2-pair flow's context check
            f2 = CANDIDATES.index("flow2")
            pix, glob = torch.cat([pix, pix[:, f2:f2 + 1]], 1), torch.cat([glob, glob[:, f2:f2 + 1]], 1)
        return torch.cat(feats, 1), pix, glob

    def anchor(self, c: torch.Tensor, flows: torch.Tensor) -> Anchor:
        """The candidates' inputs at the last context frame: c (B, 6, C, H, W), flows from `context_flows`."""
        return Anchor(c, 5, flows[:, 0], flows[:, 1], self.guard_means)

    def trunk(self, c: torch.Tensor, flows: torch.Tensor, now: Anchor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything before the 1x1 head -> (U-Net features (B, width, h, w), gate prior inputs (B, 2 n_cand, h, w))
        at the net's resolution. Adapting fine-tunes only what comes after (head and prior scales)."""
        x, pix, glob = self.features(c, flows, now)
        prior = box(pix)
        if self.down > 1:
            x, prior = F.avg_pool2d(x, self.down), F.avg_pool2d(prior, self.down)
        s = self.stem(x)
        y = self.downs(s)
        for blk in self.blocks:
            y = y + blk(y)
        y = F.interpolate(y, size=s.shape[-2:], mode="bilinear", align_corners=False)
        return self.up(torch.cat([s, y], 1)), torch.cat([prior, glob.expand_as(prior)], 1)

    def from_trunk(self, t: torch.Tensor, priors: torch.Tensor, size: tuple[int, int]) -> Gates:
        """-> (weights (B, K, n_cand, H, W) summing to 1 over candidates, synthesis (B, K, C, H, W), flow correction
        (B, 2, H, W) pixels or None) at `size`."""
        b, n = t.shape[0], self.n_cand
        pix, glob = priors.chunk(2, 1)
        scale = self.prior * PRIOR_SCALE
        prior = -(scale[0] * pix + scale[1] * glob)  # (B, n_cand, h, w)
        out = self.head(t)
        y = out[:, :self.horizons * (n + self.channels)].view(b, self.horizons, n + self.channels, *t.shape[-2:])
        y = y + F.pad(prior, (0, 0, 0, 0, 0, self.channels))[:, None]  # the prior enters the gate logits only
        y = torch.cat([y.flatten(1, 2), out[:, self.horizons * (n + self.channels):]], 1)
        if tuple(y.shape[-2:]) != tuple(size):
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        dv = y[:, -2:] if self.flow_correction else None
        y = y[:, :self.horizons * (n + self.channels)].view(b, self.horizons, n + self.channels, *size)
        return torch.softmax(y[:, :, :n], 2), y[:, :, n:], dv

    def gates(self, c: torch.Tensor, flows: torch.Tensor, now: Anchor | None = None) -> Gates:
        """-> (weights (B, K, n_cand, H, W), synthesis (B, K, C, H, W), flow correction or None) at the frames'
        size."""
        return self.from_trunk(*self.trunk(c, flows, now), tuple(c.shape[-2:]))

    def blend(self, now: Anchor, gates: Gates, frames: int) -> torch.Tensor:
        """sum_i weight_i x candidate_i + synthesis per horizon, the candidates from `now` (anchor 5, (B, C, H, W)
        frames); gates at another size are resized to the frames' (the flow correction scaled with them).
        -> (B, frames, C, H, W)."""
        weights, synth, dv = gates
        size = tuple(now.last.shape[-2:])
        if tuple(weights.shape[-2:]) != size:  # gates from a smaller copy of the clip
            b, k = weights.shape[:2]
            ratio = torch.tensor([size[1] / weights.shape[-1], size[0] / weights.shape[-2]])  # (x, y)
            weights = F.interpolate(weights.flatten(1, 2), size=size, mode="bilinear", align_corners=False)
            weights = weights.view(b, k, self.n_cand, *size)
            synth = F.interpolate(synth.flatten(1, 2), size=size, mode="bilinear", align_corners=False).view(b, k, -1, *size)
            if dv is not None:  # pixels of the small copy -> pixels of the clip
                dv = F.interpolate(dv, size=size, mode="bilinear", align_corners=False) * ratio.view(1, 2, 1, 1).to(dv)
        outs = []
        for k in range(1, frames + 1):
            j = min(k, self.horizons) - 1
            cand = now.candidates(k)
            if dv is not None:
                cand = torch.cat([cand, now.learned(k, dv)], 1)
            outs.append((weights[:, j, :, None] * cand).sum(1) + synth[:, j])
        return torch.stack(outs, 1)

    def forward(self, context: torch.Tensor, future: int, targets: torch.Tensor | None = None,
                teacher_mask: torch.Tensor | None = None, return_context: bool = False,
                flows: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T>=6, C, H, W) -> (B, future, C, H, W). `targets`/`teacher_mask` (teacher forcing) do not apply:
        every horizon is predicted from the context at once. `return_context` has no one-step context outputs to
        add, so it returns the future frames too."""
        c = context[:, -CONTEXT:]
        flows = context_flows(c) if flows is None else flows
        now = self.anchor(c, flows)
        return self.blend(now, self.gates(c, flows, now), future)

    @torch.no_grad()
    def predict_hires(self, context: torch.Tensor, future: int, hires: torch.Tensor) -> torch.Tensor:
        """Gates and synthesis from `context` at the model's size, candidates at full size: `hires` (B, 6, C, H', W')
        is the same context at the clip's size; its two anchor flows are measured there. -> (B, future, C, H', W')."""
        c = context[:, -CONTEXT:]
        hi = hires[:, -CONTEXT:]
        g = self.gates(c, context_flows(c))
        now = Anchor(hi, 5, farneback_prior(hi[:, 5], hi[:, 4]), farneback_prior(hi[:, 5], hi[:, 3]), self.guard_means)
        return self.blend(now, g, future).clamp(-1, 1)

    def adapted(self, frames: torch.Tensor, steps: int, lr: float = 5e-4, patience: int = 8, max_windows: int = 8,
                seed: int = 0) -> tuple[TrustNet, dict]:
        """A copy fine-tuned on the clip's own known frames (T, C, H, W), that cannot overfit: every window of 6
        context frames inside them predicts up to 5 frames; the predictions of the *last* known frame are held out,
        the others are trained on (log-MSE). The held-out error is measured before the first step and after every
        step; the copy keeps the weights of the best step (step 0 = this net unchanged) and stops after `patience`
        steps without improvement. Only the 1x1 head and the prior scales are tuned, on cached trunk features and
        candidates of the last `max_windows` windows; the flow correction's channels stay as trained (its candidate
        is computed once). -> (copy, {"steps_run", "best_step", "held_out": [...]})."""
        t = frames.shape[0]
        if t < CONTEXT + 2:
            raise ValueError(f"adapting needs at least {CONTEXT + 2} known frames, got {t}")
        if steps <= 0:
            return self, {"steps_run": 0, "best_step": 0, "held_out": []}
        starts = list(range(max(0, t - CONTEXT - max_windows), t - CONTEXT))
        ctx = torch.stack([frames[s:s + CONTEXT] for s in starts])  # (S, 6, C, H, W)
        last = t - 1
        idx = torch.tensor([[s + CONTEXT + j for j in range(self.horizons)] for s in starts])  # (S, K) frame index
        target = frames[idx.clamp(max=last)]  # (S, K, C, H, W)
        train_m, held_m = (idx < last).float(), (idx == last).float()
        work = copy.deepcopy(self).eval()
        size, hooks = tuple(frames.shape[-2:]), []
        with torch.no_grad():
            flows = context_flows(ctx)
            now = work.anchor(ctx, flows)
            trunk, priors = work.trunk(ctx, flows, now)
            cands = [now.candidates(k) for k in range(1, self.horizons + 1)]  # K x (S, n_cand, C, H, W)
            if self.flow_correction:
                dv0 = work.from_trunk(trunk, priors, size)[2]
                cands = [torch.cat([cd, now.learned(k, dv0)], 1) for k, cd in enumerate(cands, 1)]
                keep = torch.ones_like(work.head.bias)
                keep[-2:] = 0  # the flow correction's head rows get no gradient
                hooks = [work.head.weight.register_hook(lambda g: g * keep.view(-1, 1, 1, 1)),
                         work.head.bias.register_hook(lambda g: g * keep)]
        opt = torch.optim.Adam([*work.head.parameters(), work.prior], lr=lr)

        def errors() -> tuple[torch.Tensor, torch.Tensor]:
            w, synth, _ = work.from_trunk(trunk, priors, size)
            pred = torch.stack([(w[:, k, :, None] * cands[k]).sum(1) + synth[:, k] for k in range(self.horizons)], 1)
            mse = (pred - target).pow(2).mean((2, 3, 4))  # (S, K)
            return (torch.log(mse + 1e-5) * train_m).sum() / train_m.sum(), (mse * held_m).sum() / held_m.sum()

        def train_loss() -> torch.Tensor:
            return errors()[0]

        def held_out() -> float:
            with torch.no_grad():
                return float(errors()[1])

        torch.manual_seed(seed)
        record = keep_best(work, opt, train_loss, held_out, steps, patience)
        for hook in hooks:
            hook.remove()
        return work.eval(), record



def convert_research_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the research TrustNet (/work/research/video/trustnet.py: separate `prior_pix`, `prior_glob`
    scalars, eight candidates with the flow correction) -> this module's keys, for
    `TrustNet(..., flow_correction=True, guard_means=False)`. Every other tensor keeps its name and shape."""
    out = {k: v for k, v in state.items() if k not in ("prior_pix", "prior_glob")}
    if "prior" not in state:
        out["prior"] = torch.stack([state["prior_pix"], state["prior_glob"]]).float() / PRIOR_SCALE
    return out
