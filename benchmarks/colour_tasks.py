"""Unpaired translation tasks with known ground truth, built from the built-in set's real photos (the pinned wheel
photos of `ganapps.recipes.cyclegan_builtin`): global colour grades and tone curves (and the built-in set's local
painting filter), each written as a dataset in the reference layout plus `testA_true/`, the true translation of
every testA image, so `ganapps cyclegan evaluate --ground-truth` scores PSNR/SSIM against it.

Domains as the built-in set: trainA = crops of the first half of each training photo, trainB = the transformed
crops of the second halves (unpaired, like graded and ungraded frames of the same footage); testA = crops of the
two test photos (never in training), testA_true = their transform, testB = other crops of the test photos,
transformed. Crops are 64x64 (the recipes benchmark's size), from the photo resized so its short side is 96,
160 or 256 px. Imports numpy, OpenCV, PIL and the built-in recipe only (no torch, no training code).

    python -m benchmarks.colour_tasks [DEST]   # build every task under DEST (default runs/colour-tasks), print
                                               # each one's untranslated (identity) PSNR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

SIZE = 64
SCALES = (96, 160, 256)
COUNTS = {"trainA": 600, "trainB": 600, "testA": 48, "testB": 48}
SEED = 12
FORMAT_VERSION = 1


def _f(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def _u8(y: np.ndarray) -> np.ndarray:
    return (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8)


def _lum(y: np.ndarray) -> np.ndarray:
    return y @ np.array([0.299, 0.587, 0.114], np.float32)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0, 1)
    return t * t * (3 - 2 * t)


# ---- ground-truth transforms, (H, W, 3) uint8 RGB -> same
def grade_matrix(x: np.ndarray) -> np.ndarray:
    """A cross-channel colour matrix + offset (a "cross-process" grade): y = M x + b, clipped."""
    m = np.array([[0.80, 0.35, -0.10], [-0.10, 0.75, 0.35], [0.35, -0.20, 0.55]], np.float32)
    return _u8(_f(x) @ m.T + np.array([0.04, 0.00, 0.14], np.float32))


def grade_teal_orange(x: np.ndarray) -> np.ndarray:
    """Split toning: shadows pushed to teal, highlights to orange (weights by luminance), saturation x1.4."""
    y = _f(x)
    w = _smoothstep((_lum(y)[..., None] - 0.15) / 0.7)
    y = y + (1 - w) * np.array([-0.16, 0.05, 0.14], np.float32) + w * np.array([0.16, 0.03, -0.16], np.float32)
    lum = _lum(y)[..., None]
    return _u8(lum + 1.4 * (y - lum))


def grade_warm_fade(x: np.ndarray) -> np.ndarray:
    """Warm white balance (R x1.25, B x0.6) with faded blacks: y = 0.75 (g x) + 0.16."""
    return _u8(0.75 * (_f(x) * np.array([1.25, 1.0, 0.6], np.float32)) + 0.16)


def grade_channel_curves(x: np.ndarray) -> np.ndarray:
    """A LUT-like curve per channel: R = x^0.5, G = smoothstep(smoothstep(x)), B = 0.2 + 0.6 x^1.6."""
    y = _f(x)
    return _u8(np.stack([y[..., 0] ** 0.5, _smoothstep(_smoothstep(y[..., 1])), 0.2 + 0.6 * y[..., 2] ** 1.6], -1))


def tone_s_curve(x: np.ndarray) -> np.ndarray:
    """Contrast S-curve (logistic, gain 12, mid 0.5, renormalised to [0, 1]) after gamma 0.7, all channels."""
    y = _f(x) ** 0.7
    lo, hi = 1 / (1 + np.exp(6.0)), 1 / (1 + np.exp(-6.0))
    return _u8((1 / (1 + np.exp(-12 * (y - 0.5))) - lo) / (hi - lo))


def tone_gamma(x: np.ndarray) -> np.ndarray:
    """Brightening gamma 0.55 with compressed highlights: y = 0.95 x^0.55."""
    return _u8(0.95 * _f(x) ** 0.55)


def stylize(x: np.ndarray) -> np.ndarray:
    """The built-in set's painting filter (local: flattened regions, dark outlines)."""
    from ganapps.recipes.cyclegan_builtin import paint

    return paint(x)


TASKS = {"matrix": grade_matrix, "teal_orange": grade_teal_orange, "warm_fade": grade_warm_fade,
         "channel_curves": grade_channel_curves, "s_curve": tone_s_curve, "gamma": tone_gamma, "stylize": stylize}
GLOBAL_TASKS = tuple(t for t in TASKS if t != "stylize")


def build(task: str, dest: str | os.PathLike, *, quiet: bool = True) -> Path:
    """The dataset of `task` in `dest`/`task` (rebuilt unless a copy of this format is there); returns its root."""
    from PIL import Image

    from ganapps.recipes import cyclegan_builtin as builtin

    if task not in TASKS:
        raise ValueError(f"task {task!r}: expected one of {', '.join(TASKS)}")
    root = Path(dest) / task
    marker = root / "manifest.json"
    if marker.is_file() and json.loads(marker.read_text()).get("format") == FORMAT_VERSION:
        return root
    files = builtin.fetch_photos(builtin.default_dir().parent / f"{builtin.default_dir().name}_photos", quiet=quiet)

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(files[name]).convert("RGB"))

    train = [load(n) for n in builtin.TRAIN_PHOTOS]
    rng = np.random.default_rng(SEED)  # the same crops for every task
    crops = {"trainA": builtin.random_crops([builtin.half(p, 0) for p in train], COUNTS["trainA"], rng, SIZE, SCALES),
             "trainB": builtin.random_crops([builtin.half(p, 1) for p in train], COUNTS["trainB"], rng, SIZE, SCALES),
             "testA": [], "testB": []}
    for name in builtin.TEST_PHOTOS:
        photo = load(name)
        for split in ("testA", "testB"):
            crops[split] += builtin.random_crops([photo], COUNTS[split] // len(builtin.TEST_PHOTOS), rng, SIZE, SCALES)
    f = TASKS[task]
    sets = {"trainA": crops["trainA"], "trainB": [f(c) for c in crops["trainB"]], "testA": crops["testA"],
            "testB": [f(c) for c in crops["testB"]], "testA_true": [f(c) for c in crops["testA"]]}

    def write(tmp: Path) -> None:
        for split, images in sets.items():
            (tmp / split).mkdir()
            for k, img in enumerate(images):
                Image.fromarray(img).save(tmp / split / f"{k:04d}.png")

    return builtin.publish(root, write, lambda tmp: {k: len(v) for k, v in sets.items()},
                           {"task": task, "size": SIZE}, fmt=FORMAT_VERSION)


def identity_psnr(root: Path) -> float:
    """Mean PSNR (dB) of the untranslated testA images against testA_true."""
    from PIL import Image

    vals = []
    for f in sorted((root / "testA").glob("*.png")):
        x = np.asarray(Image.open(f), np.float64) / 255
        y = np.asarray(Image.open(root / "testA_true" / f.name), np.float64) / 255
        vals.append(10 * np.log10(1 / max(float(((x - y) ** 2).mean()), 1e-12)))
    return float(np.mean(vals))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0] if argv else "runs/colour-tasks")
    for task in TASKS:
        root = build(task, dest, quiet=False)
        print(f"{task:15s} {root}  identity PSNR {identity_psnr(root):.2f} dB")


if __name__ == "__main__":
    main()
