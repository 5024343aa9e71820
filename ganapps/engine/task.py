"""The task protocol: what a task hands the trainer (nets, optimizer groups, phases, data, previews).

A phase names one optimizer group and a loss function; the trainer decides everything else (when it runs,
which nets get gradients, AMP, clipping, EMA, DDP, checkpoints). No task imports here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import Dataset

from .config import TrainConfig
from .errors import InputError

LossFn = Callable[[Any, "StepContext"], dict[str, Any]]


FUSED_ADAM_DEVICES = ("cpu", "cuda")


def fast_adam_options(params: list[nn.Parameter] | list[dict[str, Any]]) -> dict[str, bool]:
    """{"fused": True} when every parameter is a floating tensor on a device with torch's fused Adam kernel (one
    kernel over all parameters: the same update, measured about 4x faster than the per-parameter loop torch
    uses by default on CPU; `make bench`), else {} (torch's default)."""
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    devices = {p.device.type for p in tensors}
    if tensors and len(devices) == 1 and devices <= set(FUSED_ADAM_DEVICES) and all(p.is_floating_point()
                                                                                   for p in tensors):
        return {"fused": True}
    return {}


@dataclasses.dataclass
class OptimizerSpec:
    """One optimizer over the parameters of `nets`; TTUR is two specs with different `lr`."""

    nets: tuple[str, ...]
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    kind: str = "adam"  # adam | adamw | rmsprop | sgd
    # (prefix, lr): parameters whose name "<net>.<parameter>" starts with a prefix get that lr (the first
    # matching prefix), in one parameter group per lr; the rest keep `lr`
    lr_by_prefix: tuple[tuple[str, float], ...] = ()

    def groups(self, named: list[tuple[str, nn.Parameter]]) -> list[dict[str, Any]]:
        """Parameter groups for `build`: one per learning rate, the prefixed ones first (in `lr_by_prefix`
        order), then the rest at `lr`; empty groups left out."""
        buckets: dict[float, list[nn.Parameter]] = {lr: [] for _, lr in self.lr_by_prefix}
        rest: list[nn.Parameter] = []
        for name, p in named:
            lr = next((lr for prefix, lr in self.lr_by_prefix if name.startswith(prefix)), None)
            (rest if lr is None else buckets[lr]).append(p)
        return [{"params": ps, "lr": lr} for lr, ps in [*buckets.items(), (self.lr, rest)] if ps]

    def build(self, params: list[nn.Parameter] | list[dict[str, Any]]) -> torch.optim.Optimizer:
        """The optimizer over `params` (a list of parameters, or of parameter groups from `groups`)."""
        for lr in (self.lr, *(lr for _, lr in self.lr_by_prefix)):
            if lr <= 0:
                raise InputError(f"learning rate {lr!r} for {'/'.join(self.nets)}: expected > 0")
        if self.kind in ("adam", "adamw"):
            cls = torch.optim.Adam if self.kind == "adam" else torch.optim.AdamW
            return cls(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay,
                       **fast_adam_options(params))
        if self.kind == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.kind == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.betas[0], weight_decay=self.weight_decay)
        raise InputError(f"optimizer kind '{self.kind}': expected adam, adamw, rmsprop or sgd")


@dataclasses.dataclass
class Phase:
    """One update: `loss(batch, ctx)` returns {"loss": scalar tensor, other logged scalars...}.

    It runs on steps where `step % every == 0`, `repeats` times (n_critic), each repeat on a fresh batch,
    and steps optimizer group `optimizer`. Only that group's nets receive gradients during the phase.
    """

    name: str
    optimizer: str
    loss: LossFn
    every: int = 1
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.every < 1 or self.repeats < 1:
            raise InputError(f"phase {self.name}: every and repeats must be >= 1")


class StepContext:
    """What a phase's loss function sees: nets, counters, device, and a scratch dict for this step."""

    def __init__(self, nets: dict[str, nn.Module], device: torch.device, cfg: TrainConfig):
        self.nets = nets
        self.ema: dict[str, nn.Module] = {}
        self.device = device
        self.cfg = cfg
        self.step = 0
        self.images_seen = 0
        self.scratch: dict[str, Any] = {}  # cleared at the start of every step (e.g. fakes shared by phases)
        self.logging = False  # True on steps whose figures are logged
        self.health_inputs: dict[str, Any] = {}
        self._autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    def autocast(self) -> contextlib.AbstractContextManager:
        """The trainer's mixed-precision context (a no-op unless use_amp)."""
        return self._autocast()

    def observe(self, *, d_real: torch.Tensor | None = None, d_fake: torch.Tensor | None = None,
                real: torch.Tensor | None = None, fake: torch.Tensor | None = None,
                threshold: float = 0.0) -> None:
        """Hand D outputs and samples to the health monitor (kept only on logged steps)."""
        if not self.logging:
            return
        for k, v in (("d_real", d_real), ("d_fake", d_fake), ("real", real), ("fake", fake)):
            if v is not None:
                self.health_inputs[k] = v.detach()
        self.health_inputs["threshold"] = threshold

    def sample_net(self, name: str) -> nn.Module:
        """The EMA copy of a net when there is one, else the net itself (for previews and evaluation)."""
        return self.ema.get(name, self.nets[name])


@runtime_checkable
class Task(Protocol):
    """What the trainer needs from a task. Optional hooks: `ema_nets`, `preview`, `evaluate`,
    `state_dict`/`load_state_dict` (task-held state such as an image pool), `summary(evaluation) -> str` (the
    one line the CLI prints after training)."""

    config: TrainConfig

    def build_nets(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, OptimizerSpec]: ...

    def phases(self) -> list[Phase]: ...

    def dataset(self) -> Dataset: ...


def iter_phases(phases: list[Phase], step: int) -> Iterator[Phase]:
    for ph in phases:
        if step % ph.every == 0:
            yield ph
