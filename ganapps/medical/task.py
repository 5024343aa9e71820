"""Training logic of medical slice synthesis, written against the engine's task protocol only.

Unconditional, slice-position-conditional and label-map-conditional (SPADE G + pix2pix-style conditional D
with an L1 term) GANs, with the engine's limited-data tools: DiffAugment under an ADA controller, lazy R1,
spectral norm, minibatch std and an EMA generator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..engine import stabilizers as stab
from ..engine.augment import AdaptiveAugment, DiffAugment
from ..engine.losses import get_loss
from ..engine.task import OptimizerSpec, Phase, StepContext
from .config import MedicalConfig
from .data import SliceDataset, one_hot
from .nets import POSITION_FEATURES, Discriminator, build_generator, position_features


class MedicalTask:
    def __init__(self, config: MedicalConfig, train_set: SliceDataset | None = None):
        self.config = config
        self.train_set = train_set if train_set is not None else SliceDataset(config, "train")
        if config.condition == "label":
            if not self.train_set.has_labels:
                raise ValueError("condition=label needs label maps")  # guarded by config/data already
            if config.num_classes == 0:
                config.num_classes = self.train_set.num_classes  # recorded in config.yaml for the pipeline
            elif config.num_classes < self.train_set.num_classes:
                from ..engine.errors import InputError

                raise InputError(f"option num_classes={config.num_classes}: the label maps hold "
                                 f"{self.train_set.num_classes} classes")
        self.gan_loss = get_loss(config.loss)
        self.augment = DiffAugment(config.augment_policy or "translation", p=0.0 if config.use_ada else 1.0)
        if not config.augment_policy:
            self.augment.p = 0.0
        self.ada = AdaptiveAugment(config.ada_target, config.ada_adjust_images) \
            if config.use_ada and config.augment_policy else None
        positions = torch.tensor([p for _, _, p in self.train_set.index])
        self.position_range = (float(positions.min()), float(positions.max()))

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        gen = build_generator(c.model, c.condition, c.z_dim, c.size, c.channels, c.num_classes)
        gen.spacing_mm.copy_(torch.tensor(self.train_set.spacing))
        gen.position_range.copy_(torch.tensor(self.position_range))
        disc = Discriminator(c.size, c.channels, in_channels=1 + (c.num_classes if c.condition == "label" else 0),
                             cond_dim=POSITION_FEATURES if c.condition == "position" else 0,
                             minibatch_std=c.use_minibatch_std, residual=c.model == "resnet")
        if c.model == "dcgan":
            stab.init_weights(gen, "normal")
            stab.init_weights(disc, "normal")
        if c.use_spectral_norm:
            stab.apply_spectral_norm(disc)
        return {"gen": gen, "disc": disc}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        c = self.config
        return {"gen": OptimizerSpec(("gen",), c.lr_g, (c.beta1, c.beta2)),
                "disc": OptimizerSpec(("disc",), c.lr_d, (c.beta1, c.beta2))}

    def phases(self) -> list[Phase]:
        c = self.config
        phases = [Phase("D", "disc", self.d_loss)]
        if c.r1_gamma > 0:
            phases.append(Phase("D-reg", "disc", self.d_reg_loss, every=c.r1_interval))
        phases.append(Phase("G", "gen", self.g_loss))
        return phases

    def dataset(self) -> SliceDataset:
        return self.train_set

    def ema_nets(self) -> tuple[str, ...]:
        return ("gen",)

    def state_dict(self) -> dict:
        return {"ada": self.ada.state_dict(), "augment_p": self.augment.p} if self.ada is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])
            self.augment.p = float(state["augment_p"])

    # -- conditioning
    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(real (B, 1, S, S), G condition, D condition or label one-hot)."""
        c = self.config
        real = batch["image"]
        if c.condition == "position":
            feats = position_features(batch["position"])  # (B, 9)
            return real, feats, feats
        if c.condition == "label":
            seg = one_hot(batch["label"], c.num_classes)  # (B, K, S, S)
            return real, seg, seg
        return real, None, None

    def _fake(self, gen: nn.Module, n: int, g_cond: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        z = torch.randn(n, self.config.z_dim, device=device)
        return gen(z, g_cond)  # (B, 1, S, S)

    def _disc(self, disc: nn.Module, images: torch.Tensor, d_cond: torch.Tensor | None) -> torch.Tensor:
        if self.config.condition == "label":
            return disc(self.augment(torch.cat([images, d_cond], 1)))  # augment image and label together
        return disc(self.augment(images), d_cond)

    # -- phases
    def d_loss(self, batch: dict, ctx: StepContext) -> dict:
        real, g_cond, d_cond = self._inputs(batch)
        with torch.no_grad():
            fake = self._fake(ctx.nets["gen"], len(real), g_cond, ctx.device)
        d_real = self._disc(ctx.nets["disc"], real, d_cond)
        d_fake = self._disc(ctx.nets["disc"], fake, d_cond)
        loss = self.gan_loss.d(d_real, d_fake)
        logs = {"loss/d": loss.detach(), "aug/p": self.augment.p}
        if self.ada is not None:
            self.ada.accumulate(d_real)
            self.augment.p = self.ada.update(len(real))
        ctx.observe(d_real=d_real, d_fake=d_fake, real=real, fake=fake, threshold=self.gan_loss.threshold)
        return {"loss": loss, **logs}

    def d_reg_loss(self, batch: dict, ctx: StepContext) -> dict:
        c = self.config
        real, _, d_cond = self._inputs(batch)
        real = real.detach().requires_grad_(True)
        if c.condition == "label":
            logits = ctx.nets["disc"](torch.cat([real, d_cond], 1))
        else:
            logits = ctx.nets["disc"](real, d_cond)
        r1 = stab.r1_penalty(logits, real)
        return {"loss": stab.lazy_regularization_weight(c.r1_gamma, c.r1_interval) * r1, "reg/r1": r1.detach()}

    def g_loss(self, batch: dict, ctx: StepContext) -> dict:
        real, g_cond, d_cond = self._inputs(batch)
        fake = self._fake(ctx.nets["gen"], len(real), g_cond, ctx.device)
        d_fake = self._disc(ctx.nets["disc"], fake, d_cond)
        d_real = self._disc(ctx.nets["disc"], real, d_cond) if self.gan_loss.name == "relativistic" else None
        loss = self.gan_loss.g(d_fake, d_real)
        logs = {"loss/g": loss.detach()}
        if self.config.condition == "label" and self.config.l1_weight > 0:
            l1 = (fake - real).abs().mean()
            loss = loss + self.config.l1_weight * l1
            logs["loss/l1"] = l1.detach()
        return {"loss": loss, **logs}

    # -- outputs
    def _eval_batch(self, n: int) -> dict:
        g = torch.Generator().manual_seed(self.config.seed)
        idx = torch.randint(len(self.train_set), (n,), generator=g).tolist()
        items = [self.train_set[i] for i in idx]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    @torch.no_grad()
    def generate(self, gen: nn.Module, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples (n, 1, S, S) and the real slices whose condition they used."""
        batch = self._eval_batch(n)
        batch = {k: v.to(device) for k, v in batch.items()}
        _, g_cond, _ = self._inputs(batch)
        out = [self._fake(gen, len(chunk), None if g_cond is None else g_cond[i:i + 64], device).float().cpu()
               for i, chunk in zip(range(0, n, 64), torch.arange(n).split(64), strict=True)]
        return torch.cat(out), batch["image"].cpu()

    def preview(self, ctx: StepContext) -> torch.Tensor:
        """Rows: 8 samples; for label models, label | sample | real slice triplets."""
        from torchvision.utils import make_grid

        fake, real = self.generate(ctx.sample_net("gen"), 16, ctx.device)
        if self.config.condition == "label":
            lab = self._eval_batch(16)["label"][:, None].float()
            lab = lab / max(self.config.num_classes - 1, 1) * 2 - 1
            tiles = torch.stack([lab[:8], fake[:8], real[:8]], 1).flatten(0, 1)
            return make_grid(tiles, nrow=6, padding=2, pad_value=-1)
        return make_grid(fake, nrow=8, padding=2, pad_value=-1)

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        from ..engine.metrics import PixelExtractor, memorization_audit, sliced_wasserstein_distance

        n = min(self.config.eval_samples, 1024)
        fake, _ = self.generate(ctx.sample_net("gen"), n, ctx.device)
        train = self.train_set.images()
        swd = sliced_wasserstein_distance(train, fake.clamp(-1, 1), min_resolution=16)
        ext = PixelExtractor(32)
        mem = memorization_audit(ext(fake).numpy(), ext(train).numpy())
        return {"swd": swd.mean, "near_copy_share": mem.near_copy_share,
                "nn_ratio_median": float(np.median(mem.ratios))}
