"""Training logic of pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks") on the engine's task protocol, with pytorch-CycleGAN-and-pix2pix's `pix2pix_model.py` maths and
update order: paired data; D step on (input, target) vs (input, G(input)) (x 0.5), then the G step: GAN +
lambda_L1 x L1(G(input), target).

Names (direction a2b): gen_ab, disc_b (the conditional PatchGAN, judging an input and a B image stacked on the
channel axis). Imports the engine and this package only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import stabilizers as stab
from ..engine.adversarial import Adversary, SingleGANTask
from ..engine.task import StepContext
from .config import CycleGANConfig, one_way
from .data import PairedDataset, load_pairs, paired_source
from .nets import build_discriminator, generator_for
from .pipeline import preview_grid, translation_metrics
from .task import forward_for_d, forward_for_g, loader_options, summary_line


def pair_source(cfg: CycleGANConfig, split: str = "train") -> tuple[Path, Path] | Path | None:
    """The pairs of a split (`data.paired_source`); the built-in paired photo -> painting set when no data is
    given. None for a test split the data does not have."""
    if cfg.data_a:
        return (Path(cfg.data_a), Path(cfg.data_b)) if split == "train" else None
    data = cfg.data
    if not data:
        from ..recipes.cyclegan_builtin import build_paired

        data = str(build_paired(quiet=cfg.quiet))
    if split != "train":
        root = Path(data)
        if not ((root / f"{split}A").is_dir() or (root / split).is_dir()):
            return None
    return paired_source(data, split=split)


class Pix2PixTask(SingleGANTask):  # optimizers, phases (D, D-reg, G), EMA of G, checkpointed GAN state
    def __init__(self, config: CycleGANConfig):
        c = self.config = config
        self.adv = Adversary(c)
        self.src, self.tgt = one_way(c)
        self.gen, self.disc = f"gen_{self.src}{self.tgt}", f"disc_{self.tgt}"
        # batch norm (pix2pix's default) mixes the images of one call: judge reals and fakes apart then
        self.batched = c.use_batched_calls and c.norm != "batch"
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        gen = generator_for(c)
        stab.init_weights(gen, c.init, c.init_gain)
        disc = build_discriminator(c.disc, 2 * c.channels, c.ndf, c.n_layers_d, c.norm, c.use_minibatch_std,
                                   use_antialias=c.use_antialias)  # sees (input, output) stacked
        self.adv.apply_to_disc(disc, c.init, c.init_gain)
        return {self.gen: gen, self.disc: disc}

    def dataset(self) -> PairedDataset:
        return PairedDataset(pair_source(self.config), **loader_options(self.config))

    # -- the step
    @staticmethod
    def _join(cond: torch.Tensor):
        return lambda x: torch.cat([cond, x], 1)  # (B, C, H, W) -> (B, 2C, H, W): the conditional D's input

    def d_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `backward_D`: 0.5 x (GAN D loss on (input, target) vs (input, G(input)))."""
        src, real = batch[self.src], batch[self.tgt]
        fake = forward_for_d(ctx.nets[self.gen], src, ctx.scratch, "fwd")
        out = self.adv.d_loss(ctx.nets[self.disc], real, fake, scale=0.5, join=self._join(src),
                              batched=self.batched)
        ctx.observe(d_real=out.d_real, d_fake=out.d_fake, real=real, fake=fake, threshold=self.adv.loss.threshold)
        return {"loss": out.loss, **out.logs}

    def d_reg_loss(self, batch: dict, ctx: StepContext) -> dict:
        """Lazy R1 (Mescheder et al. 2018) on the real pairs, w.r.t. the target image."""
        r1, logs = self.adv.r1_loss(ctx.nets[self.disc], batch[self.tgt], join=self._join(batch[self.src]))
        return {"loss": r1, **logs}

    def g_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `backward_G`: adv_weight x GAN G loss on (input, G(input)) + lambda_L1 x
        L1(G(input), target)."""
        src, real = batch[self.src], batch[self.tgt]
        fake = forward_for_g(ctx.nets[self.gen], src, ctx.scratch, "fwd")
        loss_gan, logs = self.adv.g_loss(ctx.nets[self.disc], fake, real, join=self._join(src), log="loss/g_gan")
        loss_l1 = F.l1_loss(fake, real) * self.config.lambda_l1
        loss = loss_gan + loss_l1
        logs.update({"loss/l1": loss_l1.detach(), "loss/g": loss.detach()})
        return {"loss": loss, **logs}

    # -- outputs
    summary = staticmethod(summary_line)

    def _test_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(inputs, targets) of the first n test pairs at the crop size; None without a test split."""
        c = self.config
        source = pair_source(c, "test")
        if source is None:
            return None
        _, a, b = load_pairs(source, c.channels, c.crop_size, n)
        return (a, b) if self.src == "a" else (b, a)

    def preview(self, ctx: StepContext) -> torch.Tensor:
        """Rows of input | translation | target on the first test (else train) pairs."""
        c = self.config
        pairs = self._test_pairs(c.preview_images)
        if pairs is None:
            ds = self.dataset()
            items = [ds[i] for i in range(min(c.preview_images, len(ds)))]
            pairs = (torch.stack([it[self.src] for it in items]), torch.stack([it[self.tgt] for it in items]))
        x, y = (t.to(ctx.device) for t in pairs)
        with ctx.autocast():
            fake = ctx.sample_net(self.gen)(x).float()
        return preview_grid([[x, fake, y]])

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        """On the test pairs: PSNR (dB) and SSIM of the translations to their targets, SWD and pixel KID
        against the targets, each next to the untranslated inputs'; empty without a test split."""
        from ..engine.metrics import psnr, ssim

        c = self.config
        pairs = self._test_pairs(c.eval_images)
        if pairs is None or len(pairs[0]) < 2:
            return {}
        src, tgt = pairs
        net = ctx.sample_net(self.gen)
        with ctx.autocast():
            fake = torch.cat([net(x.to(ctx.device)[None]).float().cpu() for x in src])
        out = translation_metrics(fake, tgt, src)
        out.update(psnr_db=float(psnr(fake, tgt).mean()), ssim=float(ssim(fake, tgt).mean()),
                   psnr_identity_db=float(psnr(src, tgt).mean()), ssim_identity=float(ssim(src, tgt).mean()))
        return {f"{c.direction}/{k}": v for k, v in out.items()}
