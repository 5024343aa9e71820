"""Where a training step's time goes (torch.profiler) and how much of the CPU's measured peak it uses (MFU), for
the CycleGAN step (resnet_9blocks + basic PatchGAN, instance norm, LSGAN, 128 px crops, batch 1) and the ConvLSTM
step (OpenSTL's Moving MNIST configuration: 4 x 128 hidden, filter 5, patch 4, 10 -> 10, batch `--video-batch`),
ours beside the reference's own code (the anchors; `benchmarks/anchors.py`) when it is there.

Time is split by operator into convs, norms, reflection padding, other elementwise / copies, the optimizer (every
op under `Optimizer.step`), data (our step's batch fetch) and Python / framework overhead (the step's wall time
minus the time inside top-level operators). FLOPs per step are counted by torch's FlopCounterMode on the
reference's step (the same work for every variant); MFU = achieved FLOP/s / the measured matmul peak of the
precision (fp32 or bf16, 2048^3, best of 5, same threads). Each variant runs in its own process.

    python -m benchmarks profile                    # or: python -m benchmarks.bench_profile [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CATEGORIES = ("conv", "norm", "pad", "elementwise", "optimizer", "data", "python")


def _category(name: str) -> str:
    n = name.removeprefix("aten::")
    if "conv" in n:
        return "conv"
    if "norm" in n and "vector_norm" not in n:
        return "norm"
    if "reflection_pad" in n or "replication_pad" in n:
        return "pad"
    return "elementwise"


def breakdown(prof, wall_s: float) -> dict[str, float]:
    """Seconds per category from a profile of one step lasting `wall_s`; every top-level operator's total time
    goes to the category of the innermost op that did the work (its self time), so nothing is counted twice."""
    out = dict.fromkeys(CATEGORIES, 0.0)
    top_total = 0.0
    for ev in prof.events():
        if ev.cpu_parent is None:
            top_total += ev.cpu_time_total / 1e6
        parents, p = [], ev.cpu_parent
        while p is not None:
            parents.append(p.name)
            p = p.cpu_parent
        own = ev.self_cpu_time_total / 1e6
        if any(n.startswith("Optimizer.step") for n in [ev.name, *parents]):
            out["optimizer"] += own
        elif any(n == "ganapps.data" for n in [ev.name, *parents]):
            out["data"] += own
        elif ev.name.startswith("aten::") or ev.name.startswith("mkldnn"):
            out[_category(ev.name)] += own
        else:  # autograd nodes, record_function scopes: their own time is dispatch overhead
            out["python"] += own
    out["python"] += max(0.0, wall_s - top_total)
    return out


def matmul_peak(dtype_name: str) -> float:
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.rand(2048, 2048, dtype=dtype), torch.rand(2048, 2048, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t0))
    return best


def _cyclegan_step(variant: str):
    """(step function, FLOP-counting step) for 'reference' (the anchors' CycleGANModel) or ours ('fp32' /
    'default': use_amp auto)."""
    import torch

    crop = 128
    if variant == "reference":
        from benchmarks import anchors

        model, set_input = anchors.reference_cyclegan(crop)

        def step():
            set_input(torch.rand(1, 3, crop, crop) * 2 - 1, torch.rand(1, 3, crop, crop) * 2 - 1)
            model.optimize_parameters()

        return step
    from benchmarks.bench_cyclegan import _ours

    step, _ = _ours(crop, {"use_amp": False} if variant == "fp32" else {})
    return step


def _video_step(variant: str, batch: int):
    import torch

    from benchmarks.bench_video import openstl_and_ours, openstl_step, our_step
    from ganapps.engine.runtime import amp_dtype
    from ganapps.engine.task import OptimizerSpec

    theirs, ours, frames, mask_bits, mask, patch, _, _ = openstl_and_ours(batch)
    if variant == "reference":
        opt = torch.optim.Adam(theirs.parameters(), lr=5e-4)
        return lambda: openstl_step(theirs, opt, frames, mask, patch)
    dtype = None if variant == "fp32" else amp_dtype("auto", torch.device("cpu"))
    opt = OptimizerSpec(("predictor",), 5e-4, (0.9, 0.999)).build(list(ours.parameters()))
    return lambda: our_step(ours, opt, frames, mask_bits, dtype)


def child(task: str, variant: str, batch: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    step = _cyclegan_step(variant) if task == "cyclegan" else _video_step(variant, batch)
    if task == "cyclegan" and variant != "reference":  # label our batch fetch
        import benchmarks.bench_cyclegan as bc

        tr = bc.LAST_TRAINER
        stream_next = tr.stream.__next__

        class Labelled:
            def __next__(self):
                with record_function("ganapps.data"):
                    return stream_next()

        tr.stream = Labelled()
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    step()
    plain = time.perf_counter() - t0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        step()
        wall = time.perf_counter() - t0
    out = {"task": task, "variant": variant, "s_step": plain, "profiled_s": wall, "split": breakdown(prof, wall)}
    if variant == "reference":
        with FlopCounterMode(display=False) as fc:
            step()
        out["flops"] = fc.get_total_flops()
    return out


def _run(args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_profile", *args], capture_output=True, text=True,
                         env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--tasks", default="cyclegan,video")
    p.add_argument("--video-batch", type=int, default=16, help="ConvLSTM batch (OpenSTL's Moving MNIST config: 16)")
    p.add_argument("--child", nargs=3, metavar=("TASK", "VARIANT", "BATCH"), help=argparse.SUPPRESS)
    p.add_argument("--peak-child", help=argparse.SUPPRESS)
    a = p.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1], int(a.child[2]))))
        return
    if a.peak_child:
        print(json.dumps({"peak": matmul_peak(a.peak_child)}))
        return
    import torch

    from benchmarks import anchors
    from ganapps.engine.runtime import native_bf16

    default = "bf16" if native_bf16(torch.device("cpu")) else "fp32"
    peaks = {d: _run(["--peak-child", d], a.threads)["peak"] for d in ("fp32", "bf16")}
    print(f"{a.threads} thread(s), load average {os.getloadavg()[0]:.1f}; matmul peak (2048^3): fp32 "
          f"{peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s; default precision here: "
          f"{default}", flush=True)
    has_ref = anchors.root() is not None
    for task in a.tasks.split(","):
        rows = [_run(["--child", task, v, str(a.video_batch)], a.threads)
                for v in (["reference"] if has_ref else []) + ["fp32", "default"]]
        flops = rows[0].get("flops") if has_ref else None
        what = ("CycleGAN step, 128 px, batch 1" if task == "cyclegan" else
                f"ConvLSTM step, OpenSTL Moving MNIST config, batch {a.video_batch}")
        ref_name = "reference (pytorch-CycleGAN-and-pix2pix)" if task == "cyclegan" else "OpenSTL ConvLSTM_Model"
        print(f"\n{what}" + (f", {flops / 1e9:.0f} GFLOP per step (FlopCounterMode on the reference's step)"
                             if flops else "; no anchors folder: no reference or FLOP count"), flush=True)
        print(f"  {'variant':46s} {'s/step':>7s}  " + "  ".join(f"{c:>11s}" for c in CATEGORIES) + "   MFU")
        for r in rows:
            prec = default if r["variant"] == "default" else "fp32"
            name = {"reference": ref_name + ", fp32", "fp32": "ours, fp32", "default": f"ours, default ({prec})"}[
                r["variant"]]
            split = r["split"]
            total = sum(split.values())
            cells = "  ".join(f"{split[c]:5.2f} {100 * split[c] / total:3.0f}%" for c in CATEGORIES)
            mfu = (f"{100 * flops / r['s_step'] / peaks[prec]:4.0f}% of {prec} peak ({flops / r['s_step'] / 1e9:.0f} "
                   f"GFLOP/s)" if flops else "")
            print(f"  {name:46s} {r['s_step']:7.2f}  {cells}   {mfu}", flush=True)


if __name__ == "__main__":
    main()
