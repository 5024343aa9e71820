"""Video prediction benchmarks, printed side by side in one run:

1. ConvLSTM training step at OpenSTL's Moving MNIST configuration (configs/mmnist/ConvLSTM.py: 4 layers x 128
   hidden, patch 4, filter 5, batch 16 (BENCH_VIDEO_BATCH), 10 -> 10 frames, MSE on all 19 one-step outputs,
   scheduled-sampling mask): OpenSTL's own model file from the anchors folder (`benchmarks/anchors.py`; else a
   re-implementation, named as such in the output) beside ours (`ganapps.video.nets.ConvLSTMPredictor`, fused gate
   convolution, forget bias 0 as OpenSTL's cell) in float32 and at the default precision (bf16 autocast where the
   CPU has native bf16), all threads. Same weights -> same float32 outputs is checked (max |diff|); MFU printed.
2. 10 -> 10 prediction time (batch 1, no grad) of both (the video predictor's 10 -> 10 against OpenSTL's file).
3. Optional (BENCH_VIDEO_QUALITY_S=CPU seconds per model, default 0: skipped): Moving MNIST MSE/SSIM after the
   same CPU budget for both (two 1-thread processes at once), on held-out digits.
4. 128x128, 5-frame `predict` time on one thread (`Predictor.__call__` on a tensor clip, Farneback flows
   included) of the shipped default model, beside the model folder named by BENCH_VIDEO_BEFORE (e.g. a previous
   default) when set; calls interleaved, median and min.
5. Real clips: PSNR/SSIM at horizons 1..5 of the default model (with and without --adapt) beside copy-last-frame
   and Farneback flow extrapolation on held-out camera-motion clips rendered from photos no model has seen.

Environment: BENCH_VIDEO_STEPS (timed steps, default 3), BENCH_VIDEO_BATCH (training batch, default 16), BENCH_VIDEO_ADAPT (adapt steps, default 20),
BENCH_VIDEO_CALLS (timed predict calls, default 15), BENCH_VIDEO_BEFORE (a model folder to time beside the default).
"""

from __future__ import annotations

import copy
import os
import time

import torch
from torch import nn

# --------------------------------------------------------------------------- OpenSTL's ConvLSTM, re-implemented


class OpenSTLConvLSTMCell(nn.Module):
    """OpenSTL `openstl/modules/convlstm_modules.py: ConvLSTMCell` with layer_norm=0."""

    def __init__(self, in_channel, num_hidden, filter_size, stride=1):
        super().__init__()
        self.num_hidden = num_hidden
        self.padding = filter_size // 2
        self._forget_bias = 1.0
        self.conv_x = nn.Sequential(nn.Conv2d(in_channel, num_hidden * 4, filter_size, stride, self.padding, bias=False))
        self.conv_h = nn.Sequential(nn.Conv2d(num_hidden, num_hidden * 4, filter_size, stride, self.padding, bias=False))

    def forward(self, x_t, h_t, c_t):
        x_concat = self.conv_x(x_t)
        h_concat = self.conv_h(h_t)
        i_x, f_x, g_x, o_x = torch.split(x_concat, self.num_hidden, dim=1)
        i_h, f_h, g_h, o_h = torch.split(h_concat, self.num_hidden, dim=1)
        i_t = torch.sigmoid(i_x + i_h)
        f_t = torch.sigmoid(f_x + f_h)  # OpenSTL keeps `_forget_bias` but never adds it
        g_t = torch.tanh(g_x + g_h)
        c_new = f_t * c_t + i_t * g_t
        o_t = torch.sigmoid(o_x + o_h)
        h_new = o_t * torch.tanh(c_new)
        return h_new, c_new


class OpenSTLConvLSTM(nn.Module):
    """OpenSTL `openstl/models/convlstm_model.py: ConvLSTM_Model` (no reverse scheduled sampling)."""

    def __init__(self, num_layers, num_hidden, frame_channel, filter_size, pre_seq_length, aft_seq_length):
        super().__init__()
        self.frame_channel, self.num_layers, self.num_hidden = frame_channel, num_layers, num_hidden
        self.pre_seq_length, self.aft_seq_length = pre_seq_length, aft_seq_length
        self.cell_list = nn.ModuleList(
            OpenSTLConvLSTMCell(frame_channel if i == 0 else num_hidden[i - 1], num_hidden[i], filter_size)
            for i in range(num_layers))
        self.conv_last = nn.Conv2d(num_hidden[-1], frame_channel, 1, 1, 0, bias=False)
        self.MSE_criterion = nn.MSELoss()

    def forward(self, frames_tensor, mask_true, return_loss=True):
        frames = frames_tensor.permute(0, 1, 4, 2, 3).contiguous()  # [B, T, H, W, C] -> [B, T, C, H, W]
        mask_true = mask_true.permute(0, 1, 4, 2, 3).contiguous()
        batch, height, width = frames.shape[0], frames.shape[3], frames.shape[4]
        next_frames, h_t, c_t = [], [], []
        for i in range(self.num_layers):
            zeros = torch.zeros([batch, self.num_hidden[i], height, width], device=frames.device)
            h_t.append(zeros)
            c_t.append(zeros)
        for t in range(self.pre_seq_length + self.aft_seq_length - 1):
            if t < self.pre_seq_length:
                net = frames[:, t]
            else:
                net = mask_true[:, t - self.pre_seq_length] * frames[:, t] + \
                    (1 - mask_true[:, t - self.pre_seq_length]) * x_gen  # noqa: F821 (set at t - 1)
            h_t[0], c_t[0] = self.cell_list[0](net, h_t[0], c_t[0])
            for i in range(1, self.num_layers):
                h_t[i], c_t[i] = self.cell_list[i](h_t[i - 1], h_t[i], c_t[i])
            x_gen = self.conv_last(h_t[self.num_layers - 1])
            next_frames.append(x_gen)
        next_frames = torch.stack(next_frames, dim=0).permute(1, 0, 3, 4, 2).contiguous()
        loss = self.MSE_criterion(next_frames, frames_tensor[:, 1:]) if return_loss else None
        return next_frames, loss


def reshape_patch(img_tensor, patch_size):
    """OpenSTL `openstl/utils/main_utils.py: reshape_patch` on (B, T, H, W, C)."""
    b, t, h, w, c = img_tensor.shape
    a = img_tensor.reshape(b, t, h // patch_size, patch_size, w // patch_size, patch_size, c)
    b_ = a.transpose(3, 4)
    return b_.reshape(b, t, h // patch_size, w // patch_size, patch_size * patch_size * c)


def reshape_patch_back(patch_tensor, patch_size):
    b, t, ph, pw, cc = patch_tensor.shape
    c = cc // (patch_size * patch_size)
    a = patch_tensor.reshape(b, t, ph, pw, patch_size, patch_size, c)
    return a.transpose(3, 4).reshape(b, t, ph * patch_size, pw * patch_size, c)


# --------------------------------------------------------------------------- helpers

LAYERS, HIDDEN, PATCH, FILTER, BATCH, TC, TF = 4, 128, 4, 5, 16, 10, 10  # OpenSTL configs/mmnist/ConvLSTM.py
QUALITY_BATCH = 4


def _load_into_ours(ours, theirs) -> None:
    """OpenSTL weights -> ours: the fused gate weight is [W_x, W_h] along input channels. With one colour
    channel OpenSTL's patch order (row, col, C) equals pixel_unshuffle's (C, row, col)."""
    with torch.no_grad():
        for mine, cell in zip(ours.cells, theirs.cell_list, strict=True):
            mine.gates.weight.copy_(torch.cat([cell.conv_x[0].weight, cell.conv_h[0].weight], 1))
        ours.head.weight.copy_(theirs.conv_last.weight)


def openstl_model():
    """(OpenSTL's ConvLSTM at the Moving MNIST config, reshape_patch, reshape_patch_back, what it is): its own
    model file from the anchors folder when there (`benchmarks/anchors.py`), else the re-implementation above."""
    from benchmarks import anchors

    if anchors.root() is not None:
        from types import SimpleNamespace

        cls, utils = anchors.openstl_convlstm(), anchors.openstl_patch_utils()
        configs = SimpleNamespace(in_shape=(TC, 1, 64, 64), patch_size=PATCH, filter_size=FILTER, stride=1,
                                  layer_norm=0, pre_seq_length=TC, aft_seq_length=TF, reverse_scheduled_sampling=0)
        return (cls(LAYERS, [HIDDEN] * LAYERS, configs), utils.reshape_patch, utils.reshape_patch_back,
                "OpenSTL ConvLSTM_Model (its own file)")
    return (OpenSTLConvLSTM(LAYERS, [HIDDEN] * LAYERS, PATCH * PATCH, FILTER, TC, TF), reshape_patch,
            reshape_patch_back, "OpenSTL ConvLSTM (re-implemented: no anchors)")


def openstl_and_ours(batch: int):
    """(theirs, ours, frames (B, 20, 1, 64, 64) in [0, 1], mask_bits (B, 9), OpenSTL's mask (B, 9, 16, 16, 16),
    reshape_patch, reshape_patch_back, name): OpenSTL's model and ours (forget bias 0, as OpenSTL's cell) with
    its weights; a fixed scheduled-sampling mask."""
    from ganapps.video.nets import ConvLSTMPredictor

    torch.manual_seed(0)
    theirs, patch, unpatch, name = openstl_model()
    ours = ConvLSTMPredictor(1, HIDDEN, LAYERS, FILTER, PATCH, head="direct", forget_bias=0.0)
    _load_into_ours(ours, theirs)
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(batch, TC + TF, 1, 64, 64, generator=g)  # OpenSTL trains on [0, 1] frames
    mask_bits = (torch.rand(batch, TF - 1, generator=g) < 0.5).float()
    mask = mask_bits.view(batch, TF - 1, 1, 1, 1).expand(-1, -1, 16, 16, PATCH * PATCH).contiguous()
    return theirs, ours, frames, mask_bits, mask, patch, unpatch, name


def openstl_step(model, opt, frames, mask, patch=reshape_patch):
    """OpenSTL's ConvLSTM training step (methods/convlstm.py): patch, forward with the scheduled-sampling mask,
    its own MSE over the 19 one-step outputs, Adam."""
    ims = patch(frames.permute(0, 1, 3, 4, 2), PATCH)  # (B, T, h, w, C*p*p), channels last
    _, loss = model(ims, mask)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def our_step(model, opt, frames, mask_bits, dtype):
    """Ours on the same work: the 19 one-step outputs, MSE, Adam; bf16 autocast when `dtype`."""
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        y = model(frames[:, :TC], TF, targets=frames[:, TC:], teacher_mask=mask_bits, return_context=True)
        loss = torch.nn.functional.mse_loss(y.float(), frames[:, 1:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _our_step(model, opt, batch, mask, amp: bool):
    return our_step(model, opt, batch, mask, torch.bfloat16 if amp else None)


def _openstl_step(model, opt, batch, mask):
    return openstl_step(model, opt, batch, mask)


def _time_interleaved(fns, steps: int) -> list[float]:
    """Mean seconds per call of each fn, calls interleaved round by round so that load changes on a shared
    machine hit every implementation alike (one warm-up call each first)."""
    for fn in fns:
        fn()
    total = [0.0] * len(fns)
    for _ in range(steps):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            total[i] += time.perf_counter() - t0
    return [t / steps for t in total]


def _flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def throughput(steps: int, batch: int = BATCH) -> None:
    from benchmarks.bench_profile import matmul_peak
    from ganapps.engine.runtime import native_bf16
    from ganapps.engine.task import OptimizerSpec

    theirs, ours, frames, mask_bits, mask, patch, unpatch, name = openstl_and_ours(batch)
    default = torch.bfloat16 if native_bf16(torch.device("cpu")) else None
    dname = "bf16" if default is not None else "fp32"
    # identical results in float32: same weights, same inputs, same scheduled-sampling mask
    with torch.no_grad():
        ref, _ = theirs(patch(frames.permute(0, 1, 3, 4, 2), PATCH), mask, return_loss=False)
        ref = unpatch(ref, PATCH).permute(0, 1, 4, 2, 3)  # (B, 19, 1, 64, 64)
        mine = ours(frames[:, :TC], TF, targets=frames[:, TC:], teacher_mask=mask_bits, return_context=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mine_bf16 = ours(frames[:, :TC], TF, targets=frames[:, TC:], teacher_mask=mask_bits, return_context=True)
    diff = float((ref - mine).abs().max())
    print(f"{name} against ours (forget bias 0, as its cell), same weights, same inputs and scheduled-sampling "
          f"mask, float32 outputs (B={batch}, 19 frames): max |diff| = {diff:.2e} ({'OK' if diff < 1e-5 else 'MISMATCH'}"
          f", tolerance 1e-5); under bf16 autocast: max |diff| {float((ref - mine_bf16.float()).abs().max()):.2e}, "
          f"mean {float((ref - mine_bf16.float()).abs().mean()):.2e} (outputs span {float(ref.min()):.2f}.."
          f"{float(ref.max()):.2f})", flush=True)

    opt_t = torch.optim.Adam(theirs.parameters(), lr=5e-4)  # OpenSTL's: torch's Adam, its default settings
    fns = [(f"{name}, fp32", lambda: openstl_step(theirs, opt_t, frames, mask, patch))]
    for label, dtype in (("ours, fp32", None), (f"ours, default ({dname})", default)):
        model = copy.deepcopy(ours)
        opt = OptimizerSpec(("predictor",), 5e-4, (0.9, 0.999)).build(list(model.parameters()))
        fns.append((label, lambda m=model, o=opt, d=dtype: our_step(m, o, frames, mask_bits, d)))
    flops = _flops(lambda: openstl_step(copy.deepcopy(theirs), torch.optim.Adam(theirs.parameters()), frames,
                                        mask, patch))
    peaks = {"fp32": matmul_peak("fp32"), "bf16": matmul_peak("bf16")}
    rows = list(zip([n for n, _ in fns], _time_interleaved([f for _, f in fns], steps), strict=True))
    base = rows[0][1]
    print(f"\ntraining step, OpenSTL's Moving MNIST config (batch {batch}, {LAYERS}x{HIDDEN} hidden, patch {PATCH}, "
          f"filter {FILTER}, 10->10), {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}, "
          f"mean of {steps} interleaved steps after 1 warm-up; {flops / 1e9:.0f} GFLOP per step (FlopCounterMode); "
          f"matmul peak fp32 {peaks['fp32'] / 1e9:.0f}, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    for (label, s), prec in zip(rows, ("fp32", "fp32", dname), strict=True):
        print(f"  {label:46s} {s:7.2f} s/step   {base / s:5.2f}x   MFU {100 * flops / s / peaks[prec]:3.0f}% of "
              f"{prec} peak ({flops / s / 1e9:.0f} GFLOP/s)", flush=True)

    with torch.no_grad():
        one = frames[:1]
        zero_mask = torch.zeros(1, TF - 1, 16, 16, PATCH * PATCH)

        def bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return ours(one[:, :TC], TF)

        t_theirs, t_ours, t_bf16 = _time_interleaved(
            [lambda: theirs(patch(one.permute(0, 1, 3, 4, 2), PATCH), zero_mask, return_loss=False),
             lambda: ours(one[:, :TC], TF), bf16], max(steps, 5))
    print(f"10->10 prediction, batch 1, no grad ({max(steps, 5)} interleaved calls):")
    print(f"  {name + ', fp32':46s} {t_theirs:7.3f} s")
    print(f"  {'ours, fp32':46s} {t_ours:7.3f} s   {t_theirs / t_ours:5.2f}x")
    print(f"  {'ours, bf16 autocast':46s} {t_bf16:7.3f} s   {t_theirs / t_bf16:5.2f}x", flush=True)


QUALITY_RUNS = ("OpenSTL ConvLSTM (re-implemented), fp32", "ours, bf16 autocast")


def _mnist_sets(seed: int):
    """Moving MNIST training sequences (digits 0-3999) and the 64 held-out test sequences (digits 4000-4999)
    as a (64, 20, 1, 64, 64) tensor in [0, 1]."""
    from ganapps.recipes import moving_mnist
    from ganapps.video.data import MovingMNIST, load_mnist_digits

    digits = load_mnist_digits(moving_mnist.fetch_digits())
    train, test = MovingMNIST.split(digits, "train", 20, seed=seed), MovingMNIST.split(digits, "eval", 20, items=64)
    return train, (torch.stack([test[i] for i in range(len(test))]) + 1) / 2


def _quality_run(name: str, seconds: float, seed: int = 0) -> dict:
    """Train one model on Moving MNIST for `seconds` of this process's CPU time (1 thread), then score it on
    held-out digits 4000-4999 (64 sequences, 10 -> 10, free-running)."""
    torch.set_num_threads(1)
    from ganapps.video.nets import ConvLSTMPredictor
    from ganapps.video.pipeline import horizon_metrics

    train, test_x = _mnist_sets(seed)
    torch.manual_seed(seed)
    theirs = OpenSTLConvLSTM(LAYERS, [HIDDEN] * LAYERS, PATCH * PATCH, FILTER, TC, TF)
    model = ConvLSTMPredictor(1, HIDDEN, LAYERS, FILTER, PATCH, head="direct", forget_bias=0.0)
    _load_into_ours(model, theirs)  # same initial weights
    is_theirs = name.startswith("Open")
    opt = torch.optim.Adam((theirs if is_theirs else model).parameters(), lr=1e-3)
    mask_bits = torch.zeros(QUALITY_BATCH, TF - 1)  # free-running training for both (no scheduled sampling)
    mask = mask_bits.view(QUALITY_BATCH, TF - 1, 1, 1, 1).expand(-1, -1, 16, 16, PATCH * PATCH)
    t0, w0, n, losses = time.process_time(), time.perf_counter(), 0, []
    while time.process_time() - t0 < seconds:
        batch = (torch.stack([train[n * QUALITY_BATCH + i] for i in range(QUALITY_BATCH)]) + 1) / 2
        losses.append(_openstl_step(theirs, opt, batch, mask) if is_theirs else
                      _our_step(model, opt, batch, mask_bits, True))
        n += 1
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    if is_theirs:
        _load_into_ours(model, theirs)  # evaluate through the same code path (identical in fp32)
    with torch.no_grad():
        pred = torch.cat([model(test_x[i:i + 8, :TC], TF) for i in range(0, len(test_x), 8)]).clamp(0, 1)
    m = horizon_metrics(pred * 2 - 1, test_x[:, TC:] * 2 - 1)
    return {"name": name, "steps": n, "cpu_s": cpu, "wall_s": wall, "mse": m["mse_mean"], "ssim": m["ssim_mean"],
            "train_mse_last100": float(torch.tensor(losses[-100:]).mean())}


def quality(seconds: float) -> None:
    """Moving MNIST after the same CPU budget each: both models train at once in two 1-thread processes (so
    machine load hits both alike), each stopping after `seconds` of its own CPU time."""
    import multiprocessing as mp

    from ganapps.recipes import moving_mnist
    from ganapps.video.pipeline import horizon_metrics

    moving_mnist.fetch_digits()  # fetch once before the workers start
    with mp.get_context("spawn").Pool(len(QUALITY_RUNS)) as pool:
        results = pool.starmap(_quality_run, [(name, seconds) for name in QUALITY_RUNS])
    print(f"\nMoving MNIST after {seconds:.0f} s of CPU time each (1 thread per model, run at the same time; "
          f"batch {QUALITY_BATCH}, Adam lr 1e-3, {LAYERS}x{HIDDEN}, free-running 10 -> 10 training); 64 held-out "
          f"sequences from digits 4000-4999; MSE summed per frame on a 0-1 scale (OpenSTL convention)")
    for r in results:
        print(f"  {r['name']:42s} {r['steps']:5d} steps ({r['cpu_s'] / r['steps']:5.2f} CPU s/step, "
              f"wall {r['wall_s']:.0f} s)   MSE {r['mse']:7.1f}   SSIM {r['ssim']:.3f}")
    _, test_x = _mnist_sets(0)
    black = horizon_metrics(torch.zeros_like(test_x[:, TC:]) * 2 - 1, test_x[:, TC:] * 2 - 1)
    last = horizon_metrics(test_x[:, TC - 1:TC].expand(-1, TF, -1, -1, -1) * 2 - 1, test_x[:, TC:] * 2 - 1)
    print(f"  {'all-black frames':42s} {'':41s}   MSE {black['mse_mean']:7.1f}   SSIM {black['ssim_mean']:.3f}")
    print(f"  {'copy-last-frame':42s} {'':41s}   MSE {last['mse_mean']:7.1f}   SSIM {last['ssim_mean']:.3f}")


def predict_timing(calls: int, before: str | None) -> None:
    """Seconds per 128x128, 5-frame prediction, one torch and one OpenCV thread, of the shipped default model
    (and of the model folder `before`), on a held-out rendered clip; calls interleaved after one warm-up each."""
    import statistics

    import cv2

    from ganapps.engine.errors import InputError
    from ganapps.recipes import video_photos
    from ganapps.video.pipeline import Predictor, read_clip

    try:
        models = [("shipped default", Predictor.from_checkpoint(device="cpu"))]
        if before:
            models.append((f"before ({before})", Predictor.from_checkpoint(before, device="cpu")))
    except InputError as e:
        print(f"\npredict timing: skipped ({e})")
        return
    clip = read_clip(video_photos.eval_clips()[0])[:11]  # (11, 3, 128, 128): the last context frames are used
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        times: list[list[float]] = [[] for _ in models]
        for _, m in models:
            m(clip, 5)
        for _ in range(calls):
            for i, (_, m) in enumerate(models):
                t0 = time.perf_counter()
                m(clip, 5)
                times[i].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    print(f"\n128x128 predict, 5 frames, 1 thread, {calls} interleaved calls after a warm-up (median / min):")
    for (name, m), t in zip(models, times, strict=True):
        print(f"  {name:42s} {type(m.net).__name__:18s} {1000 * statistics.median(t):7.0f} / {1000 * min(t):5.0f} ms")
    if before:
        print(f"  default / before: {statistics.median(times[0]) / statistics.median(times[1]):.2f}x (median), "
              f"{min(times[0]) / min(times[1]):.2f}x (min)")


def real_clips(adapt_steps: int) -> None:
    """Default model vs baselines on held-out rendered camera-motion clips at their own 128x128 size."""
    from ganapps.engine.errors import InputError
    from ganapps.recipes import video_photos
    from ganapps.video.pipeline import (
        Predictor,
        copy_last,
        flow_extrapolate,
        horizon_metrics,
        read_clip,
    )

    try:
        pred = Predictor.from_checkpoint()
    except InputError as e:
        print(f"\nreal clips: skipped ({e})")
        return
    clips = video_photos.eval_clips()
    tc, k, first = pred.context, 5, 11 - pred.context  # context ends at frame 10, targets 11..15
    rows: dict[str, list[torch.Tensor]] = {"model": [], f"model --adapt {adapt_steps}": [], "copy-last": [],
                                           "flow (Farneback)": [], "flow (Farneback, 2 pairs)": []}
    t_adapt = 0.0
    for path in clips:
        x = read_clip(path)  # (16, 3, 128, 128)
        context, target = x[first:first + tc], x[first + tc:first + tc + k]
        rows["model"].append(pred(context, k))
        t0 = time.perf_counter()
        adapted = pred.adapted(read_clip(path, 0, first + tc, (pred.size, pred.size)), adapt_steps)
        t_adapt += time.perf_counter() - t0
        rows[f"model --adapt {adapt_steps}"].append(adapted(context, k))
        rows["copy-last"].append(copy_last(context.unsqueeze(0), k)[0])
        rows["flow (Farneback)"].append(flow_extrapolate(context.unsqueeze(0), k)[0])
        rows["flow (Farneback, 2 pairs)"].append(flow_extrapolate(context.unsqueeze(0), k, pairs=2)[0])
        rows.setdefault("_target", []).append(target)
    target = torch.stack(rows.pop("_target"))
    print(f"\nreal clips: {len(clips)} held-out camera-motion clips (chelsea, coffee, rocket; 128x128, model at "
          f"{pred.size}x{pred.size}), {tc} context frames, horizons 1..{k}; adapt {t_adapt / len(clips):.1f} s/clip")
    for metric in ("psnr", "ssim"):
        print(f"  {metric:5s} horizon            " + " ".join(f"{h:>6d}" for h in range(1, k + 1)) + "    mean")
        for name, preds in rows.items():
            m = horizon_metrics(torch.stack(preds), target)
            print(f"    {name:26s} " + " ".join(f"{v:6.2f}" if metric == "psnr" else f"{v:6.3f}" for v in m[metric])
                  + (f"  {m[metric + '_mean']:6.2f}" if metric == "psnr" else f"  {m[metric + '_mean']:6.3f}"))


def main() -> None:
    steps = int(os.environ.get("BENCH_VIDEO_STEPS", "3"))
    throughput(steps, int(os.environ.get("BENCH_VIDEO_BATCH", str(BATCH))))
    q = float(os.environ.get("BENCH_VIDEO_QUALITY_S", "0"))
    if q > 0:
        quality(q)
    predict_timing(int(os.environ.get("BENCH_VIDEO_CALLS", "15")), os.environ.get("BENCH_VIDEO_BEFORE") or None)
    real_clips(int(os.environ.get("BENCH_VIDEO_ADAPT", "20")))


if __name__ == "__main__":
    main()
