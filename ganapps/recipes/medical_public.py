"""Public MRI sets for `ganapps medical train --data ...`: the Medical Segmentation Decathlon brain-tumour task
(Task01_BrainTumour: 4D multi-modal MRI + tumour labels; CC-BY-SA 4.0) and IXI T1 (581 healthy T1 volumes;
CC BY-SA 3.0). Each is one tar archive; the recipe downloads it (https:// or file://), unpacks it safely and
checks the file counts the publishers list.

    python -m ganapps.recipes.medical_public msd [DEST]
    python -m ganapps.recipes.medical_public ixi [DEST]

No sha256 is pinned: these archives (7 GB and 4.5 GB) were never downloaded where this recipe was written
(the build machine reaches only the package registry), so integrity is checked by the counts below; pass
`sha256=` to pin one you measured. Tested offline through file:// archives of the same layout.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

from ..engine.errors import InputError
from ..engine.paths import data_dir
from ._fetch import fetch_url

SETS = {
    "msd": {
        # the MONAI mirror used by monai.apps.DecathlonDataset
        "url": "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar",
        "archive": "Task01_BrainTumour.tar",
        "counts": {"Task01_BrainTumour/imagesTr": 484, "Task01_BrainTumour/labelsTr": 484,
                   "Task01_BrainTumour/imagesTs": 266},
    },
    "ixi": {
        "url": "https://biomedic.doc.ic.ac.uk/brain-development/downloads/IXI/IXI-T1.tar",
        "archive": "IXI-T1.tar",
        "counts": {".": 581},
    },
}


def _safe_extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            target = (dest / m.name).resolve()
            if not str(target).startswith(str(dest.resolve())) or m.issym() or m.islnk():
                raise InputError(f"{archive}: unsafe member {m.name!r} (outside the folder or a link)")
        tar.extractall(dest, filter="data") if sys.version_info >= (3, 12) else tar.extractall(dest)


def count_volumes(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.name.endswith((".nii", ".nii.gz")) and not p.name.startswith("."))


def build(name: str, dest: str | Path | None = None, url: str | None = None, sha256: str | None = None,
          counts: dict[str, int] | None = None, quiet: bool = False) -> Path:
    """Download (unless present), unpack and verify the set `name` (msd | ixi); returns its folder."""
    if name not in SETS:
        raise InputError(f"data set {name!r}: expected one of {', '.join(SETS)}")
    spec = SETS[name]
    dest = Path(dest) if dest else data_dir() / f"medical_{name}"
    counts = counts or spec["counts"]
    done = dest / ".complete"
    if not done.is_file():
        archive = fetch_url(url or spec["url"], dest / spec["archive"], sha256, quiet=quiet, recipe="medical_public")
        _safe_extract(archive, dest)
        archive.unlink()
    for sub, expected in counts.items():
        got = count_volumes(dest / sub) if (dest / sub).is_dir() else 0
        if got != expected:
            raise InputError(f"{dest / sub}: {got} NIfTI volumes, expected {expected}; delete {dest} and rebuild")
    done.write_text("ok\n")
    if not quiet:
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" volumes in {dest}")
    return dest


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        raise SystemExit(2)
    build(argv[0], argv[1] if len(argv) > 1 else None)


if __name__ == "__main__":
    main()
