"""Inputs and tiny models for the app tests: the built-in test photo (matplotlib's sample Grace Hopper photo,
installed with every ganapps), short clips rendered over it, bad uploads, a tiny CycleGAN run trained for a few
steps, and an untrained label-conditioned slice generator exported as a model folder. No downloads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def builtin_photo() -> Path:
    """A real photo that ships with matplotlib (a dependency of ganapps): 512x600 RGB JPEG."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def write_clip(path: Path, frames: int, size: int = 64, seed: int = 0) -> Path:
    """A camera pan over the test photo, as the video task renders its training clips; .mp4 (mp4v) or .gif."""
    from ganapps.video.data import load_photo, render_camera_motion
    from ganapps.video.pipeline import write_video

    photo = load_photo(builtin_photo())
    params = {"cx": 0.5, "cy": 0.4, "view": 0.5, "vx": 0.02, "vy": 0.01, "zoom": 1.0, "rot": 0.0}
    clip = render_camera_motion(photo, frames, size, params)  # (T, size, size, 3) uint8
    write_video(path, clip, fps=10)
    return path


def write_corrupt_image(path: Path) -> Path:
    """A .png that is no PNG: random bytes."""
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return path


def write_label_map(path: Path, shape=(20, 24, 16)) -> Path:
    """A NIfTI label volume: background 0, an ellipsoid 'head' 1 with a 'lesion' 2 inside."""
    import nibabel as nib

    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = x**2 / 0.8 + y**2 / 0.9 + z**2 / 0.7
    labels = np.where(r < 0.15, 2, np.where(r < 1.0, 1, 0)).astype(np.int16)
    nib.save(nib.Nifti1Image(labels, np.diag([1.5, 1.5, 2.0, 1.0])), str(path))
    return path


def write_truncated(path: Path, good: Path) -> Path:
    """The first half of a good file."""
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def train_tiny_cyclegan(data: Path, out: Path) -> Path:
    """A real 4-step CycleGAN run (4-filter nets at 32x32) with samples every 2 steps: metrics.jsonl, samples/,
    checkpoints/latest, config.yaml."""
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.task import CycleGANTask
    from ganapps.engine.trainer import train

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for domain, tint in (("A", 0), ("B", 2)):
            folder = data / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                arr = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                arr[..., tint] = arr[..., tint] // 2 + 128
                Image.fromarray(arr).save(folder / f"img_{k}.png")
    cfg = CycleGANConfig(data=str(data), out=str(out), gen="resnet_6blocks", ngf=4, ndf=4, load_size=36,
                         crop_size=32, steps=4, device="cpu", log_every_steps=1, sample_every_steps=2,
                         checkpoint_every_steps=2, eval_images=2, preview_images=2, use_tensorboard=False,
                         write_report=False, quiet=True)
    train(CycleGANTask(cfg))
    return out


def export_label_model(folder: Path, seed: int = 0) -> Path:
    """An untrained label-map -> slice generator (SPADE resnet, 32x32, 3 classes) as a model folder."""
    from ganapps.medical.config import PRESETS, MedicalConfig
    from ganapps.medical.pipeline import Synthesizer

    cfg = MedicalConfig(**dict(PRESETS["tiny"], condition="label", model="resnet", num_classes=3, device="cpu",
                               out=os.fspath(folder)))
    torch.manual_seed(seed)
    Synthesizer.from_nets(Synthesizer.build_nets(cfg), cfg, torch.device("cpu")).export(folder, fp16=False)
    return folder
