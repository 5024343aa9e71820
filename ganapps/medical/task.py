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
from ..engine.adversarial import Adversary, Critic, Join, SingleGANTask
from ..engine.errors import InputError
from ..engine.task import StepContext
from .augment import AnatomyAugment, AugmentedSlices, LesionPainter
from .config import MedicalConfig
from .data import SliceDataset, one_hot
from .labels import NUM_CLASSES, TissueStats
from .nets import POSITION_FEATURES, Discriminator, build_generator, intensity_quantiles, position_features


def training_slices(config: MedicalConfig) -> SliceDataset:
    """The training split, augmented as `anatomy_augment` and `paint_lesions` ask (`augment.AugmentedSlices`)."""
    base = SliceDataset(config, "train")
    augment = AnatomyAugment.parse(config.anatomy_augment)
    painter = None
    if config.paint_lesions > 0:
        if not base.has_labels:
            raise InputError("option paint_lesions: the training data has no label maps")
        items = [base[i] for i in range(len(base))]
        stats = TissueStats.measure(torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items]))
        painter = LesionPainter(stats, p=config.paint_lesions)
        config.num_classes = max(config.num_classes, NUM_CLASSES)  # the lesion classes, recorded in config.yaml
    if augment is None and painter is None:
        return base
    return AugmentedSlices(base, augment, painter)


class MedicalTask(SingleGANTask):
    def __init__(self, config: MedicalConfig, train_set: SliceDataset | None = None):
        self.config = config
        self.train_set = train_set if train_set is not None else training_slices(config)
        if config.condition == "label":
            if not self.train_set.has_labels:
                raise ValueError("condition=label needs label maps")  # guarded by config/data already
            if config.num_classes == 0:
                config.num_classes = self.train_set.num_classes  # recorded in config.yaml for the pipeline
            elif config.num_classes < self.train_set.num_classes:
                raise InputError(f"option num_classes={config.num_classes}: the label maps hold "
                                 f"{self.train_set.num_classes} classes")
        self.adv = Adversary(config)
        positions = torch.tensor([p for _, _, p in self.train_set.index])
        self.position_range = (float(positions.min()), float(positions.max()))

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        gen = build_generator(c.model, c.condition, c.z_dim, c.size, c.width, c.num_classes, c.spade_hidden)
        gen.spacing_mm.copy_(torch.tensor(self.train_set.spacing))
        gen.position_range.copy_(torch.tensor(self.position_range))
        gen.position_step.fill_(self.train_set.position_step)
        gen.intensity_quantiles[1] = intensity_quantiles(self.train_set.images())  # the calibration's target
        disc = Discriminator(c.size, c.width, in_channels=1 + (c.num_classes if c.condition == "label" else 0),
                             cond_dim=POSITION_FEATURES if c.condition == "position" else 0,
                             minibatch_std=c.use_minibatch_std, residual=c.model == "resnet")
        init = "normal" if c.model == "dcgan" else None  # the DCGAN recipe; the residual nets keep PyTorch's
        if init is not None:
            stab.init_weights(gen, init)
        return {"gen": gen, "disc": self.adv.apply_to_disc(disc, init)}

    def dataset(self) -> SliceDataset:
        return self.train_set

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

    def _critic(self, disc: nn.Module, d_cond: torch.Tensor | None) -> tuple[Critic, Join | None]:
        """(D on its input, the join of a slice with its condition): a label map is concatenated to the slice, so
        the two are augmented together; a position embedding is D's second argument."""
        if self.config.condition == "label":
            return disc, lambda images: torch.cat([images, d_cond], 1)  # (B, 1 + K, S, S)
        return (lambda x: disc(x, d_cond)), None

    # -- phases
    def d_loss(self, batch: dict, ctx: StepContext) -> dict:
        real, g_cond, d_cond = self._inputs(batch)
        with torch.no_grad():
            fake = self._fake(ctx.nets["gen"], len(real), g_cond, ctx.device)
        disc, join = self._critic(ctx.nets["disc"], d_cond)
        out = self.adv.d_loss(disc, real, fake, join=join)
        ctx.observe(d_real=out.d_real, d_fake=out.d_fake, real=real, fake=fake, threshold=self.adv.loss.threshold)
        return {"loss": out.loss, **out.logs}

    def d_reg_loss(self, batch: dict, ctx: StepContext) -> dict:
        real, _, d_cond = self._inputs(batch)
        disc, join = self._critic(ctx.nets["disc"], d_cond)
        r1, logs = self.adv.r1_loss(disc, real, join=join)
        return {"loss": r1, **logs}

    def g_loss(self, batch: dict, ctx: StepContext) -> dict:
        real, g_cond, d_cond = self._inputs(batch)
        fake = self._fake(ctx.nets["gen"], len(real), g_cond, ctx.device)
        disc, join = self._critic(ctx.nets["disc"], d_cond)
        loss, logs = self.adv.g_loss(disc, fake, real, join=join)
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

    @staticmethod
    def summary(ev: dict[str, float]) -> str:
        """The one line `ganapps medical train` prints from `evaluate`'s figures."""
        return f"swd {ev['swd']:.1f}  near_copy_share {ev['near_copy_share']:.3f}"

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
