"""GAN stabilizers as small composable functions and modules, each naming its paper: penalties (WGAN-GP, R1/R2,
LeCam), spectral norm, instance noise, EMA, image pool, feature matching, minibatch stddev, weight init.
Imports only torch (never a task package, Typer or a data format).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganapps.engine.errors import InputError

# --------------------------------------------------------------------------- gradient penalties


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    one_sided: bool = False,
    center: float = 1.0,
) -> Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs").

    Samples x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1) per sample (`torch.rand`, global RNG,
    on `real.device`), and returns mean_b((||grad_x critic(x_hat)_b|| - center)^2); with `one_sided` only norms
    above `center` are penalised: mean_b(relu(||grad|| - center)^2). The caller multiplies by lambda (10 in
    the paper). `create_graph=True`, so the penalty back-propagates into the critic's parameters.

    Args:
        critic: tensor -> tensor. Outputs of any shape are summed before differentiation, so a PatchGAN's
            gradient is that of the sum of its patch scores.
        real, fake: same shape `(B, ...)`, rank >= 2 (images `(B, C, H, W)`, video, volumes, `(B, F)`); they are
            detached, the interpolates are the only graph leaf.

    Returns: a scalar tensor >= 0.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape"
        )
    if real.ndim < 2:
        raise ValueError(
            f"gradient_penalty: expected inputs of shape (B, ...) with rank >= 2, got {tuple(real.shape)}"
        )
    eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # (B,)
    excess = norm - center
    if one_sided:
        excess = F.relu(excess)
    return excess.square().mean()


def _grad_square_norm(logits: Tensor, inputs: Tensor, name: str, arg: str) -> Tensor:
    if not inputs.requires_grad:
        raise ValueError(
            f"{name}: {arg} must have requires_grad=True before the discriminator sees it "
            f"(call {arg}.requires_grad_(True) and recompute the logits)"
        )
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1 penalty (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?").

    E_x[||grad_x D(x)||^2] over real samples: squared gradient summed over non-batch dims, averaged over the
    batch. `real` `(B, ...)` must have requires_grad=True and `real_logits` (any shape, summed) must be computed
    from it. The caller multiplies by gamma / 2 (see `lazy_regularization_weight`). `create_graph=True`.

    Returns: a scalar tensor >= 0.
    """
    return _grad_square_norm(real_logits, real, "r1_penalty", "real")


def r2_penalty(fake_logits: Tensor, fake: Tensor) -> Tensor:
    """R2 penalty (Mescheder et al. 2018): `r1_penalty` on generated samples, E[||grad_x D(G(z))||^2].
    `fake` `(B, ...)` must have requires_grad=True (detach it from G first). The caller multiplies by gamma / 2."""
    return _grad_square_norm(fake_logits, fake, "r2_penalty", "fake")


def lazy_regularization_weight(gamma: float, interval: int) -> float:
    """Weight of an R1/R2 penalty applied only every `interval` D steps: gamma / 2 * interval.

    Lazy regularization (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", StyleGAN2
    sec. 4 / app. B): computing the penalty once per `interval` minibatches (16 there) and scaling it by
    `interval` keeps its average strength equal to gamma / 2 every step, at a fraction of the cost.
    (StyleGAN2 also rescales the optimizer's lr and betas by interval / (interval + 1); that is the trainer's job.)
    """
    if gamma < 0:
        raise InputError(f"lazy_regularization_weight: gamma={gamma}, expected >= 0")
    if int(interval) != interval or interval < 1:
        raise InputError(f"lazy_regularization_weight: interval={interval}, expected an integer >= 1")
    return gamma / 2.0 * int(interval)


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


# --------------------------------------------------------------------------- instance noise


class InstanceNoise:
    """Instance noise (Sønderby et al. 2017, "Amortised MAP Inference for Image Super-resolution";
    Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs").

    Adds N(0, sigma(step)^2) to D's inputs, real and fake alike, so the two distributions overlap early in
    training; sigma falls linearly from `std` at step 0 to 0 at `anneal_steps` and stays 0 after.
    With std == 0 it is the identity (returns its input).

    Args:
        std: starting noise std, >= 0, in data units (images span [-1, 1]).
        anneal_steps: steps until the noise is gone, >= 1.
    """

    def __init__(self, std: float, anneal_steps: int) -> None:
        if std < 0:
            raise InputError(f"InstanceNoise: std={std}, expected >= 0")
        if int(anneal_steps) != anneal_steps or anneal_steps < 1:
            raise InputError(f"InstanceNoise: anneal_steps={anneal_steps}, expected an integer >= 1")
        self.std = float(std)
        self.anneal_steps = int(anneal_steps)

    def sigma(self, step: int) -> float:
        """Noise std at `step` (>= 0): std * max(0, 1 - step / anneal_steps)."""
        if step < 0:
            raise ValueError(f"InstanceNoise.sigma: step={step}, expected >= 0")
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def __call__(self, x: Tensor, step: int) -> Tensor:
        """x plus N(0, sigma(step)^2) noise of the same shape (any shape); x itself when sigma is 0."""
        sigma = self.sigma(step)
        if sigma == 0.0:
            return x
        return x + sigma * torch.randn_like(x)


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

    @torch.no_grad()
    def update(self, net: nn.Module, beta: float) -> None:
        """Move the average towards `net` (same architecture as the copy): beta 0 copies, beta 1 keeps."""
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"EMA.update: beta={beta}, expected a value in [0, 1]")
        ema_params = dict(self.module.named_parameters())
        params = dict(net.named_parameters())
        ema_buffers = dict(self.module.named_buffers())
        buffers = dict(net.named_buffers())
        if ema_params.keys() != params.keys() or ema_buffers.keys() != buffers.keys():
            raise ValueError("EMA.update: net's parameters/buffers do not match the averaged copy's names")
        for name, p in params.items():
            ema_p = ema_params[name]
            ema_p.copy_(p.detach().to(ema_p.dtype).lerp(ema_p, beta))
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


# --------------------------------------------------------------------------- feature matching


def feature_matching_loss(
    real_features: Sequence[Tensor] | Tensor, fake_features: Sequence[Tensor] | Tensor
) -> Tensor:
    """Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", sec. 3.1).

    G matches the batch means of D's intermediate features: the mean over layers of
    MSE(mean_b fake_l, mean_b real_l), with the real features detached. Each layer is `(B, ...)`; real and fake
    batch sizes may differ but the per-sample shapes must agree. A single tensor counts as one layer.

    Returns: a scalar tensor >= 0; 0 when the batch means agree.
    """
    reals = [real_features] if isinstance(real_features, Tensor) else list(real_features)
    fakes = [fake_features] if isinstance(fake_features, Tensor) else list(fake_features)
    if not reals or len(reals) != len(fakes):
        raise ValueError(
            f"feature_matching_loss: got {len(reals)} real and {len(fakes)} fake feature layers, "
            "expected the same non-zero number"
        )
    losses = []
    for i, (r, f) in enumerate(zip(reals, fakes, strict=True)):
        if r.shape[1:] != f.shape[1:]:
            raise ValueError(
                f"feature_matching_loss: layer {i} shapes {tuple(r.shape)} and {tuple(f.shape)} differ"
            )
        losses.append(F.mse_loss(f.mean(0), r.detach().mean(0)))
    return torch.stack(losses).mean()


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


# --------------------------------------------------------------------------- LeCam regularizer


class LeCam:
    """LeCam regularization (Tseng et al. 2021, "Regularizing Generative Adversarial Networks under Limited
    Data"), as in the authors' code.

    Keeps EMAs of D's mean output on real (alpha_R) and fake (alpha_F) batches; `update` moves them
    (ema = decay * ema + (1 - decay) * batch mean; the first update sets them). The penalty
    mean(relu(D(real) - alpha_F)^2) + mean(relu(alpha_R - D(fake))^2) keeps D's real and fake outputs from
    drifting apart; it is added to D's loss with a small weight (0.3 in the paper, lambda 0.01..0.5).
    """

    def __init__(self, decay: float = 0.99) -> None:
        if not 0.0 <= decay < 1.0:
            raise InputError(f"LeCam: decay={decay}, expected a value in [0, 1)")
        self.decay = float(decay)
        self.ema_real: Tensor | None = None
        self.ema_fake: Tensor | None = None

    @torch.no_grad()
    def update(self, real_logits: Tensor, fake_logits: Tensor) -> None:
        """Fold the batch means of D's real and fake outputs (any shapes) into the EMAs."""
        real, fake = real_logits.detach().float().mean(), fake_logits.detach().float().mean()
        if self.ema_real is None or self.ema_fake is None:
            self.ema_real, self.ema_fake = real, fake
        else:
            self.ema_real = self.ema_real.to(real.device).lerp(real, 1.0 - self.decay)
            self.ema_fake = self.ema_fake.to(fake.device).lerp(fake, 1.0 - self.decay)

    def penalty(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """mean(relu(real - ema_fake)^2) + mean(relu(ema_real - fake)^2), a scalar >= 0 differentiable in
        the logits; call `update` at least once first."""
        if self.ema_real is None or self.ema_fake is None:
            raise RuntimeError("LeCam.penalty: no EMA yet; call update(real_logits, fake_logits) first")
        ema_real = self.ema_real.to(real_logits.device, real_logits.dtype)
        ema_fake = self.ema_fake.to(fake_logits.device, fake_logits.dtype)
        return F.relu(real_logits - ema_fake).square().mean() + F.relu(ema_real - fake_logits).square().mean()

    def state_dict(self) -> dict[str, float | None]:
        """{"ema_real", "ema_fake"} as floats (None before the first update)."""
        return {
            "ema_real": None if self.ema_real is None else float(self.ema_real),
            "ema_fake": None if self.ema_fake is None else float(self.ema_fake),
        }

    def load_state_dict(self, state: Mapping[str, float | Tensor | None]) -> None:
        """Restore from `state_dict()`; values may be floats, 0-dim tensors or None."""

        def _as_tensor(v: float | Tensor | None) -> Tensor | None:
            return None if v is None else torch.as_tensor(v, dtype=torch.float32).detach().clone().reshape(())

        self.ema_real = _as_tensor(state["ema_real"])
        self.ema_fake = _as_tensor(state["ema_fake"])


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
