"""Recipes on the built-in photo <-> painting set (a local change: flattened regions and dark outlines), scored
as the shipped model is: the 48 test photos (never in training) at 128 px, photo -> painting PSNR/SSIM to the true
paintings, SWD and pixel KID of both directions against the other domain's test images, the checkerboard index,
each next to the untranslated inputs' figures. One run at a time (1 thread, bf16 autocast); a run whose
result.json exists is not run again.

    python -m benchmarks painting                                    # every recipe below
    python -m benchmarks.bench_painting --recipes hybrid --out runs/bench-painting
    python -m benchmarks.bench_painting --table runs/bench-painting

Recipes (preset + options; crops of the 128x128 images at `crop` px, `steps` steps, scored at `eval_at`):
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CROP64 = {"preprocess": "crop", "load_size": 128, "crop_size": 64}
HYBRID = {"gen": "resnet_6blocks", "ngf": 32, "upsample": "resize", "use_colour_branch": True, "lr_g": 2e-4,
          "lr_global": 1e-3}
RECIPES: dict[str, dict] = {  # name -> {"preset", "options", "steps", "eval_at"}
    # the default recipe (global colour/tone branch only): what a global change reaches on this set
    "colourtone": {"preset": "default", "options": {**CROP64}, "steps": 1000, "eval_at": (500, 1000)},
    # colour branch + ResNet detail residual (resize-conv), identity kept for half the run
    "hybrid": {"preset": "default", "options": {**CROP64, **HYBRID, "identity_decay_steps": 500}, "steps": 1000,
               "eval_at": (500, 1000)},
    # the ResNet alone with resize-conv upsampling, the dual critic and the colour loss (no colour branch)
    "resnet_resize": {"preset": "default", "options": {**CROP64, "gen": "resnet_6blocks", "ngf": 32, "upsample": "resize",
                                                       "lr_g": 2e-4, "adv_weight": 2.0, "identity_decay_steps": 500},
                      "steps": 1000, "eval_at": (500, 1000)},
    # the reference's recipe at the same size
    "reference": {"preset": "reference_fast", "options": {**CROP64}, "steps": 1000, "eval_at": (500, 1000)},
}
__doc__ += "\n".join(f"    {k}: {v}" for k, v in RECIPES.items())


def table(out: Path) -> str:
    """A markdown table of every finished run under `out`."""
    rows = ["| recipe | step | CPU s/step | a2b PSNR (identity) | SSIM (identity) | a2b SWD (identity) | a2b KID "
            "(identity) | b2a SWD (identity) | b2a KID (identity) | checkerboard a2b / b2a (energy a2b) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(out.glob("*/result.json")):
        r = json.loads(f.read_text())
        for e in r["evals"]:
            rows.append(
                f"| {f.parent.name} | {e['step']} | {r['cpu_s_per_step']:.3f} | {e['a2b/psnr_db']:.2f} "
                f"({e['a2b/psnr_identity_db']:.2f}) | {e['a2b/ssim']:.3f} ({e['a2b/ssim_identity']:.3f}) | "
                f"{e['a2b/swd']:.1f} ({e['a2b/swd_identity']:.1f}) | {e['a2b/kid_pixels_x1e3']:.1f} "
                f"({e['a2b/kid_pixels_identity_x1e3']:.1f}) | {e['b2a/swd']:.1f} ({e['b2a/swd_identity']:.1f}) | "
                f"{e['b2a/kid_pixels_x1e3']:.1f} ({e['b2a/kid_pixels_identity_x1e3']:.1f}) | "
                f"{e['a2b/checkerboard_index']:.2f} / {e['b2a/checkerboard_index']:.2f} "
                f"({e['a2b/checkerboard_energy_index']:.2f}) |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--out", default="runs/bench-painting")
    p.add_argument("--table", metavar="DIR", help="only print the table of the finished runs in DIR")
    p.add_argument("--child", metavar="RECIPE", help=argparse.SUPPRESS)
    a = p.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    out = Path(a.out)
    if a.table:
        print(table(Path(a.table)))
        return
    if a.child:
        from benchmarks.bench_recipes import train_and_score
        from ganapps.recipes.cyclegan_builtin import build

        r = RECIPES[a.child]
        train_and_score(build(), out / a.child, r["preset"], r["options"], steps=r["steps"], eval_at=r["eval_at"],
                        size=128, ground_truth="testA_painted", directions=("a2b", "b2a"))
        return
    for name in a.recipes.split(","):
        if (out / name / "result.json").is_file():
            continue
        print(f"{name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "benchmarks.bench_painting", "--out", str(out), "--child", name],
                       check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(table(out))


if __name__ == "__main__":
    main()
