"""MNI152 2009a (ICBM 152 nonlinear symmetric) T1, grey-matter and white-matter volumes, as shipped inside the
nilearn wheel (nilearn is not a runtime dependency: the wheel is fetched with `pip download` and only these
three members are unpacked, each checked by sha256).

    python -m ganapps.recipes.medical_mni152 [DEST]   # -> <data folder>/mni152/ (default ~/.cache/ganapps/data)

`ganapps medical train | evaluate` fetch it on first use when it is missing (`paths()`).

Expected: three 197 x 233 x 189 uint8 volumes at 1 mm, RAS, affine origin (-98, -134, -72); the T1 gives
137 axial slices with >= 5% foreground (110 train / 27 held out with the default holdout_every=5).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.errors import InputError
from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members

NILEARN_VERSION = "0.11.1"
MEMBERS = {
    "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz":
        "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6",
    "nilearn/datasets/data/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz":
        "97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed",
    "nilearn/datasets/data/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz":
        "382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db",
}
SHAPE = (197, 233, 189)
VOLUMES = ("t1", "gm", "wm")  # as tagged in the members' file names


def default_dir() -> Path:
    return data_dir() / "mni152"


def _files(dest: Path) -> dict[str, Path]:
    """{"t1" | "gm" | "wm": the unpacked volume in `dest`}."""
    return {tag: dest / next(Path(m).name for m in MEMBERS if f"_{tag}_tal_" in m) for tag in VOLUMES}


def build(dest: str | Path | None = None, quiet: bool = False) -> dict[str, Path]:
    """Fetch, unpack and verify (checksums, shapes, spacing, orientation); returns member name -> file."""
    import nibabel as nib

    dest = Path(dest) if dest else default_dir()
    out = fetch_wheel_members("nilearn", NILEARN_VERSION, MEMBERS, dest, quiet=quiet, recipe="medical_mni152")
    for path in out.values():
        img = nib.load(str(path))
        zooms = tuple(float(z) for z in img.header.get_zooms())
        if img.shape != SHAPE or zooms != (1.0, 1.0, 1.0) or nib.aff2axcodes(img.affine) != ("R", "A", "S"):
            raise InputError(f"{path}: shape {img.shape}, spacing {zooms}, orientation "
                             f"{''.join(nib.aff2axcodes(img.affine))}; expected {SHAPE} at 1 mm, RAS")
    if not quiet:
        print(f"MNI152 2009a T1/GM/WM: 3 volumes {SHAPE} at 1 mm in {dest}")
    return out


def paths(dest: str | Path | None = None) -> dict[str, Path]:
    """{"t1", "gm", "wm"} -> the volumes in `dest` (default: the data folder), fetched through `build` first
    when any is missing (the first use on a fresh install)."""
    dest = Path(dest) if dest else default_dir()
    files = _files(dest)
    if not all(f.is_file() for f in files.values()):
        build(dest, quiet=True)
    return files


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    build(argv[0] if argv else None)


if __name__ == "__main__":
    main()
