"""Net-side GAN stabilizers, each naming its paper: spectral norm, EMA of weights, image history pool, minibatch
standard deviation, weight init. Imports only torch (never a task package, Typer or a data format);
`engine.stabilizers` re-exports every name here, so tasks and nets import them from there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganapps.engine.errors import InputError

# --------------------------------------------------------------------------- spectral norm

_SN_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _has_spectral_norm(module: nn.Module) -> bool:
    if parametrize.is_parametrized(module, "weight"):
        return any(type(p).__name__ == "_SpectralNorm" for p in module.parametrizations["weight"])
    # The older hook-based torch.nn.utils.spectral_norm.
    return any(type(h).__name__ == "SpectralNorm" for h in module._forward_pre_hooks.values())


def apply_spectral_norm(net: nn.Module, *, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks").

    Wraps the `weight` of every Conv1d/2d/3d, ConvTranspose1d/2d/3d and Linear in `net` (including `net`
    itself) with `torch.nn.utils.parametrizations.spectral_norm`, so the effective weight (reshaped to a matrix,
    output dim first) has largest singular value ~1, estimated by `n_power_iterations` of power iteration per
    training-mode forward. Layers already normalised (either torch API) are left alone; call it before moving
    `net` to its device or creating its optimizer. Returns `net`, modified in place.
    """
    if int(n_power_iterations) != n_power_iterations or n_power_iterations < 1:
        raise InputError(
            f"apply_spectral_norm: n_power_iterations={n_power_iterations}, expected an integer >= 1"
        )
    targets = [m for m in net.modules() if isinstance(m, _SN_TYPES) and not _has_spectral_norm(m)]
    for module in targets:
        nn.utils.parametrizations.spectral_norm(module, "weight", n_power_iterations=int(n_power_iterations))
    return net


# --------------------------------------------------------------------------- EMA of generator weights


def ema_beta(
    batch_size: int,
    halflife_images: float,
    *,
    images_seen: int | None = None,
    rampup: float | None = None,
) -> float:
    """EMA decay per step for a half-life counted in images (Karras et al., StyleGAN2-ADA `training_loop.py`).

    beta = 0.5 ** (batch_size / max(halflife, 1e-8)): after `halflife_images` images (halflife / batch_size
    updates) the old weights keep exactly half their influence, whatever the batch size. With `rampup`
    (0.05 in StyleGAN2-ADA) the half-life is min(halflife_images, images_seen * rampup), so early on the
    EMA tracks the fast-changing generator closely; `images_seen` is then required.

    Returns: beta in [0, 1).
    """
    if batch_size < 1:
        raise InputError(f"ema_beta: batch_size={batch_size}, expected >= 1")
    if halflife_images < 0:
        raise InputError(f"ema_beta: halflife_images={halflife_images}, expected >= 0")
    halflife = float(halflife_images)
    if rampup is not None:
        if images_seen is None:
            raise ValueError("ema_beta: rampup given without images_seen")
        if rampup < 0 or images_seen < 0:
            raise InputError(f"ema_beta: rampup={rampup}, images_seen={images_seen}, expected both >= 0")
        halflife = min(halflife, images_seen * rampup)
    return 0.5 ** (batch_size / max(halflife, 1e-8))


class EMA:
    """Exponential moving average of a network's weights (Karras et al. 2018 ProGAN; Yazıcı et al. 2019,
    "The Unusual Effectiveness of Averaging in GAN Training"); the averaged generator is the one to sample from.

    `EMA(net)` deep-copies `net` into `.module` (eval mode, requires_grad False). `update(net, beta)` sets each
    parameter to lerp(p, ema_p, beta) = beta * ema_p + (1 - beta) * p and copies buffers (BatchNorm statistics,
    spectral-norm vectors) as they are. Pick beta with `ema_beta`.
    """

    def __init__(self, net: nn.Module) -> None:
        self.module = copy.deepcopy(net).eval().requires_grad_(False)
        self._own: tuple[nn.Module, dict[str, Tensor], dict[str, Tensor]] | None = None

    def _own_tensors(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The averaged copy's parameters and buffers by name (looked up again if `module` is replaced)."""
        if self._own is None or self._own[0] is not self.module:
            self._own = (self.module, dict(self.module.named_parameters()), dict(self.module.named_buffers()))
        return self._own[1], self._own[2]

    @torch.no_grad()
    def update(self, net: nn.Module, beta: float) -> None:
        """Move the average towards `net` (same architecture as the copy): beta 0 copies, beta 1 keeps."""
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"EMA.update: beta={beta}, expected a value in [0, 1]")
        ema_params, ema_buffers = self._own_tensors()
        params = dict(net.named_parameters())
        buffers = dict(net.named_buffers())
        if ema_params.keys() != params.keys() or ema_buffers.keys() != buffers.keys():
            raise ValueError("EMA.update: net's parameters/buffers do not match the averaged copy's names")
        for name, p in params.items():
            ema_p, p = ema_params[name], p.detach()
            if p.dtype == ema_p.dtype:  # in place: one pass over memory, the same numbers as lerp + copy
                torch.lerp(p, ema_p, beta, out=ema_p)
            else:
                ema_p.copy_(p.to(ema_p.dtype).lerp(ema_p, beta))
        for name, b in buffers.items():
            ema_buffers[name].copy_(b)

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged module's state dict."""
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load weights into the averaged module (strict)."""
        self.module.load_state_dict(state)


# --------------------------------------------------------------------------- image history pool


class ImagePool:
    """History of generated images fed to the discriminator (Shrivastava et al. 2017, "Learning from Simulated
    and Unsupervised Images through Adversarial Training"), exactly as pytorch-CycleGAN-and-pix2pix's `ImagePool`.

    `query(images)` goes image by image: until `size` images are stored, each is stored and returned; once full,
    with probability 0.5 a uniformly chosen stored image is returned and the new one takes its place, otherwise
    the new one is returned. Draws come from the global torch RNG (`torch.rand`, `torch.randint`), so restoring
    torch's RNG state together with `state_dict()` reproduces the next queries. size 0 disables the pool.
    """

    def __init__(self, size: int = 50) -> None:
        if int(size) != size or size < 0:
            raise InputError(f"ImagePool: size={size}, expected an integer >= 0")
        self.size = int(size)
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """A batch `(B, ...)` of the same shape, mixing `images` with stored history; detached (except with
        size 0, which returns `images` itself)."""
        if self.size == 0:
            return images
        if self.images and self.images[0].device != images.device:  # e.g. restored on CPU, training on GPU
            self.images = [img.to(images.device) for img in self.images]
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()).item())
                out.append(self.images[idx])
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def __len__(self) -> int:
        return len(self.images)

    def state_dict(self) -> dict[str, Tensor]:
        """{"images": the stored images stacked `(N, ...)`, or an empty tensor when none are stored}."""
        return {"images": torch.stack(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the stored images from `state_dict()`'s output."""
        images = state["images"]
        if images.numel() and images.shape[0] > self.size:
            raise ValueError(
                f"ImagePool.load_state_dict: {images.shape[0]} images for a pool of size {self.size}"
            )
        self.images = [img.clone() for img in images.unbind(0)] if images.numel() else []


# --------------------------------------------------------------------------- minibatch standard deviation


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation layer (Karras et al. 2018, "Progressive Growing of GANs", sec. 3; the
    StyleGAN2 variant with `num_channels` feature groups).

    Splits the batch into groups of G samples (sample i in group i mod B/G), takes each feature's std over the
    group, averages it over the features of each of `num_channels` channel groups and over space, and appends
    the result as `num_channels` constant channels: `(B, C, *S) -> (B, C + num_channels, *S)` for images
    `(B, C, H, W)`, volumes, or features `(B, F)`. G is the largest divisor of B that is <= group_size.
    C must be divisible by num_channels. std = sqrt(var + 1e-8), so identical samples give ~1e-4.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise InputError(
                f"MinibatchStdDev: group_size={group_size}, num_channels={num_channels}, expected both >= 1"
            )
        self.group_size = int(group_size)
        self.num_channels = int(num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"MinibatchStdDev: expected (B, C, ...) input, got shape {tuple(x.shape)}")
        b, c, *spatial = x.shape
        nf = self.num_channels
        if c % nf:
            raise ValueError(f"MinibatchStdDev: {c} channels not divisible by num_channels={nf}")
        g = max(d for d in range(1, min(self.group_size, b) + 1) if b % d == 0)
        y = x.reshape(g, -1, nf, c // nf, *spatial)  # (G, B/G, F, C/F, *S)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (B/G, F, C/F, *S)
        y = y.mean(dim=tuple(range(2, y.ndim)))  # (B/G, F)
        y = y.reshape(-1, nf, *([1] * len(spatial)))
        y = y.repeat(g, 1, *spatial)  # (B, F, *S)
        return torch.cat([x, y], dim=1)


# --------------------------------------------------------------------------- weight init

INIT_KINDS: tuple[str, ...] = ("normal", "xavier", "kaiming", "orthogonal")

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def _weight_of(module: nn.Module) -> Tensor:
    # A spectral-normed layer's trainable tensor is the parametrization's `original`.
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations["weight"].original
    return module.weight


@torch.no_grad()
def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Weight initialisation as pytorch-CycleGAN-and-pix2pix's `init_weights` (the DCGAN recipe, Radford et
    al. 2016, for "normal").

    Conv*/ConvTranspose*/Linear weights: "normal" N(0, gain^2); "xavier" Xavier-normal with `gain` (Glorot &
    Bengio 2010); "kaiming" Kaiming-normal, fan_in, a=0 (He et al. 2015; `gain` unused, as the reference);
    "orthogonal" orthogonal scaled by `gain` (Saxe et al. 2014). Their biases are set to 0.
    BatchNorm*/InstanceNorm* with affine parameters: weight N(1, gain^2), bias 0. Returns `net`, in place.
    """
    if kind not in INIT_KINDS:
        raise InputError(f"unknown init kind {kind!r}: expected one of {', '.join(INIT_KINDS)}")
    for m in net.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            w = _weight_of(m)
            if kind == "normal":
                nn.init.normal_(w, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(w, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(w, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(w, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORM_TYPES) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net
