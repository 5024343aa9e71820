"""Options of the medical slice-synthesis task and its presets. No training code here (the pipeline reads it)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from ..engine.adversarial import AdversarialConfig
from ..engine.config import opt, require
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
class MedicalConfig(AdversarialConfig):
    deprecated_names: ClassVar[dict[str, str]] = {"channels": "width"}  # before: network width named `channels`

    # trainer
    out: str = "runs/medical"
    steps: int = 5000
    batch_size: int = 32
    ema_halflife_images: float = 10_000.0
    log_every_steps: int = 50
    sample_every_steps: int = 500
    checkpoint_every_steps: int = 500
    # GAN: StyleGAN2-style limited-data recipe (Adam(0, 0.99), lazy R1, ADA-controlled DiffAugment)
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 0.5
    use_spectral_norm: bool = True
    use_minibatch_std: bool = True
    augment_policy: str = "translation,cutout"
    use_ada: bool = True
    ada_adjust_images: int = 100_000
    # data
    data: list[str] = opt(help="volume: NIfTI file (3D/4D), DICOM series folder or PNG/TIFF slice folder (repeat "
                               "the option); none: the MNI152 T1 (fetched on first use; run `python -m "
                               "ganapps.recipes.medical_mni152` ahead of time for an offline machine)",
                          factory=list)
    labels: list[str] = opt(help="label map per --data volume, same order (tissue maps, lesion masks)", factory=list)
    masks: list[str] = opt(help="foreground mask per --data volume (z-score statistics, slice filtering)",
                           factory=list)
    axis: Literal["axial", "coronal", "sagittal"] = opt("axial", "slice axis after RAS reorientation")
    spacing_mm: float = opt(0.0, "resample to this isotropic voxel size before slicing (0: keep)")
    intensity: Literal["percentile", "zscore", "window", "none"] = opt(
        "percentile", "percentile clip+rescale, zscore inside the mask, CT window in HU, or min-max (none)")
    percentile_low: float = opt(0.5, "lower clip percentile")
    percentile_high: float = opt(99.5, "upper clip percentile")
    window: str = opt("", "CT window: brain, lung, abdomen, bone or LEVEL,WIDTH in HU (sets intensity=window)")
    min_foreground: float = opt(0.05, "skip slices with a smaller foreground share")
    square: Literal["pad", "crop"] = opt("pad", "make slices square by padding the short side or cropping the "
                                                "long side")
    size: int = opt(64, "slice size in pixels: 64, 128 or 256 (32 for quick trials)")
    holdout_every: int = opt(5, "hold out every N-th kept slice for evaluation (0: none)")
    anatomy_augment: str = opt("", "warp the real training slices (and label maps) by a random affine + elastic "
                                   "deformation and gamma that G learns: on (rotation 2 deg, scale 2%, shift 0.5 px, "
                                   "elastic 1 px on a 5x5 grid, gamma 1.2), KEY=VALUE,... to change fields, or off")
    paint_lesions: float = opt(0.0, "label models on the built-in tissue map: share of training pairs that get a "
                                    "random lesion (classes 4 hypo, 5 hyper; radius 1.5-9 px) painted in")
    cache_mb: int = opt(512, "volume cache bound in MiB (0: read volumes on every access)")
    num_classes: int = opt(0, "label classes (condition=label; 0: from the label maps)")
    # model
    model: Literal["dcgan", "resnet"] = opt("resnet", "generator: dcgan (transposed convs, DCGAN D) or resnet "
                                                     "(residual G and D)")
    condition: Literal["none", "position", "label"] = opt(
        "none", "none, position (slice position) or label (label map -> image, SPADE)")
    z_dim: int = opt(128, "latent size")
    width: int = opt(32, "base width of both nets (channels at full resolution; nets scale it per resolution)")
    spade_hidden: int = opt(64, "hidden channels of each SPADE block's label-map convolution (condition=label)")
    l1_weight: float = opt(10.0, "pix2pix L1 reconstruction weight for label-conditioned models")
    eval_samples: int = opt(256, "samples for the end-of-training SWD and memorization check")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size not in SIZES:
            raise InputError(f"option size={self.size!r}: expected 64, 128 or 256 (32 for quick trials)")
        require(self, positive=("z_dim", "width", "spade_hidden", "eval_samples"),
                non_negative=("l1_weight", "spacing_mm", "holdout_every", "cache_mb", "num_classes"))
        if not 0 <= self.percentile_low < self.percentile_high <= 100:
            raise InputError(f"options percentile_low={self.percentile_low}, percentile_high={self.percentile_high}: "
                             f"expected 0 <= low < high <= 100")
        if not 0 <= self.min_foreground < 1:
            raise InputError(f"option min_foreground={self.min_foreground!r}: expected in [0, 1)")
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
        from .augment import AnatomyAugment  # validates the spec, naming the option

        AnatomyAugment.parse(self.anatomy_augment)
        if not 0 <= self.paint_lesions <= 1:
            raise InputError(f"option paint_lesions={self.paint_lesions!r}: expected a share in [0, 1]")
        if self.paint_lesions and self.condition != "label":
            raise InputError("option paint_lesions: needs condition=label (lesions are painted into label maps)")
        if self.holdout_every == 1:
            raise InputError("option holdout_every=1 would hold out every slice; expected 0 or >= 2")

    @property
    def channels(self) -> int:
        """Image channels: one (grayscale slices)."""
        return 1


PRESETS: dict[str, dict] = {
    "default": {},
    # the shipped default model: MNI152 T1 axial slices at 64 px, bounded to about 25 minutes on one CPU thread
    "mni": {"size": 64, "model": "dcgan", "width": 12, "steps": 6000, "ema_rampup": 0.05},
    "dcgan": {"model": "dcgan", "use_minibatch_std": False},
    "tiny": {"size": 32, "width": 8, "z_dim": 16, "batch_size": 4, "steps": 4, "eval_samples": 8,
             "log_every_steps": 1, "sample_every_steps": 2, "checkpoint_every_steps": 2,
             "use_tensorboard": False, "write_report": False},
}
