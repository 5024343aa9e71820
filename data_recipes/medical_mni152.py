"""MNI152 2009a (ICBM 152 nonlinear symmetric) T1, grey-matter and white-matter volumes, as shipped inside the
nilearn wheel (nilearn is not a runtime dependency: the wheel is fetched with `pip download` and only these
three members are unpacked, each checked by sha256).

    python -m data_recipes.medical_mni152          # -> $GANAPPS_DATA_DIR/mni152/ (default ~/.cache/ganapps/data)

Expected: three 197 x 233 x 189 uint8 volumes at 1 mm, RAS, affine origin (-98, -134, -72); the T1 gives
137 axial slices with >= 5% foreground (110 train / 27 held out with the default holdout_every=5).
"""

from __future__ import annotations

import sys
from pathlib import Path

from data_recipes._fetch import cache_dir, fetch_wheel_members

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


def build(dest: str | Path | None = None, quiet: bool = False) -> dict[str, Path]:
    """Fetch, unpack and verify (checksums, shapes, spacing, orientation); returns member name -> file."""
    import nibabel as nib

    dest = Path(dest) if dest else cache_dir() / "mni152"
    out = fetch_wheel_members("nilearn", NILEARN_VERSION, MEMBERS, dest, quiet=quiet)
    for path in out.values():
        img = nib.load(str(path))
        assert img.shape == SHAPE, f"{path}: shape {img.shape}, expected {SHAPE}"
        assert tuple(float(z) for z in img.header.get_zooms()) == (1.0, 1.0, 1.0), f"{path}: spacing"
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S"), f"{path}: orientation"
    if not quiet:
        print(f"MNI152 2009a T1/GM/WM: 3 volumes {SHAPE} at 1 mm in {dest}")
    return out


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else None)
