"""`ganapps medical train | sample | evaluate`: options resolved here, the work done by one function each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._cli import print_json, train_command
from .._inference_cli import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    export_command,
    inference_threads,
    load,
    model_option,
)
from .config import PRESETS, MedicalConfig
from .pipeline import Synthesizer

app = typer.Typer(help="Medical 2D slice synthesis from NIfTI/DICOM volumes (MNI152 by default).",
                  no_args_is_help=True)

HELP = {
    "data": "volume: NIfTI file (3D/4D), DICOM series folder or PNG/TIFF slice folder (repeat the option); "
            "none: the MNI152 T1 (fetched on first use; `python -m ganapps.recipes.medical_mni152` ahead of time)",
    "labels": "label map per --data volume, same order (tissue maps, lesion masks)",
    "masks": "foreground mask per --data volume (z-score statistics, slice filtering)",
    "axis": "slice axis after RAS reorientation",
    "spacing_mm": "resample to this isotropic voxel size before slicing (0: keep)",
    "intensity": "percentile clip+rescale, zscore inside the mask, CT window in HU, or min-max (none)",
    "percentile_low": "lower clip percentile", "percentile_high": "upper clip percentile",
    "window": "CT window: brain, lung, abdomen, bone or LEVEL,WIDTH in HU (sets intensity=window)",
    "min_foreground": "skip slices with a smaller foreground share",
    "square": "make slices square by padding the short side or cropping the long side",
    "size": "slice size in pixels: 64, 128 or 256",
    "holdout_every": "hold out every N-th slice for evaluation (0: none)",
    "cache_mb": "volume cache bound in MiB (0: read volumes on every access)",
    "num_classes": "label classes (0: from the label maps)",
    "model": "generator: dcgan (transposed convs, DCGAN D) or resnet (residual G and D)",
    "condition": "none, position (slice position) or label (label map -> image, SPADE)",
    "z_dim": "latent size", "channels": "base width of both nets",
    "loss": "vanilla, nonsaturating, lsgan, wasserstein, hinge or relativistic",
    "lr_g": "generator learning rate", "lr_d": "discriminator learning rate",
    "beta1": "Adam beta1", "beta2": "Adam beta2",
    "r1_gamma": "R1 penalty weight (0: off)", "r1_interval": "lazy R1 interval in steps",
    "l1_weight": "L1 weight for label-conditioned models", "use_spectral_norm": "spectral norm on D",
    "use_minibatch_std": "minibatch std layer in D",
    "augment_policy": "DiffAugment ops: color, translation, cutout ('' off)",
    "use_ada": "adapt the augmentation probability (ADA)", "ada_target": "ADA target sign(D(real))",
    "ada_adjust_images": "images for ADA p to move from 0 to 1",
    "eval_samples": "samples for the end-of-training SWD and memorization check",
}


def run_train(cfg: MedicalConfig, *, json_out: bool) -> dict:
    from ..engine.trainer import train
    from .task import MedicalTask

    result = train(MedicalTask(cfg))
    ev = {k.removeprefix("eval/"): v for k, v in result.evaluation.items()}
    if not json_out and ev:
        print(f"swd {ev['swd']:.1f}  near_copy_share {ev['near_copy_share']:.3f}  run {result.run_dir}")
    if result.interrupted:
        raise typer.Exit(130)
    return {**ev, "run": str(result.run_dir), "steps": result.step,
            "verdicts": sorted({v.kind for v in result.verdicts})}


train_command(app, "train", MedicalConfig, run_train, help="Train a slice GAN on volumes (MNI152 T1 by default).",
              task_help=HELP, presets=PRESETS)


ModelOpt = model_option(Synthesizer.default_model)


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="FILE.nii.gz (a NIfTI stack) or a folder (PNG slices)")],
    model: ModelOpt = None,
    n: Annotated[int, typer.Option("--n", help="number of slices")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="seed of the latent noise")] = 0,
    labels: Annotated[Path | None, typer.Option("--labels", help="label-map volume (NIfTI) or slice folder for "
                                                                 "label-conditioned models; --n is ignored")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Sample synthetic slices: a NIfTI stack carrying the training spacing and a valid affine, or PNGs."""
    synth = load(Synthesizer, model, device)
    if labels is not None:
        images = synth.from_label_volume(labels)
    else:
        images = synth(n, seed=seed)
    written = synth.save(images, out)
    if json_out:
        print_json({"out": str(written), "n": len(images), "size": synth.size,
                    "spacing_mm": list(synth.spacing_mm)})
    elif not quiet:
        print(f"{len(images)} slices {synth.size}x{synth.size} -> {written}")


@app.command()
def evaluate(
    model: ModelOpt = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="held-out volumes to compare with (default: "
                                                                 "the held-out slices of the model's own data)")] = None,
    n: Annotated[int, typer.Option("--n", help="generated samples")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="seed of the latent noise and metrics")] = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Offline quality report: SWD, KID (intensity features and pixels), MS-SSIM diversity, precision/recall, and the
    memorization audit (share of samples that are near-copies of training slices)."""
    from .evaluate import evaluate_model, format_report

    inference_threads()
    report = evaluate_model(model, data=data or None, n=n, seed=seed, device=device, progress=not quiet)
    if json_out:
        print_json(report)
    else:
        print(format_report(report))


export_command(app, Synthesizer)


@app.command("translation-data")
def translation_data(
    out: Annotated[Path, typer.Option("--out", help="folder for trainA/ trainB/ testA/ testB/")],
    data: Annotated[list[str] | None, typer.Option("--data", help="domain A volumes (default: MNI152 T1)")] = None,
    labels: Annotated[list[str] | None, typer.Option("--labels", help="label maps paired with --data: domain B "
                                                                     "(default: MNI152 tissue map)")] = None,
    data_b: Annotated[list[str] | None, typer.Option("--data-b", help="domain B volumes instead of label maps "
                                                                     "(e.g. CT for MR -> CT)")] = None,
    size: Annotated[int, typer.Option("--size", help="slice size in pixels")] = 64,
    axis: Annotated[str, typer.Option("--axis", help="axial, coronal or sagittal")] = "axial",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Slices of two modalities in the CycleGAN layout, for `ganapps cyclegan train --data OUT --channels 1`
    (modality translation with the CycleGAN task's nets and losses)."""
    from .translate import export_translation_folders

    cfg = MedicalConfig(data=list(data or []), labels=list(labels or []), size=size, axis=axis,
                        condition="label" if labels or not data else "none")
    cfg_b = MedicalConfig(data=list(data_b), size=size, axis=axis) if data_b else None
    counts = export_translation_folders(out, cfg, cfg_b)
    if json_out:
        print_json({"out": str(out), **counts})
    elif not quiet:
        print(", ".join(f"{k} {v}" for k, v in counts.items()) + f" slices in {out}; next: ganapps cyclegan train "
              f"--data {out} --channels 1 --load-size {size} --crop-size {size}")
