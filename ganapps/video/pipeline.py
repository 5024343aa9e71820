"""Inference: `Predictor` (on the engine's `InferenceModel`: `from_checkpoint`, `export`) loads a trained predictor and continues clips; metrics with OpenSTL's conventions,
copy-last-frame and optical-flow baselines, video writers. Never imports training code (task, trainer).

    >>> from ganapps.video import Predictor
    >>> pred = Predictor.from_checkpoint()              # the shipped video-default model
    >>> future = pred("clip.mp4", frames=8)            # (8, C, H, W) in [-1, 1] at the clip's size
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, has_suffix
from ..engine.inference import InferenceModel
from ..engine.metrics.image_quality import psnr, ssim
from .adapt import keep_best
from .baselines import Classical, backtest, copy_last, flow_extrapolate, guard_choice
from .config import VideoConfig
from .data import iter_frames, probe, to_tensor
from .nets import PRIOR_PAIRS, build_predictor, motion_prior


def _as_frames(frames, what: str = "frames") -> torch.Tensor:
    """(T, C, H, W) tensor in [-1, 1], or (T, H, W[, C]) uint8 array -> (T, C, H, W) float32 in [-1, 1]."""
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise InputError(f"{what}: numpy frames must be uint8 (T, H, W[, C]), got {frames.dtype}")
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.ndim != 4:
            raise InputError(f"{what}: expected (T, H, W[, C]) uint8, got shape {frames.shape}")
        return to_tensor(frames)
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4:
            raise InputError(f"{what}: expected a (T, C, H, W) tensor, got shape {tuple(frames.shape)}")
        return frames.float()
    raise InputError(f"{what}: expected a tensor, a uint8 array or a video path, got {type(frames).__name__}")


def resize_frames(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, C, H, W) -> (T, C, *size), area-averaged when shrinking, bilinear when growing."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="area" if shrink else "bilinear", align_corners=None if shrink else False)


def match_channels(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """Gray <-> RGB: a 1-channel clip is repeated for an RGB model; an RGB clip is converted to luma
    (ITU-R BT.601) for a gray model. Any other mismatch is an error."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    raise InputError(f"{what}: {c} channels, the model expects {channels}")


class RolloutGraph(nn.Module):
    """A predictor's roll-out of `future` frames as one graph, for export: context (B, Tc, C, H, W) in [-1, 1]
    [, priors (B, Tc, 2, H, W) | flows (B, 6, 2, H, W)] -> (B, future, C, H, W). The roll-out is a loop over a
    fixed number of frames, so `future` is fixed when exported (roll longer by feeding predictions back as
    context). OpenCV Farneback flow is not a torch operation, so where a net uses it, it is an input: the
    flowprior head's prior of context step t is `motion_prior(context[:, :t + 1], PRIOR_PAIRS)`
    (`Predictor.motion_priors`); TrustNet's are `trust.context_flows(context)` (its six flow pairs)."""

    def __init__(self, net: nn.Module, future: int, takes_flows: bool = False):
        super().__init__()
        self.net, self.future, self.takes_flows = net, future, takes_flows

    def forward(self, context: torch.Tensor, priors: torch.Tensor | None = None) -> torch.Tensor:
        if priors is None:
            return self.net(context, self.future)
        if self.takes_flows:
            return self.net(context, self.future, flows=priors)
        given = list(priors.unbind(1))  # Tc x (B, 2, H, W)
        self.net._priors = lambda _context: given  # this call only: the priors fed in, not computed by OpenCV
        try:
            return self.net(context, self.future)
        finally:
            del self.net._priors


class Predictor(InferenceModel):
    """Continue a clip: the last `context` frames in, `frames` predicted frames out.

    `__call__(clip, frames=K)`: clip is a (T, C, H, W) float tensor in [-1, 1], a (T, H, W[, C]) uint8 array,
    or a video path / frame folder (only its last context frames are decoded), and returns (K, C, H, W)
    in [-1, 1] at the input's size (the model runs at its own resolution; predictions are resized back).
    """

    config_class = VideoConfig
    default_model = "video-default"

    def __init__(self, net: nn.Module, config: VideoConfig, device: str | torch.device = "cpu"):
        super().__init__({"gen": net}, config, device)
        self.adapt_record: dict | None = None  # set on a copy made by `adapted`
        self.guard_record: dict | None = None  # set on a copy made by `guarded`

    @classmethod
    def build_nets(cls, config: VideoConfig) -> dict[str, nn.Module]:
        c = config
        return {"gen": build_predictor(c.predictor, channels=c.channels, context=c.context_frames,
                                       future=c.future_frames, hidden=c.hidden, layers=c.layers, kernel=c.kernel,
                                       patch=c.patch, head=c.head, flow_correction=c.use_flow_correction,
                                       guard_means=c.use_guarded_means)}

    @classmethod
    def from_nets(cls, nets: dict[str, nn.Module], config: VideoConfig, device: torch.device) -> Predictor:
        return cls(nets["gen"], config, device)

    @property
    def net(self) -> nn.Module:
        return self.nets["gen"]

    @property
    def context(self) -> int:
        return self.config.context_frames

    @property
    def size(self) -> int:
        return self.config.size

    @staticmethod
    def motion_priors(context: torch.Tensor) -> torch.Tensor:
        """The flowprior head's motion priors of a context (B, Tc, C, H, W): (B, Tc, 2, H, W) pixels per frame,
        the input an exported flowprior predictor takes next to the context."""
        return torch.stack([motion_prior(context[:, :t + 1], PRIOR_PAIRS) for t in range(context.shape[1])], 1)

    def export_graphs(self, sizes: list[tuple[int, int]] | None = None) -> list:
        """The predictor as one graph `gen`: context (B, Tc, C, S, S) [+ priors (B, Tc, 2, S, S) with the
        flowprior head] -> future (B, K, C, S, S), K = the training horizon, any batch, at the model's size S
        (the roll-out and the warp grids are built for it). Traced at batch 2, checked at batches 1 and 3."""
        from ..engine.export import Graph

        if sizes:
            raise InputError(f"--check-sizes: the video predictor runs at its own size ({self.size}x{self.size}); "
                             f"there are no sizes to choose")
        from .trust import FLOW_PAIRS, context_flows

        c = self.config
        flowprior = getattr(self.net, "head_kind", None) == "flowprior"
        trust = c.predictor == "trustnet"
        side = "priors" if flowprior else "flows" if trust else None
        g = torch.Generator().manual_seed(0)

        def feeds(b: int) -> dict[str, torch.Tensor]:
            # a moving random texture: flows that are not zero, so the graph is checked on real motion
            base = torch.rand(b, 1, c.channels, c.size + c.context_frames, c.size + 2 * c.context_frames,
                              generator=g) * 2 - 1
            context = torch.cat([base[..., t:t + c.size, 2 * t:2 * t + c.size] for t in range(c.context_frames)], 1)
            extra = {"priors": self.motion_priors(context)} if flowprior else \
                {"flows": context_flows(context)} if trust else {}
            return {"context": context, **extra}

        dynamic = {"context": {0: "batch"}, **({side: {0: "batch"}} if side else {})}
        note = (f"context (batch, {c.context_frames}, {c.channels}, {c.size}, {c.size}) float32 in [-1, 1] -> future "
                f"(batch, {c.future_frames}, {c.channels}, {c.size}, {c.size})")
        if flowprior:
            note += (f"; priors (batch, {c.context_frames}, 2, {c.size}, {c.size}): per context step t, OpenCV "
                     f"Farneback flow (0.5, 3, 15, 3, 5, 1.2) of frame t back to frames t-1..t-{PRIOR_PAIRS} on 8-bit "
                     f"luma, divided by the distance and averaged (ganapps.video.nets.motion_prior); zero at t=0")
        if trust:
            note += (f"; flows (batch, {len(FLOW_PAIRS)}, 2, {c.size}, {c.size}): OpenCV Farneback flow (0.5, 3, "
                     f"15, 3, 5, 1.2, on 8-bit luma) of context frame a back to frame b for (a, b) in {FLOW_PAIRS} "
                     f"(ganapps.video.trust.context_flows)")
        return [Graph("gen", RolloutGraph(self.export_net("gen"), c.future_frames, takes_flows=trust), feeds(2),
                      ["future"], dynamic=dynamic, checks=[feeds(1), feeds(3)], note=note)]

    def prepare(self, frames, what: str = "frames") -> torch.Tensor:
        """Any accepted input -> (T, C_model, size, size) in [-1, 1] (all its frames)."""
        x = read_clip(frames) if isinstance(frames, str | os.PathLike) else _as_frames(frames, what)
        x = match_channels(x, self.config.channels, what)
        return resize_frames(x, (self.size, self.size))

    @torch.no_grad()
    def predict_native(self, context: torch.Tensor, frames: int) -> torch.Tensor:
        """(T>=context, C, size, size) at the model's resolution -> (frames, C, size, size)."""
        if context.shape[0] < self.context:
            raise InputError(f"clip has {context.shape[0]} frames; this model needs {self.context} context frames")
        x = context[-self.context:].unsqueeze(0).to(self.device)  # (1, Tc, C, h, w)
        return self.net(x, frames)[0].clamp(-1, 1).cpu()

    def __call__(self, clip, frames: int | None = None) -> torch.Tensor:
        k = self.config.future_frames if frames is None else frames
        if k < 1:
            raise InputError(f"frames={k}: expected >= 1")
        if isinstance(clip, str | os.PathLike):
            info = probe(clip)
            raw = read_clip(clip, start=max(info.frames - self.context, 0))
        else:
            raw = _as_frames(clip)
        h, w = raw.shape[-2:]
        x = self.prepare(raw)  # (T, C_model, size, size)
        if (h, w) != (self.size, self.size) and hasattr(self.net, "predict_hires"):
            if x.shape[0] < self.context:
                raise InputError(f"clip has {x.shape[0]} frames; this model needs {self.context} context frames")
            hires = match_channels(raw[-self.context:], self.config.channels, "clip")  # (Tc, C_model, h, w)
            pred = self.net.predict_hires(x[-self.context:].unsqueeze(0).to(self.device), k,
                                          hires.unsqueeze(0).to(self.device))[0].cpu()
        else:
            pred = resize_frames(self.predict_native(x, k), (h, w))  # (K, C_model, h, w)
        return match_channels(pred, raw.shape[1], "prediction")

    def adapted(self, frames, steps: int, lr: float | None = None, batch_size: int = 4, gdl_weight: float = 1.0,
                patience: int = 8, seed: int = 0) -> Predictor:
        """A copy fine-tuned on the clip's own known frames that cannot overfit (this predictor is unchanged).

        Every window of `context` frames inside `frames` predicts the frames that follow it (up to the training
        horizon); the predictions of the *last* known frame are held out and the others are trained on. The
        held-out error is measured before the first step and after each one; the copy keeps the weights of the
        best step (step 0 = no change) and stops after `patience` steps without improvement, so more steps can
        only add later candidates. TrustNet tunes its head on cached features (log-MSE, lr 5e-4); other
        predictors all weights (L1 + gradient difference loss, batches of `batch_size` windows, lr 1e-4).
        The record ({"steps_run", "best_step", "held_out"}) is the copy's `adapt_record`."""
        x = self.prepare(frames, "adapt frames").to(self.device)  # (T, C, size, size)
        need = self.context + 2  # one frame to train on, the last one held out
        if x.shape[0] < need:
            raise InputError(f"--adapt: the clip has {x.shape[0]} frames before the prediction point; adapting "
                             f"needs at least {need}")
        if hasattr(self.net, "adapted"):
            net, record = self.net.adapted(x, steps, lr=lr or 5e-4, patience=patience, seed=seed)
        else:
            net, record = _adapt_all_weights(self.net, x, self.context, self.config.future_frames, steps,
                                             lr or 1e-4, batch_size, gdl_weight, patience, seed)
        out = Predictor(net.eval(), self.config, self.device)
        out.adapt_record = record
        return out

    def guarded(self, frames, windows: int = 5) -> Predictor:
        """Guard against doing worse than the classical answers: backtest this predictor and copy-last / flow
        extrapolation with 1 and 2 frame pairs on the clip's known frames (oldest first: the last `windows` windows
        of `context` frames predict the known frames after them, up to the training horizon). -> a predictor that is
        this one where it scored at least as well as every baseline (or the clip is too short to backtest), else
        the best baseline; its `guard_record` is {"choice", "scores"} (mean log10 MSE per candidate)."""
        x = self.prepare(frames, "guard frames").to(self.device)  # (T, C, size, size)
        scores = backtest(self.net.eval(), x, self.context, self.config.future_frames, windows)
        choice = guard_choice(scores)
        out = Predictor(self.net if choice == "model" else Classical(choice), self.config, self.device)
        out.adapt_record, out.guard_record = self.adapt_record, {"choice": choice, "scores": scores}
        return out


def _frame_gdl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient difference loss (Mathieu et al. 2016) per frame: (S, K, C, H, W) each -> (S, K)."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()

    (py, px), (ty, tx) = grads(pred), grads(target)
    return (ty - py).abs().mean((2, 3, 4)) + (tx - px).abs().mean((2, 3, 4))


def _adapt_all_weights(net: nn.Module, x: torch.Tensor, tc: int, future: int, steps: int, lr: float,
                       batch_size: int, gdl_weight: float, patience: int, seed: int) -> tuple[nn.Module, dict]:
    """`Predictor.adapted` for predictors without their own: all weights, random batches of windows."""
    t = x.shape[0]
    last, h = t - 1, min(future, t - tc)
    starts = torch.arange(t - tc)  # windows whose context ends before the last frame
    idx = starts[:, None] + tc + torch.arange(h)  # (S, h): the frame each prediction targets
    ctx = torch.stack([x[s:s + tc] for s in starts.tolist()])  # (S, tc, C, H, W)
    target = x[idx.clamp(max=last)]  # (S, h, C, H, W)
    train_m, held_m = (idx < last).float().to(x.device), (idx == last).float().to(x.device)
    trainable = torch.nonzero(train_m.sum(1) > 0).flatten()
    held = torch.nonzero(held_m.sum(1) > 0).flatten()
    work = copy.deepcopy(net).eval()
    opt = torch.optim.Adam(work.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)

    def held_out() -> float:
        with torch.no_grad():
            err = (work(ctx[held], h) - target[held]).pow(2).mean((2, 3, 4))  # (S_held, h)
            return float((err * held_m[held]).sum() / held_m[held].sum())

    def train_loss() -> torch.Tensor:
        pick = trainable[torch.randint(len(trainable), (min(batch_size, len(trainable)),), generator=g)]
        pred, m = work(ctx[pick], h), train_m[pick]
        per_frame = (pred - target[pick]).abs().mean((2, 3, 4)) + gdl_weight * _frame_gdl(pred, target[pick])
        return (per_frame * m).sum() / m.sum()

    return work, keep_best(work, opt, train_loss, held_out, steps, patience)


def read_clip(path: str | os.PathLike, start: int = 0, count: int | None = None,
              size: tuple[int, int] | None = None) -> torch.Tensor:
    """Frames of a video or frame folder as (T, C, H, W) in [-1, 1], optionally resized while streaming
    (so a long clip at model resolution stays small)."""
    out = []
    for img in iter_frames(path, start):
        if size is not None:
            img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        out.append(img)
        if count is not None and len(out) == count:
            break
    if not out:
        raise InputError(f"{path}: no decodable frames from index {start}")
    return to_tensor(out)


# --------------------------------------------------------------------------- metrics and baselines


def horizon_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, list[float]]:
    """Per-horizon figures of predictions vs ground truth, both (B, K, C, H, W) in [-1, 1].

    OpenSTL's conventions: frames are rescaled to [0, 1]; MSE and MAE are *summed* over a frame's pixels
    (C*H*W values) and averaged over clips (Moving MNIST: a 64x64 frame, so an all-black prediction scores
    about 172); PSNR is per frame in dB (data range 1) and SSIM is the engine's (11-tap Gaussian window),
    both averaged over clips. Lists are indexed by horizon 1..K; `*_mean` keys average over horizons.
    """
    if pred.shape != target.shape or pred.ndim != 5:
        raise InputError(f"metrics: shapes {tuple(pred.shape)} and {tuple(target.shape)}, expected equal (B, K, C, H, W)")
    p, t = (pred.double().clamp(-1, 1) + 1) / 2, (target.double().clamp(-1, 1) + 1) / 2
    err = p - t
    mse = err.pow(2).sum(dim=(2, 3, 4)).mean(0)  # (K,)
    mae = err.abs().sum(dim=(2, 3, 4)).mean(0)
    flat_p, flat_t = pred.float().flatten(0, 1), target.float().flatten(0, 1)
    ps = clip_psnr(pred, target).mean(0)
    window = min(11, min(pred.shape[-2:]) // 2 * 2 - 1)
    b, k = pred.shape[:2]
    ss = ssim(flat_p, flat_t, window_size=window).view(b, k).mean(0)
    out = {"mse": mse.tolist(), "mae": mae.tolist(), "psnr": ps.tolist(), "ssim": ss.tolist()}
    out.update({f"{m}_mean": float(np.mean(v)) for m, v in list(out.items())})
    return out


def clip_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR per clip and horizon (dB, data range 1 as `horizon_metrics`, capped at 100): (B, K, C, H, W) each in
    [-1, 1] -> (B, K)."""
    if pred.shape != target.shape or pred.ndim != 5:
        raise InputError(f"metrics: shapes {tuple(pred.shape)} and {tuple(target.shape)}, expected equal (B, K, C, H, W)")
    b, k = pred.shape[:2]
    return psnr(pred.float().clamp(-1, 1).flatten(0, 1), target.float().flatten(0, 1)).clamp(max=100.0).view(b, k)


# --------------------------------------------------------------------------- writing


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 10.0) -> Path:
    """(T, H, W, C) uint8 -> .mp4 (mp4v), .avi (MJPG), .gif (Pillow) or a folder of PNG frames."""
    path = Path(path)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise InputError(f"{path}: frames to write must be (T, H, W, C) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    ext = path.suffix.lower()
    if has_suffix(path, IMAGE_SUFFIXES):
        raise InputError(f"{path}: expected a video (.mp4, .avi, .gif) or a folder, not one image")
    if ext == "" or path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            cv2.imwrite(str(path / f"frame_{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
        return path
    codecs = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
    if ext not in codecs:
        raise InputError(f"{path}: cannot write {ext}; expected .mp4, .avi, .mov, .mkv, .gif or a folder")
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codecs[ext]), fps, (w, h))
    if not writer.isOpened():
        raise InputError(f"{path}: OpenCV cannot write {codecs[ext]} here; try .avi, .gif or a folder")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def side_by_side(context: np.ndarray, pred: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """A (Tc + K, H, 2W or 3W, 3) uint8 comparison: [input clip | context then prediction | (ground truth)].
    Left: the real clip (frozen on its last frame when it ends); right: the model's continuation."""
    def rgb(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a

    context, pred = rgb(context), rgb(pred)
    k = len(pred)
    if truth is not None and len(truth):
        truth = rgb(truth)
        truth = np.concatenate([truth, np.repeat(truth[-1:], k - len(truth), 0)]) if len(truth) < k else truth[:k]
        real = np.concatenate([context, truth])
    else:
        real = np.concatenate([context, np.repeat(context[-1:], k, 0)])
    model = np.concatenate([context, pred])
    out = np.concatenate([real, np.full_like(real[:, :, :2], 255), model], axis=2)
    out = np.ascontiguousarray(out)
    scale = max(out.shape[1] / 256, 0.35)
    for t, f in enumerate(out):
        label_l = "input" if t < len(context) else ("ground truth" if truth is not None else "clip ended")
        label_r = "input" if t < len(context) else f"prediction +{t - len(context) + 1}"
        for x, text in ((4, label_l), (real.shape[2] + 6, label_r)):
            cv2.putText(f, text, (x, int(14 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (255, 255, 0),
                        1, cv2.LINE_AA)
    return out


__all__ = ["Predictor", "clip_psnr", "copy_last", "flow_extrapolate", "horizon_metrics", "read_clip", "side_by_side", "write_video"]
