"""`ganapps cyclegan translate | evaluate` (train and export come from the task registry): options resolved
here, the work done by one call each (`Translator`, metrics)."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._cli import print_json
from .._inference_cli import DeviceOpt, JsonOpt, QuietOpt, load, model_option
from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, has_suffix
from .pipeline import Translator
from .video import DEFAULT_STRENGTH

app = typer.Typer(no_args_is_help=True)  # mounted as `ganapps cyclegan` with train and export (ganapps.cli)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images and clips) and glob patterns -> image and clip files, in order, without
    repeats."""
    from .video import is_clip

    def wanted(f: Path) -> bool:
        return f.is_file() and (has_suffix(f, IMAGE_SUFFIXES) or is_clip(f))

    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if wanted(f))
        elif p.is_file():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            matched = [m for m in sorted(Path(m) for m in glob.glob(item, recursive=True)) if wanted(m)]
            if not matched:
                raise InputError(f"{item}: the pattern matches no image or clip file")
            files += matched
        else:
            raise InputError(f"{item}: no such file, folder or pattern")
    seen, out = set(), []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    if not out:
        raise InputError(f"{' '.join(inputs)}: no image or clip files found (expected {', '.join(IMAGE_SUFFIXES)}, "
                         f"or clips {', '.join(VIDEO_SUFFIXES)})")
    return out


ModelOpt = model_option(Translator.default_model)
DirectionOpt = Annotated[str, typer.Option("--direction", help="a2b or b2a")]
StrengthOpt = Annotated[float, typer.Option(
    "--temporal-strength", help="clips: how much of the previous output, carried along the optical flow, each "
                                "frame keeps where the motion is reliable (0-1; higher: steadier, softer)")]


def _check_strength(strength: float) -> None:
    if not 0 < strength < 1:
        raise InputError(f"--temporal-strength {strength}: expected a value between 0 and 1 (exclusive)")


def _clip_destinations(clips: list[Path], out: Path) -> dict[Path, Path]:
    """One clip and --out ending in a clip suffix: that file; else OUT/<name> (.mp4 unless the input's suffix
    is one we write)."""
    from .video import CLIP_OUT_SUFFIXES

    if has_suffix(out, CLIP_OUT_SUFFIXES):
        if len(clips) != 1:
            raise InputError(f"--out {out}: a clip file takes one input clip; give a folder for {len(clips)} clips")
        return {clips[0]: out}
    if out.suffix and not out.is_dir() and has_suffix(out, VIDEO_SUFFIXES):
        raise InputError(f"--out {out}: cannot write {out.suffix} clips; expected {', '.join(CLIP_OUT_SUFFIXES)} "
                         f"or a folder")
    dest = {c: out / (c.name if has_suffix(c, CLIP_OUT_SUFFIXES) else c.stem + ".mp4") for c in clips}
    names = [d.name for d in dest.values()]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"clips would be written to the same file ({', '.join(dupes[:3])}); translate them into "
                         f"separate --out folders")
    return dest


@app.command("translate")
def translate(
    inputs: Annotated[list[str], typer.Argument(help="image files, clips (mp4, mov, mkv, avi, webm, gif...), folders "
                                                     "or glob patterns")],
    out: Annotated[Path, typer.Option("--out", help="output folder (names are kept; clips become .mp4 unless "
                                                    "mp4/m4v/mov/mkv), or an output clip file for one input clip")],
    model: ModelOpt = None,
    direction: DirectionOpt = "a2b",
    temporal: Annotated[bool, typer.Option("--temporal/--no-temporal", help="clips: flow-guided temporal "
                                           "consistency (no flicker), reset at shot cuts")] = True,
    temporal_strength: StrengthOpt = DEFAULT_STRENGTH,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="write input | output pictures")] = False,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="also write every input | output pair into "  # noqa: UP045
                                                 "one picture")] = None,
    tile_size: Annotated[int, typer.Option("--tile-size", help="translate larger images in tiles of this size")] = 1024,
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="tile overlap in pixels")] = 128,
    device: DeviceOpt = "auto",
    use_amp: Annotated[Optional[bool], typer.Option(  # noqa: UP045
        "--use-amp/--no-use-amp", help="bf16 autocast (default: on a CPU with native bf16, as training's "
                                       "use_amp auto; --no-use-amp: float32)")] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Translate images and clips with a trained CycleGAN; each output keeps its input's file name. Clips keep
    their frame rate, size and audio track, and are made temporally consistent unless --no-temporal."""
    from .pipeline import contact_sheet
    from .video import is_clip

    if direction not in ("a2b", "b2a"):
        raise InputError(f"--direction {direction}: expected a2b or b2a")
    _check_strength(temporal_strength)
    files = expand_inputs(inputs)
    clips = [f for f in files if is_clip(f)]
    images = [f for f in files if not is_clip(f)]
    if clips and (side_by_side or grid is not None):
        raise InputError(f"--side-by-side/--grid: pictures only; {clips[0]} is a clip")
    if images and has_suffix(out, VIDEO_SUFFIXES):
        raise InputError(f"--out {out}: a clip file, but the inputs include images ({images[0]}); give a folder")
    names = [f.name for f in images]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"inputs share file names ({', '.join(dupes[:3])}): outputs would overwrite each other; "
                         f"translate them into separate --out folders")
    clip_dest = _clip_destinations(clips, out) if clips else {}
    translator = load(Translator, model, device, tile_size=tile_size, tile_overlap=tile_overlap,
                      use_amp="auto" if use_amp is None else use_amp)
    written, pairs = _translate_images(translator, images, out, direction, side_by_side, grid is not None, quiet)
    clip_results = _translate_clips(translator, clip_dest, direction, temporal_strength if temporal else 0.0,
                                    quiet, json_out)
    written += [res["output"] for res in clip_results]
    result = {"outputs": written, "direction": direction, "count": len(written)}
    if clip_results:
        result["clips"] = clip_results
    if grid is not None:
        grid.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(pairs).save(grid)
        result["grid"] = str(grid)
    if json_out:
        print_json(result)
    elif not quiet and images:
        print(f"{len(images)} image(s) -> {out}")


def _translate_images(translator: Translator, images: list[Path], out: Path, direction: str, side_by_side: bool,
                      keep_pairs: bool, quiet: bool) -> tuple[list[str], list]:
    """Translate image files into `out` (names kept); returns the written paths and, when `keep_pairs`, the
    input | output pictures for a grid."""
    import sys

    from tqdm.auto import tqdm

    from ..engine.images import array_to_tensor, tensor_to_pil
    from .data import read_image
    from .pipeline import side_by_side as sbs

    written, pairs = [], []
    if images:
        out.mkdir(parents=True, exist_ok=True)
    for f in tqdm(images, disable=quiet or not images, unit="img", file=sys.stderr):
        x = array_to_tensor(read_image(f, translator.channels))  # (C, H, W)
        y = tensor_to_pil(translator.translate_tensor(x[None], direction)[0])
        if keep_pairs:
            pairs.append(sbs(tensor_to_pil(x), y))
        if side_by_side:
            y = sbs(tensor_to_pil(x), y)
        dest = out / f.name
        if dest.suffix.lower() in (".jpg", ".jpeg") and y.mode not in ("RGB", "L"):
            y = y.convert("RGB")
        y.save(dest)
        written.append(str(dest))
    return written, pairs


def _translate_clips(translator: Translator, clip_dest: dict, direction: str, strength: float, quiet: bool,
                     json_out: bool) -> list[dict]:
    """Translate each clip to its destination (strength 0: per frame); a line per clip unless quiet/json."""
    from .video import translate_clip

    results = []
    for clip, dest in clip_dest.items():
        res = translate_clip(translator, clip, dest, direction=direction, temporal=strength, progress=not quiet)
        results.append(res)
        if not quiet and not json_out:
            audio = f", audio {res['audio']}" if res["audio"] else ", no audio"
            cuts = f", {len(res['cuts'])} shot cut(s)" if strength > 0 else ""
            print(f"{clip} -> {dest}: {res['frames']} frames {res['width']}x{res['height']} at {res['fps']:g} fps"
                  f"{audio}{cuts}, {res['frames_per_s']:.2f} frames/s")
    return results


def _evaluate_clip(clip: Path, model, device: str, direction: str, strength: float, limit: int, flow: str,
                   json_out: bool, quiet: bool) -> None:
    """`evaluate --clip`: the flicker figures of a translated clip, per frame and with the temporal filter."""
    from .temporal import FLOW_METHODS
    from .video import evaluate_clip

    if direction not in ("a2b", "b2a"):
        direction = "a2b" if direction == "both" else direction
    if direction not in ("a2b", "b2a"):
        raise InputError(f"--direction {direction}: expected a2b or b2a")
    if flow not in FLOW_METHODS:
        raise InputError(f"--flow {flow}: expected one of {', '.join(FLOW_METHODS)}")
    _check_strength(strength)
    if limit < 2:
        raise InputError(f"--limit {limit}: a flicker figure needs at least 2 frames")
    translator = load(Translator, model, device)
    res = evaluate_clip(translator, clip, direction=direction, temporal=strength, limit=limit, flow=flow,
                        progress=not quiet)
    if json_out:
        print_json(res)
    else:
        _print_clip_figures(res)


def _print_clip_figures(res: dict) -> None:
    cuts = [s for s in res["shot_starts"] if s]
    print(f"{res['clip']}: {res['frames']} frames, {res['shots']} shot(s)"
          f"{' (cuts before frames ' + ', '.join(map(str, cuts)) + ')' if cuts else ''}, {res['pairs']} frame pairs "
          f"measured ({res['flow']} flow, forward-backward occlusion check)")
    if not res["pairs"]:
        print("no frame pair within a shot: no warping error")
        return
    e = {k: 1e3 * res[f"warp_error/{k}"] for k in ("input", "per_frame", "temporal")}
    print(f"warping error x1e3 (Lai et al. 2018: mean |O_t - warp(O_t-1)| over non-occluded pixels, [0, 1] "
          f"scale): input {e['input']:.2f}, per-frame {e['per_frame']:.2f} (excess {e['per_frame'] - e['input']:.2f}), "
          f"temporal {e['temporal']:.2f} (excess {e['temporal'] - e['input']:.2f}, "
          f"{res.get('excess_ratio/temporal', float('nan')):.2f} x per-frame's)")
    print(f"PSNR temporal vs per-frame output (strength {res['temporal_strength']:g}): "
          f"{res['psnr_db/temporal']:.2f} dB mean, {res['psnr_min_db/temporal']:.2f} dB lowest, "
          f"{res['psnr_shot_start_db/temporal']:.2f} dB on the first frame of each shot (100: identical)")


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
    limit: Annotated[int, typer.Option("--limit", help="at most this many images per domain (frames of --clip)")] = 500,
    clip: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--clip", help="instead: a clip; prints its flicker (warping error) per-frame and with --temporal, and "
                       "PSNR temporal vs per-frame")] = None,
    temporal_strength: StrengthOpt = DEFAULT_STRENGTH,
    flow: Annotated[str, typer.Option("--flow", help="--clip: optical flow for the warping error: farneback "
                                                     "(default; not the DIS flow the filter uses) or dis")] = "farneback",
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Score a model on test images: SWD and pixel-feature KID of translations against the target domain,
    next to the untranslated inputs' scores; PSNR/SSIM with --ground-truth; FID/KID with --inception-weights.
    With --clip: the flicker of a translated clip, frame by frame and with the temporal filter."""
    from .pipeline import evaluate_folders

    if clip is not None:
        _evaluate_clip(clip, model, device, direction, temporal_strength, limit, flow, json_out, quiet)
        return
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

