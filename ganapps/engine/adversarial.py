"""The adversarial layer between the engine and the GAN tasks: the GAN options once (`AdversarialConfig`, which
task configs inherit) and the one object that composes D's and G's adversarial losses with their stabilizers and
owns their state (`Adversary`). A task keeps only its own terms (cycle, identity, L1, GDL...).

Imports the engine only (never a task package, Typer or a data format). Adding a stabilizer: one field on
`AdversarialConfig` (default off, help, validation) and one function in `stabilizers.py`, called from the one
place in `Adversary` where it acts (`view`, `d_loss`, `g_loss`, `r1_loss` or `phases`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from . import stabilizers as stab
from .augment import AdaptiveAugment, DiffAugment
from .config import TrainConfig, opt, require
from .errors import InputError
from .losses import LOSSES, get_loss
from .task import LossFn, OptimizerSpec, Phase, StepContext

Critic = Callable[[Tensor], Tensor]  # D's raw outputs (any shape) for a batch of D inputs
Join = Callable[[Tensor], Tensor]  # a sample -> D's input (e.g. the sample and its label map, concatenated)


@dataclasses.dataclass
class AdversarialConfig(TrainConfig):
    """The GAN options every adversarial task shares: one name per idea, the help and validation with the field.

    A task config inherits this, redeclares a field only to change its default (`gan_loss: str = "hinge"`; the
    help stays this class's) and lists in `unsupported` the options its nets or data cannot use (they must stay
    at this class's default, which is "off", and the CLI hides them).
    """

    options_panel: ClassVar[str] = "GAN"
    deprecated_names: ClassVar[dict[str, str]] = {"loss": "gan_loss", "diffaug_policy": "augment_policy"}
    unsupported: ClassVar[tuple[str, ...]] = ()

    gan_loss: str = opt("nonsaturating", "GAN loss: " + ", ".join(LOSSES) + " (engine.losses)")
    adv_weight: float = opt(1.0, "weight of the adversarial term in G's loss (0: no critic, no adversarial term)")
    lr_g: float = opt(2e-4, "generator learning rate")
    lr_d: float = opt(2e-4, "discriminator learning rate (TTUR when different from lr_g)")
    beta1: float = opt(0.5, "Adam beta1 of both optimizers")
    beta2: float = opt(0.999, "Adam beta2 of both optimizers")
    n_critic: int = opt(1, "D updates per step, each on a fresh batch")
    real_label: float = opt(1.0, "D's target for real samples; < 1 is one-sided label smoothing (Salimans et al. "
                                 "2016; 1: off)")
    gp_weight: float = opt(0.0, "WGAN-GP gradient penalty weight (Gulrajani et al. 2017; 0: off)")
    r1_gamma: float = opt(0.0, "R1 penalty gamma on real inputs (Mescheder et al. 2018; 0: off)")
    r1_interval: int = opt(16, "lazy R1: apply every N steps, weighted gamma / 2 x N (StyleGAN2)")
    use_spectral_norm: bool = opt(False, "spectral norm on every critic layer (Miyato et al. 2018)")
    instance_noise_std: float = opt(0.0, "instance noise std on D's inputs, annealed to 0 over the run "
                                         "(Sonderby et al. 2017; 0: off)")
    augment_policy: str = opt("", "DiffAugment ops on everything D sees: color, translation, cutout, "
                                  "comma-separated (Zhao et al. 2020; '' off)")
    use_ada: bool = opt(False, "adapt the augmentation probability to D's overfitting (ADA, Karras et al. 2020)")
    ada_target: float = opt(0.6, "ADA target of r_t, the mean sign of D's outputs on reals")
    ada_adjust_images: int = opt(500_000, "images for the ADA probability to move from 0 to 1")
    lecam_weight: float = opt(0.0, "LeCam regularizer weight (Tseng et al. 2021; 0: off)")
    use_minibatch_std: bool = opt(False, "minibatch standard deviation layer in D (Karras et al. 2018)")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("n_critic", "r1_interval", "ada_adjust_images"), above_zero=("lr_g", "lr_d"),
                non_negative=("adv_weight", "gp_weight", "r1_gamma", "instance_noise_std", "lecam_weight"))
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"option {name}={getattr(self, name)!r}: expected in [0, 1)")
        if not 0 < self.real_label <= 1:
            raise InputError(f"option real_label={self.real_label!r}: expected in (0, 1]")
        if not 0 <= self.ada_target < 1:
            raise InputError(f"option ada_target={self.ada_target!r}: expected in [0, 1)")
        try:
            get_loss(self.gan_loss, real_label=self.real_label)
        except InputError as e:
            raise InputError(f"option gan_loss={self.gan_loss!r}: {e}") from None
        try:
            DiffAugment(self.augment_policy)
        except InputError as e:
            raise InputError(f"option augment_policy={self.augment_policy!r}: {e}") from None
        if self.use_ada and not self.augment_policy:
            raise InputError("option use_ada: needs --augment-policy (the augmentations whose probability ADA "
                             "tunes); pass --no-use-ada to train without augmentation")
        base = {f.name: f.default for f in dataclasses.fields(AdversarialConfig)}
        for name in self.unsupported:
            if getattr(self, name) != base[name]:
                raise InputError(f"option {name}={getattr(self, name)!r}: not supported by {type(self).__name__}; "
                                 f"expected {base[name]!r}")


class DLoss(NamedTuple):
    """One critic's D loss (`loss`, a scalar to minimise), its logged figures and D's raw outputs."""

    loss: Tensor
    logs: dict[str, Tensor]
    d_real: Tensor
    d_fake: Tensor


def _log_name(base: str, key: str) -> str:
    return f"{base}_{key}" if key else base


class Adversary:
    """The adversarial game of one task, built from its `AdversarialConfig`: what D sees, D's and G's adversarial
    losses with every stabilizer the config turns on, the lazy R1 phase, and the state they keep.

    Critics are keyed (`key`: "" for a task's only critic, "a"/"b" for CycleGAN's two, "frame" for video's
    per-frame critic); the key names the logged figures (`loss/d_a`, `reg/gp_a`, `reg/lecam_a`, `reg/r1_a`)
    and each critic's LeCam state. A critic is any callable from D inputs to raw outputs; `join` turns a sample
    into D's input first (e.g. concatenating a label map) so that penalties differentiate w.r.t. the sample only.

    The trainer's step reaches the Adversary through the phases it builds (`phases`), which also run the
    bookkeeping that follows a D step (the ADA update) and weight the lazy R1 phase.
    """

    def __init__(self, config: AdversarialConfig):
        c = self.config = config
        self.loss = get_loss(c.gan_loss, real_label=c.real_label)
        self.noise = stab.InstanceNoise(c.instance_noise_std, c.steps)
        self.augment = DiffAugment(c.augment_policy, p=0.0 if c.use_ada else 1.0) if c.augment_policy else None
        self.ada = AdaptiveAugment(c.ada_target, c.ada_adjust_images) if c.use_ada else None
        self.lecam: dict[str, stab.LeCam] = {}  # one per critic key, made at its first D step
        self.step = 0  # the trainer's step, set by the phases built here
        self._d_images = 0  # batch size of the latest d_loss, for the ADA update after the D step

    # -- nets
    def apply_to_disc(self, net: nn.Module, init: str | None = None, gain: float = 0.02) -> nn.Module:
        """Weight init (`init`: one of `stabilizers.INIT_KINDS`, None keeps the net's own), then spectral norm
        when `use_spectral_norm`. Returns `net`, modified in place."""
        if init is not None:
            stab.init_weights(net, init, gain)
        if self.config.use_spectral_norm:
            stab.apply_spectral_norm(net)
        return net

    def optimizers(self, gen: tuple[str, ...], disc: tuple[str, ...]) -> dict[str, OptimizerSpec]:
        """Adam for the generator nets (lr_g) and for the critics (lr_d; TTUR when they differ), betas (beta1,
        beta2): the "gen" and "disc" groups the phases step. No critics (`disc` empty): "gen" only."""
        c = self.config
        specs = {"gen": OptimizerSpec(gen, c.lr_g, (c.beta1, c.beta2))}
        if disc:
            specs["disc"] = OptimizerSpec(disc, c.lr_d, (c.beta1, c.beta2))
        return specs

    # -- what D sees
    def view(self, x: Tensor) -> Tensor:
        """D's view of a batch, real or fake: instance noise annealed over `steps`, then DiffAugment (ADA's p).
        `x` itself when both are off."""
        x = self.noise(x, self.step)
        return self.augment(x) if self.augment is not None else x

    def judge(self, disc: Critic, x: Tensor, join: Join | None = None) -> Tensor:
        """D's raw outputs on the view of `x`."""
        return disc(self.view(join(x) if join is not None else x))

    def _judge_pair(self, disc: Critic, real: Tensor, fake: Tensor, join: Join | None,
                    batched: bool) -> tuple[Tensor, Tensor]:
        if batched and real.shape == fake.shape:  # one call on both: exact when D treats samples alone
            both = torch.cat([real, fake]) if join is None else torch.cat([join(real), join(fake)])
            out = disc(self.view(both))  # each half joined with its own condition, then judged together
            return out[: len(real)], out[len(real):]
        return self.judge(disc, real, join), self.judge(disc, fake, join)

    # -- losses
    def d_loss(self, disc: Critic, real: Tensor, fake: Tensor, *, key: str = "", scale: float = 1.0,
               join: Join | None = None, batched: bool = False) -> DLoss:
        """One critic's loss on a real and a (detached) fake batch: scale x the GAN D loss (label smoothing is
        the loss's real target) + gp_weight x WGAN-GP + lecam_weight x LeCam; gathers ADA's statistic.
        `batched`: judge real and fake in one call (same shapes only). Logs loss/d, reg/gp, reg/lecam (+ _key)."""
        c = self.config
        d_real, d_fake = self._judge_pair(disc, real, fake, join, batched)
        loss = self.loss.d(d_real, d_fake)
        if scale != 1.0:
            loss = scale * loss
        logs = {_log_name("loss/d", key): loss.detach()}
        if c.gp_weight > 0:
            gp = stab.gradient_penalty(lambda x: self.judge(disc, x, join), real, fake)
            loss = loss + c.gp_weight * gp
            logs[_log_name("reg/gp", key)] = gp.detach()
        if c.lecam_weight > 0:
            lecam = self.lecam.setdefault(key, stab.LeCam())
            lecam.update(d_real, d_fake)
            lc = lecam.penalty(d_real, d_fake)
            loss = loss + c.lecam_weight * lc
            logs[_log_name("reg/lecam", key)] = lc.detach()
        if self.ada is not None:
            self.ada.accumulate(d_real)
        self._d_images = len(real)
        return DLoss(loss, logs, d_real, d_fake)

    def g_loss(self, disc: Critic, fake: Tensor, real: Tensor | None = None, *, join: Join | None = None,
               log: str = "loss/g") -> tuple[Tensor, dict[str, Tensor]]:
        """adv_weight x the GAN G loss of `fake` against one critic; `real` is needed by the relativistic loss
        only. Returns (weighted loss, {log: unweighted loss})."""
        d_fake = self.judge(disc, fake, join)
        d_real = None
        if self.loss.name == "relativistic":
            if real is None:
                raise ValueError("Adversary.g_loss: the relativistic loss needs the real batch")
            d_real = self.judge(disc, real, join)
        g = self.loss.g(d_fake, d_real)
        w = self.config.adv_weight
        return (g if w == 1.0 else w * g), {log: g.detach()}

    def r1_loss(self, disc: Critic, real: Tensor, *, key: str = "", join: Join | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """R1 (Mescheder et al. 2018): E||grad_x D(x)||^2 on the real batch as it is (no noise, no augmentation),
        differentiated w.r.t. the sample only. Unweighted: the D-reg phase built by `phases` applies the lazy
        weight gamma / 2 x r1_interval to the sum a task returns. Logs reg/r1 (+ _key)."""
        real = real.detach().requires_grad_(True)
        r1 = stab.r1_penalty(disc(join(real) if join is not None else real), real)
        return r1, {_log_name("reg/r1", key): r1.detach()}

    @property
    def r1_weight(self) -> float:
        """Lazy R1 weight gamma / 2 x interval (StyleGAN2 lazy regularization)."""
        return stab.lazy_regularization_weight(self.config.r1_gamma, self.config.r1_interval)

    # -- phases
    def phases(self, *, d: LossFn, g: LossFn, d_reg: LossFn | None = None,
               order: Sequence[str] = ("D", "D-reg", "G")) -> list[Phase]:
        """The task's phases in `order` ("D", "D-reg", "G"): D repeated n_critic times, each followed by the ADA
        update and logging the augmentation probability it used (aug/p); D-reg every r1_interval steps when
        r1_gamma > 0, its loss (the task's summed `r1_loss`es) weighted gamma / 2 x interval; G every step.
        With adv_weight 0 only G remains. Optimizer groups are "disc" and "gen"."""
        c = self.config
        if c.r1_gamma > 0 and d_reg is None:
            raise ValueError("Adversary.phases: r1_gamma > 0 needs the task's d_reg loss")
        built = {"G": Phase("G", "gen", self._at_step(g))}
        if c.adv_weight > 0:
            built["D"] = Phase("D", "disc", self._d_step(d), repeats=c.n_critic)
            if c.r1_gamma > 0:
                built["D-reg"] = Phase("D-reg", "disc", self._lazy(d_reg), every=c.r1_interval)  # type: ignore[arg-type]
        return [built[name] for name in order if name in built]

    def _at_step(self, fn: LossFn) -> LossFn:
        def loss(batch: Any, ctx: StepContext) -> dict[str, Any]:
            self.step = ctx.step
            return fn(batch, ctx)
        return loss

    def _d_step(self, fn: LossFn) -> LossFn:
        def loss(batch: Any, ctx: StepContext) -> dict[str, Any]:
            self.step = ctx.step
            p = self.augment.p if self.augment is not None else None
            out = fn(batch, ctx)
            if self.ada is not None:
                self.augment.p = self.ada.update(self._d_images)  # type: ignore[union-attr]
            return out if p is None else {**out, "aug/p": p}
        return loss

    def _lazy(self, fn: LossFn) -> LossFn:
        def loss(batch: Any, ctx: StepContext) -> dict[str, Any]:
            self.step = ctx.step
            out = fn(batch, ctx)
            return {**out, "loss": self.r1_weight * out["loss"]}
        return loss

    # -- state
    def state_dict(self) -> dict[str, Any]:
        """LeCam EMAs per critic key and the ADA controller with the augmentation probability."""
        state: dict[str, Any] = {}
        if self.lecam:
            state["lecam"] = {k: v.state_dict() for k, v in self.lecam.items()}
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
            state["augment_p"] = self.augment.p  # type: ignore[union-attr]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output (also the previous version's task state: a single critic's LeCam
        stored flat, CycleGAN's ADA without augment_p)."""
        lecam = state.get("lecam", {})
        if "ema_real" in lecam:
            lecam = {"": lecam}
        self.lecam = {}  # a critic missing from `state` had no D step yet: it starts afresh
        for k, v in lecam.items():
            self.lecam[k] = stab.LeCam()
            self.lecam[k].load_state_dict(v)
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
            self.augment.p = float(state.get("augment_p", self.ada.p))  # type: ignore[union-attr]


class SingleGANTask:
    """The task-protocol methods every one-generator, one-critic GAN task writes the same way: a generator net
    (`self.gen`, default "gen", with an EMA copy) and a critic net (`self.disc`, default "disc"), optimized by
    `self.adv` (an `Adversary`) in the phases it builds from the task's `d_loss`, `d_reg_loss` (needed when
    r1_gamma > 0) and `g_loss` (order D, D-reg, G), with the Adversary's state in the checkpoints. A task sets
    `self.adv` and writes `build_nets`, `dataset` and those losses."""

    adv: Adversary
    gen: str = "gen"
    disc: str = "disc"

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return self.adv.optimizers(gen=(self.gen,), disc=(self.disc,))

    def phases(self) -> list[Phase]:
        return self.adv.phases(d=self.d_loss, d_reg=getattr(self, "d_reg_loss", None), g=self.g_loss)  # type: ignore[attr-defined]

    def ema_nets(self) -> tuple[str, ...]:
        return (self.gen,)

    def state_dict(self) -> dict[str, Any]:
        return self.adv.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.adv.load_state_dict(state)
