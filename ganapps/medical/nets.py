"""Generators and discriminator for single-channel slices. Constructors take plain integers.

- `DCGANGenerator`: transposed convolutions with batch norm (Radford et al. 2016).
- `ResGenerator`: residual up-sampling blocks (Miyato et al. 2018 / BigGAN-style, without attention).
- `SPADEGenerator`: residual blocks whose normalisation is modulated by a label map (Park et al. 2019, SPADE):
  label map (+ noise) -> image, for tissue maps and lesion masks.
- `Discriminator`: residual down-sampling (spectral norm applied by the task), optional minibatch std,
  a projection head for slice-position conditioning (Miyato & Koyama 2018) and extra input channels for a
  label map (pix2pix-style conditional D).
Every generator carries `spacing_mm` (3,), the training stack's voxel size, `position_range` (2,), the first and
last training slice position, `position_step` (), one slice in position units, and `intensity_quantiles`
(2, KNOTS): its own output's and the training slices' intensity quantiles (NaN until known; see `calibrated`),
saved with its weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.stabilizers import MinibatchStdDev

POSITION_FEATURES = 9  # p, sin/cos(2^k pi p) for k = 0..3
KNOTS = 33  # quantile levels 0, 1/32, ..., 1 of the intensity calibration


def intensity_quantiles(images: torch.Tensor, knots: int = KNOTS, max_values: int = 1 << 22) -> torch.Tensor:
    """(knots,) quantiles at levels 0, 1/(knots-1), ..., 1 of all pixel values of `images` (any shape), from at
    most `max_values` of them (drawn with a fixed seed when there are more)."""
    v = images.detach().float().flatten().cpu()
    if len(v) > max_values:
        v = v[torch.randint(len(v), (max_values,), generator=torch.Generator().manual_seed(0))]
    v = v.sort().values
    return v[(torch.linspace(0, 1, knots) * (len(v) - 1)).round().long()]


def map_intensities(x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, graph: bool = False) -> torch.Tensor:
    """The monotone piecewise-linear map taking the knots `src` (K,) (non-decreasing) to `dst` (K,), applied to x
    (any shape); values beyond the end knots go to the end values, a value on tied knots to the first one's.
    `graph`: the same map as a sum of clamped ramps, K times the work but made of ops that ONNX has (it has no
    searchsorted), for exported graphs."""
    if graph:
        t = ((x[..., None] - src[:-1]) / (src[1:] - src[:-1]).clamp_min(1e-6)).clamp(0, 1)  # (..., K-1)
        return dst[0] + (t * (dst[1:] - dst[:-1])).sum(-1)
    i = torch.searchsorted(src.contiguous(), x.contiguous()).clamp(1, len(src) - 1)  # x in (src[i-1], src[i]]
    x0, x1, y0, y1 = src[i - 1], src[i], dst[i - 1], dst[i]
    t = ((x - x0) / (x1 - x0).clamp_min(1e-6)).clamp(0, 1)
    return y0 + t * (y1 - y0)


def position_features(pos: torch.Tensor) -> torch.Tensor:
    """(B,) slice positions in [0, 1] -> (B, 9) Fourier features."""
    freqs = (2.0 ** torch.arange(4, device=pos.device, dtype=torch.float32)) * math.pi  # (4,)
    ang = pos.float()[:, None] * freqs  # (B, 4)
    return torch.cat([pos.float()[:, None], ang.sin(), ang.cos()], 1)


def _widths(size: int, width: int) -> list[int]:
    """Channel widths from 4x4 up to size x size: wide at low resolution, `width` at full size."""
    n = int(math.log2(size)) - 2  # up-sampling stages
    return [width * min(8, 2 ** (n - i)) for i in range(n + 1)]


class _Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("spacing_mm", torch.ones(3))  # (x, y, z) mm of a generated stack
        self.register_buffer("position_range", torch.tensor([0.0, 1.0]))  # training slice positions
        self.register_buffer("position_step", torch.zeros(()))  # one training slice in position units (0: unknown)
        # row 0: this generator's output quantiles, row 1: the training slices' (`intensity_quantiles`); NaN: unknown
        self.register_buffer("intensity_quantiles", torch.full((2, KNOTS), float("nan")))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        # weights written before `position_step` / `intensity_quantiles` existed load with them as they are here
        state_dict.setdefault(prefix + "position_step", torch.zeros(()))
        state_dict.setdefault(prefix + "intensity_quantiles", self.intensity_quantiles.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def is_calibrated(self) -> bool:
        return not bool(self.intensity_quantiles.isnan().any())

    def calibrated(self, x: torch.Tensor, graph: bool = False) -> torch.Tensor:
        """Generated slices x mapped so that their intensity distribution is the training slices': the monotone
        map from this generator's output quantiles to the training quantiles (Nyul-style histogram
        standardisation). Only for a generator that `is_calibrated` (callers check: the check reads tensor values,
        which an exported graph cannot branch on). `graph`: the export form (`map_intensities`)."""
        q = self.intensity_quantiles.to(x.device, torch.float32)
        return map_intensities(x.float(), q[0], q[1], graph=graph).to(x.dtype)


class DCGANGenerator(_Generator):
    def __init__(self, z_dim: int = 128, size: int = 64, width: int = 32, cond_dim: int = 0):
        super().__init__()
        self.z_dim, self.size, self.cond_dim = z_dim, size, cond_dim
        w = _widths(size, width)
        self.fc = nn.Linear(z_dim + cond_dim, w[0] * 16)
        self.bn0 = nn.BatchNorm2d(w[0])
        self.ups = nn.Sequential(*[nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b),
                                                 nn.ReLU(True)) for a, b in zip(w[:-1], w[1:], strict=True)])
        self.out = nn.Conv2d(w[-1], 1, 3, 1, 1)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], 1)  # (B, z_dim + cond_dim)
        h = F.relu(self.bn0(self.fc(z).view(len(z), -1, 4, 4)))  # (B, w0, 4, 4)
        return torch.tanh(self.out(self.ups(h)))  # (B, 1, size, size)


class ResUp(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv with a 1x1 up-sampled shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")  # (B, cin, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))  # (B, cout, 2H, 2W)
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResGenerator(_Generator):
    def __init__(self, z_dim: int = 128, size: int = 64, width: int = 32, cond_dim: int = 0):
        super().__init__()
        self.z_dim, self.size, self.cond_dim = z_dim, size, cond_dim
        w = _widths(size, width)
        self.fc = nn.Linear(z_dim + cond_dim, w[0] * 16)
        self.blocks = nn.Sequential(*[ResUp(a, b) for a, b in zip(w[:-1], w[1:], strict=True)])
        self.bn = nn.BatchNorm2d(w[-1])
        self.out = nn.Conv2d(w[-1], 1, 3, 1, 1)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], 1)  # (B, z_dim + cond_dim)
        h = self.blocks(self.fc(z).view(len(z), -1, 4, 4))  # (B, width, size, size)
        return torch.tanh(self.out(F.relu(self.bn(h))))  # (B, 1, size, size)


class SPADE(nn.Module):
    """Parameter-free batch norm, then scale and shift predicted per pixel from the label map."""

    def __init__(self, channels: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(num_classes, hidden, 3, 1, 1), nn.ReLU(True))
        self.gamma, self.beta = nn.Conv2d(hidden, channels, 3, 1, 1), nn.Conv2d(hidden, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")  # (B, K, H, W)
        a = self.shared(seg)
        return self.norm(x) * (1 + self.gamma(a)) + self.beta(a)


class SPADEUp(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.n1, self.n2 = SPADE(cin, num_classes, hidden), SPADE(cout, num_classes, hidden)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, cin, 2H, 2W)
        h = self.conv1(F.leaky_relu(self.n1(x, seg), 0.2))
        h = self.conv2(F.leaky_relu(self.n2(h, seg), 0.2))  # (B, cout, 2H, 2W)
        return h + self.skip(x)


class SPADEGenerator(_Generator):
    """(z (B, z_dim), label one-hot (B, K, S, S)) -> image (B, 1, S, S)."""

    def __init__(self, z_dim: int = 128, size: int = 64, width: int = 32, num_classes: int = 3, hidden: int = 64):
        super().__init__()
        self.z_dim, self.size, self.num_classes = z_dim, size, num_classes
        w = _widths(size, width)
        self.fc = nn.Linear(z_dim, w[0] * 16)
        self.blocks = nn.ModuleList(SPADEUp(a, b, num_classes, hidden) for a, b in zip(w[:-1], w[1:], strict=True))
        self.out = nn.Conv2d(w[-1], 1, 3, 1, 1)

    def forward(self, z: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), -1, 4, 4)  # (B, w0, 4, 4)
        for block in self.blocks:
            h = block(h, seg)
        return torch.tanh(self.out(F.leaky_relu(h, 0.2)))  # (B, 1, S, S)


class ResDown(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.leaky_relu(x, 0.2)
        h = self.conv2(F.leaky_relu(self.conv1(h), 0.2))
        return F.avg_pool2d(h, 2) + self.skip(F.avg_pool2d(x, 2))  # (B, cout, H/2, W/2)


class Discriminator(nn.Module):
    """(B, in_channels, S, S) [+ cond (B, cond_dim)] -> logits (B,). `residual`: ResDown blocks, else
    DCGAN-style strided 4x4 convolutions (about 4x cheaper)."""

    def __init__(self, size: int = 64, width: int = 32, in_channels: int = 1, cond_dim: int = 0,
                 minibatch_std: bool = True, residual: bool = True):
        super().__init__()
        w = _widths(size, width)[::-1]  # widths from full size down to 4x4
        cins, couts = [in_channels] + w[1:-1], w[1:]
        if residual:
            blocks = [ResDown(a, b, first=i == 0) for i, (a, b) in enumerate(zip(cins, couts, strict=True))]
        else:
            blocks = [nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)) for a, b in zip(cins, couts,
                                                                                                 strict=True)]
        self.blocks = nn.Sequential(*blocks)
        self.residual = residual
        self.mbstd = MinibatchStdDev(group_size=4) if minibatch_std else None
        last = w[-1] + (1 if minibatch_std else 0)
        self.conv = nn.Conv2d(last, w[-1], 3, 1, 1)
        self.fc = nn.Linear(w[-1], 1)
        self.embed = nn.Linear(cond_dim, w[-1], bias=False) if cond_dim else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(x)  # (B, w, 4, 4)
        if self.residual:
            h = F.leaky_relu(h, 0.2)
        if self.mbstd is not None:
            h = self.mbstd(h)  # (B, w + 1, 4, 4)
        h = F.leaky_relu(self.conv(h), 0.2).sum((2, 3))  # (B, w)
        out = self.fc(h).squeeze(1)  # (B,)
        if self.embed is not None and cond is not None:
            out = out + (self.embed(cond) * h).sum(1)  # projection discriminator
        return out


def build_generator(model: str, condition: str, z_dim: int, size: int, width: int,
                    num_classes: int = 0, spade_hidden: int = 64) -> _Generator:
    """The generator for a (model, condition) pair, from plain integers (used by task and pipeline)."""
    if condition == "label":
        return SPADEGenerator(z_dim, size, width, num_classes, spade_hidden)
    cond_dim = POSITION_FEATURES if condition == "position" else 0
    cls = DCGANGenerator if model == "dcgan" else ResGenerator
    return cls(z_dim, size, width, cond_dim)
