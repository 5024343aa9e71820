"""Medical slice synthesis: quality of a model on held-out MNI152 T1 axial slices against two non-GAN baselines
on the same data, data-pipeline throughput (with and without the volume cache) and training throughput.

    python -m benchmarks medical            # the default model, models/medical-default
    GANAPPS_MEDICAL_MODEL=runs/x python -m benchmarks medical

Baselines: (a) a Gaussian in the PCA space of the training slices (all components, per-component variance),
(b) training slices picked at random (the memorization ceiling). Reference row: (c) the held-out real slices
themselves, which shows what the memorization audit says of new, real slices one millimetre away from training
slices. Fetches the MNI152 data on first use (`python -m ganapps.recipes.medical_mni152` does it ahead of time).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import torch

N_FAKE = 512


def quality_table(model: Path) -> dict[str, dict[str, float]]:
    from ganapps.medical.evaluate import pca_gaussian, quality, random_train, reference_sets
    from ganapps.medical.pipeline import Synthesizer

    synth = Synthesizer.from_checkpoint(model)
    real_set, train_set = reference_sets(synth, None)
    real, train = real_set.images(), train_set.images()
    rows = {
        "GAN (default model, EMA G)": synth(N_FAKE, seed=0),  # intensity-calibrated when the model is
        "(a) PCA Gaussian": pca_gaussian(train, N_FAKE),
        "(b) random training slices": random_train(train, N_FAKE),
        "(c) held-out real slices": real,
    }
    print(f"model {model}: {len(train)} training and {len(real)} held-out MNI152 T1 axial slices "
          f"({synth.size} px); {N_FAKE} samples per generator")
    results = {name: quality(x, real, train) for name, x in rows.items()}
    keys = ["swd", "kid", "kid_pixels", "precision", "recall", "ms_ssim_fake", "near_copy_share", "nn_ratio_median"]
    print(f"{'':30s}" + "".join(f"{k:>16s}" for k in keys))
    for name, r in results.items():
        print(f"{name:30s}" + "".join(f"{r[k]:16.3f}" for k in keys))
    print(f"(real held-out MS-SSIM {results['(c) held-out real slices']['ms_ssim_real']:.3f}; "
          f"vs held-out: SWD x1e3, KID x1e3 on intensity/gradient histograms + 8x8 layout (kid) and on 16x16 pixels (kid_pixels), "
          f"precision/recall on the intensity features; row (c) compares the held-out set with itself; near-copy = nearest-training-slice distance "
          f"< 0.5 x median train-train neighbour distance, 32x32 pixels)")
    return results


def data_throughput() -> dict[str, float]:
    from ganapps.medical.config import MedicalConfig
    from ganapps.medical.data import SliceDataset

    cfg = MedicalConfig(size=64)
    t0 = time.perf_counter()
    ds = SliceDataset(cfg, "all")
    index_s = time.perf_counter() - t0
    n = 5000
    t0 = time.perf_counter()
    for i in range(n):
        ds[i % len(ds)]
    cached = n / (time.perf_counter() - t0)
    nocache = SliceDataset(dataclasses.replace(cfg, cache_mb=0), "all")
    m = 10
    t0 = time.perf_counter()
    for i in range(m):
        nocache[i]
    uncached = m / (time.perf_counter() - t0)
    print(f"data: index {len(ds)} slices in {index_s:.2f} s (read NIfTI, RAS, percentiles, slice, pad, resize); "
          f"{cached:,.0f} slices/s with cache, {uncached:.2f} slices/s without (every access re-reads the volume)")
    return {"index_s": index_s, "cached_slices_per_s": cached, "uncached_slices_per_s": uncached}


def train_throughput(steps: int = 30) -> dict[str, float]:
    from ganapps.engine.trainer import train
    from ganapps.medical.config import PRESETS, MedicalConfig
    from ganapps.medical.task import MedicalTask

    with tempfile.TemporaryDirectory() as tmp:
        cfg = MedicalConfig(**{**PRESETS["mni"], "steps": steps, "out": tmp + "/run", "quiet": True,
                               "use_tensorboard": False, "write_report": False, "sample_every_steps": 10_000,
                               "checkpoint_every_steps": 10_000, "device": "cpu", "use_amp": False})
        task = MedicalTask(cfg)
        t0 = time.perf_counter()
        train(task)
        wall = time.perf_counter() - t0
    print(f"training (preset mni: dcgan, 64 px, width 12, batch {cfg.batch_size}, {torch.get_num_threads()} "
          f"CPU thread(s)): {steps / wall:.2f} steps/s, {steps * cfg.batch_size / wall:.0f} images/s "
          f"(incl. start-up, final checkpoint and evaluation)")
    return {"steps_per_s": steps / wall}


def sampling_speed(model: Path, repeats: int = 3) -> dict[str, float]:
    """Slices/s of `model` (best of `repeats`): 512 samples in one call, and for position models one whole-brain
    stack; intensity-calibrated (as `sample` writes them) and raw (`--raw`) side by side."""
    from ganapps.medical.pipeline import Synthesizer

    out = {}
    for name, calibrate in (("calibrated", True), ("raw", False)):
        synth = Synthesizer.from_checkpoint(model, device="cpu", calibrate=calibrate)
        jobs = {"512 samples": lambda s=synth: s(N_FAKE, seed=0)}
        if synth.config.condition == "position" and float(synth.gen.position_step) > 0:
            jobs["one stack"] = lambda s=synth: s.stack(seed=0)
        for job, fn in jobs.items():
            n, best = len(fn()), float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            out[f"{job} {name}"] = n / best
    print("sampling (" + f"{torch.get_num_threads()} CPU thread(s), slices/s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in out.items()))
    return out


def main() -> None:
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from ganapps.medical.data import mni_paths

    mni_paths()  # fetched on first use
    root = Path(__file__).resolve().parents[1]
    model = Path(os.environ.get("GANAPPS_MEDICAL_MODEL", root / "models" / "medical-default"))
    data_throughput()
    train_throughput()
    if (model / "weights.safetensors").is_file() or (model / "checkpoints").is_dir():
        quality_table(model)
        sampling_speed(model)
    else:
        print(f"{model}: no model; skipped the quality table")


if __name__ == "__main__":
    main()
