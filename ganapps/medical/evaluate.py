"""Offline evaluation of a slice generator against real slices: SWD, KID over pixel features, MS-SSIM
diversity, precision/recall, and the memorization audit, which is reported every time (leaking patient
data is the first risk of a medical GAN). Inference only: no task or trainer imports.

Features: grayscale slices have no pretrained feature network that fits them offline. KID is reported on two
extractors: `IntensityExtractor` (intensity and gradient histograms plus coarse layout: what a radiologist's
first look checks, tissue contrast and edges) and the engine's `PixelExtractor` (16 x 16 intensities);
precision/recall use the intensity features; the memorization audit compares 32 x 32 pixels (a near-copy is
near in pixels).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from ..engine.errors import InputError
from ..engine.metrics import (
    PixelExtractor,
    kid_from_features,
    memorization_audit,
    ms_ssim_diversity,
    prdc,
    sliced_wasserstein_distance,
)
from .data import SliceDataset
from .pipeline import Synthesizer


class IntensityExtractor:
    """First-order intensity features for grayscale slices, (B, 1, H, W) in [-1, 1] -> (B, 32 + 16 + 64):
    the square roots of the 32-bin intensity histogram and of the 16-bin Sobel gradient-magnitude histogram
    (Hellinger embeddings: each block has unit norm, so Euclidean distances between them are Hellinger
    distances between histograms), and the 8 x 8 area-resized image / 8 (coarse layout, norm <= 1).
    Weights-free and per image. A Gaussian in pixel space (blurred, mixed intensities) differs from real
    tissue here even where its pixel means and covariances match.

    The Sobel filter sees the image replicate-padded: with zero padding every border pixel of a slice whose
    background is -1 gets a gradient of exactly 0.5 and one whose background is -0.97 (a tanh generator's)
    0.485, a different histogram bin for 6% of a 64 x 64 slice's pixels; that border offset, not anatomy,
    kept the recall of every generator at 0 before this was fixed."""

    name = "intensity-hist32-grad16-layout8-replicate"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().clamp(-1, 1)
        b = len(x)
        kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
        xp = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")  # (B, 1, H + 2, W + 2); see the docstring
        gx = torch.nn.functional.conv2d(xp, kx.view(1, 1, 3, 3))
        gy = torch.nn.functional.conv2d(xp, kx.t().reshape(1, 1, 3, 3))
        grad = (gx**2 + gy**2).sqrt().clamp(max=1.0)  # (B, 1, H, W) in [0, 1]
        hist = torch.stack([torch.histc(v, 32, -1, 1) for v in x.view(b, -1)])  # (B, 32)
        ghist = torch.stack([torch.histc(v, 16, 0, 1) for v in grad.view(b, -1)])  # (B, 16)
        layout = torch.nn.functional.interpolate(x, size=(8, 8), mode="area").flatten(1) / 8  # (B, 64)
        return torch.cat([(hist / hist.sum(1, keepdim=True)).sqrt(), (ghist / ghist.sum(1, keepdim=True)).sqrt(),
                          layout], 1)


KID_FEATURES = IntensityExtractor()
PIXEL_FEATURES = PixelExtractor(16)
COPY_FEATURES = PixelExtractor(32)


def quality(fake: torch.Tensor, real: torch.Tensor, train: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """fake (M, 1, S, S), real held-out (N, 1, S, S), train (T, 1, S, S), all in [-1, 1] -> metrics.

    swd: ProGAN SWD x 1e3 (lower better); kid: KID x 1e3 on `IntensityExtractor` features, kid_pixels: KID x 1e3
    on 16 x 16 pixels (lower better); precision/recall (k=5) on the intensity features; ms_ssim_fake/ms_ssim_real: mean MS-SSIM of random pairs (closer to the real
    value is better, 1 = one repeated image); near_copy_share: share of samples closer to a training slice
    than half the median train-to-train nearest-neighbour distance (32 x 32 pixels).
    """
    fake, real, train = (x.float().clamp(-1, 1) for x in (fake, real, train))
    swd = sliced_wasserstein_distance(real, fake, seed=seed)
    fr, ff = KID_FEATURES(real).numpy(), KID_FEATURES(fake).numpy()
    kid = kid_from_features(fr, ff, num_subsets=100, subset_size=1000, seed=seed)
    k = min(5, len(real) - 1, len(fake) - 1)
    pr = prdc(fr, ff, k=k)
    kid_px = kid_from_features(PIXEL_FEATURES(real).numpy(), PIXEL_FEATURES(fake).numpy(), num_subsets=100,
                               subset_size=1000, seed=seed)
    mem = memorization_audit(COPY_FEATURES(fake).numpy(), COPY_FEATURES(train).numpy())
    pairs = min(500, len(fake) * (len(fake) - 1) // 2)
    return {
        "swd": swd.mean, "kid": kid.mean * 1e3, "kid_std": kid.std * 1e3,
        "kid_pixels": kid_px.mean * 1e3, "kid_pixels_std": kid_px.std * 1e3,
        "precision": pr.precision, "recall": pr.recall, "density": pr.density, "coverage": pr.coverage,
        "ms_ssim_fake": ms_ssim_diversity(fake, num_pairs=pairs, seed=seed),
        "ms_ssim_real": ms_ssim_diversity(real, num_pairs=min(500, len(real) * (len(real) - 1) // 2), seed=seed),
        "near_copy_share": mem.near_copy_share, "near_copy_threshold": mem.threshold,
        "near_copy_baseline": mem.baseline_share, "nn_ratio_median": float(np.median(mem.ratios)),
        "nn_ratio_min": float(mem.ratios.min()),
    }


def pca_gaussian(train: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Baseline (a): fit PCA to the flattened training slices (T, 1, S, S) and sample n slices with coefficients
    from N(0, diag(var)) (all components)."""
    x = train.flatten(1).double()  # (T, S*S)
    mean = x.mean(0)
    _, s, v = torch.linalg.svd(x - mean, full_matrices=False)  # components: rows of v
    std = s / max(len(x) - 1, 1) ** 0.5  # (k,)
    g = torch.Generator().manual_seed(seed)
    coeff = torch.randn(n, len(s), generator=g, dtype=torch.float64) * std
    return (mean + coeff @ v).float().clamp(-1, 1).view(n, *train.shape[1:])


def random_train(train: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Baseline (b): n training slices drawn at random with replacement (the memorization ceiling)."""
    g = torch.Generator().manual_seed(seed)
    return train[torch.randint(len(train), (n,), generator=g)]


BASELINES = {"(a) PCA Gaussian": pca_gaussian, "(b) random training slices": random_train}


def reference_sets(synth: Synthesizer, data: list[str] | None) -> tuple[SliceDataset, SliceDataset]:
    """(real slices to compare with, training slices for the memorization audit), cut with the model's own
    preprocessing options. Default real set: the held-out slices of the model's training data."""
    cfg = synth.config
    train = SliceDataset(cfg, "train")
    if not data:
        if not cfg.holdout_every:
            raise InputError("the model was trained with holdout_every=0: pass --data with held-out volumes")
        return SliceDataset(cfg, "heldout"), train
    other = dataclasses.replace(cfg, data=list(data), labels=[], masks=[], holdout_every=0,
                                condition="none")
    return SliceDataset(other, "all"), train


def evaluate_model(model: str | os.PathLike | None = None, data: list[str] | None = None, n: int = 512,
                   seed: int = 0, device: str = "auto", progress: bool = True, baselines: bool = False,
                   calibrate: bool = True) -> dict:
    """Sample `n` slices from `model` (None: the shipped default) and score them (see `quality`). Label models
    are fed the reference slices' label maps when the reference set has them. `baselines`: also score (a) a
    PCA Gaussian of the training slices, (b) random training slices and (c) the reference slices themselves
    (under "baselines"). `calibrate=False`: the generator's raw output (`Synthesizer`)."""
    synth = Synthesizer.from_checkpoint(model, device=device, calibrate=calibrate)
    real_set, train_set = reference_sets(synth, data)
    real, train = real_set.images(), train_set.images()
    faithful = None
    if synth.config.condition == "label":
        if not real_set.has_labels:
            raise InputError("a label-conditioned model needs label maps for the reference slices; evaluate "
                             "without --data to use the held-out slices of its training data")
        labels = torch.stack([real_set[i]["label"] for i in range(len(real_set))])
        maps = labels.repeat((n + len(labels) - 1) // len(labels), 1, 1)[:n]
        fake = synth.from_labels(maps, seed=seed)
        faithful = label_faithfulness(synth, fake, maps, real, labels, train_set, seed)
    else:
        fake = synth(n, seed=seed)
    if len(real) < 2 or len(train) < 2:
        raise InputError(f"{len(real)} reference and {len(train)} training slices; expected at least 2 each")
    report = quality(fake, real, train, seed=seed)
    out = {**report, "n_fake": len(fake), "n_real": len(real), "n_train": len(train), "model": str(synth.source),
           "calibrated": synth.is_calibrated}
    if faithful is not None:
        out["faithfulness"] = faithful
    if baselines:
        rows = {name: make(train, n, seed) for name, make in BASELINES.items()}
        rows["(c) reference slices themselves"] = real
        out["baselines"] = {name: quality(x, real, train, seed=seed) for name, x in rows.items()}
    return out


def label_faithfulness(synth: Synthesizer, fake: torch.Tensor, maps: torch.Tensor, real: torch.Tensor,
                       real_maps: torch.Tensor, train_set: SliceDataset, seed: int = 0) -> dict:
    """Dice per class of the samples' k-means segmentation against their input maps (`faithfulness.tissue_dice`;
    classes ordered by their mean intensity in the real slices), and, for models trained on the built-in tissue
    map that know its lesion classes, painted lesions' Dice and contrast (`faithfulness.painted_lesions`)."""
    from . import faithfulness as fa
    from .labels import CLASS_NAMES, LESION_CLASSES, TissueStats

    cfg = synth.config
    builtin = not cfg.data  # the built-in tissue map: its classes have names and lesion classes
    classes = [int(k) for k in torch.unique(real_maps) if k > 0]
    order = fa.class_order(real, real_maps, classes)
    out: dict = {"dice": fa.tissue_dice(fake, maps, order, names=CLASS_NAMES if builtin else None)}
    if builtin and cfg.num_classes > max(LESION_CLASSES):
        items = [train_set[i] for i in range(len(train_set))]
        stats = TissueStats.measure(torch.stack([it["image"] for it in items]),
                                    torch.stack([it["label"] for it in items]))
        out["tissue_means"] = dataclasses.asdict(stats)
        out["lesions"] = fa.painted_lesions(lambda m, z: synth.from_labels(m, latents=z), real_maps, stats,
                                            cfg.z_dim, seed=seed)
    return out


def format_report(r: dict) -> str:
    text = _format_quality(r)
    if "faithfulness" in r:
        f = r["faithfulness"]
        text += "\nlabel faithfulness (k-means segmentation of the samples vs their maps): Dice " + ", ".join(
            f"{k} {v:.3f}" for k, v in f["dice"].items())
        for key, m in f.get("lesions", {}).items():
            text += (f"\n  painted lesion {key:28s} Dice {m['dice']:.3f} (min {m['dice_min']:.3f})  contrast "
                     f"{m['contrast']:+.3f} (painted {m['reference_contrast']:+.3f}, sign right "
                     f"{100 * m['sign_ok']:.0f}%)  n {m['n']}")
    if "baselines" in r:
        keys = ("swd", "kid", "kid_pixels", "precision", "recall", "ms_ssim_fake", "near_copy_share")
        head = ("SWD", "KID int", "KID px", "precision", "recall", "MS-SSIM", "near-copies")
        lines = [f"{'baselines (same reference and training slices)':48s}" + "".join(f"{h:>12s}" for h in head)]
        for name, b in {"model": r, **r["baselines"]}.items():
            lines.append(f"{name:48s}" + "".join(f"{b[k]:12.3f}" for k in keys))
        text += "\n" + "\n".join(lines)
    return text


def _format_quality(r: dict) -> str:
    return (f"SWD {r['swd']:.1f}  KID(intensity) {r['kid']:.2f}  KID(pixels) {r['kid_pixels']:.2f}  precision {r['precision']:.3f}  recall "
            f"{r['recall']:.3f}  MS-SSIM {r['ms_ssim_fake']:.3f} (real {r['ms_ssim_real']:.3f})\n"
            f"memorization: {100 * r['near_copy_share']:.1f}% of {r['n_fake']} samples are near-copies of "
            f"training slices (nearest-neighbour ratio < {r['near_copy_threshold']}; median ratio "
            f"{r['nn_ratio_median']:.2f}, min {r['nn_ratio_min']:.2f}); real {r['n_real']}, train {r['n_train']}"
            + ("; samples intensity-calibrated" if r.get("calibrated") else ""))
