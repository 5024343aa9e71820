"""Label faithfulness of a label-conditioned slice generator, without a pretrained network: segment the synthetic
images back into the classes of their input maps and compare. Inference only (no task or trainer imports).

- `tissue_dice`: one 1D k-means over the intensities of the labelled pixels of a set of images (k = number of
  tissue classes), clusters matched to the classes in order of their mean intensity in real slices (for a T1:
  CSF < grey matter < white matter); Dice per class against the input maps.
- `lesion_scores`: one painted lesion in one image: its pixels are segmented by the nearest reference level
  (CSF, grey matter, white matter or the lesion class's level, `labels.TissueStats`) inside the lesion dilated
  by its radius; Dice with the painted mask, and the contrast (mean inside - mean of a 2-pixel ring outside)
  next to the reference contrast the painting asked for.
- `painted_lesions`: the protocol of `ganapps medical evaluate` for models that know the built-in lesion classes:
  lesions of radius 3, 5 and 8 pixels and each lesion class, centred on random grey/white-matter pixels of the
  held-out maps (two per map, latents of seeds 0 and 1), scored one by one and averaged per radius and class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .labels import BACKGROUND, CLASS_NAMES, GM, LESION_CLASSES, WM, TissueStats, paint_lesion


def kmeans_1d(values: np.ndarray, k: int, iters: int = 50) -> np.ndarray:
    """Sorted cluster centres (k,) of 1D `values` (Lloyd's algorithm started from evenly spaced quantiles)."""
    c = np.quantile(values, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        assign = np.abs(values[:, None] - c[None]).argmin(1)
        new = np.array([values[assign == j].mean() if (assign == j).any() else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return np.sort(c)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (nan when both are empty)."""
    s = int(a.sum()) + int(b.sum())
    return float(2 * (a & b).sum() / s) if s else float("nan")


def class_order(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> list[int]:
    """`classes` sorted by their mean intensity in real images (N, 1, S, S) with maps (N, S, S)."""
    x = images[:, 0]
    means = {k: float(x[labels == k].mean()) for k in classes if bool((labels == k).any())}
    return sorted(means, key=means.get)


def segment(images: np.ndarray, mask: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """images (N, H, W), mask (N, H, W) of the pixels to segment -> labels: the k-means cluster (k = len(order))
    of each masked pixel's intensity mapped to `order` (darkest cluster first); 0 elsewhere."""
    v = images[mask]
    centres = kmeans_1d(v, len(order))
    out = np.zeros(images.shape, np.int64)
    out[mask] = np.asarray(order)[np.abs(v[:, None] - centres[None]).argmin(1)]
    return out


def tissue_dice(images: torch.Tensor, labels: torch.Tensor, order: Sequence[int],
                names: Sequence[str] | None = CLASS_NAMES) -> dict[str, float]:
    """Dice per class between the k-means segmentation of images (N, 1, S, S) and their input maps (N, S, S),
    over all pixels of the set; pixels of classes outside `order` (background, painted lesions) are left out.
    Keys: names[k] (the built-in map's class names by default), or "class k" when `names` is None."""
    x, lab = images[:, 0].float().numpy(), labels.numpy()
    mask = np.isin(lab, order)
    seg = segment(x, mask, order)
    return {names[k] if names is not None and k < len(names) else f"class {k}": dice(seg == k, lab == k)
            for k in order}


def lesion_scores(image: np.ndarray, labels: np.ndarray, cls: int, stats: TissueStats,
                  ring_px: int = 2) -> dict[str, float]:
    """One painted lesion (the pixels of class `cls` in labels (H, W)) in image (H, W): Dice of its segmentation
    (inside the lesion dilated by its equivalent radius, brain pixels only, by the nearest of the CSF, grey
    matter, white matter and lesion levels) with the painted mask; contrast = mean inside - mean of a `ring_px`
    ring of brain pixels outside; reference_contrast = the class's level - the ring's tissue levels."""
    les = labels == cls
    r = math.sqrt(les.sum() / math.pi)
    t = torch.from_numpy(les.astype(np.float32))[None, None]  # (1, 1, H, W)

    def dilate(px: int) -> np.ndarray:
        return (F.max_pool2d(t, 2 * px + 1, 1, px) > 0)[0, 0].numpy()

    brain = labels > BACKGROUND
    ring = dilate(ring_px) & ~les & brain
    roi = dilate(max(2, int(math.ceil(r)))) & brain
    levels = np.array([stats.csf, stats.gm, stats.wm, stats.level(cls)])
    seg = roi & (np.abs(image[..., None] - levels).argmin(-1) == 3)
    ref_ring = float(np.mean([stats.level(int(k)) for k in labels[ring]])) if ring.any() else float("nan")
    ring_mean = float(image[ring].mean()) if ring.any() else float("nan")
    return {"dice": dice(seg, les), "contrast": float(image[les].mean()) - ring_mean,
            "reference_contrast": stats.level(cls) - ref_ring, "radius_px": r}


def painted_lesions(synthesize: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], maps: torch.Tensor,
                    stats: TissueStats, z_dim: int, radii: Sequence[float] = (3.0, 5.0, 8.0),
                    classes: Sequence[int] = LESION_CLASSES, per_map: int = 2, seed: int = 0) -> dict[str, dict]:
    """Paint lesions into held-out maps (N, S, S) and score the synthetic images (see the module docstring).

    synthesize(maps (B, S, S), latents (B, z_dim)) -> images (B, 1, S, S). Lesion j of a map uses the latent
    `torch.randn(1, z_dim)` of seed j; centres come from `numpy.random.default_rng(seed)`. Lesions clipped by
    the brain's edge to under half a disk are skipped. Returns {"r5 T1-hypointense lesion": {"dice",
    "contrast", "reference_contrast", "radius_px", "dice_min", "sign_ok", "n"}, ...}."""
    rng = np.random.default_rng(seed)
    latents = torch.cat([torch.randn(1, z_dim, generator=torch.Generator().manual_seed(j)) for j in range(per_map)])
    jobs = []  # (key, painted map, latent index)
    for rad in radii:
        for cls in classes:
            key = f"r{rad:g} {CLASS_NAMES[cls]}"
            for lab in maps.numpy():
                cand = np.argwhere((lab == WM) | (lab == GM))
                if len(cand) < 50:
                    continue
                for j in range(per_map):
                    c = cand[rng.integers(len(cand))]
                    painted = paint_lesion(lab, tuple(c), rad, cls)
                    if (painted == cls).sum() >= 0.5 * np.pi * rad**2:
                        jobs.append((key, cls, painted, j))
    if not jobs:
        return {}
    images = synthesize(torch.from_numpy(np.stack([p for _, _, p, _ in jobs])),
                        latents[torch.tensor([j for *_, j in jobs])])
    scores: dict[str, list[dict]] = {}
    for (key, cls, painted, _), img in zip(jobs, images[:, 0].numpy(), strict=True):
        scores.setdefault(key, []).append(lesion_scores(img, painted, cls, stats))
    out = {}
    for key, sc in scores.items():
        m = {k: float(np.mean([s[k] for s in sc])) for k in sc[0]}
        m["dice_min"] = float(np.min([s["dice"] for s in sc]))
        m["sign_ok"] = float(np.mean([np.sign(s["contrast"]) == np.sign(s["reference_contrast"]) for s in sc]))
        m["n"] = len(sc)
        out[key] = m
    return out
