"""Engine benchmarks: trainer overhead against a bare loop doing the same maths, CPU threads for small nets,
and bf16 autocast against float32 for a conv GAN step (the evidence behind the CPU defaults)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

from ganapps.engine.losses import get_loss
from ganapps.engine.trainer import train
from ganapps.toy.config import ToyConfig
from ganapps.toy.data import sample
from ganapps.toy.nets import Discriminator, Generator
from ganapps.toy.task import ToyTask

STEPS = 600


def bare_loop(steps: int, batch: int, hidden: int) -> float:
    """The toy recipe's maths written as a plain loop: D step, then G step. Returns seconds per step."""
    torch.manual_seed(0)
    gen, disc = Generator(16, hidden, 3), Discriminator(hidden, 3)
    opt_g = torch.optim.Adam(gen.parameters(), 1e-3, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), 1e-3, betas=(0.0, 0.9))
    loss = get_loss("hinge")
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        real = sample("ring", batch, g)
        fake = gen(torch.randn(batch, 16)).detach()
        d = loss.d(disc(real), disc(fake))
        opt_d.zero_grad()
        d.backward()
        opt_d.step()
        for p in disc.parameters():
            p.requires_grad_(False)
        gl = loss.g(disc(gen(torch.randn(batch, 16))))
        opt_g.zero_grad()
        gl.backward()
        opt_g.step()
        for p in disc.parameters():
            p.requires_grad_(True)
    return (time.perf_counter() - t0) / steps


def trainer_loop(steps: int, batch: int, hidden: int) -> float:
    out = tempfile.mkdtemp()
    try:
        cfg = ToyConfig(out=out + "/run", steps=steps, batch_size=batch, hidden=hidden, gan_loss="hinge", lr_g=1e-3,
                        lr_d=1e-3, beta1=0.0, beta2=0.9, quiet=True, use_tensorboard=False, write_report=False,
                        sample_every_steps=10**9, checkpoint_every_steps=10**9, log_every_steps=50,
                        ema_halflife_images=0.0, use_spectral_norm=False, use_amp=False)  # bare_loop's maths
        task = ToyTask(cfg)
        task.evaluate = None  # time the loop only
        task.preview = None
        t0 = time.perf_counter()
        train(task)
        return (time.perf_counter() - t0) / steps
    finally:
        shutil.rmtree(out, ignore_errors=True)


def conv_step_time(dtype: torch.dtype | None, steps: int = 6) -> float:
    """One DCGAN-style D+G step at 64x64, batch 16, with or without bf16 autocast."""
    torch.manual_seed(0)
    gen = nn.Sequential(nn.ConvTranspose2d(64, 256, 4, 1, 0), nn.ReLU(), nn.ConvTranspose2d(256, 128, 4, 2, 1),
                        nn.ReLU(), nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
                        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Tanh())
    disc = nn.Sequential(nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(128, 256, 4, 2, 1),
                         nn.LeakyReLU(0.2), nn.Conv2d(256, 1, 4, 1, 0))
    opt_g, opt_d = torch.optim.Adam(gen.parameters()), torch.optim.Adam(disc.parameters())
    loss = get_loss("nonsaturating")
    real = torch.rand(16, 3, 64, 64) * 2 - 1

    def ctx():
        return torch.autocast("cpu", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)

    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with ctx():
            fake = gen(torch.randn(16, 64, 1, 1))
            d = loss.d(disc(real), disc(fake.detach()))
        opt_d.zero_grad()
        d.backward()
        opt_d.step()
        with ctx():
            gl = loss.g(disc(fake))
        opt_g.zero_grad()
        gl.backward()
        opt_g.step()
        if i:  # the first step warms up kernels
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _threads_child(threads: int) -> None:
    torch.set_num_threads(threads)
    print(trainer_loop(STEPS, 256, 256))


def main() -> None:
    torch.set_num_threads(1)
    bare = bare_loop(STEPS, 256, 256)
    ours = trainer_loop(STEPS, 256, 256)
    print(f"toy step (hinge, MLP 3x256, batch 256, 1 thread): bare loop {bare * 1e3:.2f} ms, "
          f"trainer {ours * 1e3:.2f} ms, trainer overhead x{ours / bare:.2f}")
    per_thread = {}
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", f"from benchmarks.bench_engine import _threads_child; "
                              f"_threads_child({threads})"], capture_output=True, text=True, check=True)
        per_thread[threads] = float(out.stdout.strip().splitlines()[-1])
    print(f"toy step by torch threads: 1 -> {per_thread[1] * 1e3:.2f} ms, 2 -> {per_thread[2] * 1e3:.2f} ms "
          f"(2 threads x{per_thread[1] / per_thread[2]:.2f} the speed of 1)")
    torch.set_num_threads(2)
    fp32 = conv_step_time(None)
    bf16 = conv_step_time(torch.bfloat16)
    print(f"conv GAN step 64x64 batch 16 (2 threads): float32 {fp32 * 1e3:.0f} ms, bf16 autocast "
          f"{bf16 * 1e3:.0f} ms, bf16 speed-up x{fp32 / bf16:.2f}")


if __name__ == "__main__":
    main()
