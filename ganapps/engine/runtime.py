"""Where and how a run executes: device choice, seeding (every seed a run derives from cfg.seed) and moving
batches to the device. No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from . import distributed as dist
from .errors import InputError

# Seeds derived from cfg.seed. The data order is DataStream's, from cfg.seed itself (see engine.data).
PREVIEW_SEED_OFFSET = 0  # every preview draws the same noise: torch seed cfg.seed + 0
EVAL_SEED_OFFSET = 1  # every evaluation draws the same noise: torch seed cfg.seed + 1
RANK_SEED_STRIDE = 7919  # a prime: under DDP rank r draws its noise from cfg.seed + 7919 r + 1 (+ step on resume)


def rank_noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """The global torch seed of rank `rank` under data-parallel training, so ranks draw different noise;
    `step` > 0 after a resume, so a resumed run does not replay the noise of its first steps."""
    return seed + RANK_SEED_STRIDE * rank + 1 + step


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (NumPy takes the seed modulo 2**32)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """auto -> cuda, else mps, else cpu; an explicit device that is absent is an input error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps: MPS is not available here; use --device cpu or auto")
    if name == "cuda":
        return torch.device("cuda", dist.local_rank())
    return torch.device(name)


def to_device(batch: Any, device: torch.device) -> Any:
    """A tensor, or dicts / lists / tuples of them, on `device` (other leaves as they are)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
