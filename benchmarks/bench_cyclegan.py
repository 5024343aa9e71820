"""CycleGAN training and inference speed: our engine step against a faithful re-implementation of the reference's
training step (pytorch-CycleGAN-and-pix2pix `cycle_gan_model.py`: same nets, LSGAN via MSELoss, ImagePool,
Adam, G then D_A / D_B with 0.5 factors, 6 separate generator calls), batch 1, resnet_9blocks, crops 64 and 128.

Each variant runs in its own subprocess (so its peak RSS, from getrusage, is its own); prints s/iter, the ratio
to the reference, peak RSS, achieved FLOP/s against a measured matmul peak, and inference images/s.

    python -m benchmarks cyclegan            # or: python -m benchmarks.bench_cyclegan [--iters N] [--crops 64,128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

VARIANTS = {  # name -> options of our task (None: the reference re-implementation)
    "reference": None,
    "ours-unbatched": dict(use_batched_calls=False),
    "ours-batched": dict(use_batched_calls=True),
    "ours-batched-cl": dict(use_batched_calls=True, use_channels_last=True),
    "ours-batched-bf16": dict(use_batched_calls=True, use_amp=True),
    "ours-batched-bf16-cl": dict(use_batched_calls=True, use_amp=True, use_channels_last=True),
}


def _reference(crop: int):
    """The reference's nets and step, written out (its `optimize_parameters`)."""
    import itertools

    import torch
    from torch import nn

    from ganapps.cyclegan.nets import build_discriminator, build_generator
    from ganapps.engine.stabilizers import ImagePool, init_weights

    G_A, G_B = (init_weights(build_generator("resnet_9blocks", 3, 3, 64, "instance", False)) for _ in range(2))
    D_A, D_B = (init_weights(build_discriminator("basic", 3, 64, 3, "instance")) for _ in range(2))
    opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_A, pool_B = ImagePool(50), ImagePool(50)
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def gan(pred, real):
        return mse(pred, (torch.ones_like if real else torch.zeros_like)(pred))

    def step():
        real_A, real_B = torch.rand(1, 3, crop, crop) * 2 - 1, torch.rand(1, 3, crop, crop) * 2 - 1
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        for p in itertools.chain(D_A.parameters(), D_B.parameters()):
            p.requires_grad_(False)
        opt_G.zero_grad()
        loss_idt_A = l1(G_A(real_B), real_B) * 10 * 0.5
        loss_idt_B = l1(G_B(real_A), real_A) * 10 * 0.5
        loss_G = (gan(D_A(fake_B), True) + gan(D_B(fake_A), True) + l1(rec_A, real_A) * 10 + l1(rec_B, real_B) * 10
                  + loss_idt_A + loss_idt_B)
        loss_G.backward()
        opt_G.step()
        for p in itertools.chain(D_A.parameters(), D_B.parameters()):
            p.requires_grad_(True)
        opt_D.zero_grad()
        for D, real, fake in ((D_A, real_B, pool_B.query(fake_B)), (D_B, real_A, pool_A.query(fake_A))):
            loss_D = (gan(D(real), True) + gan(D(fake.detach()), False)) * 0.5
            loss_D.backward()
        opt_D.step()

    return step, G_A


def _ours(crop: int, opts: dict):
    import torch
    from torch.utils.data import Dataset

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.task import CycleGANTask
    from ganapps.engine.trainer import Trainer

    class Noise(Dataset):
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return {"a": torch.rand(3, crop, crop) * 2 - 1, "b": torch.rand(3, crop, crop) * 2 - 1}

    class Task(CycleGANTask):
        def dataset(self):
            return Noise()

    cfg = CycleGANConfig(out="/tmp/bench-cyclegan", crop_size=crop, load_size=crop, device="cpu", steps=10**6,
                         log_every_steps=10**6, use_tensorboard=False, **opts)
    tr = Trainer(Task(cfg))
    tr._build()

    def step():
        tr._run_step()
        tr.step += 1

    return step, tr.nets["gen_ab"]


def child(variant: str, crop: int, iters: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    step, gen = _reference(crop) if VARIANTS[variant] is None else _ours(crop, VARIANTS[variant])
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    s_iter = (time.perf_counter() - t0) / iters
    out = {"variant": variant, "crop": crop, "s_iter": s_iter,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if variant == "reference":
        with FlopCounterMode(display=False) as fc:
            step()
        out["flops_per_iter"] = fc.get_total_flops()
    return out


def inference_child(crop: int, iters: int) -> dict:
    import torch

    from ganapps.cyclegan.nets import build_generator

    gen = build_generator("resnet_9blocks", 3, 3, 64, "instance", False).eval()
    x = torch.rand(1, 3, crop, crop) * 2 - 1
    out = {"crop": crop}
    for name, ctx in (("fp32", None), ("bf16", torch.bfloat16)):
        with torch.no_grad(), torch.autocast("cpu", dtype=ctx, enabled=ctx is not None):
            gen(x)
            t0 = time.perf_counter()
            for _ in range(iters):
                gen(x)
        out[f"images_per_s_{name}"] = iters / (time.perf_counter() - t0)
    return out


def matmul_peak() -> dict:
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.rand(2048, 2048, dtype=dtype), torch.rand(2048, 2048, dtype=dtype)
        a @ b
        best = 0.0
        for _ in range(5):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * 2048**3 / (time.perf_counter() - t0))
        out[name] = best
    return out


def _run_child(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_cyclegan", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--crops", default="64,128")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "1")),
                   help="torch threads in every child (1: steadier on a shared machine)")
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "CROP", "ITERS"))
    p.add_argument("--inference-child", nargs=2, metavar=("CROP", "ITERS"))
    p.add_argument("--peak-child", action="store_true")
    a = p.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]), int(a.child[2]))))
        return
    if a.inference_child:
        print(json.dumps(inference_child(int(a.inference_child[0]), int(a.inference_child[1]))))
        return
    if a.peak_child:
        print(json.dumps(matmul_peak()))
        return
    import torch

    print(f"torch {torch.__version__}, {a.threads} thread(s) per run, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; batch 1, "
          f"resnet_9blocks + basic PatchGAN, instance norm, LSGAN, pool 50; {a.iters} timed iterations after 2 warm-up",
          flush=True)
    peak = _run_child(["--peak-child"], a.threads)
    print(f"matmul peak (2048^3): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s",
          flush=True)
    for crop in (int(c) for c in a.crops.split(",")):
        ref = None
        for v in a.variants.split(","):
            r = _run_child(["--child", v, str(crop), str(a.iters)], a.threads)
            if v == "reference":
                ref = r
            line = f"crop {crop:4d}  {v:22s} {r['s_iter']:7.3f} s/iter  peak RSS {r['peak_rss_mb']:6.0f} MB"
            if ref is not None:
                flops = ref["flops_per_iter"] / r["s_iter"]
                bf16 = "bf16" in v
                share = flops / peak["bf16" if bf16 else "fp32"]
                line += (f"  x{ref['s_iter'] / r['s_iter']:.2f} vs reference  {flops / 1e9:6.1f} GFLOP/s "
                         f"({100 * share:.0f}% of {'bf16' if bf16 else 'fp32'} matmul peak)")
            print(line, flush=True)
        inf = _run_child(["--inference-child", str(crop), str(max(3, a.iters))], a.threads)
        print(f"crop {crop:4d}  inference gen_ab batch 1: {inf['images_per_s_fp32']:.2f} images/s fp32, "
              f"{inf['images_per_s_bf16']:.2f} images/s bf16", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
