"""Options of the 2D mixture task and its presets. No training code here."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.config import TrainConfig
from ..engine.errors import InputError


@dataclasses.dataclass
class ToyConfig(TrainConfig):
    out: str = "runs/toy"
    dataset: Literal["ring", "grid"] = "ring"
    loss: str = "nonsaturating"
    steps: int = 3000
    batch_size: int = 256
    z_dim: int = 16
    hidden: int = 256
    layers: int = 3
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1
    r1_gamma: float = 0.0
    r1_interval: int = 16
    gp_weight: float = 0.0
    use_spectral_norm: bool = False
    real_label: float = 1.0  # one-sided label smoothing when < 1
    instance_noise_std: float = 0.0
    use_minibatch_std: bool = False
    lecam_weight: float = 0.0
    init: Literal["default", "normal", "xavier", "kaiming", "orthogonal"] = "default"
    eval_samples: int = 2500
    log_every_steps: int = 50
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("z_dim", "hidden", "layers", "n_critic", "r1_interval", "eval_samples"):
            if getattr(self, name) < 1:
                raise InputError(f"option {name}={getattr(self, name)!r}: expected a positive integer")
        for name in ("lr_g", "lr_d"):
            if getattr(self, name) <= 0:
                raise InputError(f"option {name}={getattr(self, name)!r}: expected > 0")
        for name in ("r1_gamma", "gp_weight", "instance_noise_std", "lecam_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"option {name}={getattr(self, name)!r}: expected >= 0")
        if not 0 < self.real_label <= 1:
            raise InputError(f"option real_label={self.real_label!r}: expected in (0, 1]")


# The default recipe; `plain` is a vanilla minimax GAN with every stabilizer off (it collapses).
PRESETS: dict[str, dict] = {
    "default": {},
    "plain": {"loss": "vanilla", "r1_gamma": 0.0, "gp_weight": 0.0, "ema_halflife_images": 0.0,
              "use_spectral_norm": False, "use_minibatch_std": False, "lecam_weight": 0.0,
              "instance_noise_std": 0.0, "real_label": 1.0},
}
