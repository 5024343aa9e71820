"""Training logic of the 2D mixture task, written against the engine's task protocol only."""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

from ..engine import stabilizers as stab
from ..engine.losses import get_loss
from ..engine.task import OptimizerSpec, Phase, StepContext
from .config import ToyConfig
from .data import MixtureDataset, evaluate_samples, mode_centers, sample
from .nets import Discriminator, Generator


class ToyTask:
    def __init__(self, config: ToyConfig):
        self.config = config
        self.gan_loss = get_loss(config.loss, real_label=config.real_label) if config.real_label != 1.0 \
            else get_loss(config.loss)
        self.noise = stab.InstanceNoise(config.instance_noise_std, config.steps)
        self.lecam = stab.LeCam() if config.lecam_weight > 0 else None

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        gen = Generator(c.z_dim, c.hidden, c.layers)
        disc = Discriminator(c.hidden, c.layers, c.use_minibatch_std)
        if c.init != "default":
            stab.init_weights(gen, c.init)
            stab.init_weights(disc, c.init)
        if c.use_spectral_norm:
            stab.apply_spectral_norm(disc)
        return {"gen": gen, "disc": disc}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        c = self.config
        return {"gen": OptimizerSpec(("gen",), c.lr_g, (c.beta1, c.beta2)),
                "disc": OptimizerSpec(("disc",), c.lr_d, (c.beta1, c.beta2))}

    def phases(self) -> list[Phase]:
        c = self.config
        phases = [Phase("D", "disc", self.d_loss, repeats=c.n_critic)]
        if c.r1_gamma > 0:
            phases.append(Phase("D-reg", "disc", self.d_reg_loss, every=c.r1_interval))
        phases.append(Phase("G", "gen", self.g_loss))
        return phases

    def dataset(self) -> MixtureDataset:
        return MixtureDataset(self.config.dataset)

    def ema_nets(self) -> tuple[str, ...]:
        return ("gen",)

    def state_dict(self) -> dict:
        return {"lecam": self.lecam.state_dict()} if self.lecam is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.lecam is not None and "lecam" in state:
            self.lecam.load_state_dict(state["lecam"])

    # -- phases
    def _fake(self, n: int, ctx: StepContext) -> torch.Tensor:
        z = torch.randn(n, self.config.z_dim, device=ctx.device)
        return ctx.nets["gen"](z)  # (n, 2)

    def d_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        c, disc = self.config, ctx.nets["disc"]
        fake = self._fake(len(real), ctx).detach()
        real_in, fake_in = self.noise(real, ctx.step), self.noise(fake, ctx.step)
        d_real, d_fake = disc(real_in), disc(fake_in)
        loss = self.gan_loss.d(d_real, d_fake)
        logs = {"loss/d": loss.detach()}
        if c.gp_weight > 0:
            gp = stab.gradient_penalty(disc, real_in, fake_in)
            loss = loss + c.gp_weight * gp
            logs["reg/gp"] = gp.detach()
        if self.lecam is not None:
            self.lecam.update(d_real, d_fake)
            lc = self.lecam.penalty(d_real, d_fake)
            loss = loss + c.lecam_weight * lc
            logs["reg/lecam"] = lc.detach()
        ctx.observe(d_real=d_real, d_fake=d_fake, real=real, fake=fake, threshold=self.gan_loss.threshold)
        return {"loss": loss, **logs}

    def d_reg_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        c = self.config
        real = real.detach().requires_grad_(True)
        r1 = stab.r1_penalty(ctx.nets["disc"](real), real)
        return {"loss": stab.lazy_regularization_weight(c.r1_gamma, c.r1_interval) * r1, "reg/r1": r1.detach()}

    def g_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        disc = ctx.nets["disc"]
        fake = self._fake(len(real), ctx)
        d_fake = disc(self.noise(fake, ctx.step))
        d_real = disc(self.noise(real, ctx.step)) if self.gan_loss.name == "relativistic" else None
        loss = self.gan_loss.g(d_fake, d_real)
        return {"loss": loss, "loss/g": loss.detach()}

    # -- outputs
    @torch.no_grad()
    def generate(self, gen: nn.Module, n: int, device: torch.device) -> torch.Tensor:
        return gen(torch.randn(n, self.config.z_dim, device=device)).float().cpu()

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        points = self.generate(ctx.sample_net("gen"), self.config.eval_samples, ctx.device)
        return evaluate_samples(self.config.dataset, points)

    def preview(self, ctx: StepContext) -> np.ndarray:
        points = self.generate(ctx.sample_net("gen"), self.config.eval_samples, ctx.device)
        return scatter_image(self.config.dataset, points, title=f"step {ctx.step}")


def scatter_image(name: str, points: torch.Tensor, title: str = "") -> np.ndarray:
    """Generated points (blue) over real samples (orange) as an (H, W, 3) uint8 picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers, _ = mode_centers(name)
    lim = float(centers.abs().max()) + 1.0
    real = sample(name, 2500, torch.Generator().manual_seed(0))
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:orange", alpha=0.5, label="real")
    ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:blue", alpha=0.5, label="generated")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    from PIL import Image

    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))
