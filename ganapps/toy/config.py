"""Options of the 2D mixture task and its presets. No training code here."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from ..engine.adversarial import AdversarialConfig
from ..engine.config import opt, require


@dataclasses.dataclass
class ToyConfig(AdversarialConfig):
    unsupported: ClassVar[tuple[str, ...]] = ("adv_weight", "augment_policy", "use_ada", "ada_target",
                                              "ada_adjust_images")  # 2D points: no images to augment

    # trainer
    out: str = "runs/toy"
    steps: int = 6000
    batch_size: int = 256
    log_every_steps: int = 50
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 1000
    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    ema_halflife_images: float = 10_000.0
    threads: int = 1  # small MLPs: a second thread gives no speed (make bench: x1.01), so runs can go side by side
    # GAN: the SNGAN-style default recipe (hinge loss, spectral-norm D, Adam(0, 0.9))
    gan_loss: str = "hinge"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.9
    use_spectral_norm: bool = True
    # task
    dataset: Literal["ring", "grid"] = opt("ring", "ring (8 modes) or grid (25 modes)")
    z_dim: int = opt(2, "latent size")
    hidden: int = opt(256, "MLP width")
    layers: int = opt(3, "hidden layers per net")
    init: Literal["default", "normal", "xavier", "kaiming", "orthogonal"] = opt(
        "default", "weight init of both nets (default: PyTorch's)")
    eval_samples: int = opt(2500, "samples for the final evaluation")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("z_dim", "hidden", "layers", "eval_samples"))


# The default recipe (SNGAN-style: hinge loss, spectral-norm D, Adam(0, 0.9), linear LR decay, EMA generator,
# 2-D latent) was found by the search recorded in README.md. `plain` is a vanilla minimax GAN with every
# stabilizer off (it collapses, and `ganapps doctor` says so).
PRESETS: dict[str, dict] = {
    "default": {},
    "plain": {"gan_loss": "vanilla", "r1_gamma": 0.0, "gp_weight": 0.0, "ema_halflife_images": 0.0,
              "use_spectral_norm": False, "use_minibatch_std": False, "lecam_weight": 0.0,
              "instance_noise_std": 0.0, "real_label": 1.0, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5,
              "beta2": 0.999, "lr_schedule": "constant", "z_dim": 16},
}


# `ganapps tune toy`: the searchable space, a grid for --sampler grid, and the objectives.
OBJECTIVES = {"high_quality": "maximize", "modes": "maximize", "reverse_kl": "minimize"}

SEARCH_GRID = {"gan_loss": ["nonsaturating", "hinge"], "use_spectral_norm": [False, True], "lr_g": [2e-4, 1e-3],
               "lr_d": [2e-4, 1e-3]}


def search_space(trial) -> dict:
    """Learning rates (TTUR), batch size, loss and stabilizers, as Optuna suggestions."""
    loss = trial.suggest_categorical("gan_loss", ["nonsaturating", "hinge", "lsgan", "wasserstein"])
    space = {
        "gan_loss": loss,
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
