"""The early-stopping loop of test-time adaptation, shared by `Predictor.adapted` (pipeline.py, all weights) and
`TrustNet.adapted` (trust.py, head and prior scales): what each tunes and measures stays with the caller. Imports
torch only; no data format, task or trainer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


def keep_best(work: nn.Module, opt: torch.optim.Optimizer, train_loss: Callable[[], torch.Tensor],
              held_out: Callable[[], float], steps: int, patience: int) -> dict:
    """Up to `steps` optimiser steps on `train_loss()`; `held_out()` (a float, computed without gradients by the
    caller) is measured before the first step and after every step. Stops after `patience` steps without a new
    minimum and loads the weights of the best step (step 0 = `work` unchanged) into `work`.
    -> {"steps_run", "best_step", "held_out": [step 0, step 1, ...]}."""
    record = [held_out()]
    best, best_step, since, step = copy.deepcopy(work.state_dict()), 0, 0, 0
    for step in range(1, steps + 1):
        loss = train_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record.append(held_out())
        if record[-1] < record[best_step]:
            best, best_step, since = copy.deepcopy(work.state_dict()), step, 0
        else:
            since += 1
            if since >= patience:
                break
    work.load_state_dict(best)
    return {"steps_run": step, "best_step": best_step, "held_out": record}
