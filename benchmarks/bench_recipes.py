"""How fast each CycleGAN recipe learns a global change: the colour-grade and tone-curve tasks of
`benchmarks/colour_tasks.py` (real photos with known ground truth), 800 steps at 64x64 crops, batch 1, bf16
autocast, 1 thread, PSNR/SSIM to the ground truth on the 48 held-out test crops at steps 200, 400 and 800, and
the checkerboard index of the outputs (`ganapps cyclegan evaluate --ground-truth` on each checkpoint; the EMA
generator where the recipe keeps one). Recipes: the `default` preset of `ganapps cyclegan train` against the
`reference` preset (both at the CPU size of the `fast` presets: resnet_6blocks ngf 32 for the reference).

One run at a time, each in its own process; a run whose result.json exists is not run again.

    python -m benchmarks recipes                                   # every global task, default vs reference
    python -m benchmarks.bench_recipes --tasks matrix,gamma --recipes default --out runs/bench-recipes
    python -m benchmarks.bench_recipes --table runs/bench-recipes  # print the table of finished runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STEPS = 800
EVAL_AT = (200, 400, 800)
SIZE = {"preprocess": "crop", "load_size": 64, "crop_size": 64}
RECIPES = {  # recipe -> (preset, options over it)
    "colour": ("colour_fast", {}),
    "default": ("fast", {}),
    "reference": ("reference_fast", {}),
}


def train_and_score(data: Path, out: Path, preset: str, options: dict, *, steps: int, eval_at: tuple[int, ...],
                    size: int, ground_truth: str, directions: tuple[str, ...] = ("a2b",)) -> dict:
    """Train `preset` + `options` on `data` (reference layout) in this process, 1 thread, bf16 autocast (unless
    `options` set use_amp), a
    checkpoint at every step of `eval_at`; then score each of those checkpoints with `evaluate_folders` on
    testA/testB at `size` px (PSNR/SSIM against data/`ground_truth` for a2b). Writes and returns out/result.json."""
    import shutil

    import torch

    from ganapps.cyclegan.config import PRESETS, CycleGANConfig
    from ganapps.cyclegan.pipeline import Translator, evaluate_folders
    from ganapps.cyclegan.task import CycleGANTask
    from ganapps.engine.trainer import train

    torch.set_num_threads(1)
    if (out / "run").exists():  # an unfinished earlier attempt
        shutil.rmtree(out / "run")
    every = min(eval_at) if all(s % min(eval_at) == 0 for s in eval_at) else 1
    cfg = CycleGANConfig(**{**PRESETS[preset], "use_amp": True, **options, "data": str(data), "out": str(out / "run"),
                            "steps": steps, "threads": 1, "quiet": True,
                            "checkpoint_every_steps": every, "keep_checkpoints": steps // every,
                            "sample_every_steps": steps, "use_tensorboard": False, "write_report": False,
                            "log_every_steps": 50, "eval_images": 48})
    c0, t0 = time.process_time(), time.perf_counter()
    train(CycleGANTask(cfg))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    result = {"preset": preset, "options": options, "steps": steps, "train_cpu_s": round(cpu, 1),
              "train_wall_s": round(wall, 1), "cpu_s_per_step": round(cpu / steps, 3), "evals": []}
    for step in eval_at:
        t = Translator.from_checkpoint(out / "run" / "checkpoints" / f"step_{step}", device="cpu")
        ev: dict = {"step": step}
        for d in directions:
            r = evaluate_folders(t, data / "testA", data / "testB", direction=d, size=size,
                                 ground_truth=data / ground_truth if d == "a2b" else None)
            ev.update({k if len(directions) > 1 else k.removeprefix("a2b/"): round(v, 4) for k, v in r.items()
                       if "/" in k})
        result["evals"].append(ev)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def run_one(task: str, recipe: str, data: Path, out: Path) -> dict:
    """One recipe on one colour task: 800 steps at 64 px, scored at EVAL_AT."""
    preset, extra = RECIPES[recipe]
    result = train_and_score(data, out, preset, {**SIZE, **extra}, steps=STEPS, eval_at=EVAL_AT, size=64,
                             ground_truth="testA_true")
    result = {"task": task, "recipe": recipe, **result}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def table(out: Path) -> str:
    """A markdown table of every finished run under `out`."""
    rows = ["| task | recipe | identity PSNR | PSNR @200 / 400 / 800 | SSIM identity -> 800 | checkerboard index "
            "@800 (energy) | CPU s/step |", "|---|---|---|---|---|---|---|"]
    for f in sorted(out.glob("*/result.json")):
        r = json.loads(f.read_text())
        ev = {e["step"]: e for e in r["evals"]}
        last = ev[max(ev)]
        psnr = " / ".join(f"{ev[s]['psnr_db']:.2f}" for s in sorted(ev))
        rows.append(f"| {r['task']} | {r['recipe']} | {last['psnr_identity_db']:.2f} | {psnr} | "
                    f"{last['ssim_identity']:.3f} -> {last['ssim']:.3f} | {last['checkerboard_index']:.2f} "
                    f"({last['checkerboard_energy_index']:.2f}) | {r['cpu_s_per_step']:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.colour_tasks import GLOBAL_TASKS, build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(GLOBAL_TASKS))
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--out", default="runs/bench-recipes")
    p.add_argument("--table", metavar="DIR", help="only print the table of the finished runs in DIR")
    p.add_argument("--child", nargs=2, metavar=("TASK", "RECIPE"), help=argparse.SUPPRESS)
    a = p.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    out = Path(a.out)
    if a.table:
        print(table(Path(a.table)))
        return
    if a.child:
        task, recipe = a.child
        run_one(task, recipe, build(task, out / "data"), out / f"{task}-{recipe}")
        return
    for task in a.tasks.split(","):
        build(task, out / "data")
        for recipe in a.recipes.split(","):
            if (out / f"{task}-{recipe}" / "result.json").is_file():
                continue
            print(f"{task} / {recipe} ...", flush=True)
            subprocess.run([sys.executable, "-m", "benchmarks.bench_recipes", "--out", str(out), "--child", task,
                            recipe], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            r = json.loads((out / f"{task}-{recipe}" / "result.json").read_text())
            print("  " + ", ".join(f"@{e['step']} {e['psnr_db']:.2f} dB" for e in r["evals"])
                  + f"  (identity {r['evals'][0]['psnr_identity_db']:.2f} dB, {r['cpu_s_per_step']:.3f} CPU s/step)",
                  flush=True)
    print(table(out))


if __name__ == "__main__":
    main()
