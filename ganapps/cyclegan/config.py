"""Options of the CycleGAN task and its presets: the reference's defaults (pytorch-CycleGAN-and-pix2pix,
`train.py --model cycle_gan`) unless named otherwise. No training code here."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.adversarial import AdversarialConfig
from ..engine.config import opt, require
from ..engine.errors import InputError


@dataclasses.dataclass
class CycleGANConfig(AdversarialConfig):
    """The reference's options; the GAN options (`AdversarialConfig`) keep its defaults: LSGAN, Adam(2e-4,
    (0.5, 0.999)) for both nets, every engine stabilizer off."""

    # trainer: constant LR for half the steps, then linear decay to 0
    out: str = "runs/cyclegan"
    steps: int = 200_000
    batch_size: int = 1
    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    log_every_steps: int = 100
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 5000
    gan_loss: str = "lsgan"
    # data
    data: str = opt("", "dataset root with trainA/ trainB/ (testA/ testB/); empty: the built-in photo <-> "
                        "painting set")
    data_a: str = opt("", "folder of domain A images (with --data-b, instead of --data)")
    data_b: str = opt("", "folder of domain B images")
    channels: Literal[1, 3] = opt(3, "image channels: 3 (RGB; gray replicated, alpha composited on white) or 1 "
                                     "(luma)")
    load_size: int = opt(286, "resize images to this size (reference --load_size)")
    crop_size: int = opt(256, "then crop to this size (reference --crop_size)")
    preprocess: Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"] = opt(
        "resize_and_crop", "reference --preprocess")
    use_flip: bool = opt(True, "random horizontal flips")
    cache_images: bool = opt(True, "decode small sets once into memory (resized)")
    cache_max_images: int = opt(5000, "largest set (A + B files) kept in memory")
    strict: bool = opt(False, "a corrupt image is an error instead of a warning")
    # nets
    gen: Literal["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"] = opt("resnet_9blocks", "generator")
    disc: Literal["basic", "n_layers", "pixel"] = opt("basic", "discriminator: basic (70x70 PatchGAN), n_layers, "
                                                               "pixel")
    n_layers_d: int = opt(3, "PatchGAN layers when --disc n_layers")
    ngf: int = opt(64, "generator width")
    ndf: int = opt(64, "discriminator width")
    norm: Literal["instance", "batch", "none"] = opt("instance", "normalisation")
    use_dropout: bool = opt(False, "dropout in the generator")
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = opt("normal", "weight init of every net")
    init_gain: float = opt(0.02, "init scale")
    # objective
    lambda_a: float = opt(10.0, "cycle loss weight A -> B -> A")
    lambda_b: float = opt(10.0, "cycle loss weight B -> A -> B")
    lambda_identity: float = opt(0.5, "identity loss weight as a fraction of lambda_a / lambda_b (0: off)")
    pool_size: int = opt(50, "image history pool size (0: off)")
    # speed (same maths as the reference)
    use_batched_calls: bool = opt(True, "batch generator and discriminator calls that share weights (same maths)")
    use_channels_last: bool = opt(False, "channels-last memory format")
    # previews, evaluation
    preview_images: int = opt(4, "images per domain in the preview grid")
    eval_images: int = opt(64, "test images for the final metrics")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("load_size", "crop_size", "ngf", "ndf", "n_layers_d", "preview_images",
                                "eval_images", "cache_max_images"),
                non_negative=("lambda_a", "lambda_b", "lambda_identity", "init_gain", "pool_size"))
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise InputError(f"option crop_size={self.crop_size}: larger than load_size={self.load_size}")
        if bool(self.data_a) != bool(self.data_b):
            raise InputError("options data_a/data_b: give both folders (or --data for the reference layout)")
        if self.data and self.data_a:
            raise InputError("option data: give either --data (trainA/ trainB/ layout) or --data-a/--data-b")


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
