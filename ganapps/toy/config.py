"""Options of the 2D mixture task and its presets. No training code here."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.config import TrainConfig, require
from ..engine.errors import InputError


@dataclasses.dataclass
class ToyConfig(TrainConfig):
    out: str = "runs/toy"
    dataset: Literal["ring", "grid"] = "ring"
    loss: str = "hinge"
    steps: int = 6000
    batch_size: int = 256
    z_dim: int = 2
    hidden: int = 256
    layers: int = 3
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 1
    r1_gamma: float = 0.0
    r1_interval: int = 16
    gp_weight: float = 0.0
    use_spectral_norm: bool = True
    real_label: float = 1.0  # one-sided label smoothing when < 1
    instance_noise_std: float = 0.0
    use_minibatch_std: bool = False
    lecam_weight: float = 0.0
    init: Literal["default", "normal", "xavier", "kaiming", "orthogonal"] = "default"
    eval_samples: int = 2500
    log_every_steps: int = 50
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 1000
    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    ema_halflife_images: float = 10_000.0
    threads: int = 1  # small MLPs: a second thread gives no speed (make bench: x1.01), so runs can go side by side

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("z_dim", "hidden", "layers", "n_critic", "r1_interval", "eval_samples"),
                above_zero=("lr_g", "lr_d"), non_negative=("r1_gamma", "gp_weight", "instance_noise_std", "lecam_weight"))
        if not 0 < self.real_label <= 1:
            raise InputError(f"option real_label={self.real_label!r}: expected in (0, 1]")


# The default recipe (SNGAN-style: hinge loss, spectral-norm D, Adam(0, 0.9), linear LR decay, EMA generator,
# 2-D latent) was found by the search recorded in README.md. `plain` is a vanilla minimax GAN with every
# stabilizer off (it collapses, and `ganapps doctor` says so).
PRESETS: dict[str, dict] = {
    "default": {},
    "plain": {"loss": "vanilla", "r1_gamma": 0.0, "gp_weight": 0.0, "ema_halflife_images": 0.0,
              "use_spectral_norm": False, "use_minibatch_std": False, "lecam_weight": 0.0,
              "instance_noise_std": 0.0, "real_label": 1.0, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5,
              "beta2": 0.999, "lr_schedule": "constant", "z_dim": 16},
}


# `ganapps tune toy`: the searchable space, a grid for --sampler grid, and the objectives.
OBJECTIVES = {"high_quality": "maximize", "modes": "maximize", "reverse_kl": "minimize"}

SEARCH_GRID = {"loss": ["nonsaturating", "hinge"], "use_spectral_norm": [False, True], "lr_g": [2e-4, 1e-3],
               "lr_d": [2e-4, 1e-3]}


def search_space(trial) -> dict:
    """Learning rates (TTUR), batch size, loss and stabilizers, as Optuna suggestions."""
    loss = trial.suggest_categorical("loss", ["nonsaturating", "hinge", "lsgan", "wasserstein"])
    space = {
        "loss": loss,
        "lr_g": trial.suggest_float("lr_g", 5e-5, 3e-3, log=True),
        "lr_d": trial.suggest_float("lr_d", 5e-5, 3e-3, log=True),
        "beta1": trial.suggest_categorical("beta1", [0.0, 0.5]),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512]),
        "use_spectral_norm": trial.suggest_categorical("use_spectral_norm", [False, True]),
        "r1_gamma": trial.suggest_categorical("r1_gamma", [0.0, 0.01, 0.1, 1.0]),
        "ema_halflife_images": trial.suggest_categorical("ema_halflife_images", [0.0, 5000.0, 20000.0]),
        "lr_schedule": trial.suggest_categorical("lr_schedule", ["constant", "linear"]),
    }
    if loss == "wasserstein":
        space["gp_weight"] = 0.1
    return space
