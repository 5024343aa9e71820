"""Training logic of the 2D mixture task, written against the engine's task protocol only."""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn

from ..engine import stabilizers as stab
from ..engine.adversarial import Adversary, SingleGANTask
from ..engine.task import StepContext
from .config import ToyConfig
from .data import MixtureDataset, evaluate_samples, mode_centers, sample
from .nets import Discriminator, Generator


class ToyTask(SingleGANTask):
    def __init__(self, config: ToyConfig):
        self.config = config
        self.adv = Adversary(config)

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        init = None if c.init == "default" else c.init
        gen = Generator(c.z_dim, c.hidden, c.layers)
        disc = Discriminator(c.hidden, c.layers, c.use_minibatch_std)
        if init is not None:
            stab.init_weights(gen, init)
        return {"gen": gen, "disc": self.adv.apply_to_disc(disc, init)}

    def dataset(self) -> MixtureDataset:
        return MixtureDataset(self.config.dataset)

    # -- phases
    def _fake(self, n: int, ctx: StepContext) -> torch.Tensor:
        z = torch.randn(n, self.config.z_dim, device=ctx.device)
        return ctx.nets["gen"](z)  # (n, 2)

    def d_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        fake = self._fake(len(real), ctx).detach()
        out = self.adv.d_loss(ctx.nets["disc"], real, fake)
        ctx.observe(d_real=out.d_real, d_fake=out.d_fake, real=real, fake=fake, threshold=self.adv.loss.threshold)
        return {"loss": out.loss, **out.logs}

    def d_reg_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        r1, logs = self.adv.r1_loss(ctx.nets["disc"], real)
        return {"loss": r1, **logs}

    def g_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        loss, logs = self.adv.g_loss(ctx.nets["disc"], self._fake(len(real), ctx), real)
        return {"loss": loss, **logs}

    # -- outputs
    @torch.no_grad()
    def generate(self, gen: nn.Module, n: int, device: torch.device) -> torch.Tensor:
        return gen(torch.randn(n, self.config.z_dim, device=device)).float().cpu()

    @staticmethod
    def summary(ev: dict[str, float]) -> str:
        """The one line `ganapps toy train` prints from `evaluate`'s figures."""
        return f"modes {ev['modes']:.0f}  high_quality {ev['high_quality']:.3f}  reverse_kl {ev['reverse_kl']:.3f}"

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
