"""Volumes -> training slices: resampling, intensity normalisation (percentiles, z-score in a mask, CT windows
in HU) on the whole volume, slice extraction with foreground filtering, square pad/crop and resize; the
slice `Dataset` with a size-bounded volume cache; the built-in MNI152 data. No training code here.

Slice convention: for an axis, slice k of a RAS volume is shown as `slice_image(plane)` = flipud(plane.T):
axial slices have anterior at the top and the subject's right on the right of the image (neurological view).
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..engine.errors import InputError
from .config import MedicalConfig, parse_window
from .io import Volume, read_volumes
from .labels import area_mode, tissue_map

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


# --------------------------------------------------------------------------------------------- default data
def mni_paths() -> dict[str, Path]:
    """{"t1", "gm", "wm"} -> the MNI152 2009a volumes of the `ganapps.recipes.medical_mni152` recipe, fetched
    (with a one-line note and the sha256 check) on first use."""
    from ..recipes import medical_mni152

    return medical_mni152.paths()


# ---------------------------------------------------------------------------------------------- transforms
def resample(vol: Volume, spacing_mm: float, order: int = 1) -> Volume:
    """Resample to isotropic `spacing_mm` (linear for images, order=0 for labels/masks); the affine keeps
    the position of voxel (0, 0, 0) and its axes' directions."""
    from scipy import ndimage

    zoom = np.array(vol.spacing) / spacing_mm
    data = ndimage.zoom(vol.data, zoom, order=order, mode="nearest", grid_mode=False)
    affine = vol.affine.copy()
    affine[:3, :3] = vol.affine[:3, :3] / np.array(vol.spacing) * spacing_mm
    return Volume(data.astype(np.float32), affine, vol.source)


def percentile_rescale(data: np.ndarray, low: float = 0.5, high: float = 99.5,
                       mask: np.ndarray | None = None) -> np.ndarray:
    """Clip to the [low, high] percentiles (of the voxels in `mask`, else of all nonzero voxels, else all)
    and rescale linearly to [-1, 1]."""
    ref = data[mask] if mask is not None else data[data != 0]
    if ref.size == 0:
        ref = data.ravel()
    lo, hi = np.percentile(ref, [low, high])
    if hi <= lo:
        return np.full_like(data, -1.0)
    return (np.clip(data, lo, hi) - lo) / (hi - lo) * 2 - 1


def zscore(data: np.ndarray, mask: np.ndarray, source: str, clip: float = 3.0) -> np.ndarray:
    """Standardise by the mean and std inside `mask`, clip to +-`clip` std and map to [-1, 1]; voxels outside
    the mask become -1 (background)."""
    if not mask.any():
        raise InputError(f"{source}: empty mask (no foreground voxel); expected a mask covering the anatomy")
    ref = data[mask]
    std = float(ref.std())
    z = (data - float(ref.mean())) / (std if std > 0 else 1.0)
    out = np.clip(z, -clip, clip) / clip
    return np.where(mask, out, -1.0).astype(np.float32)


def ct_window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """CT display window in Hounsfield units: [level - width/2, level + width/2] -> [-1, 1], clipped outside
    (e.g. brain 40/80 maps 0 HU to -1, 40 HU to 0 and 80 HU to +1)."""
    lo = level - width / 2
    return (np.clip(hu, lo, lo + width) - lo) / width * 2 - 1


def slice_image(plane: np.ndarray) -> np.ndarray:
    """A plane of a RAS volume (first axis, second axis) -> display image (H, W) with rows running up."""
    return np.flipud(plane.T)


def image_plane(image: np.ndarray) -> np.ndarray:
    """Inverse of `slice_image`."""
    return np.flipud(image).T


def volume_slices(data: np.ndarray, axis: int) -> np.ndarray:
    """(X, Y, Z) -> display slices (N, H, W) along `axis`."""
    moved = np.moveaxis(data, axis, 0)  # (N, a, b)
    return np.ascontiguousarray(np.flip(np.swapaxes(moved, 1, 2), axis=1))


def slices_to_volume(images: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of `volume_slices`: (N, H, W) -> (X, Y, Z)."""
    planes = np.swapaxes(np.flip(images, axis=1), 1, 2)  # (N, a, b)
    return np.ascontiguousarray(np.moveaxis(planes, 0, axis))


def square(image: torch.Tensor, mode: str, fill: float) -> torch.Tensor:
    """(..., H, W) -> (..., L, L): pad the short side (centred, with `fill`) or crop the long side."""
    h, w = image.shape[-2:]
    if mode == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        return image[..., top:top + side, left:left + side]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return F.pad(image, (left, side - w - left, top, side - h - top), value=fill)


def to_square_size(image: torch.Tensor, size: int, mode: str, fill: float, nearest: bool = False) -> torch.Tensor:
    """(N, C, H, W) or (N, H, W) -> (..., size, size): square pad/crop, then resize (area when shrinking,
    bilinear when enlarging, nearest for labels)."""
    x = square(image, mode, fill)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[:, None]
    if x.shape[-1] != size:
        if nearest:
            x = F.interpolate(x, size=(size, size), mode="nearest")
        elif x.shape[-1] > size:
            x = F.interpolate(x, size=(size, size), mode="area")
        else:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x[:, 0] if squeeze else x


# ------------------------------------------------------------------------------------------ preprocessing
@dataclasses.dataclass
class Prepared:
    """A preprocessed volume cut into training slices along one axis: `slices` (N, 1, S, S) float32 in [-1, 1],
    `labels` (N, S, S) int64 or None, `share` (N,) foreground share per slice, the RAS `affine` and `shape`
    (X, Y, Z) of the volume after resampling."""

    slices: torch.Tensor
    labels: torch.Tensor | None
    share: np.ndarray
    affine: np.ndarray
    shape: tuple[int, int, int]
    source: str

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.slices, self.labels) if t is not None)


@dataclasses.dataclass(frozen=True)
class Source:
    """One training volume with its optional paired mask and label map (frame of a 4D file or None)."""

    path: str
    frame: int
    mask: str | None = None
    labels: str | None = None
    tissue: bool = False  # labels: the built-in MNI152 tissue map (labels.tissue_map)


def _read_one(path: str, frame: int) -> Volume:
    vols = read_volumes(path)
    return vols[frame]


def _read_paired(path: str, ref: Volume, what: str) -> np.ndarray:
    vols = read_volumes(path)
    if len(vols) != 1:
        raise InputError(f"{path}: {what} with {len(vols)} frames; expected one 3D volume")
    v = vols[0]
    if v.data.shape != ref.data.shape:
        raise InputError(f"{path}: {what} of shape {v.data.shape} but image {ref.source} is {ref.data.shape}; "
                         f"expected the same grid")
    if not np.allclose(v.affine, ref.affine, atol=1e-3):
        raise InputError(f"{path}: {what} affine differs from image {ref.source}; expected the same grid")
    return v.data


def prepare(src: Source, cfg: MedicalConfig) -> Prepared:
    """Read, reorient to RAS, resample, normalise intensities on the whole volume (before slicing)."""
    vol = _read_one(src.path, src.frame)
    mask = labels = None
    if src.mask:
        mask = _read_paired(src.mask, vol, "mask") > 0
        if not mask.any():
            raise InputError(f"{src.mask}: empty mask (no foreground voxel); expected a mask covering the anatomy")
    if src.tissue:
        paths = mni_paths()
        gm = _read_paired(str(paths["gm"]), vol, "grey-matter map")
        wm = _read_paired(str(paths["wm"]), vol, "white-matter map")
        labels = tissue_map(vol.data, gm, wm)  # 0 background, 1 CSF, 2 grey matter, 3 white matter
    elif src.labels:
        raw = _read_paired(src.labels, vol, "label map")
        if np.any(raw < 0) or np.any(raw != np.round(raw)):
            raise InputError(f"{src.labels}: label map with negative or fractional values; expected integers >= 0")
        labels = raw.astype(np.int64)
    if cfg.spacing_mm > 0:
        image_vol = resample(vol, cfg.spacing_mm)
        if mask is not None:
            mask = resample(Volume(mask.astype(np.float32), vol.affine, ""), cfg.spacing_mm, order=0).data > 0.5
        if labels is not None:
            labels = resample(Volume(labels.astype(np.float32), vol.affine, ""), cfg.spacing_mm,
                              order=0).data.round().astype(np.int64)
        vol = image_vol
    data = vol.data
    if cfg.intensity == "percentile":
        image = percentile_rescale(data, cfg.percentile_low, cfg.percentile_high, mask)
    elif cfg.intensity == "zscore":
        image = zscore(data, mask if mask is not None else data > data.min(), src.path)
    elif cfg.intensity == "window":
        image = ct_window(data, *parse_window(cfg.window))
    else:
        lo, hi = float(data.min()), float(data.max())
        image = (data - lo) / (hi - lo) * 2 - 1 if hi > lo else np.full_like(data, -1.0)
    axis = AXES[cfg.axis]
    share = foreground_share(image, mask, axis)
    slices = torch.from_numpy(volume_slices(image.astype(np.float32), axis))[:, None]  # (N, 1, H, W)
    slices = to_square_size(slices, cfg.size, cfg.square, -1.0)  # (N, 1, S, S)
    lab = None
    if labels is not None:
        lab = torch.from_numpy(volume_slices(labels, axis))  # (N, H, W)
        lab = area_mode(lab, cfg.size, cfg.square)  # (N, S, S): the class covering most of each pixel
    return Prepared(slices.contiguous(), lab, share, vol.affine, tuple(image.shape), src.path)


def foreground_share(image: np.ndarray, mask: np.ndarray | None, axis: int) -> np.ndarray:
    """Per slice along `axis`: the share of mask voxels, else of voxels above the background level
    (5% of the [-1, 1] range above -1)."""
    fg = mask if mask is not None else image > -0.9
    other = tuple(a for a in range(3) if a != axis)
    return fg.mean(axis=other)


# ----------------------------------------------------------------------------------------------- dataset
class VolumeCache:
    """Least-recently-used cache of prepared volumes, bounded in bytes (0: no caching)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: collections.OrderedDict[Source, Prepared] = collections.OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def get(self, src: Source, cfg: MedicalConfig) -> Prepared:
        if src in self.items:
            self.hits += 1
            self.items.move_to_end(src)
            return self.items[src]
        self.misses += 1
        prep = prepare(src, cfg)
        if prep.nbytes <= self.max_bytes:
            self.items[src] = prep
            self.bytes += prep.nbytes
            while self.bytes > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.bytes -= old.nbytes
        return prep


def sources_from_config(cfg: MedicalConfig) -> list[Source]:
    """--data/--masks/--labels -> one Source per 3D volume (4D files give one per frame); no --data: the
    MNI152 T1 (with its tissue map, `labels.tissue_map`, when condition=label)."""
    if not cfg.data:
        t1 = mni_paths()["t1"]
        return [Source(str(t1), 0, tissue=cfg.condition == "label")]
    out = []
    for i, path in enumerate(cfg.data):
        n = len(read_volumes(path))
        mask = cfg.masks[i] if cfg.masks else None
        labels = cfg.labels[i] if cfg.labels else None
        if n > 1 and (mask or labels):
            raise InputError(f"{path}: 4D volume with a paired mask/label map; expected a 3D volume")
        out.extend(Source(path, t, mask, labels) for t in range(n))
    return out


class SliceDataset(Dataset):
    """2D slices of one or more volumes. Items: {"image": (1, S, S) float32 in [-1, 1], "position": () float32
    slice position in [0, 1] along the axis, "label": (S, S) int64 (when labels exist)}.

    `split`: "train" (default), "heldout" (every `holdout_every`-th kept slice) or "all". Volumes are read on
    demand through a `VolumeCache` of `cache_mb` MiB; only the slice index is kept for the whole set.
    """

    def __init__(self, cfg: MedicalConfig, split: str = "train", sources: list[Source] | None = None):
        if split not in ("train", "heldout", "all"):
            raise ValueError(f"split {split!r}: expected train, heldout or all")
        self.cfg = cfg
        self.axis = AXES[cfg.axis]
        self.sources = sources if sources is not None else sources_from_config(cfg)
        self.cache = VolumeCache(cfg.cache_mb << 20)
        self.index: list[tuple[int, int, float]] = []  # (source, slice, position in [0, 1])
        self.has_labels = True
        num_classes = 0
        self.spacing: tuple[float, float, float] | None = None
        self.position_step = 0.0
        for si, src in enumerate(self.sources):
            prep = self.cache.get(src, cfg)
            share = prep.share
            depth = len(share)
            keep = [k for k in range(depth) if share[k] >= cfg.min_foreground and share[k] > 0]
            if not keep:
                raise InputError(f"{src.path}: no slice along {cfg.axis} has foreground share >= "
                                 f"{cfg.min_foreground}; lower --min-foreground or check the intensities")
            self.index.extend((si, k, k / max(depth - 1, 1)) for k in keep)
            self.has_labels &= prep.labels is not None
            if prep.labels is not None:
                num_classes = max(num_classes, int(prep.labels.max()) + 1)
            if self.spacing is None:
                self.spacing = self._slice_spacing(prep)
                self.position_step = 1.0 / max(depth - 1, 1)  # one slice of the first volume, in position units
        self.num_classes = max(num_classes, 2) if self.has_labels else 0
        every = cfg.holdout_every
        if split != "all" and every:
            held = [i for j, i in enumerate(self.index) if j % every == every // 2]
            self.index = held if split == "heldout" else [i for j, i in enumerate(self.index)
                                                          if j % every != every // 2]
        if not self.index:
            raise InputError(f"{self.sources[0].path}: no {split} slices left; use more data or --holdout-every 0")

    def _slice_spacing(self, prep: Prepared) -> tuple[float, float, float]:
        """Spacing (mm) of a generated stack: in-plane after square pad/crop + resize, then slice thickness."""
        sp = np.linalg.norm(prep.affine[:3, :3], axis=0)
        plane = [a for a in range(3) if a != self.axis]  # image columns follow plane[0], rows plane[1]
        w, h = prep.shape[plane[0]], prep.shape[plane[1]]
        side = max(h, w) if self.cfg.square == "pad" else min(h, w)
        scale = side / self.cfg.size
        return float(sp[plane[0]] * scale), float(sp[plane[1]] * scale), float(sp[self.axis])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        si, k, pos = self.index[i]
        prep = self.cache.get(self.sources[si], self.cfg)
        item = {"image": prep.slices[k], "position": torch.tensor(pos, dtype=torch.float32)}  # (1, S, S), ()
        if prep.labels is not None:
            item["label"] = prep.labels[k]  # (S, S)
        return item

    def images(self) -> torch.Tensor:
        """All slices of this split as one (N, 1, S, S) tensor."""
        return torch.stack([self[i]["image"] for i in range(len(self))])


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) int64 -> (B, K, H, W) float32."""
    if labels.numel() and int(labels.max()) >= num_classes:
        raise InputError(f"label map with class {int(labels.max())}; the model knows {num_classes} classes "
                         f"(0..{num_classes - 1})")
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
