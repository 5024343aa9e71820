"""Video predictors (ConvLSTM encoder-forecaster, 3D-conv; TrustNet in trust.py), video discriminators and the
gradient difference loss. Constructors take plain integers; no training loop, data format or Typer here.

Every predictor has one call: `net(context, future, targets=None, teacher_mask=None)` with context
`(B, Tc, C, H, W)` in [-1, 1] -> `(B, future, C, H, W)`; `future` may exceed the training length
(autoregressive roll-out).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("direct", "residual", "warp", "flowprior")
PRIOR_PAIRS = 2  # frame pairs averaged by the flowprior head's motion prior


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C*p*p, H/p, W/p), channel order (C, row, col) as `pixel_unshuffle`."""
    return x if p == 1 else F.pixel_unshuffle(x, p)


def unpatchify(x: torch.Tensor, p: int) -> torch.Tensor:
    return x if p == 1 else F.pixel_shuffle(x, p)


def warp(frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp `frame` (N, C, H, W) by `flow` (N, 2, H, W) in pixels (dx, dy): out(p) = frame(p + flow(p)),
    bilinear, border padding."""
    n, _, h, w = frame.shape
    ys = torch.linspace(-1, 1, h, device=frame.device, dtype=frame.dtype)
    xs = torch.linspace(-1, 1, w, device=frame.device, dtype=frame.dtype)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=frame.device, dtype=frame.dtype)
    grid = base + flow.permute(0, 2, 3, 1) * scale  # (N, H, W, 2)
    return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=True)


def gray_uint8(x: torch.Tensor):
    """(N, C, H, W) in [-1, 1] -> (N, H, W) uint8 luma (ITU-R BT.601 as OpenCV's RGB2GRAY; 1 channel as is)."""
    import cv2
    import numpy as np

    from .data import to_uint8

    u8 = to_uint8(x)  # (N, H, W, C)
    if u8.shape[-1] == 1:
        return u8[..., 0]
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in u8])


FLOW_METHODS = ("farneback", "dis")
DIS_MIN_SIDE = 32  # OpenCV's DIS raises on frames of a few pixels and crashed the process on 9-14 px tall ones


@torch.no_grad()
def optical_flow(cur: torch.Tensor, prev: torch.Tensor, method: str = "farneback") -> torch.Tensor:
    """Classical dense flow from `cur` back to `prev` (N, C, H, W) in [-1, 1] -> (N, 2, H, W) pixels, so that under
    constant velocity the frame k steps ahead is ~ cur(p + k * flow(p)). `method`: "farneback" (OpenCV Farneback,
    the baselines' and the nets' motion prior) or "dis" (OpenCV DIS, Kroeger et al. 2016, medium preset: a patch
    search with variational refinement, sharper on textured motion; frames with a side under DIS_MIN_SIDE get
    Farneback's flow instead). Not differentiable."""
    import cv2
    import numpy as np

    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}: expected one of {', '.join(FLOW_METHODS)}")
    if min(cur.shape[-2:]) < DIS_MIN_SIDE:
        method = "farneback"
    memo = _FLOW_MEMO.get()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def flow(c, p):
        key = None if memo is None else \
            hashlib.blake2b(method.encode() + c.tobytes() + p.tobytes() + repr(c.shape).encode(),
                            digest_size=16).digest()
        if key is None or key not in memo:
            f = dis.calc(c, p, None) if dis is not None else \
                cv2.calcOpticalFlowFarneback(c, p, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            if key is None:
                return f
            memo[key] = f
        return memo[key]

    flows = [flow(c, p) for c, p in zip(gray_uint8(cur), gray_uint8(prev), strict=True)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(cur.device, torch.float32)


def farneback_prior(cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """`optical_flow` with Farneback: the motion prior of the nets and the flow baselines."""
    return optical_flow(cur, prev, "farneback")


_FLOW_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar("farneback_memo", default=None)


@contextlib.contextmanager
def flow_memo() -> Iterator[None]:
    """Inside this block `optical_flow` computes each distinct (method, cur, prev) luma pair once and reuses it
    (keyed on the uint8 images' bytes, so only identical frames share a flow): the overlapping windows of one clip
    (the guard's backtest) share most of their frame pairs. Outside it nothing is kept."""
    token = _FLOW_MEMO.set({})
    try:
        yield
    finally:
        _FLOW_MEMO.reset(token)


def motion_prior(frames: torch.Tensor, pairs: int = 2, method: str = "farneback") -> torch.Tensor:
    """Flow (`optical_flow`'s `method`) of the last frame of `frames` (B, T, C, H, W), per frame step: the mean over
    j = 1..pairs (as far as T allows) of flow(last -> frame[-1-j]) / j. Under constant velocity every term estimates
    the same motion; averaging them halves the estimator's noise. (B, 2, H, W) pixels per frame."""
    n = min(pairs, frames.shape[1] - 1)
    if n < 1:
        return frames.new_zeros(frames.shape[0], 2, *frames.shape[-2:]).float()
    return sum(optical_flow(frames[:, -1], frames[:, -1 - j], method) / j for j in range(1, n + 1)) / n


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (Shi et al. 2015, "Convolutional LSTM Network"), as OpenSTL's without layer norm, but
    with the input and hidden convolutions fused into one convolution over [x, h] (same maths, one kernel):
    gates i, f, g, o in that order, no bias, a constant forget-gate bias `forget_bias` (+1 here; OpenSTL's model
    file adds none: `forget_bias=0` is its cell exactly)."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 5, forget_bias: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.gates(torch.cat([x, h], 1))  # (B, 4*hidden, h, w)
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMPredictor(nn.Module):
    """Stacked ConvLSTM encoder-forecaster on patched frames (OpenSTL's ConvLSTM layout).

    Frames (B, T, C, H, W) are patched to (C*p*p, H/p, W/p); each step feeds one frame through `layers`
    cells and a 1x1 head predicts the next frame. Heads: "direct" (OpenSTL: the frame itself), "residual"
    (last frame + change), "warp" (the last context frame warped by a predicted flow at 1/p resolution, plus a
    change), "flowprior" (as warp, the flow being a learned correction to a Farneback flow of the last two input
    frames, which is also an input; the motion is held constant over the future, so the untrained head is the
    flow-extrapolation baseline exactly and training learns what that misses).
    Future frames are warped from the last context frame by the accumulated flow (one resampling, so no blur
    builds up over the roll-out). During the future steps the net's input is the previous prediction, or the
    ground truth where `teacher_mask` (B, future-1) is 1 (scheduled sampling, Bengio et al. 2015).
    `forget_bias`: the cells' constant forget-gate bias (0: OpenSTL's ConvLSTM exactly, as benchmarks compare).
    """

    def __init__(self, channels: int = 1, hidden: int = 64, layers: int = 2, kernel: int = 5, patch: int = 4,
                 head: str = "warp", forget_bias: float = 1.0):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head={head!r}: expected one of {', '.join(HEADS)}")
        self.channels, self.patch, self.head_kind, self.hidden = channels, patch, head, hidden
        pc = channels * patch * patch
        first = pc + (2 * patch * patch if head == "flowprior" else 0)
        self.cells = nn.ModuleList(ConvLSTMCell(first if i == 0 else hidden, hidden, kernel, forget_bias)
                                   for i in range(layers))
        self.head = nn.Conv2d(hidden, pc, 1, bias=False)
        if head in ("warp", "flowprior"):
            self.flow = nn.Conv2d(hidden, 2, 1)
            nn.init.zeros_(self.flow.weight)
            nn.init.zeros_(self.flow.bias)
        if head != "direct":  # start as copy-last-frame (warp) or flow extrapolation (flowprior)
            nn.init.zeros_(self.head.weight)

    def _step(self, frame: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]], prior: torch.Tensor | None,
              anchor: torch.Tensor, moved: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        """One step: `frame` in, the next frame out. Warp heads resample `anchor` by `moved` (the flow already
        accumulated since the anchor, None at its first step) + this step's flow. -> (frame, parts)."""
        x = frame if prior is None else torch.cat([frame, prior.to(frame.dtype) / self.patch], 1)
        x = patchify(x, self.patch)  # (B, C*p*p [+ 2*p*p], H/p, W/p)
        for i, cell in enumerate(self.cells):
            state[i] = cell(x, *state[i])
            x = state[i][0]
        delta = unpatchify(self.head(x), self.patch)  # (B, C, H, W)
        parts = {"delta": delta}
        if self.head_kind == "direct":
            return delta, parts
        if self.head_kind == "residual":
            return frame + delta, parts
        flow = F.interpolate(self.flow(x), scale_factor=self.patch, mode="bilinear", align_corners=False) * self.patch
        if prior is not None:
            flow = flow + prior.to(flow.dtype)
            parts["prior"] = prior
        if moved is not None:
            flow = flow + moved
        parts["flow"] = flow
        return warp(anchor, flow) + delta, parts

    def _priors(self, context: torch.Tensor) -> list[torch.Tensor | None]:
        """Per context step t: the motion prior of frame t (`motion_prior` over frames ..t, zero at t=0; None
        without the flowprior head)."""
        if self.head_kind != "flowprior":
            return [None] * context.shape[1]
        return [motion_prior(context[:, :t + 1], PRIOR_PAIRS) for t in range(context.shape[1])]

    def _roll(self, context: torch.Tensor, future: int, targets: torch.Tensor | None = None,
              teacher_mask: torch.Tensor | None = None):
        """Yield (frame, parts) for the one-step predictions of context frames 1..Tc-1, then the `future` frames."""
        b, tc, _, h, w = context.shape  # (B, Tc, C, H, W)
        if h % self.patch or w % self.patch:
            raise ValueError(f"frame size {h}x{w} is not divisible by patch={self.patch}")
        zeros = context.new_zeros(b, self.hidden, h // self.patch, w // self.patch)
        state = [(zeros, zeros) for _ in self.cells]
        priors = self._priors(context)
        for t in range(tc - 1):
            yield self._step(context[:, t], state, priors[t], context[:, t], None)
        anchor, frame, moved = context[:, -1], context[:, -1], None
        for t in range(future):
            if t > 0 and targets is not None and teacher_mask is not None:
                m = teacher_mask[:, t - 1].view(b, 1, 1, 1).to(frame.dtype)
                frame = m * targets[:, t - 1] + (1 - m) * frame
            frame, parts = self._step(frame, state, priors[-1], anchor, moved)  # constant velocity
            moved = parts.get("flow")
            yield frame, parts

    @torch.no_grad()
    def predict_hires(self, context: torch.Tensor, future: int, hires: torch.Tensor) -> torch.Tensor:
        """Roll out at the model's resolution and replay the motion at a higher resolution: the last context
        frame of `hires` (B, T', C, H', W') (the same clip's last T' >= 1 context frames at full size) is warped
        by the upsampled flows and gets the upsampled changes, so detail finer than the model's resolution is
        moved, not blurred away. With the flowprior head the Farneback part of the flow is measured on the
        full-size frames. -> (B, future, C, H', W')."""
        size = hires.shape[-2:]
        sy, sx = size[0] / context.shape[-2], size[1] / context.shape[-1]
        scale = torch.tensor([sx, sy], dtype=context.dtype, device=context.device).view(1, 2, 1, 1)
        last = hires[:, -1]
        prior_hi = None
        if self.head_kind == "flowprior" and hires.shape[1] >= 2 and context.shape[1] >= 2:
            n = min(hires.shape[1], context.shape[1], PRIOR_PAIRS + 1)
            prior_hi = motion_prior(hires[:, -n:], PRIOR_PAIRS)

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

        hi, outs = last, []
        for k, (frame, parts) in enumerate(list(self._roll(context, future))[context.shape[1] - 1:], 1):
            if self.head_kind == "direct":
                hi = up(frame)
            elif self.head_kind == "residual":
                hi = hi + up(parts["delta"])
            else:
                flow = parts["flow"]
                if prior_hi is not None:  # swap the low-resolution Farneback flow for the full-size one
                    flow = up(flow - k * parts["prior"]) * scale + k * prior_hi
                else:
                    flow = up(flow) * scale
                hi = warp(last, flow) + up(parts["delta"])
            outs.append(hi.clamp(-1, 1))
        return torch.stack(outs, 1)

    def forward(self, context: torch.Tensor, future: int, targets: torch.Tensor | None = None,
                teacher_mask: torch.Tensor | None = None, return_context: bool = False) -> torch.Tensor:
        outs = [frame for frame, _ in self._roll(context, future, targets, teacher_mask)]
        y = torch.stack(outs, 1)  # (B, Tc - 1 + future, C, H, W): y[:, k] predicts frame k+1
        return y if return_context else y[:, context.shape[1] - 1:]


class Conv3dPredictor(nn.Module):
    """A 3D-conv predictor: patched context (B, Tc, C, H, W) -> residual 3D conv blocks -> all `chunk`
    future frames at once (as a change on the last frame). Longer horizons roll out chunk by chunk,
    feeding predictions back as context."""

    def __init__(self, channels: int = 1, context: int = 10, chunk: int = 10, width: int = 64, blocks: int = 3,
                 patch: int = 4):
        super().__init__()
        self.channels, self.context_len, self.chunk, self.patch = channels, context, chunk, patch
        pc = channels * patch * patch
        self.stem = nn.Conv3d(pc, width, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv3d(width, width, 3, padding=1), nn.GELU(),
                                                  nn.Conv3d(width, width, 3, padding=1)) for _ in range(blocks))
        self.out = nn.Conv2d(width * context, pc * chunk, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _chunk(self, ctx: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = ctx.shape  # (B, Tc, C, H, W)
        x = patchify(ctx.reshape(b * t, c, h, w), self.patch)
        x = x.view(b, t, *x.shape[1:]).transpose(1, 2)  # (B, C*p*p, Tc, h, w)
        x = F.gelu(self.stem(x))
        for blk in self.blocks:
            x = x + blk(x)
        x = self.out(x.flatten(1, 2))  # (B, chunk*C*p*p, h, w)
        x = unpatchify(x.reshape(b * self.chunk, -1, *x.shape[-2:]), self.patch)
        return ctx[:, -1:] + x.view(b, self.chunk, c, h, w)  # (B, chunk, C, H, W)

    def forward(self, context: torch.Tensor, future: int, targets: torch.Tensor | None = None,
                teacher_mask: torch.Tensor | None = None, return_context: bool = False) -> torch.Tensor:
        if context.shape[1] < self.context_len:
            raise ValueError(f"context of {context.shape[1]} frames: this 3D-conv predictor needs {self.context_len}")
        ctx, outs, n = context[:, -self.context_len:], [], 0
        while n < future:
            y = self._chunk(ctx)
            outs.append(y)
            n += self.chunk
            ctx = torch.cat([ctx, y], 1)[:, -self.context_len:]
        return torch.cat(outs, 1)[:, :future]


class VideoDiscriminator(nn.Module):
    """3D-conv PatchGAN critic on a clip (B, T, C, H, W) (context followed by prediction) -> logits
    (B, 1, T', H', W'). Wrap with `engine.stabilizers.apply_spectral_norm` (the task does)."""

    def __init__(self, channels: int = 1, width: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        c = channels
        for i in range(layers):
            stride = (2 if i > 0 else 1, 2, 2)
            mods += [nn.Conv3d(c, width * 2**i, (3, 4, 4), stride, (1, 1, 1)), nn.LeakyReLU(0.2)]
            c = width * 2**i
        mods.append(nn.Conv3d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip.transpose(1, 2))  # (B, C, T, H, W) -> (B, 1, T', H', W')


class FrameDiscriminator(nn.Module):
    """2D PatchGAN critic applied to every frame: (B, T, C, H, W) -> (B*T, 1, H', W')."""

    def __init__(self, channels: int = 1, width: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = []
        c = channels
        for i in range(layers):
            mods += [nn.Conv2d(c, width * 2**i, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = width * 2**i
        mods.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip.flatten(0, 1))


def gradient_difference_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016, "Deep multi-scale video prediction beyond mean square
    error"): mean over pixels of ||dy(Y)| - |dy(Y_hat)||^alpha + ||dx(Y)| - |dx(Y_hat)||^alpha on (..., H, W).
    Zero when the prediction's edges match the target's; penalises the blur an L2 loss favours."""
    if pred.shape != target.shape:
        raise ValueError(f"gradient_difference_loss: shapes {tuple(pred.shape)} and {tuple(target.shape)} differ")
    dy_p, dy_t = (pred[..., 1:, :] - pred[..., :-1, :]).abs(), (target[..., 1:, :] - target[..., :-1, :]).abs()
    dx_p, dx_t = (pred[..., :, 1:] - pred[..., :, :-1]).abs(), (target[..., :, 1:] - target[..., :, :-1]).abs()
    return (dy_t - dy_p).abs().pow(alpha).mean() + (dx_t - dx_p).abs().pow(alpha).mean()


def build_predictor(kind: str, *, channels: int, context: int, future: int, hidden: int, layers: int,
                    kernel: int, patch: int, head: str, flow_correction: bool = False,
                    guard_means: bool = True) -> nn.Module:
    """The predictor named by `kind` ("convlstm", "conv3d" or "trustnet") from plain integers. TrustNet takes
    `hidden` as its U-Net width, `layers` as its residual blocks, `future` as its horizons, and the two switches
    (see trust.TrustNet)."""
    if kind == "trustnet":
        from .trust import TrustNet  # trust builds on warp and farneback_prior from this module

        return TrustNet(channels, hidden, future, blocks=layers, flow_correction=flow_correction,
                        guard_means=guard_means)
    if kind == "convlstm":
        return ConvLSTMPredictor(channels, hidden, layers, kernel, patch, head)
    if kind == "conv3d":
        return Conv3dPredictor(channels, context, future, hidden, layers, patch)
    raise ValueError(f"predictor {kind!r}: expected convlstm, conv3d or trustnet")
