"""Sliced Wasserstein distance between Laplacian-pyramid patch distributions (progressive GAN's image metric):
needs no pretrained weights. Must not import Typer or any task package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ganapps.engine.errors import InputError
from ganapps.engine.metrics.features import ImageFolder, ImageTensor, Source, describe, open_images

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSS5 = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0  # cv2.pyrDown's kernel, (5, 5)


@dataclass(frozen=True)
class SWD:
    """SWD x 1e3 per pyramid level, keyed by that level's resolution (the smaller image side), finest
    first, and their mean: ProGAN's `SWDx1e3_<res>` and `SWDx1e3_avg`."""

    per_level: dict[int, float]
    mean: float


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    kernel = (_GAUSS5 * gain).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)  # mirror edges, as scipy/cv2


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): 5x5 binomial blur (mirrored edges) then every second pixel, as
    cv2.pyrDown."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero insertion then 4x the binomial blur, as cv2.pyrUp."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of images (B, C, H, W), finest first: `levels - 1` band-pass images of sizes
    (H, W), (H/2, W/2), ... and the low-pass residual last. H and W must be divisible by 2^(levels-1)."""
    pyramid = [images.float()]
    for _ in range(1, levels):
        down = pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - pyr_up(down)
        pyramid.append(down)
    return pyramid


def swd_levels(height: int, width: int, min_resolution: int = 16) -> int:
    """Number of pyramid levels ProGAN uses: halve the smaller side while it stays >= `min_resolution`."""
    levels, res = 0, min(height, width)
    while res >= min_resolution:
        levels, res = levels + 1, res // 2
    return levels


def _patch_descriptors(
    images: ImageFolder | ImageTensor,
    name: str,
    levels: int,
    patch_size: int,
    patches_per_image: int,
    seed: int,
    batch_size: int,
    progress: bool,
) -> tuple[list[torch.Tensor], tuple[int, int, int]]:
    """Per level: random patches (N * patches_per_image, C, p, p), normalised per channel over this set."""
    n, radius = len(images), patch_size // 2
    gen = torch.Generator().manual_seed(seed)
    positions = None  # drawn once for all images, so batching cannot change which patches are taken
    descriptors: list[list[torch.Tensor]] = [[] for _ in range(levels)]
    offsets = torch.arange(-radius, radius + 1)
    start = 0
    with tqdm(total=n, desc=f"swd {name}", unit="img", disable=not progress, leave=False) as bar:
        for batch in images.batches(batch_size):
            b, c, h, w = batch.shape
            if positions is None:
                shape = (c, h, w)
                if levels < 1 or h % 2 ** (levels - 1) or w % 2 ** (levels - 1):
                    raise InputError(
                        f"{name}: images {h}x{w} with {levels} pyramid levels, expected sides "
                        f"divisible by {2 ** max(levels - 1, 0)} and at least 16 pixels"
                    )
                positions = []
                for lod in range(levels):
                    lh, lw = h >> lod, w >> lod
                    ys = torch.randint(radius, lh - radius, (n, patches_per_image), generator=gen)
                    xs = torch.randint(radius, lw - radius, (n, patches_per_image), generator=gen)
                    positions.append((ys, xs))
            elif (c, h, w) != shape:
                raise InputError(f"{name}: image shape {(c, h, w)} differs from {shape}")
            b_idx = torch.arange(b)[:, None, None, None, None]
            c_idx = torch.arange(c)[None, None, :, None, None]
            for lod, level in enumerate(laplacian_pyramid(batch, levels)):
                ys, xs = positions[lod]
                rows = (ys[start : start + b, :, None] + offsets)[:, :, None, :, None]  # (B, P, 1, p, 1)
                cols = (xs[start : start + b, :, None] + offsets)[:, :, None, None, :]  # (B, P, 1, 1, p)
                patches = level[b_idx, c_idx, rows, cols]  # (B, P, C, p, p)
                descriptors[lod].append(patches.flatten(0, 1))
            start += b
            bar.update(b)
    return [torch.cat(parts) for parts in descriptors], shape  # per level (N * P, C, p, p)


def _channel_moments(desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-8)  # flat sets stay finite
    return mean, std


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, dirs: list[torch.Tensor]) -> float:
    a_np, b_np = a.numpy(), b.numpy()
    results = []
    for d in dirs:
        # (dirs, N) rows: numpy sorts contiguous rows several times faster than torch sorts columns.
        proj_a = np.sort(d.numpy().T @ a_np.T, axis=1)
        proj_b = np.sort(d.numpy().T @ b_np.T, axis=1)
        results.append(np.abs(proj_a - proj_b).mean())
    return float(np.mean(results))


def sliced_wasserstein_distance(
    source_a: Source,
    source_b: Source,
    patch_size: int = 7,
    patches_per_image: int = 128,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
    normalize: str = "per_set",
) -> SWD:
    """Sliced Wasserstein distance x 1e3 between two image sets, per Laplacian-pyramid level and averaged
    (Karras et al. 2018, "Progressive growing of GANs", their metrics/sliced_wasserstein.py): from every
    image and level, `patches_per_image` random `patch_size` x `patch_size` patches, normalised per level
    and channel to zero mean and unit std (see `normalize`); then the 1-D Wasserstein-1 distance
    along `dir_repeats` x `dirs_per_repeat` random unit directions, averaged. Levels: the smaller side
    halved while >= `min_resolution` (64 px -> 64, 32, 16). ProGAN's defaults are kept (4 x 128
    directions); lower is better, 0 for identical sets.

    Sources: folders, .pt/.npy files or tensors (N, C, H, W) in [-1, 1] of one shape, sides divisible by
    2^(levels-1). Sets of different sizes are compared on an equal random subset of patches.
    `normalize="per_set"` (ProGAN, the default) normalises each set by its own patch statistics, so a
    global per-level change of brightness, colour or contrast is invisible: it measures local structure
    (edges, texture, noise, blur). `normalize="reference"` normalises both sets by source_a's statistics,
    so such shifts count too (not comparable with ProGAN's numbers).
    Memory: about N x levels x patches_per_image x C x patch_size^2 x 4 bytes per set. Deterministic for
    a `seed`; the result does not depend on `batch_size`.
    """
    _check_options(patch_size, patches_per_image, dir_repeats, dirs_per_repeat, normalize)
    images_a, images_b, shape = _open_pair(source_a, source_b)
    levels = swd_levels(shape[1], shape[2], min_resolution)
    if levels < 1 or min(shape[1:]) < patch_size:
        raise InputError(
            f"{describe(source_a)}: images {shape[1]}x{shape[2]} are smaller than min_resolution={min_resolution}"
        )
    desc_a, _ = _patch_descriptors(
        images_a, describe(source_a), levels, patch_size, patches_per_image, seed, batch_size, progress
    )
    desc_b, _ = _patch_descriptors(
        images_b, describe(source_b), levels, patch_size, patches_per_image, seed, batch_size, progress
    )
    gen = torch.Generator().manual_seed(seed + 1)
    per_level = {
        min(shape[1:]) >> lod: _level_distance(a, b, normalize, dir_repeats, dirs_per_repeat, gen) * 1e3
        for lod, (a, b) in enumerate(zip(desc_a, desc_b, strict=True))
    }
    return SWD(per_level, float(sum(per_level.values()) / len(per_level)))


def _check_options(patch_size: int, patches_per_image: int, dir_repeats: int, dirs_per_repeat: int,
                   normalize: str) -> None:
    if normalize not in ("per_set", "reference"):
        raise InputError(
            f"sliced_wasserstein_distance: normalize={normalize!r}, expected 'per_set' or 'reference'"
        )
    if (
        patch_size < 1
        or patch_size % 2 == 0
        or patches_per_image < 1
        or dir_repeats < 1
        or dirs_per_repeat < 1
    ):
        raise InputError(
            f"sliced_wasserstein_distance: patch_size={patch_size} (odd >= 1), patches_per_image={patches_per_image}, "
            f"dir_repeats={dir_repeats}, dirs_per_repeat={dirs_per_repeat} (>= 1 each)"
        )


def _open_pair(source_a: Source, source_b: Source) -> tuple[Any, Any, torch.Size]:
    """Both image sets and their common image shape (C, H, W); an InputError when the shapes differ."""
    images_a, images_b = open_images(source_a), open_images(source_b)
    shape_a = next(iter(images_a.batches(1))).shape[1:]
    shape_b = next(iter(images_b.batches(1))).shape[1:]
    if shape_a != shape_b:
        raise InputError(
            f"{describe(source_b)}: images {tuple(shape_b)} but {describe(source_a)} has {tuple(shape_a)}; "
            "SWD needs one image shape (C, H, W)"
        )
    return images_a, images_b, shape_a


def _level_distance(a: torch.Tensor, b: torch.Tensor, normalize: str, dir_repeats: int, dirs_per_repeat: int,
                    gen: torch.Generator) -> float:
    """SWD (not yet x 1e3) between the patch descriptors of one pyramid level, (N * P, C, p, p) each: normalised,
    cut to equal counts (random subsets drawn from `gen`), projected on random unit directions from `gen`."""
    mean_a, std_a = _channel_moments(a)
    mean_b, std_b = (mean_a, std_a) if normalize == "reference" else _channel_moments(b)
    a = ((a - mean_a) / std_a).flatten(1)  # (N * P, C * p * p)
    b = ((b - mean_b) / std_b).flatten(1)
    if len(a) != len(b):
        keep = min(len(a), len(b))
        a = a[torch.randperm(len(a), generator=gen)[:keep]]
        b = b[torch.randperm(len(b), generator=gen)[:keep]]
    dirs = []
    for _ in range(dir_repeats):
        d = torch.randn(a.shape[1], dirs_per_repeat, generator=gen)  # (C*p*p, dirs)
        dirs.append(d / d.norm(dim=0, keepdim=True))
    return _sliced_wasserstein(a, b, dirs)
