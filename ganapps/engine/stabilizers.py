"""GAN stabilizers as small composable functions and modules, each naming its paper. Here the loss-side ones:
gradient penalties (WGAN-GP, R1/R2 and lazy regularization), LeCam, feature matching and annealed instance noise
(a new one is one function here plus its field and call in `engine.adversarial`). The net-side ones (spectral
norm, EMA, image pool, minibatch stddev, weight init) live in `engine.stabilizer_modules` and are re-exported
here, so `engine.stabilizers` is the one import for all of them. Imports only torch (never a task package,
Typer or a data format).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganapps.engine.errors import InputError
from ganapps.engine.stabilizer_modules import (  # noqa: F401  (re-exported)
    EMA,
    INIT_KINDS,
    ImagePool,
    MinibatchStdDev,
    apply_spectral_norm,
    ema_beta,
    init_weights,
)

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
