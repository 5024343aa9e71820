"""Does bf16 autocast train as well as float32? The evidence behind `use_amp: auto` (bf16 by default on CPUs with
native bf16): the same runs in float32 and bf16, two seeds each, one thread, one run at a time in its own process.

- toy: the default toy recipe (ring of 8 Gaussians) for `--toy-steps` steps: modes covered, high-quality share
  and reverse KL (PacGAN's protocol, `ganapps.toy.data.evaluate_samples`).
- colour grade: the `colour_fast` CycleGAN recipe on the `matrix` colour-grade task of `benchmarks/colour_tasks.py`
  (real photos, 3x3 colour matrix + offset, known ground truth) for `--colour-steps` steps at 64 px: PSNR / SSIM
  to the true translation of the 48 held-out crops (`bench_recipes.train_and_score`, which trains under bf16;
  float32 by `use_amp: false`).

Within noise means: the float32-bf16 gap of the seed means is no larger than the spread between the two seeds of
either precision.

    python -m benchmarks.amp_quality [--out runs/amp-quality] [--toy-steps 3000] [--colour-steps 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SEEDS = (0, 1)


def toy_child(out: Path, amp: bool, seed: int, steps: int) -> dict:
    import torch

    from ganapps.engine.trainer import train
    from ganapps.toy.config import ToyConfig
    from ganapps.toy.task import ToyTask

    torch.set_num_threads(1)
    cfg = ToyConfig(out=str(out), steps=steps, seed=seed, use_amp=amp, quiet=True, use_tensorboard=False,
                    write_report=False, sample_every_steps=steps, checkpoint_every_steps=steps)
    ev = train(ToyTask(cfg)).evaluation
    return {k.removeprefix("eval/"): v for k, v in ev.items()}


def colour_child(out: Path, amp: bool, seed: int, steps: int) -> dict:
    from benchmarks.bench_recipes import SIZE, train_and_score
    from benchmarks.colour_tasks import build

    data = build("matrix", out.parent / "data")
    r = train_and_score(data, out, "colour_fast", {**SIZE, "use_amp": amp, "seed": seed}, steps=steps,
                        eval_at=(steps,), size=64, ground_truth="testA_true")
    ev = r["evals"][-1]
    return {"psnr_db": ev["psnr_db"], "ssim": ev["ssim"], "psnr_identity_db": ev["psnr_identity_db"],
            "cpu_s_per_step": r["cpu_s_per_step"]}


def _spread(rows: list[dict], key: str) -> tuple[float, float]:
    v = [r[key] for r in rows]
    return sum(v) / len(v), max(v) - min(v)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/amp-quality")
    p.add_argument("--toy-steps", type=int, default=3000)
    p.add_argument("--colour-steps", type=int, default=400)
    p.add_argument("--child", nargs=4, metavar=("KIND", "AMP", "SEED", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    if a.child:
        kind, amp, seed, out = a.child[0], a.child[1] == "bf16", int(a.child[2]), Path(a.child[3])
        fn, steps = (toy_child, a.toy_steps) if kind == "toy" else (colour_child, a.colour_steps)
        r = fn(out, amp, seed, steps)
        (out / "amp_result.json").write_text(json.dumps(r))
        return
    root = Path(a.out)
    results: dict[tuple[str, str], list[dict]] = {}
    for kind in ("toy", "colour"):
        for seed in SEEDS:
            for prec in ("fp32", "bf16"):
                out = root / f"{kind}-{prec}-{seed}"
                f = out / "amp_result.json"
                if not f.is_file():
                    out.mkdir(parents=True, exist_ok=True)
                    subprocess.run([sys.executable, "-m", "benchmarks.amp_quality", "--toy-steps", str(a.toy_steps),
                                    "--colour-steps", str(a.colour_steps), "--child", kind, prec, str(seed), str(out)],
                                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                r = json.loads(f.read_text())
                results.setdefault((kind, prec), []).append(r)
                print(f"{kind:6s} {prec} seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in r.items()), flush=True)
    for kind, keys in (("toy", ("modes", "high_quality", "reverse_kl")), ("colour", ("psnr_db", "ssim"))):
        for key in keys:
            (m32, s32), (m16, s16) = _spread(results[kind, "fp32"], key), _spread(results[kind, "bf16"], key)
            verdict = "within noise" if abs(m32 - m16) <= max(s32, s16) else "OUTSIDE noise"
            print(f"{kind:6s} {key:13s} fp32 mean {m32:.4g} (seed spread {s32:.3g})  bf16 mean {m16:.4g} "
                  f"(seed spread {s16:.3g})  gap {abs(m32 - m16):.3g}: {verdict}", flush=True)


if __name__ == "__main__":
    main()
