"""Training logic of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks") on the engine's task protocol, with the reference's maths and update order:
G step (D frozen) on GAN + cycle + identity losses, then D_A and D_B on real vs pooled fakes, each x 0.5.
The fast recipe's terms are options: the identity weight's linear decay and the sliced-W1 colour loss.

Names: gen_ab maps A -> B (the reference's G_A), gen_ba maps B -> A (G_B); disc_b judges domain B (D_A),
disc_a judges domain A (D_B). Imports the engine and this package only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import stabilizers as stab
from ..engine.adversarial import Adversary
from ..engine.task import OptimizerSpec, Phase, StepContext
from .colour import sliced_w1
from .config import CycleGANConfig
from .data import UnpairedDataset, domain_folders, list_images
from .nets import build_discriminator, generator_for, init_generator
from .pipeline import preview_grid, translation_metrics

COLOUR_REF_IMAGES = 8  # real images of the target domain (the latest batches) the colour loss compares with
COLOUR_LOSS_PIXELS = 4096  # pixels per image the colour loss sorts (all of a 64x64 crop; a random 4096 of larger)


def load_test_images(cfg: CycleGANConfig, data_root: str, dom: str, n: int) -> torch.Tensor | None:
    """Up to `n` images of the test folder of domain `dom` ("a" or "b"), resized and centre-cropped to the crop
    size: (N, C, crop, crop); None when the data has no such folder (two-folder data, no test split)."""
    from .data import center_crop_or_resize, read_image

    if cfg.data_a or not data_root:
        return None
    try:
        files = list_images(domain_folders(data_root, split="test")[0 if dom == "a" else 1])[:n]
    except Exception:
        return None
    return torch.stack([center_crop_or_resize(read_image(f, cfg.channels), cfg.crop_size) for f in files])


def forward_for_d(net: nn.Module, x: torch.Tensor, scratch: dict, key: str,
                  layers: Sequence[int] = ()) -> torch.Tensor:
    """net(x) for a D phase that comes before the G phase (pix2pix, CUT: the references update D first, then G,
    from one forward). The forward runs once per step, with gradients for the net's weights (the engine turns
    them off in the D phase), and is kept in `scratch[key]` for `forward_for_g`; the D phase gets it detached.
    So random draws (dropout) and batch-norm statistics updates happen once, as in the reference. With
    `layers`, `net.encode`'s features of x at those layers come from the same pass (detached), in
    `scratch[key + "/features"]`."""
    scratch[key + "/rng"] = torch.get_rng_state()  # what its random draws started from (checks against a reference)
    frozen = [p for p in net.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        y, feats = net.forward_and_encode(x, layers) if layers else (net(x), [])
    finally:
        for p in frozen:
            p.requires_grad_(False)
    scratch[key] = (x, y)
    if layers:
        scratch[key + "/features"] = [f.detach() for f in feats]
    return y.detach()


def forward_for_g(net: nn.Module, x: torch.Tensor, scratch: dict, key: str) -> torch.Tensor:
    """net(x) with gradients: the D phase's forward of this step when it ran on the same input (`forward_for_d`;
    the net's weights have not changed since: only D was updated), else a fresh forward."""
    kept = scratch.pop(key, None)
    if kept is not None and kept[0].shape == x.shape and torch.equal(kept[0], x):
        return kept[1]
    scratch.pop(key + "/features", None)  # they belong to the other input
    return net(x)


def summary_line(ev: dict[str, float]) -> str:
    """The one line `ganapps cyclegan train` prints from a translation task's `evaluate` figures."""
    keys = ("/swd", "/swd_identity", "/psnr_db", "/psnr_identity_db", "/checkerboard_index")
    return "  ".join(f"{k} {v:.2f}" if k.endswith(("checkerboard_index", "_db")) else f"{k} {v:.1f}"
                     for k, v in ev.items() if k.endswith(keys))


def train_folders(cfg: CycleGANConfig) -> tuple[str, str, str]:
    """(dataset root or "", folder A, folder B) for training; the built-in dataset when no data is given."""
    data = cfg.data
    if not data and not cfg.data_a:
        from ..recipes.cyclegan_builtin import build

        data = str(build(quiet=cfg.quiet))
    a, b = domain_folders(data, cfg.data_a, cfg.data_b, "train")
    return data, str(a), str(b)


def loader_options(cfg: CycleGANConfig) -> dict:
    """The config's loading options, as the keywords of `UnpairedDataset` and `PairedDataset`."""
    return dict(channels=cfg.channels, preprocess=cfg.preprocess, load_size=cfg.load_size, crop_size=cfg.crop_size,
                use_flip=cfg.use_flip, cache=cfg.cache_images, cache_max_images=cfg.cache_max_images, strict=cfg.strict)


def unpaired_train_set(cfg: CycleGANConfig) -> tuple[str, UnpairedDataset]:
    """(dataset root or "", the unpaired training set on `train_folders`), for CycleGAN and CUT."""
    root, a, b = train_folders(cfg)
    return root, UnpairedDataset(a, b, **loader_options(cfg))


class CycleGANTask:
    def __init__(self, config: CycleGANConfig):
        c = self.config = config
        self.adv = Adversary(c)  # critics keyed "a" (disc_a) and "b" (disc_b)
        self.pool_a = stab.ImagePool(c.pool_size)  # history of fake A images, shown to disc_a
        self.pool_b = stab.ImagePool(c.pool_size)
        # Instance norm (and none) treats every image alone, so stacking images into one call is exact;
        # batch norm would mix their statistics, so it keeps the reference's separate calls.
        self.batched = c.use_batched_calls and c.norm != "batch"
        self.memory_format = torch.channels_last if c.use_channels_last else torch.contiguous_format
        self._data_root = ""
        self.history = {"a": deque(maxlen=COLOUR_REF_IMAGES), "b": deque(maxlen=COLOUR_REF_IMAGES)}  # real images
        # the latest fakes (detached), pooled with this step's in the colour loss
        self.fakes = {"a": deque(maxlen=COLOUR_REF_IMAGES - 1), "b": deque(maxlen=COLOUR_REF_IMAGES - 1)}

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        nets = {}
        for name in ("gen_ab", "gen_ba"):
            nets[name] = init_generator(generator_for(c), c.init, c.init_gain)
        for name in ("disc_a", "disc_b"):
            net = build_discriminator(c.disc, c.channels, c.ndf, c.n_layers_d, c.norm, c.use_minibatch_std)
            if c.disc == "dual":  # the colour critic's MLP keeps PyTorch's default init
                stab.init_weights(net.patch, c.init, c.init_gain)
                nets[name] = self.adv.apply_to_disc(net)
            else:
                nets[name] = self.adv.apply_to_disc(net, c.init, c.init_gain)
        for net in nets.values():
            net.to(memory_format=self.memory_format)
        return nets

    def optimizers(self) -> dict[str, OptimizerSpec]:
        specs = self.adv.optimizers(gen=("gen_ab", "gen_ba"), disc=("disc_a", "disc_b"))
        if self.config.lr_global > 0:  # the colourtone branch's encoder and parameter head
            specs["gen"].lr_by_prefix = tuple((f"{g}.{part}.", self.config.lr_global) for g in ("gen_ab", "gen_ba")
                                              for part in ("enc", "head"))
        return specs

    def phases(self) -> list[Phase]:
        return self.adv.phases(g=self.g_loss, d=self.d_loss, d_reg=self.d_reg_loss, order=("G", "D", "D-reg"))

    def dataset(self) -> UnpairedDataset:
        self._data_root, data = unpaired_train_set(self.config)
        return data

    def ema_nets(self) -> tuple[str, ...]:
        return ("gen_ab", "gen_ba")

    def state_dict(self) -> dict:
        state = {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict(), **self.adv.state_dict()}
        if self.config.lambda_colour > 0:
            for key, kept in (("history", self.history), ("fakes", self.fakes)):
                state[key] = {k: torch.stack(list(v)) if v else torch.empty(0) for k, v in kept.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
        self.adv.load_state_dict(state)
        for key, kept in (("history", self.history), ("fakes", self.fakes)):
            for k, images in state.get(key, {}).items():
                kept[k].clear()
                kept[k].extend(images)

    # -- helpers
    def _reals(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return (batch["a"].contiguous(memory_format=self.memory_format),
                batch["b"].contiguous(memory_format=self.memory_format))

    def translate_all(self, gen_ab: nn.Module, gen_ba: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
                      identity: bool) -> dict[str, torch.Tensor]:
        """The reference's forward (fake_b, rec_a, fake_a, rec_b) plus, with `identity`, same_b = gen_ab(real_b)
        and same_a = gen_ba(real_a): 3 generator calls instead of 6 when batching is exact."""
        n = len(real_a)
        if self.batched and real_a.shape == real_b.shape:
            out = gen_ab(torch.cat([real_a, real_b]) if identity else real_a)  # (2B | B, C, H, W)
            fake_b = out[:n]
            r = {"fake_b": fake_b}
            if identity:
                r["same_b"] = out[n:]
            out = gen_ba(torch.cat([real_b, fake_b, real_a] if identity else [real_b, fake_b]))  # (3B | 2B, C, H, W)
            r["fake_a"], r["rec_a"] = out[:n], out[n:2 * n]
            if identity:
                r["same_a"] = out[2 * n:]
            r["rec_b"] = gen_ab(r["fake_a"])
            return r
        r = {"fake_b": gen_ab(real_a)}
        r["rec_a"] = gen_ba(r["fake_b"])
        r["fake_a"] = gen_ba(real_b)
        r["rec_b"] = gen_ab(r["fake_a"])
        if identity:
            r["same_b"], r["same_a"] = gen_ab(real_b), gen_ba(real_a)
        return r

    def identity_weight(self, step: int) -> float:
        """lambda_identity at `step` (0-based): constant (the reference), or with identity_decay_steps > 0
        decayed linearly to 0 at that step."""
        c = self.config
        if c.identity_decay_steps <= 0:
            return c.lambda_identity
        return c.lambda_identity * max(0.0, 1.0 - step / c.identity_decay_steps)

    def colour_loss(self, fake: torch.Tensor, dom: str, real: torch.Tensor) -> torch.Tensor:
        """Sliced W1 (colour.sliced_w1) between `fake` (of domain `dom`) pooled with the latest earlier fakes
        and the latest real images of `dom` (this batch's `real` and up to COLOUR_REF_IMAGES in all): the colours
        of a set of images are matched, not each image's alone (a dark photo's fake need not have the average
        real colours)."""
        self.history[dom].extend(real.detach())
        earlier = torch.stack(list(self.fakes[dom])) if self.fakes[dom] else None
        self.fakes[dom].extend(fake.detach())
        return sliced_w1(fake, torch.stack(list(self.history[dom])), earlier=earlier, max_pixels=COLOUR_LOSS_PIXELS)

    # -- phases
    def g_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `backward_G`: LSGAN (or the chosen loss) on both fakes, L1 cycle x lambda, L1
        identity x lambda x lambda_identity (decayed over identity_decay_steps when set); plus lambda_colour x
        the sliced-W1 colour loss of each fake. D is frozen by the trainer during this phase."""
        c = self.config
        real_a, real_b = self._reals(batch)
        w_identity = self.identity_weight(ctx.step)
        identity = w_identity > 0
        t = self.translate_all(ctx.nets["gen_ab"], ctx.nets["gen_ba"], real_a, real_b, identity)
        loss_g_ab, logs = self.adv.g_loss(ctx.nets["disc_b"], t["fake_b"], real_b, log="loss/g_ab")
        loss_g_ba, logs_ba = self.adv.g_loss(ctx.nets["disc_a"], t["fake_a"], real_a, log="loss/g_ba")
        loss_cycle_a = F.l1_loss(t["rec_a"], real_a) * c.lambda_a
        loss_cycle_b = F.l1_loss(t["rec_b"], real_b) * c.lambda_b
        loss = loss_g_ab + loss_g_ba + loss_cycle_a + loss_cycle_b
        logs.update({**logs_ba, "loss/cycle_a": loss_cycle_a.detach(), "loss/cycle_b": loss_cycle_b.detach()})
        if identity:
            loss_idt_b = F.l1_loss(t["same_b"], real_b) * c.lambda_b * w_identity
            loss_idt_a = F.l1_loss(t["same_a"], real_a) * c.lambda_a * w_identity
            loss = loss + loss_idt_a + loss_idt_b
            logs.update({"loss/idt_a": loss_idt_a.detach(), "loss/idt_b": loss_idt_b.detach()})
        if c.lambda_colour > 0:
            loss_colour = self.colour_loss(t["fake_b"], "b", real_b) + self.colour_loss(t["fake_a"], "a", real_a)
            loss = loss + c.lambda_colour * loss_colour
            logs["loss/colour"] = loss_colour.detach()
        # The D step sees the fakes made before this G update, as in the reference.
        ctx.scratch.update(batch=batch, fake_a=t["fake_a"].detach(), fake_b=t["fake_b"].detach())
        logs["loss/g"] = loss.detach()
        return {"loss": loss, **logs}

    def d_loss(self, batch: dict, ctx: StepContext) -> dict:
        """The reference's `backward_D_A` then `backward_D_B`: 0.5 x D loss on real vs a pool-mixed fake."""
        real_a, real_b = self._reals(batch)
        if ctx.scratch.get("batch") is batch:
            fake_a, fake_b = ctx.scratch["fake_a"], ctx.scratch["fake_b"]
        else:  # an extra critic step (n_critic > 1) on a fresh batch
            with torch.no_grad():
                fake_b, fake_a = ctx.nets["gen_ab"](real_a), ctx.nets["gen_ba"](real_b)
        fake_b = self.pool_b.query(fake_b)  # pool B first, as the reference's D_A step comes first
        fake_a = self.pool_a.query(fake_a)
        logs: dict = {}
        loss = torch.zeros((), device=real_a.device)
        reals, fakes = [], []
        for dom, real, fake in (("b", real_b, fake_b), ("a", real_a, fake_a)):
            out = self.adv.d_loss(ctx.nets[f"disc_{dom}"], real, fake, key=dom, scale=0.5, batched=self.batched)
            loss = loss + out.loss
            logs.update(out.logs)
            reals.append(out.d_real.detach().flatten())
            fakes.append(out.d_fake.detach().flatten())
        ctx.observe(d_real=torch.cat(reals), d_fake=torch.cat(fakes), real=real_b, fake=fake_b,
                    threshold=self.adv.loss.threshold)
        logs["loss/d"] = loss.detach()
        return {"loss": loss, **logs}

    def d_reg_loss(self, batch: dict, ctx: StepContext) -> dict:
        """Lazy R1 (Mescheder et al. 2018) on both discriminators' real inputs."""
        total = torch.zeros((), device=batch["a"].device)
        logs = {}
        for dom in ("a", "b"):
            real = batch[dom].contiguous(memory_format=self.memory_format)
            r1, log = self.adv.r1_loss(ctx.nets[f"disc_{dom}"], real, key=dom)
            total = total + r1
            logs.update(log)
        return {"loss": total, **logs}

    # -- outputs
    def _load_test_images(self, dom: str, n: int) -> torch.Tensor | None:
        return load_test_images(self.config, self._data_root, dom, n)

    def preview(self, ctx: StepContext) -> torch.Tensor:
        """Rows of real_a | fake_b | rec_a, then real_b | fake_a | rec_b, on the first test (else train) images."""
        c = self.config
        n = c.preview_images
        reals = {}
        for dom in ("a", "b"):
            x = self._load_test_images(dom, n)
            if x is None:
                ds = getattr(self, "_preview_ds", None) or self.dataset()
                self._preview_ds = ds
                x = torch.stack([ds[i][dom] for i in range(min(n, len(ds)))])
            reals[dom] = x.to(ctx.device)
        gen_ab, gen_ba = ctx.sample_net("gen_ab"), ctx.sample_net("gen_ba")
        with ctx.autocast():
            fake_b, fake_a = gen_ab(reals["a"]).float().clamp(-1, 1), gen_ba(reals["b"]).float().clamp(-1, 1)
            rec_a, rec_b = gen_ba(fake_b).float().clamp(-1, 1), gen_ab(fake_a).float().clamp(-1, 1)
        return preview_grid([[reals["a"], fake_b, rec_a], [reals["b"], fake_a, rec_b]])

    summary = staticmethod(summary_line)

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        """SWD and pixel-feature KID of translated test images against the other domain's test images, next to
        the identity baseline (untranslated inputs); empty when the data has no test folders."""
        c = self.config
        a, b = self._load_test_images("a", c.eval_images), self._load_test_images("b", c.eval_images)
        if a is None or b is None or min(len(a), len(b)) < 2:
            return {}
        out = {}
        for name, src, tgt, gen in (("a2b", a, b, "gen_ab"), ("b2a", b, a, "gen_ba")):
            net = ctx.sample_net(gen)
            with ctx.autocast():
                # the colourtone generators' outputs are not bounded by a tanh
                fake = torch.cat([net(x.to(ctx.device)[None]).float().cpu() for x in src]).clamp(-1, 1)
            for k, v in translation_metrics(fake, tgt, src).items():
                out[f"{name}/{k}"] = v
        return out


def make_task(cfg: CycleGANConfig):
    """The training task of `cfg.method`: CycleGANTask, CUTTask (cut, fastcut) or Pix2PixTask."""
    if cfg.method in ("cut", "fastcut"):
        from .cut import CUTTask

        return CUTTask(cfg)
    if cfg.method == "pix2pix":
        from .pix2pix import Pix2PixTask

        return Pix2PixTask(cfg)
    return CycleGANTask(cfg)
