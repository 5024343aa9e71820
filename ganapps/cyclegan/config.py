"""Options of the CycleGAN task and its presets: the reference's defaults (pytorch-CycleGAN-and-pix2pix,
`train.py --model cycle_gan`) unless named otherwise. No training code here."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.config import TrainConfig, require
from ..engine.errors import InputError


@dataclasses.dataclass
class CycleGANConfig(TrainConfig):
    out: str = "runs/cyclegan"
    # data
    data: str = ""  # reference layout root (trainA/ trainB/ testA/ testB/); "" = the built-in dataset
    data_a: str = ""  # or two arbitrary folders
    data_b: str = ""
    channels: Literal[1, 3] = 3
    load_size: int = 286
    crop_size: int = 256
    preprocess: Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"] = "resize_and_crop"
    use_flip: bool = True
    cache_images: bool = True  # keep decoded (resized) images in memory when the set is small
    cache_max_images: int = 5000
    strict: bool = False  # a corrupt file is an error instead of a warning
    # nets
    gen: Literal["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"] = "resnet_9blocks"
    disc: Literal["basic", "n_layers", "pixel"] = "basic"
    n_layers_d: int = 3
    ngf: int = 64
    ndf: int = 64
    norm: Literal["instance", "batch", "none"] = "instance"
    use_dropout: bool = False
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal"
    init_gain: float = 0.02
    # objective
    loss: str = "lsgan"
    lambda_a: float = 10.0  # cycle A -> B -> A
    lambda_b: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity loss weight, as a fraction of lambda_a / lambda_b
    pool_size: int = 50
    # optimisation (Adam(2e-4, (0.5, 0.999)); constant for half the steps, then linear decay to 0)
    steps: int = 200_000
    batch_size: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    n_critic: int = 1
    # stabilizers from the engine (all off by default, as the reference)
    real_label: float = 1.0  # one-sided label smoothing when < 1
    gp_weight: float = 0.0
    r1_gamma: float = 0.0
    r1_interval: int = 16
    use_spectral_norm: bool = False
    instance_noise_std: float = 0.0
    diffaug_policy: str = ""  # e.g. "color,translation,cutout" (DiffAugment) on everything D sees
    use_ada: bool = False  # adaptive augmentation probability for diffaug_policy (ADA controller)
    ada_target: float = 0.6
    lecam_weight: float = 0.0
    use_minibatch_std: bool = False
    # speed (same maths as the reference)
    use_batched_calls: bool = True  # one generator call for translation + identity inputs; real+fake per D
    use_channels_last: bool = False
    # previews, evaluation
    preview_images: int = 4
    eval_images: int = 64
    log_every_steps: int = 100
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 5000

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("load_size", "crop_size", "ngf", "ndf", "n_layers_d", "n_critic", "r1_interval",
                     "preview_images", "eval_images", "cache_max_images"),
                above_zero=("lr_g", "lr_d"),
                non_negative=("lambda_a", "lambda_b", "lambda_identity", "gp_weight", "r1_gamma", "instance_noise_std",
                     "lecam_weight", "init_gain", "pool_size"))
        if not 0 < self.real_label <= 1:
            raise InputError(f"option real_label={self.real_label!r}: expected in (0, 1]")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise InputError(f"option crop_size={self.crop_size}: larger than load_size={self.load_size}")
        if bool(self.data_a) != bool(self.data_b):
            raise InputError("options data_a/data_b: give both folders (or --data for the reference layout)")
        if self.data and self.data_a:
            raise InputError("option data: give either --data (trainA/ trainB/ layout) or --data-a/--data-b")
        if self.use_ada and not self.diffaug_policy:
            raise InputError("option use_ada: needs --diffaug-policy (the augmentations whose probability ADA tunes)")


# `default`: the reference's recipe. `fast`: a small CPU-friendly net (what trained models/cyclegan-default).
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": {"gen": "resnet_6blocks", "ngf": 32, "ndf": 32, "preprocess": "crop", "load_size": 128, "crop_size": 64,
             "steps": 2500, "eval_images": 40, "log_every_steps": 50, "sample_every_steps": 500,
             "checkpoint_every_steps": 500},
    "tiny": {"gen": "resnet_6blocks", "ngf": 8, "ndf": 8, "load_size": 36, "crop_size": 32, "steps": 20,
             "log_every_steps": 5, "sample_every_steps": 10, "checkpoint_every_steps": 10, "eval_images": 8,
             "use_tensorboard": False, "write_report": False},
}
