"""Where and how a run executes: device choice, seeding (every seed a run derives from cfg.seed) and moving
batches to the device. No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

import os
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


AUTO_AMP_ENV = "GANAPPS_AUTO_AMP"  # "0": use_amp auto means float32 everywhere (the test suite sets it)


def native_bf16(device: torch.device) -> bool:
    """True on a CPU with bf16 matrix instructions (AMX-BF16 or AVX512-BF16), where bf16 autocast runs convs and
    matmuls several times faster than float32 (`make bench`); False elsewhere or with $GANAPPS_AUTO_AMP=0."""
    if device.type != "cpu" or os.environ.get(AUTO_AMP_ENV, "1") == "0":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check is not None and check() for check in checks)


def amp_dtype(use_amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run: None (float32), bf16 on CPU (and MPS), fp16 on CUDA. "auto": bf16 where
    `native_bf16`, float32 elsewhere."""
    if use_amp == "auto":
        use_amp = native_bf16(device)
    if not use_amp:
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def to_device(batch: Any, device: torch.device) -> Any:
    """A tensor, or dicts / lists / tuples of them, on `device` (other leaves as they are)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def compile_nets(nets: dict[str, torch.nn.Module], warn) -> bool:
    """torch.compile every net in place (inductor; state-dict keys unchanged), kernels cached in
    `paths.inductor_dir()` unless $TORCHINDUCTOR_CACHE_DIR is set. A probe compiles a one-line function first: where
    that fails (no C++ compiler, an unsupported platform) `warn` gets one line and the nets stay eager. A graph that
    fails later runs eagerly (dynamo's suppress_errors). True when the nets were compiled."""
    from .paths import inductor_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_dir()))
    try:
        import torch._dynamo

        torch._dynamo.config.suppress_errors = True
        probe = torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
        if not torch.equal(probe, torch.full((4,), 3.0)):
            raise RuntimeError("the compiled probe computed a wrong result")
    except Exception as e:  # noqa: BLE001 - any failure means: train eagerly
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        warn(f"use_compile: torch.compile does not work here ({type(e).__name__}: {first[:160]}); training eagerly")
        return False
    for net in nets.values():
        net.compile()
    return True
