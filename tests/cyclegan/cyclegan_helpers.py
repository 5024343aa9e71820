"""Small on-disk image domains and tiny configs for the CycleGAN tests (CPU, a few seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def write_images(folder: Path, n: int, size: tuple[int, int] = (40, 40), seed: int = 0, tint: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        arr[..., tint] = arr[..., tint] // 2 + 128
        p = folder / f"img_{k:02d}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Reference layout: trainA/ trainB/ (6 each, 40x40) and testA/ testB/ (4 each)."""
    root = tmp_path / "data"
    write_images(root / "trainA", 6, seed=1, tint=0)
    write_images(root / "trainB", 6, seed=2, tint=2)
    write_images(root / "testA", 4, seed=3, tint=0)
    write_images(root / "testB", 4, seed=4, tint=2)
    return root


def tiny(**kw) -> dict:
    """Options of a tiny CycleGAN: resnet_6blocks with 4 filters at 32x32 crops."""
    base = dict(gen="resnet_6blocks", ngf=4, ndf=4, load_size=36, crop_size=32, steps=4, device="cpu",
                log_every_steps=1, sample_every_steps=1000, checkpoint_every_steps=1000, eval_images=4,
                preview_images=2, use_tensorboard=False, write_report=False, quiet=True)
    base.update(kw)
    return base


def before_affine_free_norm(net: nn.Module) -> set[str]:
    """Names of conv biases that feed an InstanceNorm without affine: the norm subtracts the channel mean, so
    their gradient is 0 in exact arithmetic and only rounding noise in floats. Adam scales that noise up to a
    full step of either sign, and which sign depends on the CPU's kernels and thread count."""
    names = set()
    for prefix, module in net.named_modules():
        children = list(module.named_children())
        for (name, layer), (_, nxt) in zip(children, children[1:], strict=False):
            if (isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.bias is not None
                    and isinstance(nxt, nn.InstanceNorm2d) and not nxt.affine):
                names.add(f"{prefix}.{name}.bias".lstrip("."))
    return names
