"""Options of the medical slice-synthesis task and its presets. No training code here (the pipeline reads it)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..engine.config import TrainConfig, require
from ..engine.errors import InputError

# CT windows in Hounsfield units: (level, width). Radiology teaching values.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "lung": (-600.0, 1500.0),
    "abdomen": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}
SIZES = (32, 64, 128, 256)  # 32 only for tests and quick trials


def parse_window(text: str) -> tuple[float, float]:
    """'brain' | 'lung' | 'abdomen' | 'bone' | 'LEVEL,WIDTH' (HU) -> (level, width)."""
    if text in WINDOWS:
        return WINDOWS[text]
    parts = text.split(",")
    try:
        level, width = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"option window={text!r}: expected one of {', '.join(WINDOWS)} or LEVEL,WIDTH in HU "
                         f"(e.g. 40,400)") from None
    if width <= 0:
        raise InputError(f"option window={text!r}: width {width:g} HU, expected > 0")
    return level, width


@dataclasses.dataclass
class MedicalConfig(TrainConfig):
    out: str = "runs/medical"
    # -- data
    data: list[str] = dataclasses.field(default_factory=list)  # volumes; empty: the MNI152 recipe's T1
    labels: list[str] = dataclasses.field(default_factory=list)  # label maps paired with `data`, same order
    masks: list[str] = dataclasses.field(default_factory=list)  # foreground masks paired with `data`
    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    spacing_mm: float = 0.0  # isotropic resampling target; 0 keeps the scan's spacing
    intensity: Literal["percentile", "zscore", "window", "none"] = "percentile"
    percentile_low: float = 0.5
    percentile_high: float = 99.5
    window: str = ""  # CT window (brain|lung|abdomen|bone|LEVEL,WIDTH); sets intensity=window
    min_foreground: float = 0.05  # skip slices whose foreground share is below this
    square: Literal["pad", "crop"] = "pad"
    size: int = 64
    holdout_every: int = 5  # every N-th kept slice is held out for evaluation (0: none)
    cache_mb: int = 512
    num_classes: int = 0  # label classes (condition=label); 0: found from the data
    # -- model
    model: Literal["dcgan", "resnet"] = "resnet"
    condition: Literal["none", "position", "label"] = "none"
    z_dim: int = 128
    channels: int = 32  # base width; nets scale it per resolution
    loss: str = "nonsaturating"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 0.5
    r1_interval: int = 16
    l1_weight: float = 10.0  # pix2pix reconstruction weight (condition=label)
    use_spectral_norm: bool = True
    use_minibatch_std: bool = True
    augment_policy: str = "translation,cutout"  # DiffAugment ops ("" off)
    use_ada: bool = True  # adapt the augmentation probability (ADA); off: always apply
    ada_target: float = 0.6
    ada_adjust_images: int = 100_000
    # -- trainer overrides
    steps: int = 5000
    batch_size: int = 32
    ema_halflife_images: float = 10_000.0
    eval_samples: int = 256
    log_every_steps: int = 50
    sample_every_steps: int = 500
    checkpoint_every_steps: int = 500

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in SIZES:
            raise InputError(f"option size={self.size!r}: expected 64, 128 or 256 (32 for quick trials)")
        require(self, positive=("z_dim", "channels", "r1_interval", "eval_samples", "ada_adjust_images"),
                above_zero=("lr_g", "lr_d"),
                non_negative=("r1_gamma", "l1_weight", "spacing_mm", "holdout_every", "cache_mb", "num_classes"))
        if not 0 <= self.percentile_low < self.percentile_high <= 100:
            raise InputError(f"options percentile_low={self.percentile_low}, percentile_high={self.percentile_high}: "
                             f"expected 0 <= low < high <= 100")
        if not 0 <= self.min_foreground < 1:
            raise InputError(f"option min_foreground={self.min_foreground!r}: expected in [0, 1)")
        if not 0 <= self.ada_target < 1:
            raise InputError(f"option ada_target={self.ada_target!r}: expected in [0, 1)")
        if self.window:
            parse_window(self.window)
            self.intensity = "window"
        elif self.intensity == "window":
            raise InputError("option intensity=window needs --window brain|lung|abdomen|bone|LEVEL,WIDTH")
        for name in ("labels", "masks"):
            paths = getattr(self, name)
            if paths and len(paths) != len(self.data):
                raise InputError(f"option {name}: {len(paths)} path(s) for {len(self.data)} --data path(s); "
                                 f"expected one per volume, in the same order")
        if self.condition == "label" and self.data and not self.labels:
            raise InputError("option condition=label: give --labels (one label map per --data volume)")
        if self.holdout_every == 1:
            raise InputError("option holdout_every=1 would hold out every slice; expected 0 or >= 2")


PRESETS: dict[str, dict] = {
    "default": {},
    # the shipped default model: MNI152 T1 axial slices at 64 px, bounded to about 25 minutes on one CPU thread
    "mni": {"size": 64, "model": "dcgan", "channels": 12, "steps": 6000, "ema_rampup": 0.05},
    "dcgan": {"model": "dcgan", "use_minibatch_std": False},
    "tiny": {"size": 32, "channels": 8, "z_dim": 16, "batch_size": 4, "steps": 4, "eval_samples": 8,
             "log_every_steps": 1, "sample_every_steps": 2, "checkpoint_every_steps": 2,
             "use_tensorboard": False, "write_report": False},
}
