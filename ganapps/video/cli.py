"""`ganapps video predict | evaluate` (train and export come from the task registry): resolves options and
calls one function each."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import torch
import typer

from .._cli import print_json
from .._inference_cli import DeviceOpt, JsonOpt, QuietOpt, load, model_option
from ..engine.errors import InputError
from .data import ClipDataset, MovingMNIST, NpySequences, load_mnist_digits, probe, to_uint8
from .pipeline import (
    Predictor,
    copy_last,
    flow_extrapolate,
    horizon_metrics,
    read_clip,
    side_by_side,
    write_video,
)

app = typer.Typer(no_args_is_help=True)  # mounted as `ganapps video` with train and export (ganapps.cli)


ModelOpt = model_option(Predictor.default_model)


def _read_inputs(clip: Path, predictor: Predictor, k: int, start: int | None):
    """(probe info, first context frame, context (Tc, C, H, W), the ground truth after it or None), frames at the
    clip's size."""
    tc = predictor.context
    info = probe(clip)
    if info.frames < tc:
        raise InputError(f"{clip}: {info.frames} decodable frames; the model needs {tc} context frames")
    first = info.frames - tc if start is None else start
    if not 0 <= first <= info.frames - tc:
        raise InputError(f"--start {start}: expected 0..{info.frames - tc} for {clip} ({info.frames} frames)")
    context = read_clip(clip, first, tc)
    truth_n = min(k, info.frames - first - tc)
    return info, first, context, read_clip(clip, first + tc, truth_n) if truth_n > 0 else None


def _continue(predictor: Predictor, clip: Path, first: int, context: torch.Tensor, k: int,
              adapt: int) -> tuple[torch.Tensor, dict]:
    """(K, C, H, W) prediction at the clip's size, after `adapt` fine-tuning steps on the frames before the
    context's end (never the ground truth after it), and the seconds each part took."""
    t0 = time.perf_counter()
    adapt_s = 0.0
    if adapt:
        end = first + predictor.context
        history = read_clip(clip, max(0, end - 256), min(end, 256), (predictor.size, predictor.size))
        predictor = predictor.adapted(history, adapt)
        adapt_s = time.perf_counter() - t0
    pred = predictor(context, k)
    return pred, {"adapt_steps": adapt, "adapt_s": round(adapt_s, 3),
                  "predict_s": round(time.perf_counter() - t0 - adapt_s, 3)}


def _scores(context: torch.Tensor, pred: torch.Tensor, truth: torch.Tensor) -> dict:
    """Per-horizon PSNR/SSIM of the model, copy-last-frame and (with >= 2 context frames) Farneback flow
    extrapolation against the ground truth that follows the context."""
    n = len(truth)
    m = horizon_metrics(pred[:n].unsqueeze(0), truth.unsqueeze(0))
    b = horizon_metrics(copy_last(context.unsqueeze(0), n), truth.unsqueeze(0))
    out = {"psnr": m["psnr"], "ssim": m["ssim"], "copy_last_psnr": b["psnr"], "copy_last_ssim": b["ssim"]}
    if len(context) >= 2:
        f = horizon_metrics(flow_extrapolate(context.unsqueeze(0), n), truth.unsqueeze(0))
        out.update({"flow_psnr": f["psnr"], "flow_ssim": f["ssim"]})
    return out


def _print_scores(result: dict) -> None:
    flow = "flow_psnr" in result
    print("horizon  psnr(model)  psnr(copy-last)" + ("  psnr(flow)" if flow else "")
          + "  ssim(model)  ssim(copy-last)" + ("  ssim(flow)" if flow else ""))
    for i in range(len(result["psnr"])):
        print(f"{i + 1:7d}  {result['psnr'][i]:11.2f}  {result['copy_last_psnr'][i]:15.2f}"
              + (f"  {result['flow_psnr'][i]:10.2f}" if flow else "")
              + f"  {result['ssim'][i]:11.3f}  {result['copy_last_ssim'][i]:15.3f}"
              + (f"  {result['flow_ssim'][i]:10.3f}" if flow else ""))


@app.command("predict")
def predict(
    clip: Annotated[Path, typer.Argument(help="video file (.mp4 .avi .mov .mkv .gif) or folder of frames")],
    model: ModelOpt = None,
    frames: Annotated[Optional[int], typer.Option(help="frames to predict (default: the model's training horizon)")] = None,  # noqa: UP045
    out: Annotated[Optional[Path], typer.Option(help="output .mp4, .avi, .gif or folder (default CLIP_pred.mp4)")] = None,  # noqa: UP045
    start: Annotated[Optional[int], typer.Option(help="index of the first context frame (default: the clip's last frames)")] = None,  # noqa: UP045
    adapt: Annotated[int, typer.Option(help="fine-tune N steps on the clip's earlier frames first")] = 0,
    fps: Annotated[Optional[float], typer.Option(help="output frame rate (default: the clip's)")] = None,  # noqa: UP045
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Continue CLIP: predict frames at the model's resolution, write them at the clip's size, plus a side-by-side
    (input | prediction, with ground truth when the clip goes on past the context)."""
    if frames is not None and frames < 1:
        raise InputError(f"--frames {frames}: expected >= 1")
    if adapt < 0:
        raise InputError(f"--adapt {adapt}: expected >= 0")
    predictor = load(Predictor, model, device)
    k = frames or predictor.config.future_frames
    info, first, context, truth = _read_inputs(clip, predictor, k, start)
    pred, timing = _continue(predictor, clip, first, context, k, adapt)
    out = out or Path(f"{clip.stem}_pred.mp4")
    rate = fps or info.fps
    write_video(out, to_uint8(pred), rate)
    side_path = out.with_name(f"{out.stem}_side{out.suffix}") if out.suffix else out.with_name(out.name + "_side")
    write_video(side_path, side_by_side(to_uint8(context), to_uint8(pred),
                                        to_uint8(truth) if truth is not None else None), rate)
    result = {"out": str(out), "side_by_side": str(side_path), "frames": k, "context": predictor.context,
              "first_context_frame": first, "height": int(pred.shape[-2]), "width": int(pred.shape[-1]), **timing}
    if truth is not None:
        result.update(_scores(context, pred, truth))
    if json_out:
        print_json(result)
        return
    if not quiet:
        print(f"wrote {k} frames ({pred.shape[-1]}x{pred.shape[-2]}) to {out}; side-by-side {side_path}")
    if truth is not None:
        _print_scores(result)


def _eval_clips(data: list[str], predictor: Predictor, k: int, max_clips: int, stride: int | None) -> torch.Tensor:
    tc, size, gray = predictor.context, predictor.size, predictor.config.channels == 1
    n = tc + k
    if len(data) == 1 and data[0] == "mnist":
        from ..recipes import moving_mnist

        ds = MovingMNIST.split(load_mnist_digits(moving_mnist.fetch_digits()), "eval", n, 64, items=max_clips)
    elif len(data) == 1 and data[0].endswith(".npy"):
        ds = NpySequences(data[0], n)
    else:
        ds = ClipDataset(data, tc, k, stride or n, size, gray)
    count = min(max_clips, len(ds))
    idx = np.linspace(0, len(ds) - 1, count).round().astype(int)
    clips = torch.stack([ds[int(i)] for i in idx])  # (N, T, C, H, W)
    if clips.shape[-1] != size or clips.shape[-2] != size:
        raise InputError(f"{data[0]}: frames are {clips.shape[-2]}x{clips.shape[-1]}, the model runs at {size}x{size}")
    return clips


@app.command("evaluate")
def evaluate(
    model: ModelOpt = None,
    data: Annotated[Optional[list[str]], typer.Option(help="videos / folders (repeatable), 'mnist' or a .npy")] = None,  # noqa: UP045
    frames: Annotated[Optional[int], typer.Option(help="horizon K (default: the model's)")] = None,  # noqa: UP045
    clips: Annotated[int, typer.Option(help="clips scored at most")] = 256,
    stride: Annotated[Optional[int], typer.Option(help="frames between clip starts (default: clip length)")] = None,  # noqa: UP045
    flow: Annotated[bool, typer.Option(help="also score the Farneback flow-extrapolation baseline")] = True,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Per-horizon MSE / MAE / PSNR / SSIM of the model beside copy-last-frame (and flow extrapolation).
    MSE and MAE follow OpenSTL: summed over a frame's pixels on a 0-1 scale, averaged over clips."""
    import sys

    from tqdm.auto import tqdm

    if not data:
        raise InputError("--data: expected at least one video, folder, 'mnist' or a .npy file")
    predictor = load(Predictor, model, device)
    k = frames or predictor.config.future_frames
    x = _eval_clips(data, predictor, k, clips, stride)
    context, target = x[:, :predictor.context], x[:, predictor.context:]
    pred = torch.cat([predictor.predict_native(c, k).unsqueeze(0)
                      for c in tqdm(context, disable=quiet, unit="clip", file=sys.stderr)])
    rows = {"model": horizon_metrics(pred, target), "copy_last": horizon_metrics(copy_last(context, k), target)}
    if flow:
        rows["flow"] = horizon_metrics(flow_extrapolate(context, k), target)
    if json_out:
        print_json({"clips": len(x), "frames": k, **rows})
        return
    print(f"{len(x)} clips, {predictor.context} -> {k} frames at {predictor.size}x{predictor.size}")
    for metric in ("mse", "mae", "psnr", "ssim"):
        print(f"{metric:5s} horizon " + " ".join(f"{h + 1:>7d}" for h in range(k)) + "     mean")
        for name, r in rows.items():
            print(f"  {name:10s}  " + " ".join(f"{v:7.3f}" for v in r[metric]) + f"  {r[metric + '_mean']:7.3f}")

