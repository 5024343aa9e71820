"""Options of the video prediction task and its presets. No training code here."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from ..engine.adversarial import AdversarialConfig
from ..engine.config import opt, require
from ..engine.errors import InputError


@dataclasses.dataclass
class VideoConfig(AdversarialConfig):
    unsupported: ClassVar[tuple[str, ...]] = ("augment_policy", "use_ada", "ada_target", "ada_adjust_images",
                                              "use_minibatch_std")  # clips: no DiffAugment, critics without mbstd

    # trainer
    out: str = "runs/video"
    batch_size: int = 8
    steps: int = 2000
    log_every_steps: int = 25
    sample_every_steps: int = 250
    checkpoint_every_steps: int = 250
    # GAN: a small hinge term from spectral-norm critics
    gan_loss: str = "hinge"
    adv_weight: float = 0.05
    lr_g: float = 5e-4
    use_spectral_norm: bool = True
    # data: video files / folders (comma-separated); empty: the built-in `dataset`
    data: str = opt("", "video files, folders of videos or frame folders, comma-separated (empty: --dataset)")
    dataset: Literal["footage", "photos", "mnist", "mnist_npy"] = opt(
        "footage", "built-in data when --data is empty: footage (footage-like clips from real photos: faces, pans, "
                   "objects, noise, H.264), photos (camera motion over real photos), mnist (Moving MNIST from real "
                   "digits), mnist_npy (the public mnist_test_seq.npy)")
    footage_clips: int = opt(5000, "clips in the footage training set (rendered once, ~0.1 CPU s each)")
    context_frames: int = opt(4, "frames the model sees")
    future_frames: int = opt(4, "frames it learns to predict")
    clip_stride: int = opt(2, "frames between clip starts in --data videos")
    size: int = opt(64, "frame side in pixels (frames are resized)")
    use_gray: bool = opt(False, "grayscale frames")
    use_crop: bool = opt(False, "centre-crop frames to a square before resizing")
    strict: bool = opt(False, "stop at the first unreadable video instead of skipping it with a warning")
    # nets
    predictor: Literal["convlstm", "conv3d", "trustnet"] = opt(
        "convlstm", "convlstm (Shi et al. 2015 encoder-forecaster), conv3d, or trustnet (per-pixel trust over "
                    "classical candidates + a learned synthesis; needs 6 context frames)")
    head: Literal["direct", "residual", "warp", "flowprior"] = opt(
        "warp", "direct (the frame), residual (last frame + change), warp (flow-warped last frame + change) or "
                "flowprior (warp with a learned correction to a Farneback flow of the last two frames)")
    use_flow_correction: bool = opt(False, "TrustNet: an eighth candidate, the 2-pair flow plus a learned per-pixel "
                                           "correction (the research net has it)")
    use_guarded_means: bool = opt(True, "TrustNet: the temporal means leave out, pixel by pixel, context frames that "
                                        "disagree with the last one (a blink); off: plain means of the last 4 / 3")
    hidden: int = opt(64, "ConvLSTM hidden channels / 3D-conv width / TrustNet U-Net width")
    layers: int = opt(2, "stacked ConvLSTM cells / 3D-conv blocks / TrustNet residual blocks")
    kernel: int = opt(5, "ConvLSTM gate kernel size")
    patch: int = opt(4, "patch size (frames are folded into patch x patch channels)")
    disc_width: int = opt(32, "critic base width")
    use_frame_disc: bool = opt(False, "add a per-frame 2D critic of the predicted frames")
    # losses
    recon_loss: Literal["l1", "l2", "logmse"] = opt(
        "l1", "l1, l2, or logmse (the mean over clips and horizons of log(MSE + 1e-5): minus the mean per-clip PSNR "
              "up to a constant, so a near-static clip counts as much as a fast pan)")
    gdl_weight: float = opt(1.0, "gradient difference loss weight (Mathieu et al. 2016)")
    context_loss_weight: float = opt(0.5, "weight of the one-step predictions inside the context (free "
                                          "supervision)")
    regret_weight: float = opt(0.0, "weight of the regret term: per clip, relu(the prediction's log MSE averaged over "
                                    "horizons minus the same for the best of copy-last and Farneback extrapolation with "
                                    "1 and 2 frame pairs), averaged over clips: extra pull where the net is below the "
                                    "better baseline (0: off)")
    scheduled_sampling_steps: int = opt(0, "teacher forcing fades from 1 to 0 over these steps (0: off)")
    eval_clips: int = opt(32, "held-out clips scored at the end")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("context_frames", "future_frames", "clip_stride", "size", "hidden", "layers", "kernel",
                     "patch", "disc_width", "eval_clips"),
                non_negative=("gdl_weight", "context_loss_weight", "regret_weight", "scheduled_sampling_steps"))
        if self.size % self.patch:
            raise InputError(f"option size={self.size}: expected a multiple of patch={self.patch}")
        if self.kernel % 2 == 0:
            raise InputError(f"option kernel={self.kernel}: expected an odd number")
        if self.predictor == "trustnet" and self.context_frames < 6:
            raise InputError(f"option context_frames={self.context_frames}: the trustnet predictor needs 6")
        require(self, positive=("footage_clips",))

    @property
    def channels(self) -> int:
        """Image channels: 1 for gray frames and the built-in Moving MNIST, else 3."""
        return 1 if self.use_gray or self.dataset.startswith("mnist") and not self.data else 3


# `default` is the shipped models/video-default recipe (TrustNet on the footage clips; float32, as it was trained:
# bf16 was not measured for TrustNet's high-PSNR blend); `convlstm` is the
# previous default (the field defaults: a 4 -> 4 ConvLSTM at 64 px). `mnist` is OpenSTL's Moving MNIST ConvLSTM
# setting, scaled to what a CPU trains in minutes.
PRESETS: dict[str, dict] = {
    "default": {"predictor": "trustnet", "dataset": "footage", "context_frames": 6, "future_frames": 5, "size": 128,
                "hidden": 32, "layers": 2, "recon_loss": "logmse", "gdl_weight": 0.0, "context_loss_weight": 0.0,
                "adv_weight": 0.0, "lr_g": 1e-3, "beta1": 0.9, "batch_size": 8, "steps": 12000,
                "lr_schedule": "cosine", "grad_clip_norm": 1.0, "ema_halflife_images": 550.0, "eval_clips": 48,
                "eval_every_steps": 1000, "checkpoint_every_steps": 250, "sample_every_steps": 1000,
                "log_every_steps": 50, "use_amp": False},
    "convlstm": {},
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
