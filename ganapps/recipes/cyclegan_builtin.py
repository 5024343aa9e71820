"""The built-in CycleGAN dataset, photo <-> painting, built offline: real photos shipped in the scikit-image
0.26.0 wheel (fetched with `pip download`, checked by sha256) cut into random 128x128 crops (domain A), against
crops of *other* photos painted with OpenCV's edge-preserving stylization filter (domain B).

    python -m ganapps.recipes.cyclegan_builtin [DEST]   # build (once), verify, print counts
    python -m ganapps.recipes.cyclegan_builtin --print-dir   # build if needed, print only its folder

Layout (the reference's): trainA/ 320, trainB/ 320, testA/ 40, testB/ 40 PNGs of 128x128 RGB, plus testA_painted/
(the 40 testA crops painted by the same filter: ground truth for paired PSNR/SSIM of an A -> B model).
A and B come from disjoint photos (A: astronaut, coffee, motorcycle_left; B: chelsea, motorcycle_right, rocket);
test crops are other random crops of the same photos (they may overlap train crops in content).

The paired version (pix2pix; `build_paired`, `--paired`): trainA/ the same 320 photo crops, trainB/ each painted
by the same filter under the same name; testA/ = testA, testB/ = testA_painted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members

VERSION = "0.26.0"
PHOTOS_A = {  # sha256 measured on scikit_image-0.26.0-cp311 manylinux wheel members
    "skimage/data/astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "skimage/data/coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "skimage/data/motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
}
PHOTOS_B = {
    "skimage/data/chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "skimage/data/motorcycle_right.png": "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
    "skimage/data/rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}
COUNTS = {"trainA": 320, "trainB": 320, "testA": 40, "testB": 40, "testA_painted": 40}
SIZE = 128
SEED = 2017
STYLE = {"sigma_s": 60, "sigma_r": 0.45}  # cv2.stylization: a watercolour-like edge-preserving painting
FORMAT_VERSION = 1


def default_dir() -> Path:
    return data_dir() / "cyclegan_builtin"


def paint(rgb):
    """(H, W, 3) uint8 RGB photo -> the painted domain: cv2.stylization (Gastal & Oliveira 2011 domain
    transform filter) with STYLE's parameters."""
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.stylization(bgr, **STYLE), cv2.COLOR_BGR2RGB)


def random_crops(photos, n: int, rng, size: int = SIZE):
    """n random size x size crops: a photo at random, downscaled by a random factor in [0.35, 1] (area
    interpolation, never below the crop size), then a random window."""
    import cv2

    out = []
    for _ in range(n):
        img = photos[int(rng.integers(len(photos)))]
        h, w = img.shape[:2]
        s = max(float(rng.uniform(0.35, 1.0)), size / min(h, w))
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        i, j = int(rng.integers(nh - size + 1)), int(rng.integers(nw - size + 1))
        out.append(small[i:i + size, j:j + size].copy())
    return out


def verify(root: Path) -> dict[str, int]:
    """Counts and image sizes of a built dataset; raises ValueError when anything is off."""
    from PIL import Image

    counts = {}
    for name, n in COUNTS.items():
        files = sorted((root / name).glob("*.png"))
        if len(files) != n:
            raise ValueError(f"{root / name}: {len(files)} images, expected {n}")
        for f in files[:: max(1, n // 8)]:
            with Image.open(f) as im:
                if im.size != (SIZE, SIZE) or im.mode != "RGB":
                    raise ValueError(f"{f}: {im.size} {im.mode}, expected ({SIZE}, {SIZE}) RGB")
        counts[name] = len(files)
    return counts


def build(dest: str | os.PathLike | None = None, *, quiet: bool = True) -> Path:
    """Build the dataset into `dest` (default: the ganapps data cache) unless a verified copy is there."""
    import numpy as np
    from PIL import Image

    root = Path(dest) if dest else default_dir()
    marker = root / "manifest.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("format") == FORMAT_VERSION:
                verify(root)
                return root
        except (ValueError, json.JSONDecodeError):
            pass
    photos_dir = root.parent / f"{root.name}_photos"
    files = fetch_wheel_members("scikit-image", VERSION, {**PHOTOS_A, **PHOTOS_B}, photos_dir, quiet=quiet,
                                recipe="cyclegan_builtin")

    def load(members):
        return [np.asarray(Image.open(files[m]).convert("RGB")) for m in members]

    photos_a, photos_b = load(PHOTOS_A), load(PHOTOS_B)
    rng = np.random.default_rng(SEED)
    sets = {
        "trainA": random_crops(photos_a, COUNTS["trainA"], rng),
        "trainB": [paint(c) for c in random_crops(photos_b, COUNTS["trainB"], rng)],
        "testA": random_crops(photos_a, COUNTS["testA"], rng),
        "testB": [paint(c) for c in random_crops(photos_b, COUNTS["testB"], rng)],
    }
    sets["testA_painted"] = [paint(c) for c in sets["testA"]]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for name, images in sets.items():
            (tmp / name).mkdir()
            for k, img in enumerate(images):
                Image.fromarray(img).save(tmp / name / f"{k:04d}.png")
        counts = verify(tmp)
        (tmp / "manifest.json").write_text(json.dumps(
            {"format": FORMAT_VERSION, "counts": counts, "size": SIZE, "seed": SEED, "style": STYLE,
             "sources": {**PHOTOS_A, **PHOTOS_B}, "scikit_image": VERSION}, indent=1))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


PAIRED_COUNTS = {"trainA": 320, "trainB": 320, "testA": 40, "testB": 40}


def build_paired(dest: str | os.PathLike | None = None, *, source: str | os.PathLike | None = None,
                 quiet: bool = True) -> Path:
    """The paired set (pix2pix) in `dest` (default: next to the unpaired set), derived from the unpaired one
    (`source`, default: `build()`): trainA = its trainA photos, trainB = `paint` of each (same file name),
    testA = its testA, testB = its testA_painted. Rebuilt unless a verified copy is there."""
    import numpy as np
    from PIL import Image

    root = Path(dest) if dest else default_dir().with_name("cyclegan_builtin_paired")
    marker = root / "manifest.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("format") == FORMAT_VERSION:
                verify_paired(root)
                return root
        except (ValueError, json.JSONDecodeError):
            pass
    src = Path(source) if source else build(quiet=quiet)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for name, origin in (("trainA", "trainA"), ("testA", "testA"), ("testB", "testA_painted")):
            shutil.copytree(src / origin, tmp / name)
        (tmp / "trainB").mkdir()
        for f in sorted((src / "trainA").glob("*.png")):
            Image.fromarray(paint(np.asarray(Image.open(f).convert("RGB")))).save(tmp / "trainB" / f.name)
        counts = verify_paired(tmp)
        (tmp / "manifest.json").write_text(json.dumps(
            {"format": FORMAT_VERSION, "counts": counts, "size": SIZE, "style": STYLE, "derived_from": str(src)},
            indent=1))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def verify_paired(root: Path) -> dict[str, int]:
    """Counts, sizes and matching names of a built paired set; raises ValueError when anything is off."""
    from PIL import Image

    counts = {}
    for name, n in PAIRED_COUNTS.items():
        files = sorted((root / name).glob("*.png"))
        if len(files) != n:
            raise ValueError(f"{root / name}: {len(files)} images, expected {n}")
        for f in files[:: max(1, n // 8)]:
            with Image.open(f) as im:
                if im.size != (SIZE, SIZE) or im.mode != "RGB":
                    raise ValueError(f"{f}: {im.size} {im.mode}, expected ({SIZE}, {SIZE}) RGB")
        counts[name] = len(files)
    for split in ("train", "test"):
        a = [f.name for f in sorted((root / f"{split}A").glob("*.png"))]
        if a != [f.name for f in sorted((root / f"{split}B").glob("*.png"))]:
            raise ValueError(f"{root}: {split}A/ and {split}B/ file names differ")
    return counts


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    paired = "--paired" in argv
    argv = [a for a in argv if a != "--paired"]
    make, check = (build_paired, verify_paired) if paired else (build, verify)
    if argv[:1] == ["--print-dir"]:  # for scripts: build if needed, print only the folder
        print(make(argv[1] if len(argv) > 1 else None))
        return
    root = make(argv[0] if argv else None, quiet=False)
    print(f"{root}: " + ", ".join(f"{k} {v}" for k, v in check(root).items()))


if __name__ == "__main__":
    main()
