"""CycleGAN training and inference speed against the reference, pytorch-CycleGAN-and-pix2pix.

With the anchors folder (../shared/anchors or $GANAPPS_ANCHORS; `benchmarks/anchors.py`), the real reference code:
1. its own train.py against `ganapps cyclegan train` (float32 and our default precision: bf16 where the CPU has
   native bf16), resnet_9blocks + basic PatchGAN, instance norm, lsgan, batch 1, load 143 / crop 128, the built-in
   data, all cores (`--threads`), variants interleaved per repetition, each its own process: s/iter, peak RSS
   (wait4), the speed-up, and MFU (the reference step's FLOPs by FlopCounterMode / s per iter / the measured
   matmul peak of the precision);
2. its own test.py against `ganapps cyclegan translate` (same weights) at 256, 512 and 1024 px: images/s.
Without it, a faithful re-implementation of the reference's step written here (same nets, LSGAN via MSELoss,
ImagePool, Adam, G then D_A / D_B with 0.5 factors, 6 separate generator calls), crops 64 and 128, and inference
of our generator alone; the output says which it measured.

    python -m benchmarks cyclegan            # or: python -m benchmarks.bench_cyclegan [--reps 2] [--only train]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

LAST_TRAINER = None  # the trainer `_ours` built last (bench_profile labels its data fetch)

VARIANTS = {  # name -> options of our task (None: the reference re-implementation)
    "reference": None,
    "ours-unbatched": dict(use_batched_calls=False, use_amp=False),
    "ours-batched": dict(use_batched_calls=True, use_amp=False),
    "ours-batched-cl": dict(use_batched_calls=True, use_channels_last=True, use_amp=False),
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
    global LAST_TRAINER
    LAST_TRAINER = tr

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
    """{"fp32": FLOP/s, "bf16": FLOP/s}: the best of 5 2048^3 matmuls each (`bench_profile.matmul_peak`)."""
    from benchmarks.bench_profile import matmul_peak as peak

    return {name: peak(name) for name in ("fp32", "bf16")}


def reference_flops(crop: int) -> float:
    """FLOPs of one step of the reference's own CycleGANModel (torch's FlopCounterMode), at batch 1."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import anchors

    model, set_input = anchors.reference_cyclegan(crop)
    set_input(torch.rand(1, 3, crop, crop) * 2 - 1, torch.rand(1, 3, crop, crop) * 2 - 1)
    with FlopCounterMode(display=False) as fc:
        model.optimize_parameters()
    return fc.get_total_flops()


def _run_child(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_cyclegan", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _run_measured(cmd: list[str], env: dict, cwd: str | None = None, log: Path | None = None) -> tuple[float, float]:
    """Run `cmd` to completion; (wall seconds, peak RSS in MB of that process, from wait4's rusage)."""
    t0 = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text().strip().splitlines()[-3:] if log else []
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {tail}")
    return wall, usage.ru_maxrss / 1024


def _median(v: list[float]) -> float:
    import statistics

    return statistics.median(v)


def _side_by_side_setup(threads: int) -> tuple[Path, str, str, str, dict]:
    """What both side-by-side runs need: (the reference checkout, its extra deps on PYTHONPATH, our `ganapps`
    executable, our default precision here ("bf16" or "fp32"), the environment with `threads` threads each and
    use_amp auto left to the CPU)."""
    import torch

    from benchmarks import anchors
    from ganapps.engine.runtime import native_bf16

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("GANAPPS_AUTO_AMP", None)
    return (anchors.cyclegan_dir(), os.environ.get("REFDEPS", "/tmp/refdeps"),
            str(Path(sys.executable).with_name("ganapps")),
            "bf16" if native_bf16(torch.device("cpu")) else "fp32", env)


def side_by_side(reps: int, iters: int, threads: int, warm: int = 3, out: Path = Path("/tmp/bench-cyclegan-sbs")) -> None:
    """The reference's own train.py against `ganapps cyclegan train` (float32 and the default precision), same
    data (the built-in set), same settings, `threads` torch threads each, variants interleaved per repetition.
    s/iter: the reference's printed per-iteration compute time, our metrics.jsonl time/step (which also counts
    the batch fetch), medians after `warm` warm-up iterations. Ours runs `--preset reference` (the reference's
    recipe: ngf/ndf 64, identity 0.5, pool 50...; the default preset is the painting recipe, a smaller net)."""
    import shutil

    from ganapps.recipes.cyclegan_builtin import build

    data = str(build(quiet=True))
    ref, deps, ga, default, env = _side_by_side_setup(threads)
    print(f"\nCycleGAN training step side by side: the reference's own train.py ({ref}) against ganapps cyclegan "
          f"train, resnet_9blocks + basic PatchGAN, instance norm, lsgan, batch 1, load 143 / crop 128, built-in "
          f"data, {threads} threads each, {iters} iterations, median after {warm} warm-up; ours' default precision "
          f"here: {default}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    flops = _run_child(["--flops-child"], threads)["flops"]
    peak = _run_child(["--peak-child"], threads)
    print(f"  the reference's step: {flops / 1e9:.0f} GFLOP (FlopCounterMode); matmul peak (2048^3, {threads} threads): "
          f"fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s", flush=True)

    def mfu(s_iter: float, prec: str) -> str:
        return f"MFU {100 * flops / s_iter / peak[prec]:.0f}% of {prec}"

    ratios: dict[str, list[float]] = {"fp32": [], "default": []}
    for rep in range(1, reps + 1):
        for d in ("ref", "fp32", "default"):
            shutil.rmtree(out / f"{d}{rep}", ignore_errors=True)
        load = os.getloadavg()[0]
        wall_r, rss_r = _run_measured(
            [sys.executable, "train.py", "--dataroot", data, "--name", f"ref{rep}", "--checkpoints_dir", str(out),
             "--model", "cycle_gan", "--netG", "resnet_9blocks", "--netD", "basic", "--norm", "instance",
             "--load_size", "143", "--crop_size", "128", "--batch_size", "1", "--max_dataset_size", str(iters),
             "--n_epochs", "1", "--n_epochs_decay", "0", "--num_threads", "0", "--print_freq", "1",
             "--display_freq", "1000000", "--update_html_freq", "1000000", "--save_latest_freq", "1000000",
             "--save_epoch_freq", "1000000", "--no_html"],
            {**env, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": deps}, cwd=str(ref), log=out / f"ref{rep}.log")
        log = (out / f"ref{rep}" / "loss_log.txt").read_text()
        t_ref = _median([float(x) for x in re.findall(r"time: ([0-9.]+)", log)][warm:])
        row = {"ref": (t_ref, rss_r)}
        for v, extra in (("fp32", ["--no-use-amp"]), ("default", [])):
            run = out / f"{v}{rep}"
            _, rss = _run_measured(
                [ga, "cyclegan", "train", "--preset", "reference", "--data", data, "--out", str(run), "--gen",
                 "resnet_9blocks", "--disc",
                 "basic", "--norm", "instance", "--loss", "lsgan", "--load-size", "143", "--crop-size", "128",
                 "--batch-size", "1", "--steps", str(iters), "--threads", str(threads), "--log-every-steps", "1",
                 "--sample-every-steps", "1000000", "--checkpoint-every-steps", "1000000", "--no-write-report",
                 "--no-use-tensorboard", "--eval-images", "1", "--quiet", *extra], env, log=out / f"{v}{rep}.log")
            times = [json.loads(line)["time/step"] for line in (run / "metrics.jsonl").read_text().splitlines()
                     if "time/step" in line]
            row[v] = (_median(times[warm:]), rss)
        cells = [f"reference {row['ref'][0]:.3f} s/iter (RSS {row['ref'][1]:.0f} MB, {mfu(row['ref'][0], 'fp32')})"]
        for v, name in (("fp32", "ours fp32"), ("default", f"ours default ({default})")):
            ratio = t_ref / row[v][0]
            ratios[v].append(ratio)
            cells.append(f"{name} {row[v][0]:.3f} ({ratio:.2f}x, RSS {row[v][1]:.0f} MB, "
                         f"{mfu(row[v][0], 'fp32' if v == 'fp32' else default)})")
        print(f"  rep {rep} (load average {load:.1f} at its start): " + " | ".join(cells), flush=True)
    print(f"  speed-up over the reference's train.py, per repetition: float32 "
          f"{', '.join(f'{r:.2f}x' for r in ratios['fp32'])}; default ({default}) "
          f"{', '.join(f'{r:.2f}x' for r in ratios['default'])}", flush=True)


def inference_vs_test(sizes: list[int], n: int, threads: int, out: Path = Path("/tmp/bench-cyclegan-inf")) -> None:
    """`ganapps cyclegan translate` against the reference's own test.py (--model test, the same resnet_9blocks
    weights, --preprocess none, batch 1), on `n` random images per size; images/s from the marginal time per
    image: (wall with n images - wall with 1 image) / (n - 1), each a fresh process, so start-up and model loading
    cancel. Ours in float32 and at its default precision (bf16 where the CPU has it)."""
    import shutil

    import numpy as np
    import torch
    from PIL import Image

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.nets import build_generator
    from ganapps.cyclegan.pipeline import Translator
    from ganapps.engine.stabilizers import init_weights

    ref, deps, ga, default, env = _side_by_side_setup(threads)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(0)
    gens = [init_weights(build_generator("resnet_9blocks", 3, 3, 64, "instance", False)) for _ in range(2)]
    (out / "ref" / "net").mkdir(parents=True)
    torch.save(gens[0].state_dict(), out / "ref" / "net" / "latest_net_G.pth")
    Translator(gens[0], gens[1], config=CycleGANConfig(gen="resnet_9blocks", norm="instance")).export(out / "ours")
    rng = np.random.default_rng(0)
    print(f"\ntranslation inference: ganapps cyclegan translate against the reference's test.py (same weights, "
          f"batch 1, no resizing), {threads} threads, marginal images/s over {n} images (each a fresh process)",
          flush=True)
    for size in sizes:
        for count in (1, n):
            folder = out / f"in{size}_{count}"
            folder.mkdir()
            for k in range(count):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{k}.png")
        load = os.getloadavg()[0]
        walls: dict[str, dict[int, float]] = {"ref": {}, "fp32": {}, "default": {}}
        for count in (1, n):
            folder = out / f"in{size}_{count}"
            walls["ref"][count], _ = _run_measured(
                [sys.executable, "test.py", "--dataroot", str(folder), "--name", "net", "--checkpoints_dir",
                 str(out / "ref"), "--model", "test", "--no_dropout", "--netG", "resnet_9blocks", "--norm",
                 "instance", "--preprocess", "none", "--num_test", str(count), "--results_dir",
                 str(out / f"ref_results{size}_{count}")],
                {**env, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": deps}, cwd=str(ref), log=out / "ref_test.log")
            for v, extra in (("fp32", ["--no-use-amp"]), ("default", [])):
                walls[v][count], _ = _run_measured(
                    [ga, "cyclegan", "translate", str(folder), "--model", str(out / "ours"), "--out",
                     str(out / f"{v}{size}_{count}"), "--device", "cpu", "--quiet", *extra], env,
                    log=out / "ours_translate.log")
        rate = {v: (n - 1) / max(1e-9, w[n] - w[1]) for v, w in walls.items()}
        print(f"  {size:4d} px (load average {load:.1f}): reference test.py {rate['ref']:.2f} images/s | ours fp32 "
              f"{rate['fp32']:.2f} ({rate['fp32'] / rate['ref']:.2f}x) | ours default ({default}) "
              f"{rate['default']:.2f} ({rate['default'] / rate['ref']:.2f}x)", flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--crops", default="64,128")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 1))),
                   help="torch threads in every process (default: all cores, as a user runs)")
    p.add_argument("--reps", type=int, default=2, help="side-by-side repetitions against the reference's train.py")
    p.add_argument("--sbs-iters", type=int, default=16, help="training iterations per side-by-side run")
    p.add_argument("--sizes", default="256,512,1024", help="inference sizes against the reference's test.py")
    p.add_argument("--images", type=int, default=4, help="images per inference run")
    p.add_argument("--only", choices=("train", "inference"), help="one of the two comparisons with the anchors")
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "CROP", "ITERS"))
    p.add_argument("--inference-child", nargs=2, metavar=("CROP", "ITERS"))
    p.add_argument("--peak-child", action="store_true")
    p.add_argument("--flops-child", action="store_true")
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
    if a.flops_child:
        print(json.dumps({"flops": reference_flops(128)}))
        return
    from benchmarks import anchors

    if anchors.root() is not None:
        print(f"measuring against the real reference code in {anchors.root()} (set $GANAPPS_ANCHORS to move it)",
              flush=True)
        if a.only != "inference":
            side_by_side(a.reps, a.sbs_iters, a.threads)
        if a.only != "train":
            inference_vs_test([int(s) for s in a.sizes.split(",")], a.images, a.threads)
        return
    print("no anchors folder (../shared/anchors or $GANAPPS_ANCHORS): measuring against the re-implementation of "
          "the reference's step written in this benchmark", flush=True)
    reimplementation(a)


def reimplementation(a) -> None:
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
