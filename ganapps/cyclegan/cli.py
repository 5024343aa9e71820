"""`ganapps cyclegan train | translate | evaluate`: options resolved here, the work done by one call each
(engine trainer, `Translator`, metrics)."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._cli import print_json, train_command
from .._inference_cli import DeviceOpt, JsonOpt, QuietOpt, export_command, load, model_option
from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, has_suffix
from .config import PRESETS, CycleGANConfig
from .pipeline import Translator

app = typer.Typer(help="Image-to-image translation (CycleGAN, CUT, FastCUT, pix2pix): photo <-> painting, "
                       "horse <-> zebra...",
                  no_args_is_help=True)


def run_train(cfg: CycleGANConfig, *, json_out: bool) -> dict:
    from ..engine.trainer import train
    from .task import make_task

    result = train(make_task(cfg))
    ev = {k.removeprefix("eval/"): v for k, v in result.evaluation.items()}
    if not json_out:
        figures = "  ".join(f"{k} {v:.1f}" for k, v in ev.items() if k.endswith(("/swd", "/swd_identity")))
        print(f"{figures}  run {result.run_dir}".strip())
    if result.interrupted:
        raise typer.Exit(130)
    return {**ev, "run": str(result.run_dir), "steps": result.step,
            "samples": str(result.run_dir / "samples"), "verdicts": sorted({v.kind for v in result.verdicts})}


train_command(app, "train", CycleGANConfig, run_train,
              help="Train a translation model on two image domains: --method cyclegan (default), cut, fastcut or "
                   "pix2pix (paired data), each with its reference's recipe by default.", presets=PRESETS)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images) and glob patterns -> image files, in order, without repeats."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and has_suffix(f, IMAGE_SUFFIXES))
        elif p.is_file():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(item, recursive=True))
            matched = [m for m in matched if m.is_file() and has_suffix(m, IMAGE_SUFFIXES)]
            if not matched:
                raise InputError(f"{item}: the pattern matches no image file")
            files += matched
        else:
            raise InputError(f"{item}: no such file, folder or pattern")
    seen, out = set(), []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    if not out:
        raise InputError(f"{' '.join(inputs)}: no image files found (expected {', '.join(IMAGE_SUFFIXES)})")
    return out


ModelOpt = model_option(Translator.default_model)
DirectionOpt = Annotated[str, typer.Option("--direction", help="a2b or b2a")]


@app.command("translate")
def translate(
    inputs: Annotated[list[str], typer.Argument(help="image files, folders or glob patterns")],
    out: Annotated[Path, typer.Option("--out", help="output folder (names are kept)")],
    model: ModelOpt = None,
    direction: DirectionOpt = "a2b",
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="write input | output pictures")] = False,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="also write every input | output pair into "  # noqa: UP045
                                                 "one picture")] = None,
    tile_size: Annotated[int, typer.Option("--tile-size", help="translate larger images in tiles of this size")] = 1024,
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="tile overlap in pixels")] = 128,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Translate images with a trained CycleGAN; each output keeps its input's file name."""
    import sys

    from tqdm.auto import tqdm

    from ..engine.images import array_to_tensor, tensor_to_pil
    from .data import read_image
    from .pipeline import contact_sheet
    from .pipeline import side_by_side as sbs

    if direction not in ("a2b", "b2a"):
        raise InputError(f"--direction {direction}: expected a2b or b2a")
    files = expand_inputs(inputs)
    names = [f.name for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"inputs share file names ({', '.join(dupes[:3])}): outputs would overwrite each other; "
                         f"translate them into separate --out folders")
    translator = load(Translator, model, device, tile_size=tile_size, tile_overlap=tile_overlap)
    out.mkdir(parents=True, exist_ok=True)
    written, pairs = [], []
    for f in tqdm(files, disable=quiet, unit="img", file=sys.stderr):
        x = array_to_tensor(read_image(f, translator.channels))  # (C, H, W)
        y = tensor_to_pil(translator.translate_tensor(x[None], direction)[0])
        if grid is not None:
            pairs.append(sbs(tensor_to_pil(x), y))
        if side_by_side:
            y = sbs(tensor_to_pil(x), y)
        dest = out / f.name
        if dest.suffix.lower() in (".jpg", ".jpeg") and y.mode not in ("RGB", "L"):
            y = y.convert("RGB")
        y.save(dest)
        written.append(str(dest))
    result = {"outputs": written, "direction": direction, "count": len(written)}
    if grid is not None:
        grid.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(pairs).save(grid)
        result["grid"] = str(grid)
    if json_out:
        print_json(result)
    elif not quiet:
        print(f"{len(written)} image(s) -> {out}")


@app.command("evaluate")
def evaluate(
    model: ModelOpt = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="dataset root with testA/ testB/ "  # noqa: UP045
                                                 "(default: the built-in set)")] = None,
    data_a: Annotated[Optional[Path], typer.Option("--data-a", help="test images of domain A")] = None,  # noqa: UP045
    data_b: Annotated[Optional[Path], typer.Option("--data-b", help="test images of domain B")] = None,  # noqa: UP045
    direction: Annotated[str, typer.Option("--direction", help="a2b, b2a or both")] = "both",
    ground_truth: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--ground-truth", help="folder of true translations of the inputs (same file names): PSNR/SSIM")] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--inception-weights", help="pt_inception-2015-12-05 weights file: adds FID/KID")] = None,
    size: Annotated[int, typer.Option("--size", help="images are resized and centre-cropped to this size")] = 128,
    limit: Annotated[int, typer.Option("--limit", help="at most this many images per domain")] = 500,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score a model on test images: SWD and pixel-feature KID of translations against the target domain,
    next to the untranslated inputs' scores; PSNR/SSIM with --ground-truth; FID/KID with --inception-weights."""
    from .pipeline import evaluate_folders

    if direction not in ("a2b", "b2a", "both"):
        raise InputError(f"--direction {direction}: expected a2b, b2a or both")
    if bool(data_a) != bool(data_b):
        raise InputError("--data-a/--data-b: give both folders")
    if data_a is None:
        if data is None:
            from ..recipes.cyclegan_builtin import build

            data = build(quiet=quiet)
        data_a, data_b = data / "testA", data / "testB"
    if ground_truth is not None and direction == "both":
        direction = "a2b"
    translator = load(Translator, model, device)
    result = evaluate_folders(translator, data_a, data_b, direction=direction, size=size, limit=limit,
                              ground_truth=ground_truth, inception_weights=inception_weights, progress=not quiet)
    if json_out:
        print_json(result)
    else:
        print(json.dumps(result, indent=1))


export_command(app, Translator)
