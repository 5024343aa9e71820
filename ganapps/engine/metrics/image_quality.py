"""Paired image-quality metrics (PSNR, SSIM, MS-SSIM) and MS-SSIM diversity of a sample set.
Must not import Typer or any task package.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

from ganapps.engine.errors import InputError
from ganapps.engine.metrics.features import Source, load_images

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest scale first
_K1, _K2, _SIGMA = 0.01, 0.03, 1.5


def _check_pair(x: torch.Tensor, y: torch.Tensor, window_size: int | None = None) -> None:
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or x.ndim != 4 or x.shape != y.shape:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (x, y)]
        raise InputError(f"image pair: shapes {shapes[0]} and {shapes[1]}, expected two equal (B, C, H, W)")
    if window_size is not None and min(x.shape[-2:]) < window_size:
        raise InputError(f"image pair: {x.shape[-2]}x{x.shape[-1]} is smaller than window_size={window_size}")


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image pair, (B,). Images (B, C, H, W) in [-1, 1], compared in
    [0, 1] (data range 1), so values match PSNR on 8-bit images. Identical images give +inf."""
    _check_pair(x, y)
    mse = ((x.double() - y.double()) / 2).pow(2).mean(dim=(1, 2, 3))  # (B,), [0, 1] units
    return (10 * torch.log10(1.0 / mse)).float()


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Mean SSIM per image pair, (B,), in [-1, 1] (1 for identical images) (Wang et al. 2004, "Image
    quality assessment: from error visibility to structural similarity"): kornia's SSIM with an 11-tap
    Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, 'valid' window positions, on images (B, C, H, W)
    in [-1, 1] converted to [0, 1]. Needs H, W >= window_size."""
    _check_pair(x, y, window_size)
    ssim_map = kornia.metrics.ssim(
        (x + 1) / 2, (y + 1) / 2, window_size, max_val=1.0, eps=0.0, padding="valid"
    )
    return ssim_map.mean(dim=(1, 2, 3))


def _gaussian_window(window_size: int, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(window_size, dtype=torch.float64) - window_size // 2
    g = torch.exp(-(coords**2) / (2 * _SIGMA**2))
    return (g / g.sum()).to(dtype)


def _ssim_and_cs(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel (B, C): mean SSIM and mean contrast-structure term over valid windows."""
    c = x.shape[1]
    wx = window.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    wy = window.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, wx, groups=c), wy, groups=c)  # valid: (B, C, H-w+1, W-w+1)

    c1, c2 = _K1**2, _K2**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def ms_ssim_levels(
    height: int, width: int, window_size: int = 11, max_levels: int = len(MS_SSIM_WEIGHTS)
) -> int:
    """Scales MS-SSIM can use: the image is halved between scales and the smallest must still hold one
    window: 5 scales need sides >= 161 px for an 11-tap window (pytorch-msssim's "> 160"); 64 px gives 3
    scales, 32 px gives 2."""
    levels, side = 0, min(height, width)
    while levels < max_levels and side >= window_size:
        levels, side = levels + 1, (side + 1) // 2
    return levels


def ms_ssim(
    x: torch.Tensor, y: torch.Tensor, window_size: int = 11, levels: int | None = None
) -> torch.Tensor:
    """Multi-scale SSIM per image pair, (B,), in [0, 1] (Wang, Simoncelli & Bovik 2003, "Multiscale
    structural similarity for image quality assessment"): contrast-structure terms at the finer scales and
    the full SSIM at the coarsest, weighted by MS_SSIM_WEIGHTS, 2x2 average pooling between scales, and
    negative terms clipped to 0 as pytorch-msssim does. Images (B, C, H, W) in [-1, 1], compared in
    [0, 1]; mean over channels. The standard 5 scales need sides >= 161 px; smaller images use fewer scales
    (`ms_ssim_levels`) with the first weights renormalised to sum to 1, so their values are comparable
    only at one image size. `levels=1` equals `ssim`.
    """
    _check_pair(x, y, window_size)
    available = ms_ssim_levels(x.shape[-2], x.shape[-1], window_size)
    levels = available if levels is None else levels
    if not 1 <= levels <= available:
        raise InputError(
            f"ms_ssim: levels={levels}, but {x.shape[-2]}x{x.shape[-1]} images allow 1..{available} scales"
        )
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels], dtype=torch.float64)
    weights = weights / weights.sum()
    x, y = (x.double() + 1) / 2, (y.double() + 1) / 2
    window = _gaussian_window(window_size, torch.float64)
    result = torch.ones(x.shape[:2], dtype=torch.float64)  # (B, C)
    for i in range(levels):
        ssim_val, cs = _ssim_and_cs(x, y, window)
        if i == levels - 1:
            result = result * ssim_val.clamp_min(0) ** weights[i]
        else:
            result = result * cs.clamp_min(0) ** weights[i]
            pad = (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)  # odd sides: repeat the last row/column
            x = F.avg_pool2d(F.pad(x, pad, mode="replicate"), 2)
            y = F.avg_pool2d(F.pad(y, pad, mode="replicate"), 2)
    return result.mean(dim=1).float()


def ms_ssim_diversity(
    source: Source, num_pairs: int = 1000, seed: int = 0, batch_size: int = 64, levels: int | None = None
) -> float:
    """Mean MS-SSIM over `num_pairs` random pairs of distinct images of one set (Odena et al. 2017,
    "Conditional image synthesis with auxiliary classifier GANs"; common for medical GANs): lower means
    more diverse; 1.0 for a generator that repeats one image. Compare with the same number for the real
    set. `source`: folder, .pt/.npy file or tensor (N, C, H, W) in [-1, 1], N >= 2 (loaded whole).
    Pairs are drawn from `seed`; the value does not depend on `batch_size`."""
    images = load_images(source)
    n = images.shape[0]
    if n < 2 or num_pairs < 1:
        raise InputError(f"ms_ssim_diversity: {n} images and num_pairs={num_pairs}, expected >= 2 and >= 1")
    gen = torch.Generator().manual_seed(seed)
    first = torch.randint(0, n, (num_pairs,), generator=gen)
    second = (first + torch.randint(1, n, (num_pairs,), generator=gen)) % n  # never equal to first
    scores = [
        ms_ssim(images[first[i : i + batch_size]], images[second[i : i + batch_size]], levels=levels)
        for i in range(0, num_pairs, batch_size)
    ]
    return float(torch.cat(scores).double().mean())
