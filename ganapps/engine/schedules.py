"""Learning-rate multipliers for `torch.optim.lr_scheduler.LambdaLR`: constant, linear decay, cosine, warm-up.
Pure Python maths; never imports a task package, Typer or a data format.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ganapps.engine.errors import InputError

SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")


def _check_steps(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise InputError(f"lr_lambda: {name}={value!r}, expected an integer >= 0")
    return int(value)


def lr_lambda(
    kind: str,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    decay_start_steps: int | None = None,
) -> Callable[[int], float]:
    """The lr multiplier m(step) in [0, 1] for `LambdaLR(optimizer, lr_lambda(...))`, stepped once per
    optimizer step (step 0 is the first optimizer step).

    Kinds (`SCHEDULES`), with T = total_steps and S = decay_start_steps:
      - "constant": 1.
      - "linear": the CycleGAN schedule (Zhu et al. 2017; pytorch-CycleGAN-and-pix2pix `get_scheduler`,
        1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)) counted in steps:
        m = 1 - max(0, step + 1 - S) / (T - S + 1). It is 1 up to step S - 1, falls linearly from step S,
        reaches 1 / (T - S + 1) at the last step T - 1 and 0 at step T (and stays 0). S defaults to T // 2.
      - "cosine": 1 before S, then m = 0.5 * (1 + cos(pi * min(1, (step - S) / (T - S)))), 0 from step T on
        (Loshchilov & Hutter 2017, without restarts). S defaults to warmup_steps (0 without warm-up).
    Any kind is multiplied by a linear warm-up (step + 1) / (warmup_steps + 1) for step < warmup_steps, so it
    rises from near 0 and no step is spent at lr 0 (as nanoGPT), and 1 from step warmup_steps on.

    Raises InputError (a ValueError) naming the choices for an unknown kind, and for negative or inconsistent
    step counts (warmup_steps > T, S outside [0, T], S given for "constant").
    """
    if kind not in SCHEDULES:
        raise InputError(f"unknown lr schedule {kind!r}: expected one of {', '.join(SCHEDULES)}")
    total = _check_steps("total_steps", total_steps)
    if total < 1:
        raise InputError(f"lr_lambda: total_steps={total_steps!r}, expected an integer >= 1")
    warmup = _check_steps("warmup_steps", warmup_steps)
    if warmup > total:
        raise InputError(f"lr_lambda: warmup_steps={warmup} exceeds total_steps={total}")
    if kind == "constant" and decay_start_steps is not None:
        raise InputError("lr_lambda: decay_start_steps given for the 'constant' schedule, which never decays")
    if decay_start_steps is None:
        start = total // 2 if kind == "linear" else warmup
    else:
        start = _check_steps("decay_start_steps", decay_start_steps)
        if start > total:
            raise InputError(f"lr_lambda: decay_start_steps={start} exceeds total_steps={total}")

    def multiplier(step: int) -> float:
        if step < 0:
            raise ValueError(f"lr schedule: step={step}, expected >= 0")
        m = 1.0
        if kind == "linear":
            m = max(0.0, 1.0 - max(0, step + 1 - start) / (total - start + 1))
        elif kind == "cosine" and step >= start:
            progress = 1.0 if total == start else min(1.0, (step - start) / (total - start))
            m = 0.5 * (1.0 + math.cos(math.pi * progress))
        if step < warmup:
            m *= (step + 1) / (warmup + 1)
        return m

    return multiplier
