"""`ganapps medical sample | evaluate | translation-data` (train and export come from the task registry):
options resolved here, the work done by one function each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._cli import print_json
from .._inference_cli import (
    DeviceOpt,
    JsonOpt,
    QuietOpt,
    inference_threads,
    load,
    model_option,
)
from .config import MedicalConfig
from .pipeline import Synthesizer

app = typer.Typer(no_args_is_help=True)  # mounted as `ganapps medical` with train and export (ganapps.cli)


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
