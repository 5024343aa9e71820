"""Variations of the real training slices that the generator is meant to learn (task options `anatomy_augment`
and `paint_lesions`); no training code here. Unlike DiffAugment (applied to real and fake alike inside the
discriminator, so the generator never learns it), these change the training data itself.

- `AnatomyAugment`: a smooth random deformation (small affine + elastic warp) and a gamma change of contrast,
  applied to a real slice and its label map together (SynthSeg / nnU-Net-style spatial augmentation). One
  template brain gives one slice per position: a generator trained on it can only reproduce the template, and
  every faithful sample is then a near-copy of a training slice; trained on plausible variations of it, the
  generator learns a distribution of brains around the template.
- `LesionPainter`: paints a random lesion blob (a built-in lesion class, `labels.LESION_CLASSES`) into a training
  (image, label map) pair at the class's intensity, so a label model learns to render painted lesions.
- `AugmentedSlices`: a `SliceDataset` whose items carry both; `images()` still returns the clean slices (the
  memorization audit compares samples with what was really there).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..engine.errors import InputError
from .data import SliceDataset
from .labels import BACKGROUND, GM, LESION_CLASSES, WM, TissueStats


@dataclasses.dataclass
class AnatomyAugment:
    """Random warp + gamma of slices (B, 1, S, S) in [-1, 1] (background -1) and their label maps (B, S, S).

    Defaults: rotation +-2 deg, isotropic scale 1 +- 2% with anisotropy 1 +- 1%, shift +-0.5 px, elastic
    displacement of std 1 px on a 5 x 5 control grid (bicubic), gamma in [1/1.2, 1.2] (log-uniform, on
    intensities mapped to [0, 1]), every slice (`p` 1). Chosen by the issue-14 research between two settings it
    scored with an oracle generator that reproduces the augmented MNI152 slices exactly (docs/medical.md):
    rotation 2 / scale 2% / shift 0.5 / elastic 0.75 / gamma 1.2 gave recall 0.407, scale 2% / elastic 1 /
    gamma 1.2 gave 0.519, both with 0% near-copies and pixel KID better than the PCA Gaussian's; stronger warps
    (rotation 6, elastic 1.5) raised recall and lost pixel KID."""

    rotate_deg: float = 2.0
    scale: float = 0.02
    translate_px: float = 0.5
    elastic_px: float = 1.0
    elastic_grid: int = 5
    gamma: float = 1.2
    p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rotate_deg", "scale", "translate_px", "elastic_px"):
            if not getattr(self, name) >= 0:
                raise InputError(f"option anatomy_augment: {name}={getattr(self, name)!r}, expected >= 0")
        if not 0 <= self.scale < 0.5:
            raise InputError(f"option anatomy_augment: scale={self.scale!r}, expected in [0, 0.5)")
        if self.elastic_grid < 2:
            raise InputError(f"option anatomy_augment: elastic_grid={self.elastic_grid!r}, expected >= 2")
        if not self.gamma >= 1:
            raise InputError(f"option anatomy_augment: gamma={self.gamma!r}, expected >= 1 (1: no gamma change)")
        if not 0 <= self.p <= 1:
            raise InputError(f"option anatomy_augment: p={self.p!r}, expected in [0, 1]")

    @classmethod
    def parse(cls, text: str) -> AnatomyAugment | None:
        """'' or 'off' -> None; 'on' -> the defaults; 'k=v,k=v' -> the defaults with those fields changed."""
        text = text.strip()
        if text in ("", "off"):
            return None
        if text == "on":
            return cls()
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, float | int] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in fields:
                raise InputError(f"option anatomy_augment={text!r}: {part.strip()!r} is not KEY=VALUE with KEY one "
                                 f"of {', '.join(fields)} (or use on / off)")
            try:
                kwargs[key] = int(value) if key == "elastic_grid" else float(value)
            except ValueError:
                raise InputError(f"option anatomy_augment={text!r}: {key}={value.strip()!r} is not a number") from None
        return cls(**kwargs)

    def __call__(self, img: torch.Tensor, labels: torch.Tensor | None = None,
                 gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """img (B, 1, S, S), labels (B, S, S) int64 or None -> the same, warped (bilinear for images, nearest
        for labels, both on one sampling grid; outside the slice is background) and gamma-changed."""
        b, _, s, _ = img.shape

        def u(*shape: int) -> torch.Tensor:  # uniform in [-1, 1]
            return torch.rand(*shape, generator=gen) * 2 - 1

        ang = u(b) * self.rotate_deg * torch.pi / 180
        sc, an = 1 + u(b) * self.scale, 1 + u(b) * self.scale / 2
        sx, sy = sc * an, sc / an
        tx, ty = u(b) * self.translate_px * 2 / s, u(b) * self.translate_px * 2 / s
        theta = torch.stack([torch.stack([sx * ang.cos(), -sy * ang.sin(), tx], 1),
                             torch.stack([sx * ang.sin(), sy * ang.cos(), ty], 1)], 1)  # (B, 2, 3)
        grid = F.affine_grid(theta, [b, 1, s, s], align_corners=False)  # (B, S, S, 2)
        if self.elastic_px > 0:
            ctrl = torch.randn(b, 2, self.elastic_grid, self.elastic_grid, generator=gen) * self.elastic_px * 2 / s
            grid = grid + F.interpolate(ctrl, size=(s, s), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        keep = torch.rand(b, generator=gen) < self.p
        identity = F.affine_grid(torch.eye(2, 3).expand(b, 2, 3), [b, 1, s, s], align_corners=False)
        grid = torch.where(keep[:, None, None, None], grid, identity)
        out = F.grid_sample(img + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
        if self.gamma > 1:
            g = torch.exp(u(b) * torch.log(torch.tensor(self.gamma)))
            g = torch.where(keep, g, torch.ones_like(g))
            out = ((out + 1) / 2).clamp(0, 1) ** g[:, None, None, None] * 2 - 1
        lab = None
        if labels is not None:
            lab = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                                align_corners=False)[:, 0].round().long()  # (B, S, S)
        return out.clamp(-1, 1), lab


class LesionPainter:
    """Paint a random lesion into a training pair: image (1, S, S) in [-1, 1], labels (S, S) of the built-in
    classes. With probability `p`: one blob of a random class of `classes`, radius uniform in `radius_px`,
    centred on a random grey/white-matter pixel, clipped to the brain; the image gets the class's level
    (`TissueStats.level`) with a soft one-pixel edge and smooth random texture."""

    def __init__(self, stats: TissueStats, p: float = 0.5, radius_px: tuple[float, float] = (1.5, 9.0),
                 classes: tuple[int, ...] = LESION_CLASSES):
        self.stats, self.p, self.radius_px, self.classes = stats, p, radius_px, classes

    def __call__(self, image: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.rand(()) >= self.p:
            return image, labels
        cand = torch.nonzero((labels == GM) | (labels == WM))
        if len(cand) == 0:
            return image, labels
        cy, cx = cand[torch.randint(len(cand), ())].tolist()
        cls = self.classes[int(torch.randint(len(self.classes), ()))]
        r = float(torch.empty(()).uniform_(*self.radius_px))
        s = labels.shape[-1]
        yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                                indexing="ij")
        ang = torch.atan2(yy - cy, xx - cx)
        wob = sum(torch.randn(()) * 0.08 * torch.cos(k * ang + torch.rand(()) * 6.283) for k in (2, 3))
        dist = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt() / (r * (1 + wob))  # (S, S), the blob's edge at 1
        brain = labels > BACKGROUND
        inside = (dist <= 1) & brain
        if not inside.any():
            return image, labels
        alpha = ((1 - dist) * r + 0.5).clamp(0, 1) * brain  # soft one-pixel edge
        tex = F.avg_pool2d(torch.randn(1, 1, s, s), 3, 1, 1)[0, 0] * 3 * self.stats.texture_std(cls)
        image = image * (1 - alpha) + (self.stats.level(cls) + tex) * alpha
        labels = labels.clone()
        labels[inside] = cls
        return image.clamp(-1, 1), labels


class AugmentedSlices(SliceDataset):
    """A `SliceDataset` (same index, spacing and positions) whose items are augmented: `augment` warps the image
    and its label map together, then `painter` (label maps only) may paint a lesion into the pair."""

    def __init__(self, base: SliceDataset, augment: AnatomyAugment | None, painter: LesionPainter | None = None):
        self.__dict__.update(base.__dict__)
        self.augment, self.painter = augment, painter

    def clean(self, i: int) -> dict[str, torch.Tensor]:
        return SliceDataset.__getitem__(self, i)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.clean(i))
        img, lab = item["image"], item.get("label")
        if self.augment is not None:
            warped, wl = self.augment(img[None], None if lab is None else lab[None])
            img, lab = warped[0], None if wl is None else wl[0]
        if self.painter is not None and lab is not None:
            img, lab = self.painter(img, lab)
        item["image"] = img.contiguous()
        if lab is not None:
            item["label"] = lab.contiguous()
        return item

    def images(self) -> torch.Tensor:
        """The clean slices (N, 1, S, S), as `SliceDataset.images`."""
        return torch.stack([self.clean(i)["image"] for i in range(len(self))])
