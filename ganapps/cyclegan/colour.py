"""The colour pieces of the fast translation recipe: a global colour/tone generator branch applied to the input's
own pixels (so it keeps every detail and starts as the exact identity), a critic that sees only an image's colour
statistics, the PatchGAN + colour critic pair, and the sliced 1-Wasserstein colour-distribution loss.
Imports torch only (no engine, no training code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601


def _interp_knots(u: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear curves through K+1 equally spaced knots on [0, 1], extended linearly outside.
    u (B, C, H, W), knots (B, C, K+1) -> (B, C, H, W)."""
    k = knots.shape[-1] - 1
    t = u * k
    i = t.detach().floor().clamp(0, k - 1)  # segment of each value (B, C, H, W)
    frac = t - i
    flat_i = i.long().flatten(2)  # (B, C, HW)
    lo = torch.gather(knots, 2, flat_i).view_as(u)
    hi = torch.gather(knots, 2, flat_i + 1).view_as(u)
    return lo + (hi - lo) * frac


def _area_weights(n: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """(size, n): row i averages input positions floor(i n / size) .. ceil((i + 1) n / size) - 1, the windows of
    adaptive average pooling, built from n at run time."""
    i = torch.arange(size, device=like.device)[:, None]  # (size, 1)
    j = torch.arange(n, device=like.device)[None, :]  # (1, n)
    inside = (j >= i * n // size) & (j < ((i + 1) * n + size - 1) // size)
    w = inside.to(like.dtype)
    return w / w.sum(1, keepdim=True)


def area_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """F.interpolate(x, (size, size), mode="area") as two matrix products, for graphs that take any H, W.
    (B, C, H, W) -> (B, C, size, size)."""
    h, w = x.shape[-2:]
    return _area_weights(h, size, x) @ x @ _area_weights(w, size, x).T


class ColourToneGenerator(nn.Module):
    """A global colour/tone translator, optionally plus a local `detail` residual net.
    (B, 3, H, W) in [-1, 1] -> (B, 3, H, W) (not clamped: the Translator clamps).

    Per-image parameters are predicted from a `stat_size`^2 area-resized copy of the input (4 stride-2 convs of
    widths feat, 2 feat, 4 feat, 4 feat with LeakyReLU, global mean pool, concatenated with the copy's channel
    means and standard deviations, MLP of `hidden` units) and applied to the input's own pixels in float32:
      1. monotone per-channel curves on u = (x + 1) / 2: `knots` linear segments, a free black level and
         softplus increments, every segment starting at slope 1;
      2. a colour matrix (I + dM) and bias;
      3. split toning: an RGB offset at each of `tone_knots` + 1 luminance knots, interpolated by each pixel's
         luminance (shadow / highlight tints that per-channel curves cannot make).
    `curve_gain` scales the head's curve-slope outputs (softplus(gain p + s0)): Adam moves a weight by about
    the learning rate per step whatever the gradient's size; at gain 1 a segment's slope changes by about 0.1%
    per 1e-3 change of p, so a tone curve whose mid-tones need slope 3 (p + 1.2) takes over 1,000 steps at lr
    1e-3 to form; at gain 8 p needs to move 1.2 / 8, about 150 steps (the effect on the colour tasks is measured
    in docs/cyclegan.md, "The colour recipe").
    The MLP's last layer starts at zero, so the branch starts as the exact identity, and being a per-pixel
    function of the input it cannot blur or add a checkerboard. With `detail` (a net whose output starts at 0,
    e.g. `ResnetGenerator(..., residual=True)`), y = colour(x) + detail(x): local edits on top.
    """

    def __init__(self, feat: int = 16, hidden: int = 64, knots: int = 16, tone_knots: int = 8, stat_size: int = 64,
                 detail: nn.Module | None = None, curve_gain: float = 1.0):
        super().__init__()
        self.knots, self.tone_knots, self.stat_size, self.curve_gain = knots, tone_knots, stat_size, curve_gain
        f = feat
        self.enc = nn.Sequential(
            nn.Conv2d(3, f, 3, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(f, 2 * f, 3, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * f, 4 * f, 3, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * f, 4 * f, 3, 2, 1), nn.LeakyReLU(0.2, True))
        self.n_params = 3 * (knots + 1) + 12 + 3 * (tone_knots + 1)
        self.head = nn.Sequential(nn.Linear(4 * f + 6, hidden), nn.LeakyReLU(0.2, True),
                                  nn.Linear(hidden, self.n_params))
        # softplus(s0) = 1 / knots: every curve segment has slope 1 while the head outputs 0
        self.register_buffer("s0", torch.log(torch.expm1(torch.tensor(1.0 / knots))), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.detail = detail
        self.size_multiple = getattr(detail, "size_multiple", 1)
        self.reset_identity()

    def reset_identity(self) -> None:
        """Zero the parameter head's last layer (and the detail net's last layer): the identity map again."""
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        if self.detail is not None and hasattr(self.detail, "reset_identity"):
            self.detail.reset_identity()

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, n_params) per-image parameters."""
        # always resized (the identity at S x S): a branch on the input's size would be fixed by the exporters
        if torch.compiler.is_exporting():  # torch.export (ONNX) fixes adaptive pooling's windows to the traced size
            small = area_resize(x, self.stat_size)
        else:
            small = F.interpolate(x, size=(self.stat_size, self.stat_size), mode="area")  # (B, 3, S, S)
        h = self.enc(small).mean(dim=(2, 3))  # (B, 4 feat)
        stats = torch.cat([small.mean(dim=(2, 3)), small.std(dim=(2, 3))], 1)  # (B, 6)
        return self.head(torch.cat([h, stats.to(h.dtype)], 1))

    def apply_params(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The curves, matrix and split toning of `p` (B, n_params) on x (B, 3, H, W), in float32."""
        with torch.autocast(x.device.type, enabled=False):
            p, x = p.float(), x.float()
            b, k, tk = x.shape[0], self.knots, self.tone_knots
            u = (x + 1) / 2  # (B, 3, H, W) in [0, 1]
            c0 = p[:, :3].view(b, 3, 1)
            inc = F.softplus(p[:, 3:3 + 3 * k].view(b, 3, k) * self.curve_gain + self.s0)
            u = _interp_knots(u, torch.cat([c0, c0 + inc.cumsum(2)], 2))  # knots (B, 3, K+1)
            o = 3 + 3 * k
            m = torch.eye(3, device=x.device) + p[:, o:o + 9].view(b, 3, 3)
            u = torch.einsum("bij,bjhw->bihw", m, u) + p[:, o + 9:o + 12].view(b, 3, 1, 1)
            o += 12
            lum = (u * self.luma).sum(1, keepdim=True).clamp(0, 1)  # (B, 1, H, W)
            offsets = p[:, o:o + 3 * (tk + 1)].view(b, 3, tk + 1)
            u = u + _interp_knots(lum.expand(-1, 3, -1, -1), offsets)
            return u * 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.apply_params(x, self.params(x))  # (B, 3, H, W) float32
        if self.detail is not None:
            y = y + self.detail(x).float()
        return y


class ColourStatsDiscriminator(nn.Module):
    """A critic that sees only an image's colour statistics: channel means (3), standard deviations (3),
    correlations (3), and soft histograms (`bins` Gaussian bins on [-1, 1]) of R, G, B and luminance, through
    an MLP (LeakyReLU 0.2). Invariant to any rearrangement of the pixels by construction.
    (B, 3, H, W) in [-1, 1] -> (B, 1) raw scores."""

    def __init__(self, bins: int = 16, hidden: int = 128):
        super().__init__()
        self.bins = bins
        self.register_buffer("centres", torch.linspace(-1, 1, bins), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1), persistent=False)
        self.net = nn.Sequential(nn.Linear(9 + 4 * bins, hidden), nn.LeakyReLU(0.2, True),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True), nn.Linear(hidden, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 9 + 4 bins) colour statistics, float32."""
        with torch.autocast(x.device.type, enabled=False):
            flat = x.float().clamp(-1.5, 1.5).flatten(2)  # (B, 3, N)
            mean = flat.mean(2)
            cen = flat - mean[..., None]
            std = cen.pow(2).mean(2).add(1e-6).sqrt()
            cov = torch.einsum("bin,bjn->bij", cen, cen) / flat.shape[2]
            corr = cov / (std[:, :, None] * std[:, None, :])
            chans = torch.cat([flat, (flat * self.luma).sum(1, keepdim=True)], 1)  # (B, 4, N)
            width = 2.0 / (self.bins - 1)
            w = torch.exp(-0.5 * ((chans[..., None] - self.centres) / width) ** 2)  # (B, 4, N, bins)
            hist = w.mean(2) * 4  # (B, 4, bins)
            return torch.cat([mean, std, corr[:, [0, 0, 1], [1, 2, 2]], hist.flatten(1)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x))  # (B, 1)


class DualDiscriminator(nn.Module):
    """A structure critic (PatchGAN) beside a colour-statistics critic. Returns one (B, 2 N) tensor: the patch
    scores (N per image) then the colour score repeated N times, so the mean of any elementwise GAN loss over
    it is the average of the two critics' losses, each with weight 1/2 (gradients of the repeats add up)."""

    def __init__(self, patch: nn.Module, colour: nn.Module):
        super().__init__()
        self.patch, self.colour = patch, colour

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch(x).flatten(1)  # (B, N)
        c = self.colour(x)  # (B, 1)
        return torch.cat([p, c.to(p.dtype).expand(-1, p.shape[1])], 1)  # (B, 2N)


def _some_pixels(x: torch.Tensor, n: int | None) -> torch.Tensor:
    """(B, C, H, W) -> (C, B * P): every pixel of every image, or n random positions of each (the same n for
    every image; torch's global RNG) when an image has more than n."""
    flat = x.float().flatten(2)  # (B, C, HW)
    if n is not None and flat.shape[2] > n:
        flat = flat[..., torch.randperm(flat.shape[2])[:n].to(flat.device)]
    return flat.transpose(0, 1).reshape(x.shape[1], -1)


def sliced_w1(x: torch.Tensor, ref: torch.Tensor, directions: int = 32,
              earlier: torch.Tensor | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Sliced 1-Wasserstein distance between the pixel colours of x (B, C, H, W) and of ref (M, C, H', W')
    (Rabin et al. 2011, "Wasserstein Barycenter and its Application to Texture Mixing"; the N-d colour
    transfer of Pitie et al. 2005): both pixel sets projected on `directions` random unit vectors (torch's
    global RNG), sorted, and the mean |difference| of the sorted projections, ref resampled to x's pixel count
    by quantile. 0 for equal colour sets whatever the pixels' order; gradients flow into x. Scalar, float32.
    `earlier` (K, C, H, W), same size as x's images: more images of x's set (not differentiated), pooled with x;
    the distance is then scaled by (B + K) / B, so each of x's pixels gets the gradient it would alone.
    `max_pixels`: images with more pixels than that are represented by that many random pixels each (the cost
    of the sorts stays that of a 64x64 image at 4096 whatever the crop size)."""
    d = torch.randn(directions, x.shape[1]).to(x.device)
    d = d / d.norm(dim=1, keepdim=True)
    with torch.autocast(x.device.type, enabled=False):
        scale = 1.0
        if earlier is not None:
            scale = (x.shape[0] + earlier.shape[0]) / x.shape[0]
            x = torch.cat([x.float(), earlier.detach().float().to(x.device)])
        px = _some_pixels(x, max_pixels)  # (C, N)
        pr = _some_pixels(ref, max_pixels).to(px.device)  # (C, M)
        sx = (d @ px).sort(dim=1).values  # (directions, N)
        sr = (d @ pr).sort(dim=1).values  # (directions, M)
        n, m = sx.shape[1], sr.shape[1]
        idx = ((torch.arange(n, device=px.device) + 0.5) * m / n).long().clamp(max=m - 1)
        return (sx - sr[:, idx]).abs().mean() * scale
