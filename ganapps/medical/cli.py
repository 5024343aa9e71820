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
RawOpt = Annotated[bool, typer.Option("--raw", help="the generator's raw output, without the intensity calibration "
                                                    "to the training slices (see docs/medical.md)")]


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="FILE.nii.gz (a NIfTI stack) or a folder (PNG slices)")],
    model: ModelOpt = None,
    n: Annotated[int | None, typer.Option("--n", help="number of slices (default: 16; position models: one per "
                                                      "training slice position, a whole brain in order)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the latent noise")] = 0,
    labels: Annotated[Path | None, typer.Option("--labels", help="label-map volume (NIfTI) or slice folder for "
                                                                 "label-conditioned models; --n is ignored")] = None,
    raw: RawOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Sample synthetic slices: a NIfTI stack carrying the training spacing and a valid affine, or PNGs."""
    synth = load(Synthesizer, model, device, calibrate=not raw)
    positions = None
    if labels is not None:
        images = synth.from_label_volume(labels, seed=seed)
    elif synth.config.condition == "position":  # walk the positions in order: the stack covers the brain
        if n is None and float(synth.gen.position_step) > 0:
            positions = synth.stack_positions()
            images = synth.stack(seed=seed)
        else:
            count = 16 if n is None else n
            positions = synth.walk(count) if count >= 1 else None
            images = synth(count, seed=seed, positions=positions)  # count < 1: a one-line error
    else:
        images = synth(16 if n is None else n, seed=seed)
    # a stack from a label map keeps the map's world positions; a position model's, the spacing it walked
    written = synth.save(images, out, labels=labels, positions=positions)
    if json_out:
        x, y, z = synth.spacing_mm
        if positions is not None:
            z = synth.slice_spacing_mm(positions)
        print_json({"out": str(written), "n": len(images), "size": synth.size, "spacing_mm": [x, y, z]})
    elif not quiet:
        print(f"{len(images)} slices {synth.size}x{synth.size} -> {written}")


@app.command()
def evaluate(
    model: ModelOpt = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="held-out volumes to compare with (default: "
                                                                 "the held-out slices of the model's own data)")] = None,
    n: Annotated[int, typer.Option("--n", help="generated samples")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="seed of the latent noise and metrics")] = 0,
    baselines: Annotated[bool, typer.Option("--baselines", help="also score a PCA Gaussian of the training "
                                                                "slices, random training slices and the reference "
                                                                "slices themselves")] = False,
    raw: RawOpt = False,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Offline quality report: SWD, KID (intensity features and pixels), MS-SSIM diversity, precision/recall, and the
    memorization audit (share of samples that are near-copies of training slices)."""
    from .evaluate import evaluate_model, format_report

    inference_threads()
    report = evaluate_model(model, data=data or None, n=n, seed=seed, device=device, progress=not quiet,
                            baselines=baselines, calibrate=not raw)
    if json_out:
        print_json(report)
    else:
        print(format_report(report))



@app.command("tissue-map")
def tissue_map_cmd(
    out: Annotated[Path, typer.Option("--out", help="FILE.nii.gz to write")],
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the built-in MNI152 tissue map (0 background, 1 CSF, 2 grey matter, 3 white matter; 1 mm, RAS), the
    label volume the shipped label model was trained on: the start of the lesion-simulation workflow."""
    from .labels import write_tissue_map

    written = write_tissue_map(out)
    if json_out:
        print_json({"out": str(written)})
    elif not quiet:
        print(f"MNI152 tissue map -> {written}; next: ganapps medical paint-lesion {written} --out lesioned.nii.gz "
              f"--center X,Y,Z --radius MM --class hypo|hyper")


@app.command("paint-lesion")
def paint_lesion_cmd(
    labels: Annotated[Path, typer.Argument(help="label map (NIfTI), e.g. from `ganapps medical tissue-map`")],
    out: Annotated[Path, typer.Option("--out", help="FILE.nii.gz to write (same grid and affine)")],
    center: Annotated[str, typer.Option("--center", help="X,Y,Z: world point in RAS mm (as a viewer shows it), "
                                                         "or a voxel index with --units voxels")],
    radius: Annotated[float, typer.Option("--radius", help="radius in mm (voxels with --units voxels)")],
    cls: Annotated[str, typer.Option("--class", help="hypo (4: T1-hypointense lesion), hyper (5: T1-hyperintense "
                                                     "lesion), csf, gm, wm or a class number")] = "hypo",
    units: Annotated[str, typer.Option("--units", help="mm (world coordinates) or voxels")] = "mm",
    irregularity: Annotated[float, typer.Option("--irregularity", help="0: a sphere; below 0.5: a blob whose "
                                                                       "radius varies by about +-that share")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="seed of the blob's shape")] = 0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Paint a lesion (sphere or blob of a given radius and class) into a label volume, replacing labelled voxels
    only (it stops at the brain's edge), for `ganapps medical sample --labels OUT`."""
    from .labels import paint_lesion_file, parse_class, parse_point

    info = paint_lesion_file(labels, out, parse_point(center), radius, parse_class(cls), units=units,
                             irregularity=irregularity, seed=seed)
    if json_out:
        print_json(info)
    elif not quiet:
        vox = ",".join(f"{v:.1f}" for v in info["center_voxel"])
        print(f"{info['voxels']} voxels of class {parse_class(cls)} painted at voxel {vox} -> {info['out']}")


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
