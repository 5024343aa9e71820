"""Checkerboard index: how much a translator adds at the frequencies where stride-2 transposed-conv artefacts
live (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"), relative to its inputs. Must not import
Typer or any task package.

Images (B, C, H, W), any range, H and W multiples of 4. Per image and channel, P = |FFT2(w (x - mean x))|^2 with
w the 2-D Hann window (so the image border does not leak into the axes). The lattice L = {0, H/4, H/2, 3H/4} x
{0, W/4, W/2, 3W/4} without (0, 0) holds the 15 bins of periods 2 and 4 along either axis and their mixtures,
where two x2 upsamplings put their periodic pattern.
- `checkerboard_index(out, inp)` (the peak index): R(x) = mean over channels of (power on L) / (mean power of
  the four bins two steps away from each lattice bin, (u +- 2, v) and (u, v +- 2), summed over L): a spectral
  spike on the lattice raises it, a general gain of high frequencies (sharpening, outlines) does not. Index =
  mean_b R(out) / mean_b R(inp): 1 for a colour grade, a blur or a sharpening; well above 1 for a periodic
  artefact.
- `lattice_energy_index(out, inp)`: E(x) = mean over channels of the share of spectral power on L; index =
  mean_b E(out) / mean_b E(inp). Also rises for anything that adds high frequencies (an unsharp mask, drawn
  outlines), so it is printed beside the peak index, not instead of it.
"""

from __future__ import annotations

import torch

from ganapps.engine.errors import InputError


def _check(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[-2] % 4 or x.shape[-1] % 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"checkerboard index: {name} of shape {shape}, expected (B, C, H, W) with H and W "
                         f"multiples of 4")


def power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) Hann-windowed power spectrum of the mean-free images, float64."""
    x = x.detach().double().cpu()
    h, w = x.shape[-2:]
    win = torch.hann_window(h, periodic=False, dtype=torch.float64)[:, None] * \
        torch.hann_window(w, periodic=False, dtype=torch.float64)[None, :]
    return torch.fft.fft2((x - x.mean(dim=(-2, -1), keepdim=True)) * win).abs().pow(2)


def lattice(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the 15 period-2/4 bins of an h x w spectrum (DC left out)."""
    rows, cols = torch.meshgrid(torch.arange(4) * (h // 4), torch.arange(4) * (w // 4), indexing="ij")
    keep = (rows + cols) > 0
    return rows[keep], cols[keep]


def peak_ratio(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,) R(x): lattice power over the power two bins away, averaged over channels."""
    _check(x, "images")
    p = power_spectrum(x)
    h, w = x.shape[-2:]
    r, c = lattice(h, w)
    peak = p[..., r, c].sum(-1)
    floor = sum(p[..., (r + dr) % h, (c + dc) % w] for dr, dc in ((2, 0), (-2, 0), (0, 2), (0, -2))).sum(-1) / 4
    return (peak / floor.clamp_min(1e-30)).mean(1)


def lattice_energy(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,) E(x): the share of (DC-free) spectral power on the lattice, averaged over channels."""
    _check(x, "images")
    p = power_spectrum(x)
    r, c = lattice(*x.shape[-2:])
    return (p[..., r, c].sum(-1) / p.sum(dim=(-2, -1)).clamp_min(1e-30)).mean(1)


def _pair(out: torch.Tensor, inp: torch.Tensor) -> None:
    _check(out, "outputs")
    _check(inp, "inputs")
    if out.shape[1:] != inp.shape[1:]:
        raise InputError(f"checkerboard index: outputs {tuple(out.shape)} and inputs {tuple(inp.shape)} differ in "
                         f"size")


def checkerboard_index(out: torch.Tensor, inp: torch.Tensor) -> float:
    """The peak index: mean_b R(out) / mean_b R(inp) (module docstring); 1 = no more lattice peak than the
    inputs have."""
    _pair(out, inp)
    return float(peak_ratio(out).mean() / peak_ratio(inp).mean().clamp_min(1e-30))


def lattice_energy_index(out: torch.Tensor, inp: torch.Tensor) -> float:
    """mean_b E(out) / mean_b E(inp): the share of power at periods 2 and 4, outputs over inputs."""
    _pair(out, inp)
    return float(lattice_energy(out).mean() / lattice_energy(inp).mean().clamp_min(1e-30))
