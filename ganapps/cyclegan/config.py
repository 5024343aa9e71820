"""Options of the translation task (methods cyclegan, cut, fastcut, pix2pix) and its presets: each method's
defaults are its reference's (pytorch-CycleGAN-and-pix2pix `--model cycle_gan|pix2pix`,
contrastive-unpaired-translation `--model cut --CUT_mode CUT|FastCUT`) unless named otherwise. No training
code here."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from ..engine.adversarial import AdversarialConfig
from ..engine.config import opt, require
from ..engine.errors import InputError
from .nets import resnet_layer_count

METHODS = ("cyclegan", "cut", "fastcut", "pix2pix")
ONE_WAY = ("cut", "fastcut", "pix2pix")  # methods with one generator (the `direction` they learn)

# Options only some methods use (any other method must leave them at its own default).
USED_BY: dict[str, tuple[str, ...]] = {
    "lambda_a": ("cyclegan",), "lambda_b": ("cyclegan",), "lambda_identity": ("cyclegan",),
    "pool_size": ("cyclegan",), "direction": ONE_WAY,
    # CycleGAN's channels-last option only (and torch 2.14's CPU InstanceNorm backward is wrong for one-image
    # batches with channels-last gradients: see docs/cyclegan.md)
    "use_channels_last": ("cyclegan",),
    **{name: ("cut", "fastcut") for name in ("lambda_nce", "nce_layers", "nce_patches", "nce_temperature",
                                            "nce_mlp_width", "use_nce_identity", "use_flip_equivariance")},
    "lambda_l1": ("pix2pix",),
    # the fast colour recipe's CycleGAN-only terms (`gen=colourtone` and `disc=dual` are checked by value)
    **{name: ("cyclegan",) for name in ("use_colour_branch", "lr_global", "curve_gain", "lambda_colour",
                                              "identity_decay_steps")},
}


def one_way(config: Any) -> tuple[str, str]:
    """(source, target) domain of a one-generator method's training run: ("a", "b") for a2b, ("b", "a") for b2a.
    A `both` model is two runs joined (`Translator.joined`), not something one run trains."""
    if config.direction == "both":
        raise InputError(f"option direction='both': {config.method} trains one direction per run; train a2b and "
                         f"b2a and join them with `ganapps cyclegan export RUN --add RUN2 --out MODEL`")
    return ("a", "b") if config.direction == "a2b" else ("b", "a")


def method_defaults(method: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options a method sets differently from CycleGAN's defaults, as its reference's
    `modify_commandline_options` does. CUT's repo (options/base_options.py): xavier init, anti-aliased
    sampling, no image pool; CUT: NCE identity, lambda_NCE 1; FastCUT: lambda_NCE 10, flip equivariance,
    150 + 50 epochs (decay from 3/4 of the steps). pix2pix: U-Net 256 with batch norm and dropout, the
    reference's "vanilla" GAN loss (BCE; its G term is our nonsaturating), L1 x 100, no pool.
    `options` (the explicitly given ones) supply `steps` for FastCUT's decay start."""
    if method not in METHODS:
        raise InputError(f"option method={method!r}: expected one of {', '.join(METHODS)}")
    cut = {"init": "xavier", "use_antialias": True, "pool_size": 0}
    if method == "cut":
        return {**cut, "lambda_nce": 1.0, "use_nce_identity": True, "use_flip_equivariance": False}
    if method == "fastcut":
        options = options or {}
        fast = {**cut, "lambda_nce": 10.0, "use_nce_identity": False, "use_flip_equivariance": True}
        if options.get("lr_schedule", "linear") == "linear":
            fast["lr_decay_start_steps"] = 3 * options.get("steps", _CLASS_STEPS) // 4
        return fast
    if method == "pix2pix":
        return {"gen": "unet_256", "norm": "batch", "use_dropout": True, "gan_loss": "nonsaturating",
                "pool_size": 0}
    return {}


_CLASS_STEPS = 200_000


@dataclasses.dataclass(init=False)
class CycleGANConfig(AdversarialConfig):
    """The options of every translation method. `method` picks the method and, under explicitly given options,
    its reference's defaults (`method_defaults`): `CycleGANConfig(method="fastcut")` is FastCUT as its paper
    trains it. Without `method`: CycleGAN with the reference's options; the GAN options (`AdversarialConfig`)
    keep its defaults: LSGAN, Adam(2e-4, (0.5, 0.999)) for both nets, every engine stabilizer off."""

    # method
    method: Literal["cyclegan", "cut", "fastcut", "pix2pix"] = opt(
        "cyclegan", "cyclegan (two generators, cycle loss), cut / fastcut (one generator, PatchNCE; Park et al. "
                    "2020), pix2pix (paired data, L1; Isola et al. 2017); each with its reference's defaults under "
                    "the options given (cut/fastcut: xavier init, anti-aliasing, no pool; pix2pix: unet_256, batch "
                    "norm, dropout, nonsaturating loss, no pool)")
    direction: Literal["a2b", "b2a", "both"] = opt(
        "a2b", "the direction cut, fastcut and pix2pix learn (b2a swaps the domains, as the references' --direction "
               "BtoA); both: a model holding both, two runs joined by `export RUN --add RUN2` (not for training)")
    # trainer: constant LR for half the steps, then linear decay to 0
    out: str = "runs/cyclegan"
    steps: int = _CLASS_STEPS
    batch_size: int = 1
    lr_schedule: Literal["constant", "linear", "cosine"] = "linear"
    log_every_steps: int = 100
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 5000
    gan_loss: str = "lsgan"
    # data
    data: str = opt("", "dataset root with trainA/ trainB/ (testA/ testB/), for pix2pix paired by file name, "
                        "or train/ (test/) of side-by-side A|B images; empty: the built-in photo <-> painting set")
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
    gen: Literal["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256", "colourtone"] = opt(
        "resnet_9blocks", "generator; colourtone: a global colour/tone branch alone (per-image curves, colour "
                          "matrix and split toning of the input's own pixels; identity at init, keeps all detail)")
    upsample: Literal["transpose", "resize", "bilinear"] = opt(
        "transpose", "ResNet and U-Net generators' x2 upsampling: transpose (the reference's), resize (nearest x2 "
                     "+ 3x3 conv, Odena et al. 2016: no checkerboard) or bilinear (bilinear x2 + 3x3 conv)")
    unet_full_res: bool = opt(False, "U-Net generators: the last conv also sees full-resolution features of the input, "
                                     "so fine detail need not come through the x2 upsampling's lattice (the "
                                     "reference's U-Net makes every output pixel from the half-resolution level)")
    use_colour_branch: bool = opt(False, "a ResNet generator beside the colourtone branch: the ResNet becomes a "
                                         "zero-initialised residual for local edits (identity at init)")
    lr_global: float = opt(0.0, "learning rate of the colourtone branch's parameters (0: lr_g like the rest)")
    curve_gain: float = opt(1.0, "scale of the colourtone branch's curve-slope outputs: how fast its tone curves "
                                 "can bend at a given learning rate (1: the first releases'; the colour "
                                 "recipes use 8)")
    disc: Literal["basic", "n_layers", "pixel", "dual"] = opt(
        "basic", "discriminator: basic (70x70 PatchGAN), n_layers, pixel, dual (n_layers PatchGAN + a critic of "
                 "colour statistics)")
    n_layers_d: int = opt(3, "PatchGAN layers when --disc n_layers")
    ngf: int = opt(64, "generator width")
    ndf: int = opt(64, "discriminator width")
    norm: Literal["instance", "batch", "none"] = opt("instance", "normalisation")
    use_dropout: bool = opt(False, "dropout in the generator")
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = opt("normal", "weight init of every net")
    init_gain: float = opt(0.02, "init scale")
    use_antialias: bool = opt(False, "anti-aliased down/upsampling in ResNet generators and PatchGANs: blur-pool "
                                     "(Zhang 2019) and bilinear x2 (CUT's default)")
    # objective
    lambda_a: float = opt(10.0, "cycle loss weight A -> B -> A")
    lambda_b: float = opt(10.0, "cycle loss weight B -> A -> B")
    lambda_identity: float = opt(0.5, "identity loss weight as a fraction of lambda_a / lambda_b (0: off)")
    identity_decay_steps: int = opt(0, "identity weight decays linearly to 0 at this step (0: constant, the "
                                       "reference)")
    pool_size: int = opt(50, "image history pool size (0: off)")
    lambda_colour: float = opt(0.0, "weight of the sliced-W1 colour loss: each fake's pixel colours vs those of "
                                    "the target domain's last 8 real images (0: off)")
    lambda_nce: float = opt(1.0, "PatchNCE weight (cut 1, fastcut 10)")
    nce_layers: str = opt("0,4,8,12,16", "generator layers PatchNCE taps (indices into the ResNet's layer "
                                         "list, as the reference)")
    nce_patches: int = opt(256, "patches sampled per layer and image")
    nce_temperature: float = opt(0.07, "PatchNCE temperature tau")
    nce_mlp_width: int = opt(256, "width of the PatchNCE MLP head")
    use_nce_identity: bool = opt(False, "identity PatchNCE on G(B) vs B (cut: on, fastcut: off)")
    use_flip_equivariance: bool = opt(False, "flip the input half the time and ask features to flip with it "
                                             "(fastcut: on)")
    lambda_l1: float = opt(100.0, "pix2pix L1 weight")
    # speed (same maths as the reference)
    use_batched_calls: bool = opt(True, "batch generator and discriminator calls that share weights (same maths)")
    use_channels_last: bool = opt(False, "channels-last memory format")
    # previews, evaluation
    preview_images: int = opt(4, "images per domain in the preview grid")
    eval_images: int = opt(64, "test images for the final metrics")

    def __init__(self, **options: Any) -> None:
        """Options by name; the ones not given take `method_defaults(method)`, then the field defaults."""
        fields = dataclasses.fields(self)
        unknown = sorted(set(options) - {f.name for f in fields})
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown option(s) {', '.join(unknown)}")
        merged = {**method_defaults(options.get("method", "cyclegan"), options), **options}
        for f in fields:
            setattr(self, f.name, merged[f.name] if f.name in merged else (
                f.default if f.default is not dataclasses.MISSING else f.default_factory()))  # type: ignore[misc]
        self.__post_init__()

    @classmethod
    def preset_options(cls, name: str, given: dict[str, Any]) -> dict[str, Any]:
        """What `--preset name` sets under the given options (the CLI asks this hook): `preset_options`."""
        return preset_options(name, given)

    @property
    def nce_layer_list(self) -> list[int]:
        return [int(v) for v in self.nce_layers.split(",")]

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self, positive=("load_size", "crop_size", "ngf", "ndf", "n_layers_d", "preview_images",
                                "eval_images", "cache_max_images", "nce_patches", "nce_mlp_width"),
                non_negative=("lambda_a", "lambda_b", "lambda_identity", "init_gain", "pool_size", "lambda_nce",
                              "lambda_l1", "identity_decay_steps", "lambda_colour", "lr_global"),
                above_zero=("nce_temperature", "curve_gain"))
        self._check_method_options()
        self._check_nets()
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise InputError(f"option crop_size={self.crop_size}: larger than load_size={self.load_size}")
        if bool(self.data_a) != bool(self.data_b):
            raise InputError("options data_a/data_b: give both folders (or --data for the reference layout)")
        if self.data and self.data_a:
            raise InputError("option data: give either --data (trainA/ trainB/ layout) or --data-a/--data-b")

    def _check_method_options(self) -> None:
        """Options of other methods left at their defaults; CUT's layer taps inside its ResNet."""
        baseline = {f.name: f.default for f in dataclasses.fields(self)} | method_defaults(self.method, {
            "steps": self.steps, "lr_schedule": self.lr_schedule})
        for name, users in USED_BY.items():
            if self.method not in users and getattr(self, name) != baseline[name]:
                raise InputError(f"option {name}={getattr(self, name)!r}: not used by method {self.method} (only "
                                 f"by {', '.join(users)}); leave it out")
        for name, value in (("gen", "colourtone"), ("disc", "dual")):
            if self.method != "cyclegan" and getattr(self, name) == value:
                raise InputError(f"option {name}={value!r}: the colour recipe is CycleGAN's (method cyclegan), not "
                                 f"{self.method}'s")
        try:
            layers = self.nce_layer_list
        except ValueError:
            layers = []
        if not layers or any(b <= a for a, b in zip(layers, layers[1:], strict=False)) or layers[0] < 0:
            raise InputError(f"option nce_layers={self.nce_layers!r}: expected increasing layer indices, comma-"
                             f"separated (e.g. 0,4,8,12,16)")
        if self.method in ("cut", "fastcut"):
            if not self.gen.startswith("resnet"):
                raise InputError(f"option gen={self.gen!r}: {self.method} taps the ResNet generator's layers; "
                                 f"expected resnet_9blocks or resnet_6blocks")
            n = resnet_layer_count(9 if self.gen == "resnet_9blocks" else 6, self.use_antialias, self.upsample)
            if layers[-1] >= n:
                raise InputError(f"option nce_layers={self.nce_layers!r}: {self.gen} has layers 0-{n - 1} "
                                 f"(use_antialias={self.use_antialias})")

    def _check_nets(self) -> None:
        """The colour recipe's nets need RGB; resize upsampling and the colour branch are ResNet options."""
        if self.lr_global > 0 and not (self.gen == "colourtone" or self.use_colour_branch):
            raise InputError(f"option lr_global={self.lr_global!r}: only for the colourtone branch (gen=colourtone or "
                             f"use_colour_branch)")
        for name, colour in (("gen", self.gen == "colourtone"), ("use_colour_branch", self.use_colour_branch),
                             ("disc", self.disc == "dual")):
            if colour and self.channels != 3:
                raise InputError(f"option {name}={getattr(self, name)!r}: needs channels=3 (got {self.channels})")
        if not self.gen.startswith("resnet") and self.use_colour_branch:
            raise InputError(f"option use_colour_branch=True: for the ResNet generators only (gen={self.gen})")
        if self.unet_full_res and not self.gen.startswith("unet"):
            raise InputError(f"option unet_full_res=True: for the U-Net generators only (gen={self.gen})")
        if self.gen == "colourtone" and self.upsample != "transpose":
            raise InputError(f"option upsample={self.upsample!r}: for the ResNet and U-Net generators only (gen="
                             f"{self.gen} does not upsample)")
        if self.upsample != "transpose" and self.use_antialias:
            raise InputError(f"option upsample={self.upsample!r}: with use_antialias the ResNet already upsamples "
                             f"bilinearly + conv (no checkerboard); give --no-use-antialias for resize-conv")



# Presets (`--preset NAME`; `cyclegan train` without one runs `default`). For method cyclegan: `default` is the
# recipe the painting pilots measured best (docs/cyclegan.md, "Recipes"): a resize-conv ResNet for local changes
# with the global colour/tone branch, the dual critic and the colour loss; `colour` the global-only recipe (colour
# grades, tone curves: >= 25 dB in 800 steps on all 6 colour tasks), `reference` the reference's exact recipe (the
# class defaults), `fast` / `colour_fast` / `reference_fast` those recipes at a CPU-friendly size
# (`reference_fast` trained the first shipped model), `tiny` the test size. The recipe is CycleGAN's: cut, fastcut
# and pix2pix always keep their reference's (`method_defaults`) and take only a preset's sizes (`preset_options`).
RECIPE = {"gen": "colourtone", "disc": "dual", "ndf": 32, "adv_weight": 2.0, "lambda_colour": 5.0, "curve_gain": 8.0,
          "identity_decay_steps": 200, "lr_g": 1e-3, "ema_halflife_images": 34.3}
HYBRID = {**RECIPE, "gen": "resnet_6blocks", "ngf": 32, "upsample": "resize", "use_colour_branch": True,
          "lr_g": 2e-4, "lr_global": 1e-3, "identity_decay_steps": 1000}
CPU_SIZE = {"preprocess": "crop", "load_size": 128, "crop_size": 64, "steps": 2500, "eval_images": 40,
            "log_every_steps": 50, "sample_every_steps": 500, "checkpoint_every_steps": 500}
REFERENCE_FAST = {"gen": "resnet_6blocks", "ngf": 32, "ndf": 32, **CPU_SIZE}
TINY = {"gen": "resnet_6blocks", "ngf": 8, "ndf": 8, "load_size": 36, "crop_size": 32, "steps": 20,
        "log_every_steps": 5, "sample_every_steps": 10, "checkpoint_every_steps": 10, "eval_images": 8,
        "use_tensorboard": False, "write_report": False}
PRESETS: dict[str, dict] = {
    "default": dict(HYBRID),
    "colour": dict(RECIPE),
    "reference": {},
    "fast": {**HYBRID, **CPU_SIZE, "identity_decay_steps": 500},
    "colour_fast": {**RECIPE, **CPU_SIZE},
    "reference_fast": dict(REFERENCE_FAST),
    "tiny": dict(TINY),
}
# the same names for cut, fastcut and pix2pix: sizes only
METHOD_PRESETS: dict[str, dict] = {"default": {}, "colour": {}, "reference": {}, "fast": dict(REFERENCE_FAST),
                                   "colour_fast": dict(REFERENCE_FAST),
                                   "reference_fast": dict(REFERENCE_FAST), "tiny": dict(TINY)}


def preset_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The options preset `name` sets for the method in `given` (the options given in a file or as flags;
    cyclegan when none): PRESETS[name] for cyclegan, METHOD_PRESETS[name] for the others."""
    if name not in PRESETS:
        raise InputError(f"--preset {name}: expected one of " + ", ".join(PRESETS))
    return dict((PRESETS if given.get("method", "cyclegan") == "cyclegan" else METHOD_PRESETS)[name])
