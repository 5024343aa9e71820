"""Video predictors (ConvLSTM encoder-forecaster, 3D-conv), video discriminators and the gradient
difference loss. Constructors take plain integers; no training loop, data format or Typer here.

Every predictor has one call: `net(context, future, targets=None, teacher_mask=None)` with context
`(B, Tc, C, H, W)` in [-1, 1] -> `(B, future, C, H, W)`; `future` may exceed the training length
(autoregressive roll-out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("direct", "residual", "warp", "flowprior")


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


@torch.no_grad()
def farneback_prior(cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """Classical motion prior: OpenCV Farneback flow from `cur` back to `prev` (N, C, H, W) in [-1, 1] ->
    (N, 2, H, W) pixels, so that under constant velocity next(p) ~ cur(p + flow(p)). Not differentiable."""
    import cv2
    import numpy as np

    def gray(x: torch.Tensor) -> np.ndarray:
        return ((x.float().mean(0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()

    flows = [cv2.calcOpticalFlowFarneback(gray(c), gray(p), None, 0.5, 3, 15, 3, 5, 1.2, 0)
             for c, p in zip(cur, prev, strict=True)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(cur.device, torch.float32)


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (Shi et al. 2015, "Convolutional LSTM Network"), as OpenSTL's without layer norm, but
    with the input and hidden convolutions fused into one convolution over [x, h] (same maths, one kernel):
    gates i, f, g, o in that order, no bias, forget-gate bias +1."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 5):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.gates(torch.cat([x, h], 1))  # (B, 4*hidden, h, w)
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMPredictor(nn.Module):
    """Stacked ConvLSTM encoder-forecaster on patched frames (OpenSTL's ConvLSTM layout).

    Frames (B, T, C, H, W) are patched to (C*p*p, H/p, W/p); each step feeds one frame through `layers`
    cells and a 1x1 head predicts the next frame. Heads: "direct" (OpenSTL: the frame itself), "residual"
    (last frame + change), "warp" (last frame warped by a predicted flow at 1/p resolution, plus a change),
    "flowprior" (as warp, the flow being a learned correction to a Farneback flow of the last two input frames,
    held constant over the future: it starts as the flow-extrapolation baseline and learns what that misses).
    During the future steps the input is the previous prediction, or the ground truth where `teacher_mask`
    (B, future-1) is 1 (scheduled sampling, Bengio et al. 2015).
    """

    def __init__(self, channels: int = 1, hidden: int = 64, layers: int = 2, kernel: int = 5, patch: int = 4,
                 head: str = "warp"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head={head!r}: expected one of {', '.join(HEADS)}")
        self.channels, self.patch, self.head_kind, self.hidden = channels, patch, head, hidden
        pc = channels * patch * patch
        self.cells = nn.ModuleList(ConvLSTMCell(pc if i == 0 else hidden, hidden, kernel) for i in range(layers))
        self.head = nn.Conv2d(hidden, pc, 1, bias=False)
        if head in ("warp", "flowprior"):
            self.flow = nn.Conv2d(hidden, 2, 1)
            nn.init.zeros_(self.flow.weight)
            nn.init.zeros_(self.flow.bias)
        if head != "direct":  # start as copy-last-frame
            nn.init.zeros_(self.head.weight)

    def _step(self, frame: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]],
              parts: dict | None = None, prior: torch.Tensor | None = None) -> torch.Tensor:
        x = patchify(frame, self.patch)  # (B, C*p*p, H/p, W/p)
        for i, cell in enumerate(self.cells):
            state[i] = cell(x, *state[i])
            x = state[i][0]
        out = unpatchify(self.head(x), self.patch)  # (B, C, H, W)
        if parts is not None:
            parts["delta"] = out
        if self.head_kind == "residual":
            out = frame + out
        elif self.head_kind in ("warp", "flowprior"):
            flow = F.interpolate(self.flow(x), scale_factor=self.patch, mode="bilinear", align_corners=False)
            flow = flow * self.patch if prior is None else flow * self.patch + prior.to(flow.dtype)
            if parts is not None:
                parts["flow"] = flow
            out = warp(frame, flow) + out
        return out

    def _priors(self, context: torch.Tensor) -> list[torch.Tensor | None]:
        """Per context step t: the Farneback prior from frame t back to t-1 (None without the flowprior head)."""
        if self.head_kind != "flowprior":
            return [None] * context.shape[1]
        zero = context.new_zeros(context.shape[0], 2, *context.shape[-2:])
        return [zero] + [farneback_prior(context[:, t], context[:, t - 1]) for t in range(1, context.shape[1])]

    @torch.no_grad()
    def predict_hires(self, context: torch.Tensor, future: int, last_hires: torch.Tensor) -> torch.Tensor:
        """Roll out at the model's resolution and replay each step's motion at a higher resolution: the last
        context frame `last_hires` (B, C, H', W') is warped by the upsampled flows and gets the upsampled
        changes, so detail finer than the model's resolution is moved, not blurred away. -> (B, future, C, H', W')."""
        b, tc = context.shape[:2]
        size = last_hires.shape[-2:]
        sy, sx = size[0] / context.shape[-2], size[1] / context.shape[-1]
        zeros = context.new_zeros(b, self.hidden, context.shape[-2] // self.patch, context.shape[-1] // self.patch)
        state = [(zeros, zeros) for _ in self.cells]
        priors = self._priors(context)
        for t in range(tc - 1):
            self._step(context[:, t], state, prior=priors[t])
        frame, hi, outs = context[:, -1], last_hires, []
        for _ in range(future):
            parts: dict = {}
            frame = self._step(frame, state, parts, prior=priors[-1])
            delta = F.interpolate(parts["delta"], size=size, mode="bilinear", align_corners=False)
            if self.head_kind == "direct":
                hi = F.interpolate(frame, size=size, mode="bilinear", align_corners=False)
            elif self.head_kind == "residual":
                hi = hi + delta
            else:
                flow = F.interpolate(parts["flow"], size=size, mode="bilinear", align_corners=False)
                flow = flow * torch.tensor([sx, sy], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
                hi = warp(hi, flow) + delta
            outs.append(hi.clamp(-1, 1))
        return torch.stack(outs, 1)

    def forward(self, context: torch.Tensor, future: int, targets: torch.Tensor | None = None,
                teacher_mask: torch.Tensor | None = None, return_context: bool = False) -> torch.Tensor:
        b, tc, _, h, w = context.shape  # (B, Tc, C, H, W)
        if h % self.patch or w % self.patch:
            raise ValueError(f"frame size {h}x{w} is not divisible by patch={self.patch}")
        zeros = context.new_zeros(b, self.hidden, h // self.patch, w // self.patch)
        state = [(zeros, zeros) for _ in self.cells]
        outs, priors = [], self._priors(context)
        for t in range(tc):
            outs.append(self._step(context[:, t], state, prior=priors[t]))
        for t in range(future - 1):
            frame = outs[-1]
            if targets is not None and teacher_mask is not None:
                m = teacher_mask[:, t].view(b, 1, 1, 1).to(frame.dtype)
                frame = m * targets[:, t] + (1 - m) * frame
            outs.append(self._step(frame, state, prior=priors[-1]))  # constant velocity
        y = torch.stack(outs, 1)  # (B, Tc + future - 1, C, H, W): y[:, k] predicts frame k+1
        return y if return_context else y[:, tc - 1:]


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
                    kernel: int, patch: int, head: str) -> nn.Module:
    """The predictor named by `kind` ("convlstm" or "conv3d") from plain integers."""
    if kind == "convlstm":
        return ConvLSTMPredictor(channels, hidden, layers, kernel, patch, head)
    if kind == "conv3d":
        return Conv3dPredictor(channels, context, future, hidden, layers, patch)
    raise ValueError(f"predictor {kind!r}: expected convlstm or conv3d")
