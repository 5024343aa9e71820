"""The reference's public CycleGAN datasets (pytorch-CycleGAN-and-pix2pix `datasets/download_cyclegan_dataset.sh`):
https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/NAME.zip, unpacked into NAME/{trainA,trainB,testA,testB}
and checked against the published file counts.

    python -m ganapps.recipes.cyclegan_reference NAME [DEST]     # e.g. horse2zebra; then
    ganapps cyclegan train --data DEST/horse2zebra

The zips carry no published checksums; the sha256 of what was downloaded is printed and stored in
NAME/manifest.json so a later copy can be compared.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from ..engine.checkpoint import file_digest
from ..engine.images import IMAGE_SUFFIXES, has_suffix
from ..engine.paths import data_dir
from ._fetch import fetch_url

URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
# trainA, trainB, testA, testB image counts of each zip (as unpacked; from the CycleGAN datasets)
COUNTS: dict[str, tuple[int, int, int, int]] = {
    "horse2zebra": (1067, 1334, 120, 140),
    "apple2orange": (995, 1019, 266, 248),
    "summer2winter_yosemite": (1231, 962, 309, 238),
    "monet2photo": (1072, 6287, 121, 751),
    "cezanne2photo": (525, 6287, 58, 751),
    "ukiyoe2photo": (562, 6287, 263, 751),
    "vangogh2photo": (400, 6287, 400, 751),
    "maps": (1096, 1096, 1098, 1098),
    "facades": (400, 400, 106, 106),
    "iphone2dslr_flower": (1812, 3325, 569, 480),
}
SPLITS = ("trainA", "trainB", "testA", "testB")


def count_images(root: Path) -> tuple[int, ...]:
    return tuple(sum(1 for p in (root / s).glob("*") if has_suffix(p, IMAGE_SUFFIXES)) if (root / s).is_dir()
                 else 0 for s in SPLITS)


def fetch(name: str, dest: str | os.PathLike | None = None, *, url: str | None = None,
          counts: tuple[int, int, int, int] | None = None, quiet: bool = True) -> Path:
    """Download NAME.zip (or `url`, e.g. a file:// mirror), unpack it into DEST/NAME and verify the counts.
    Returns DEST/NAME. A verified copy already there is reused."""
    if name not in COUNTS and counts is None:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(COUNTS)}")
    expected = counts or COUNTS[name]
    root = Path(dest) if dest else data_dir() / "cyclegan"
    out = root / name
    if out.is_dir() and count_images(out) == expected:
        return out
    zpath = fetch_url(url or URL.format(name=name), root / f"{name}.zip", quiet=quiet, recipe="cyclegan_reference")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        with zipfile.ZipFile(zpath) as z:
            for member in z.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"{zpath}: unsafe member path {member!r}")
            z.extractall(tmp)
        inner = tmp / name if (tmp / name).is_dir() else tmp
        got = count_images(inner)
        if got != expected:
            raise ValueError(f"{zpath}: {dict(zip(SPLITS, got, strict=True))} images, expected "
                             f"{dict(zip(SPLITS, expected, strict=True))}")
        (inner / "manifest.json").write_text(json.dumps(
            {"url": url or URL.format(name=name), "zip_sha256": file_digest(zpath),
             "counts": dict(zip(SPLITS, got, strict=True))}, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(inner, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        print("names: " + ", ".join(COUNTS))
        raise SystemExit(2)
    out = fetch(argv[0], argv[1] if len(argv) > 1 else None, quiet=False)
    print(f"{out}: " + ", ".join(f"{s} {n}" for s, n in zip(SPLITS, count_images(out), strict=True))
          + f"  zip sha256 {json.loads((out / 'manifest.json').read_text())['zip_sha256']}")


if __name__ == "__main__":
    main()
