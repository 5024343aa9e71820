"""Label maps for label-conditioned slice synthesis: the built-in MNI152 tissue map, the lesion classes, lesion
painting (arrays and NIfTI files), area-mode resizing of label slices, and the tissue statistics that set a
painted lesion's intensity. No training code and no evaluation here (`faithfulness.py` scores the outputs).

Classes of the built-in map: 0 background (outside the skull-stripped T1), 1 CSF, 2 grey matter, 3 white matter;
lesion classes a user paints: 4 T1-hypointense lesion (a "black hole" / necrotic focus: darker than grey matter,
brighter than CSF), 5 T1-hyperintense lesion (brighter than white matter, e.g. haemorrhagic / enhancing).

    >>> lab = paint_lesion(tissue, center=(98, 120, 100), radius=6, cls=HYPO)   # voxel centre, radius in voxels
    >>> paint_lesion_file("tissue.nii.gz", "lesioned.nii.gz", (-26, -10, 28), 18, HYPO)  # RAS mm, radius in mm
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.errors import InputError

BACKGROUND, CSF, GM, WM, HYPO, HYPER = range(6)
CLASS_NAMES = ("background", "CSF", "grey matter", "white matter", "T1-hypointense lesion",
               "T1-hyperintense lesion")
TISSUE_CLASSES = (CSF, GM, WM)
LESION_CLASSES = (HYPO, HYPER)
NUM_CLASSES = 6  # the built-in map's classes plus the two lesion classes
CLASS_ALIASES = {"hypo": HYPO, "hyper": HYPER, "csf": CSF, "gm": GM, "wm": WM}


def tissue_map(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """MNI152 T1 (X, Y, Z) (0 outside the brain: the template is skull-stripped) and its GM/WM probability maps
    (0..255) -> int64 labels: 0 background, 1 CSF, 2 grey matter, 3 white matter (the most probable of
    CSF = 255 - GM - WM, GM and WM in every brain voxel)."""
    p = np.stack([np.clip(255.0 - gm - wm, 0, None), gm, wm])  # (3, X, Y, Z): CSF, GM, WM
    lab = p.argmax(0).astype(np.int64) + 1
    lab[t1 <= 0] = BACKGROUND
    return lab


def area_mode(labels: torch.Tensor, size: int, square_mode: str, chunk: int = 16) -> torch.Tensor:
    """(N, H, W) integer label slices -> (N, size, size): square pad (with background) or crop, then the class
    covering most of each output pixel (area average of the one-hot map, then argmax), so the labels line up
    with the area-resized image; nearest sampling would pick one voxel of a ~3.6 x 3.6 mm pixel and misplace
    thin grey matter. Chunks of `chunk` slices bound the one-hot memory."""
    from .data import square

    labels = labels.long()
    k = int(labels.max()) + 1 if labels.numel() else 1
    out = []
    for part in labels.split(chunk):
        oh = F.one_hot(part, k).permute(0, 3, 1, 2).float()  # (n, K, H, W)
        oh = square(oh, square_mode, 0.0)
        oh[:, 0] += (oh.sum(1) == 0).float()  # padding is background
        out.append(F.interpolate(oh, size=(size, size), mode="area").argmax(1))  # (n, S, S)
    return torch.cat(out) if out else labels.new_zeros((0, size, size))


def write_tissue_map(out: str | os.PathLike) -> Path:
    """Write the built-in tissue map (`tissue_map` of the MNI152 recipe's volumes) as a uint8 NIfTI on the T1's
    grid (197 x 233 x 189, 1 mm, RAS); the volumes are fetched on first use."""
    import nibabel as nib

    from .data import mni_paths
    from .io import write_nifti

    paths = mni_paths()
    imgs = {k: nib.load(str(paths[k])) for k in ("t1", "gm", "wm")}
    lab = tissue_map(*(np.asarray(imgs[k].dataobj, dtype=np.float32) for k in ("t1", "gm", "wm")))
    return write_nifti(lab, imgs["t1"].affine, out, dtype=np.uint8)


# ------------------------------------------------------------------------------------------- lesion painting
def blob_mask(shape: tuple[int, ...], center: tuple[float, ...], radius: float | tuple[float, ...],
              irregularity: float = 0.0, seed: int = 0) -> np.ndarray:
    """Boolean mask (shape) of a sphere (a disk in 2D) of `radius` voxels (one per axis for anisotropic grids)
    around `center` (voxel coordinates). `irregularity` in [0, 0.5) > 0 makes a blob whose radius varies
    smoothly with the direction (six random low-order harmonics, reproducible for a seed): typically by about
    +-irregularity of it, at most by +-2 x irregularity (all six in phase)."""
    nd = len(shape)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (nd,))
    if np.any(radius <= 0) or not np.all(np.isfinite(radius)):
        raise InputError(f"radius {tuple(float(r) for r in radius)}: expected > 0 voxels")
    if not 0 <= irregularity < 0.5:
        raise InputError(f"irregularity {irregularity}: expected in [0, 0.5)")
    grids = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij")
    rel = [(g - c) / r for g, c, r in zip(grids, center, radius, strict=True)]  # unit-sphere coordinates
    dist = np.sqrt(sum(x * x for x in rel))
    if irregularity > 0:
        rng = np.random.default_rng(seed)
        unit = [x / np.maximum(dist, 1e-9) for x in rel]
        wobble = np.zeros(shape)
        for _ in range(6):  # random low-frequency directional harmonics, each in [-1, 1]
            d = rng.normal(size=nd)
            d /= np.linalg.norm(d)
            freq, phase = rng.integers(1, 4), rng.uniform(0, 2 * np.pi)
            wobble += np.cos(freq * math.pi * sum(u * di for u, di in zip(unit, d, strict=True)) + phase)
        dist = dist / (1 + irregularity * wobble / 3)  # wobble / 3 in [-2, 2]: the factor stays > 0
    return dist <= 1.0


def paint_lesion(labels: np.ndarray, center: tuple[float, ...], radius: float, cls: int = HYPO, *,
                 spacing_mm: tuple[float, ...] | None = None, irregularity: float = 0.0, seed: int = 0,
                 inside: tuple[int, ...] | None = None) -> np.ndarray:
    """Paint a lesion of class `cls` into a copy of an integer label map (X, Y, Z) (or a 2D map).

    center: voxel coordinates. radius: in voxels, or in mm when `spacing_mm` (one per axis) is given, so a
    lesion stays round on an anisotropic grid. `inside`: the classes the lesion may replace (default: every
    labelled class, so a lesion painted near the cortex stops at the brain's edge). Raises InputError when
    nothing would be painted (centre outside the labelled anatomy, radius too small)."""
    labels = np.asarray(labels)
    if isinstance(cls, bool) or int(cls) != cls or cls < 1:
        raise InputError(f"class {cls!r}: expected an integer >= 1 (0 is background)")
    if len(center) != labels.ndim:
        raise InputError(f"centre {tuple(center)}: expected {labels.ndim} coordinates")
    rad = radius if spacing_mm is None else tuple(radius / s for s in spacing_mm)
    mask = blob_mask(labels.shape, center, rad, irregularity, seed)
    mask &= (labels > BACKGROUND) if inside is None else np.isin(labels, inside)
    if not mask.any():
        raise InputError(f"lesion at voxel {tuple(round(float(c), 1) for c in center)} radius {radius}: no "
                         f"labelled voxel to paint; expected a centre inside the labelled anatomy")
    out = labels.copy()
    out[mask] = cls
    return out


def parse_class(text: str) -> int:
    """'hypo' | 'hyper' | 'csf' | 'gm' | 'wm' | an integer >= 1 -> class index."""
    key = text.strip().lower()
    if key in CLASS_ALIASES:
        return CLASS_ALIASES[key]
    try:
        value = int(key)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"--class {text!r}: expected hypo, hyper (lesions {HYPO}, {HYPER}), csf, gm, wm or an "
                         f"integer >= 1")
    return value


def parse_point(text: str, what: str = "--center") -> tuple[float, float, float]:
    """'X,Y,Z' -> three floats."""
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{what} {text!r}: expected three numbers X,Y,Z") from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise InputError(f"{what} {text!r}: expected finite numbers")
    return x, y, z


def paint_lesion_file(src: str | os.PathLike, dst: str | os.PathLike, center: tuple[float, float, float],
                      radius: float, cls: int, *, units: str = "mm", irregularity: float = 0.0,
                      seed: int = 0) -> dict:
    """Paint a lesion (sphere, or a blob with `irregularity` > 0) of class `cls` into a NIfTI label map and write
    `dst` on the same grid (affine and header kept). units "mm": `center` is a world point (RAS mm, as viewers
    show it) and `radius` in mm; "voxels": a voxel index and a radius in voxels. Returns {"out", "voxels",
    "center_voxel"}; nothing is written on an error."""
    import nibabel as nib

    from .io import write_nifti

    if units not in ("mm", "voxels"):
        raise InputError(f"--units {units!r}: expected mm or voxels")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"{src}: no such label map; expected a NIfTI file")
    try:
        img = nib.load(str(src))
        data = np.asarray(img.dataobj)
    except Exception as e:  # nibabel raises several types for unreadable files
        raise InputError(f"{src}: cannot read as NIfTI ({str(e).splitlines()[0][:80]})") from None
    if data.ndim != 3:
        raise InputError(f"{src}: label map with {data.ndim} dimensions; expected a 3D volume")
    if not np.all(np.isfinite(data)) or np.any(data < 0) or np.any(data != np.round(data)):
        raise InputError(f"{src}: label map with negative, fractional or non-finite values; expected integers >= 0")
    lab = data.astype(np.int64)
    spacing = tuple(float(s) for s in np.linalg.norm(img.affine[:3, :3], axis=0))
    if units == "mm":
        vox = tuple(float(v) for v in np.linalg.solve(img.affine, np.array([*center, 1.0]))[:3])
        out = paint_lesion(lab, vox, radius, cls, spacing_mm=spacing, irregularity=irregularity, seed=seed)
    else:
        vox = tuple(float(v) for v in center)
        out = paint_lesion(lab, vox, radius, cls, irregularity=irregularity, seed=seed)
    written = write_nifti(out, img.affine, dst, dtype=np.uint8 if out.max() < 256 else np.int16)
    return {"out": str(written), "voxels": int((out == cls).sum() - (lab == cls).sum()), "center_voxel": vox}


# -------------------------------------------------------------------------------- tissue statistics
@dataclasses.dataclass
class TissueStats:
    """Mean intensity ([-1, 1]) of CSF, grey and white matter in a set of slices, and the lesion levels set
    from them (what a painted lesion should look like)."""

    csf: float
    gm: float
    wm: float

    @classmethod
    def measure(cls, images: torch.Tensor, labels: torch.Tensor) -> TissueStats:
        """images (N, 1, S, S) in [-1, 1], labels (N, S, S) of the built-in classes."""
        x = images[:, 0]
        means = []
        for k in TISSUE_CLASSES:
            sel = x[labels == k]
            if sel.numel() == 0:
                raise InputError(f"no {CLASS_NAMES[k]} pixel in the label maps; expected the built-in tissue "
                                 f"classes (1 CSF, 2 grey matter, 3 white matter)")
            means.append(float(sel.mean()))
        return cls(*means)

    def level(self, cls: int) -> float:
        """Reference intensity of a class: a tissue's mean, or a lesion's level set from them."""
        if cls == HYPO:
            return self.csf + 0.4 * (self.gm - self.csf)  # darker than GM, brighter than CSF
        if cls == HYPER:
            return min(self.wm + 0.8 * (self.wm - self.gm), 0.97)  # brighter than WM
        if cls in TISSUE_CLASSES:
            return (self.csf, self.gm, self.wm)[cls - 1]
        raise InputError(f"class {cls}: expected a tissue (1-3) or lesion class (4, 5)")

    @staticmethod
    def texture_std(cls: int) -> float:
        return 0.05 if cls == HYPO else 0.03  # mottled black hole vs near-homogeneous bright lesion
