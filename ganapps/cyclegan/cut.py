"""Training logic of CUT and FastCUT (Park et al. 2020, "Contrastive Learning for Unpaired Image-to-Image
Translation") on the engine's task protocol, with contrastive-unpaired-translation's maths and update order:
one generator; D step on real vs G(x) (x 0.5), then the G step: GAN + lambda_NCE x PatchNCE between the input's
and the output's encoder features (CUT: averaged with the identity PatchNCE of G(y) vs y; FastCUT: the input
flipped half the time, features flipped back).

Names (direction a2b): gen_ab, disc_b (judges domain B), nce_head (the MLP head H). Imports the engine and this
package only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import stabilizers as stab
from ..engine.adversarial import Adversary, SingleGANTask
from ..engine.task import OptimizerSpec, StepContext
from .config import CycleGANConfig, one_way
from .data import UnpairedDataset
from .nets import PatchMLPHead, build_discriminator, generator_for
from .pipeline import preview_grid, translation_metrics
from .task import forward_for_d, forward_for_g, load_test_images, summary_line, unpaired_train_set


def patch_nce_loss(feat_q: torch.Tensor, feat_k: torch.Tensor, batch_size: int, temperature: float) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, eq. 2-3): for each sampled patch i of an image, the InfoNCE loss
    -log( exp(q_i.k_i / tau) / sum_j exp(q_i.k_j / tau) ) with the positive k_i at the same place in the input
    and the negatives k_j, j != i, at the other sampled places of the same image.

    feat_q, feat_k: (B * P, C) L2-normalised features, image-major (P patches per image); k is treated as a
    constant (no gradient). Returns (B * P,) losses.

    >>> q = F.normalize(torch.eye(4), dim=1)
    >>> float(patch_nce_loss(q, q, 1, 0.07).max()) < 1e-5   # every patch closest to its own place
    True
    """
    n, c = feat_q.shape
    q = feat_q.view(batch_size, n // batch_size, c)
    k = feat_k.detach().view(batch_size, n // batch_size, c)
    logits = torch.bmm(q, k.transpose(1, 2)) / temperature  # (B, P, P); the diagonal holds the positives
    target = torch.arange(q.shape[1], device=q.device).repeat(batch_size)
    return F.cross_entropy(logits.flatten(0, 1).float(), target, reduction="none")


def sample_patches(feats: list[torch.Tensor], n: int) -> list[torch.Tensor]:
    """For each feature map (B, C, H, W): min(n, H x W) distinct flat positions, uniformly at random (torch's
    RNG), shared by every image of the batch as in the reference."""
    return [torch.randperm(f.shape[2] * f.shape[3])[:n].to(f.device) for f in feats]


class CUTTask(SingleGANTask):  # phases (D, D-reg, G), EMA of G, checkpointed GAN state
    def __init__(self, config: CycleGANConfig):
        c = self.config = config
        self.adv = Adversary(c)
        self.src, self.tgt = one_way(c)
        self.gen, self.disc = f"gen_{self.src}{self.tgt}", f"disc_{self.tgt}"
        self.layers = c.nce_layer_list
        # per-image norms: G's output for an image does not depend on the rest of its batch
        self.per_image = c.norm != "batch"
        self.batched = c.use_batched_calls and self.per_image
        self._data_root = ""

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        gen = generator_for(c)
        stab.init_weights(gen, c.init, c.init_gain)
        disc = build_discriminator(c.disc, c.channels, c.ndf, c.n_layers_d, c.norm, c.use_minibatch_std,
                                   use_antialias=c.use_antialias)
        self.adv.apply_to_disc(disc, c.init, c.init_gain)
        head = stab.init_weights(PatchMLPHead(gen.feature_channels(self.layers), c.nce_mlp_width), c.init,
                                 c.init_gain)
        return {self.gen: gen, self.disc: disc, "nce_head": head}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        # one Adam over G and H is the reference's two Adams with the same settings (Adam is per parameter)
        return self.adv.optimizers(gen=(self.gen, "nce_head"), disc=(self.disc,))

    def dataset(self) -> UnpairedDataset:
        self._data_root, data = unpaired_train_set(self.config)
        return data

    # -- the step
    def _flipped(self, batch: dict, ctx: StepContext) -> bool:
        """FastCUT's coin for this batch (drawn once, shared by the D and G phases as the reference's forward)."""
        if ctx.scratch.get("flip_batch") is not batch:
            flip = self.config.use_flip_equivariance and float(torch.rand(())) < 0.5
            ctx.scratch.update(flip_batch=batch, flip=flip)
        return ctx.scratch["flip"]

    def _inputs(self, batch: dict, ctx: StepContext) -> torch.Tensor:
        """G's input: the source images (+ the target images for the identity NCE), flipped when the coin says."""
        x = batch[self.src]
        if self.config.use_nce_identity:
            x = torch.cat([x, batch[self.tgt]])  # (2B, C, H, W)
        return torch.flip(x, [3]) if self._flipped(batch, ctx) else x

    def _reuse_keys(self, batch: dict, ctx: StepContext) -> bool:
        """Whether the NCE keys (G's encoder features of the unflipped inputs, no gradient) can come from the step's
        forward itself: not flipped, per-image norms (a batch slice's features are its own), no dropout (a second
        encoder pass would draw other masks)."""
        c = self.config
        return c.lambda_nce > 0 and self.per_image and not c.use_dropout and not self._flipped(batch, ctx)

    def d_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `compute_D_loss`: 0.5 x (GAN D loss on the target-domain reals vs G's outputs). G's
        forward runs here once for the whole step (`forward_for_d`), as the reference's `forward`."""
        real = batch[self.tgt]
        layers = self.layers if self._reuse_keys(batch, ctx) else ()
        fake = forward_for_d(ctx.nets[self.gen], self._inputs(batch, ctx), ctx.scratch, "fwd", layers)
        fake = fake[: len(real)]
        out = self.adv.d_loss(ctx.nets[self.disc], real, fake, scale=0.5, batched=self.batched)
        ctx.observe(d_real=out.d_real, d_fake=out.d_fake, real=real, fake=fake, threshold=self.adv.loss.threshold)
        return {"loss": out.loss, **out.logs}

    def d_reg_loss(self, batch: dict, ctx: StepContext) -> dict:
        """Lazy R1 (Mescheder et al. 2018) on the critic's real inputs."""
        r1, logs = self.adv.r1_loss(ctx.nets[self.disc], batch[self.tgt])
        return {"loss": r1, **logs}

    def nce_loss(self, gen: nn.Module, head: nn.Module, src: torch.Tensor, out: torch.Tensor, flipped: bool,
                 feat_k: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The reference's `calculate_NCE_loss`: lambda_NCE x PatchNCE between G's encoder features of the
        output (queries, flipped back when the input was flipped) and of the input (keys, no gradient: the
        reference detaches them; `feat_k` when the step's forward already computed them), on the same sampled
        places, averaged over patches, then over layers."""
        c = self.config
        feat_q = gen.encode(out, self.layers)
        if flipped:
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        with torch.no_grad():
            if feat_k is None:
                feat_k = gen.encode(src, self.layers)
            ids = sample_patches(feat_k, c.nce_patches)
            keys = head(feat_k, ids)
        queries = head(feat_q, ids)
        total = sum(patch_nce_loss(q, k, len(src), c.nce_temperature).mean() for q, k in zip(queries, keys,
                                                                                               strict=True))
        return c.lambda_nce * total / len(self.layers)

    def g_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `compute_G_loss`: adv_weight x GAN G loss + the PatchNCE term (CUT: the mean of
        PatchNCE(x, G(x)) and PatchNCE(y, G(y)))."""
        c = self.config
        gen, head = ctx.nets[self.gen], ctx.nets["nce_head"]
        real_src, real_tgt = batch[self.src], batch[self.tgt]
        flipped = self._flipped(batch, ctx)
        out = forward_for_g(gen, self._inputs(batch, ctx), ctx.scratch, "fwd")
        keys = ctx.scratch.get("fwd/features")
        n = len(real_src)
        fake = out[:n]
        loss_gan, logs = self.adv.g_loss(ctx.nets[self.disc], fake, real_tgt, log="loss/g_gan")
        loss = loss_gan
        if c.lambda_nce > 0:
            nce = self.nce_loss(gen, head, real_src, fake, flipped, keys and [f[:n] for f in keys])
            logs["loss/nce"] = nce.detach()
            if c.use_nce_identity:
                nce_idt = self.nce_loss(gen, head, real_tgt, out[n:], flipped, keys and [f[n:] for f in keys])
                logs["loss/nce_idt"] = nce_idt.detach()
                nce = (nce + nce_idt) * 0.5
            loss = loss + nce
        logs["loss/g"] = loss.detach()
        return {"loss": loss, **logs}

    # -- outputs
    summary = staticmethod(summary_line)

    def preview(self, ctx: StepContext) -> torch.Tensor:
        """Rows of source | translation on the first test (else train) images of the source domain."""
        x = load_test_images(self.config, self._data_root, self.src, self.config.preview_images)
        if x is None:
            ds = getattr(self, "_preview_ds", None) or self.dataset()
            self._preview_ds = ds
            x = torch.stack([ds[i][self.src] for i in range(min(self.config.preview_images, len(ds)))])
        x = x.to(ctx.device)
        with ctx.autocast():
            fake = ctx.sample_net(self.gen)(x).float()
        return preview_grid([[x, fake]])

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        """SWD and pixel-feature KID of the translated test images against the target domain's test images,
        next to the untranslated inputs'; empty when the data has no test folders."""
        c = self.config
        src = load_test_images(c, self._data_root, self.src, c.eval_images)
        tgt = load_test_images(c, self._data_root, self.tgt, c.eval_images)
        if src is None or tgt is None or min(len(src), len(tgt)) < 2:
            return {}
        net = ctx.sample_net(self.gen)
        with ctx.autocast():
            fake = torch.cat([net(x.to(ctx.device)[None]).float().cpu() for x in src])
        return {f"{c.direction}/{k}": v for k, v in translation_metrics(fake, tgt, src).items()}
