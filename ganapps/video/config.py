"""Options of the video prediction task and its presets. No training code here."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.config import TrainConfig, require
from ..engine.errors import InputError


@dataclasses.dataclass
class VideoConfig(TrainConfig):
    out: str = "runs/video"
    # data: video files / folders (comma-separated); empty: the built-in `dataset`
    data: str = ""
    dataset: Literal["photos", "mnist", "mnist_npy"] = "photos"
    context_frames: int = 4
    future_frames: int = 4
    clip_stride: int = 2
    size: int = 64
    use_gray: bool = False
    use_crop: bool = False
    strict: bool = False
    # nets
    predictor: Literal["convlstm", "conv3d"] = "convlstm"
    head: Literal["direct", "residual", "warp", "flowprior"] = "warp"
    hidden: int = 64
    layers: int = 2
    kernel: int = 5
    patch: int = 4
    disc_width: int = 32
    use_frame_disc: bool = False
    use_spectral_norm: bool = True
    # losses
    recon_loss: Literal["l1", "l2"] = "l1"
    gdl_weight: float = 1.0
    adv_weight: float = 0.05
    gan_loss: str = "hinge"
    context_loss_weight: float = 0.5  # one-step predictions inside the context are free supervision
    scheduled_sampling_steps: int = 0  # teacher forcing fades from 1 to 0 over these steps (0: off)
    # optimisation
    batch_size: int = 8
    steps: int = 2000
    lr_g: float = 5e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eval_clips: int = 32
    log_every_steps: int = 25
    sample_every_steps: int = 250
    checkpoint_every_steps: int = 250

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("context_frames", "future_frames", "clip_stride", "size", "hidden", "layers", "kernel",
                     "patch", "disc_width", "eval_clips"),
                above_zero=("lr_g", "lr_d"),
                non_negative=("gdl_weight", "adv_weight", "context_loss_weight", "scheduled_sampling_steps"))
        if self.size % self.patch:
            raise InputError(f"option size={self.size}: expected a multiple of patch={self.patch}")
        if self.kernel % 2 == 0:
            raise InputError(f"option kernel={self.kernel}: expected an odd number")

    @property
    def channels(self) -> int:
        return 1 if self.use_gray or self.dataset.startswith("mnist") and not self.data else 3


# `mnist` is OpenSTL's Moving MNIST ConvLSTM setting, scaled to what a CPU trains in minutes.
PRESETS: dict[str, dict] = {
    "default": {},
    "mnist": {"dataset": "mnist", "context_frames": 10, "future_frames": 10, "size": 64, "head": "direct",
              "hidden": 64, "layers": 2, "patch": 4, "recon_loss": "l2", "gdl_weight": 0.0, "adv_weight": 0.0,
              "context_loss_weight": 1.0, "scheduled_sampling_steps": 1000, "batch_size": 8, "lr_g": 5e-4},
    "openstl": {"dataset": "mnist", "context_frames": 10, "future_frames": 10, "size": 64, "head": "direct",
                "hidden": 128, "layers": 4, "kernel": 5, "patch": 4, "recon_loss": "l2", "gdl_weight": 0.0,
                "adv_weight": 0.0, "context_loss_weight": 1.0, "scheduled_sampling_steps": 50000,
                "batch_size": 16, "lr_g": 1e-3},
    "tiny": {"hidden": 8, "layers": 1, "kernel": 3, "size": 16, "context_frames": 3, "future_frames": 2,
             "batch_size": 2, "steps": 4, "disc_width": 4, "eval_clips": 2, "log_every_steps": 1,
             "sample_every_steps": 2, "checkpoint_every_steps": 2, "use_tensorboard": False},
}
