"""Data-parallel training under torchrun: process group set-up, weight broadcast, gradient averaging.

GAN phases freeze and unfreeze nets and backpropagate through the other player, which fights DDP's
wrapper (unused-parameter bookkeeping per forward). Instead every rank runs the same phase and the
trainer averages the phase's gradients with one coalesced all-reduce before its optimizer step: the
same maths as DDP, with rank 0 broadcasting the initial weights so all ranks start and stay identical.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes; returns (rank, world_size). No-op when not launched."""
    if env_world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters and buffers of rank `src` to every rank."""
    if not is_active():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of `params` over ranks in one flat buffer (missing grads count as zero)."""
    if not is_active():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, g in zip(params, _unflatten_dense_tensors(flat, grads), strict=False):
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.copy_(g)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    if not is_active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def any_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank when any rank raised the flag (keeps skip decisions in lockstep)."""
    if not is_active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier() -> None:
    if is_active():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
