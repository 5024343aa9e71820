"""What a checkpoint holds besides the config, and how it comes back: net and EMA weights, and the trainer
state (counters, optimizers, LR schedules, grad scalers, RNG states, data position, task-held state).
No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt
from .errors import InputError
from .stabilizers import EMA

COUNTERS = {"step": int, "images_seen": int, "lr_scale": float, "nonfinite_total": int, "rollbacks": int}
"""Trainer counters kept in a checkpoint, with their types (all but step and images_seen default to 0 / 1.0
in checkpoints written before they existed)."""
_DEFAULTS = {"lr_scale": 1.0, "nonfinite_total": 0, "rollbacks": 0}


def weights(nets: dict[str, nn.Module], ema: dict[str, EMA]) -> dict[str, dict[str, torch.Tensor]]:
    """{net: state_dict} plus {net_ema: the averaged copy's state_dict}."""
    w = {n: net.state_dict() for n, net in nets.items()}
    w.update({f"{n}_ema": e.module.state_dict() for n, e in ema.items()})
    return w


def load_weights(nets: dict[str, nn.Module], ema: dict[str, EMA], w: dict[str, dict[str, torch.Tensor]]) -> None:
    """Inverse of `weights`; an EMA copy missing from `w` starts from its net's weights."""
    for n, net in nets.items():
        if n not in w:
            raise InputError(f"checkpoint has no weights for net '{n}'")
        net.load_state_dict(w[n])
    for n, e in ema.items():
        e.module.load_state_dict(w.get(f"{n}_ema", w[n]))


def capture(counters: dict[str, Any], optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
            scalers: dict[str, torch.amp.GradScaler], stream: Any, task: Any) -> dict[str, Any]:
    """The trainer state as plain values and tensors (loadable with `torch.load(weights_only=True)`)."""
    state = {k: counters[k] for k in COUNTERS}
    state.update({
        "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
        "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
        "scalers": {n: s.state_dict() for n, s in scalers.items()},
        "rng": ckpt.rng_state(), "data": stream.state_dict(),
    })
    if hasattr(task, "state_dict"):
        state["task"] = task.state_dict()
    return state


def restore(state: dict[str, Any], optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
            scalers: dict[str, torch.amp.GradScaler], stream: Any, task: Any) -> dict[str, Any]:
    """Load `capture`'s output into the objects (and the global RNGs); returns the counters."""
    for n, o in optimizers.items():
        o.load_state_dict(state["optimizers"][n])
    for n, s in schedulers.items():
        s.load_state_dict(state["schedulers"][n])
    for n, s in scalers.items():
        if n in state.get("scalers", {}):
            s.load_state_dict(state["scalers"][n])
    stream.load_state_dict(state["data"])
    if "task" in state and hasattr(task, "load_state_dict"):
        task.load_state_dict(state["task"])
    ckpt.set_rng_state(state["rng"])
    return {k: kind(state[k] if k in state else _DEFAULTS[k]) for k, kind in COUNTERS.items()}


def scale_learning_rates(schedulers: dict[str, Any], scale: float) -> None:
    """Set every LambdaLR's base learning rates to `scale` x the original ones, effective at once."""
    for s in schedulers.values():
        s.base_lrs = [lr * scale / getattr(s, "_ganapps_scale", 1.0) for lr in s.base_lrs]
        s._ganapps_scale = scale
        s.last_epoch -= 1
        s.step()
