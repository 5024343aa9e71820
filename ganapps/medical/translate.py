"""Modality translation (e.g. T1 <-> tissue map, MR <-> CT) by reusing the CycleGAN task: this module only
cuts two sets of volumes into slices with the medical preprocessing and writes them in the CycleGAN layout
(trainA/ trainB/ testA/ testB/, 8-bit grayscale PNGs); `ganapps cyclegan train --data DIR --channels 1` then
trains with the CycleGAN task's nets and losses on the engine. No training code is copied here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from .config import MedicalConfig
from .data import SliceDataset
from .pipeline import save_pngs


def label_images(ds: SliceDataset) -> torch.Tensor:
    """The label maps of a dataset as images (N, 1, S, S) in [-1, 1]: class k -> -1 + 2k/(K-1)."""
    labels = torch.stack([ds[i]["label"] for i in range(len(ds))]).float()
    return (labels / max(ds.num_classes - 1, 1) * 2 - 1)[:, None]


def export_translation_folders(root: str | os.PathLike, cfg: MedicalConfig, cfg_b: MedicalConfig | None = None) \
        -> dict[str, int]:
    """Write the CycleGAN layout under `root`: domain A = slices of `cfg`'s volumes; domain B = slices of
    `cfg_b`'s volumes, or, without `cfg_b`, the label maps paired with `cfg`'s volumes rendered as gray levels
    (the MNI152 tissue map by default). Train/test follow `holdout_every`. Returns image counts per folder."""
    root = Path(root)
    counts = {}
    for split, name in (("train", "train"), ("heldout", "test")):
        if split == "heldout" and not cfg.holdout_every:
            continue
        if cfg_b is None:
            ds = SliceDataset(dataclasses.replace(cfg, condition="label"), split)
            a, b = ds.images(), label_images(ds)
        else:
            a, b = SliceDataset(cfg, split).images(), SliceDataset(cfg_b, split).images()
        for domain, images in (("A", a), ("B", b)):
            save_pngs(images, root / f"{name}{domain}")
            counts[f"{name}{domain}"] = len(images)
    return counts
