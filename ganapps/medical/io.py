"""Reading and writing medical volumes: NIfTI (3D/4D, nibabel), DICOM series (pydicom) and folders of slice
images, all returned in RAS orientation with their affine. File suffixes are engine.images'; no training code.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, VOLUME_SUFFIXES, has_suffix


@dataclasses.dataclass
class Volume:
    """A 3D scan in RAS+ orientation: `data` (X, Y, Z) float32 with X -> Right, Y -> Anterior, Z -> Superior;
    `affine` (4, 4) maps voxel indices to RAS millimetres; `source` names the file (and frame) it came from."""

    data: np.ndarray
    affine: np.ndarray
    source: str

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along X, Y, Z (column norms of the affine)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def is_nifti(path: Path) -> bool:
    return has_suffix(path.name, VOLUME_SUFFIXES)


def to_ras(data: np.ndarray, affine: np.ndarray, source: str) -> Volume:
    """Reorient (X, Y, Z) data to the closest canonical RAS+ orientation (`nibabel.as_closest_canonical`):
    axes are permuted and flipped, the affine follows, the voxel values and spacing are unchanged."""
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64)))
    return Volume(np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine, dtype=np.float64), source)


def _check_finite(data: np.ndarray, source: str) -> None:
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{source}: {bad} NaN or infinite voxel(s); expected finite intensities")


def read_nifti(path: Path) -> list[Volume]:
    """A .nii/.nii.gz file -> one RAS Volume (3D) or one per frame (4D, named `file#t`)."""
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as e:  # nibabel raises several types for truncated or foreign files
        raise InputError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {str(e).splitlines()[0][:80]})") \
            from None
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim < 3 or min(data.shape[:3]) < 2:
        raise InputError(f"{path}: a 2D image of shape {data.shape}; expected a 3D or 4D volume")
    if data.ndim > 4:
        raise InputError(f"{path}: a {data.ndim}D image of shape {data.shape}; expected a 3D or 4D volume")
    _check_finite(data, str(path))
    if data.ndim == 3:
        return [to_ras(data, img.affine, str(path))]
    return [to_ras(data[..., t], img.affine, f"{path}#{t}") for t in range(data.shape[3])]


def read_dicom_series(folder: Path) -> Volume:
    """A folder holding one DICOM series -> RAS Volume.

    Slices are sorted by their position along the slice normal (ImagePositionPatient projected on
    row x column direction of ImageOrientationPatient), RescaleSlope/RescaleIntercept are applied (CT in HU),
    and the affine is built from the tags in LPS (DICOM's patient frame) then converted to RAS.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.name.upper() != "DICOMDIR")
    if not files:
        raise InputError(f"{folder}: empty folder; expected a DICOM series or PNG/TIFF slices")
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
            pixels = ds.pixel_array.astype(np.float32)
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            ipp = np.array([float(v) for v in ds.ImagePositionPatient])
            row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
        except InvalidDicomError:
            raise InputError(f"{f}: not a DICOM file (no DICM preamble); expected one series per folder") from None
        except AttributeError as e:
            raise InputError(f"{f}: DICOM without {str(e).split()[-1]}; expected image position, orientation "
                             f"and pixel spacing tags") from None
        except Exception as e:  # truncated files, missing pixel data, unsupported transfer syntax
            raise InputError(f"{f}: unreadable DICOM ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
        if pixels.ndim != 2:
            raise InputError(f"{f}: DICOM pixel data of shape {pixels.shape}; expected one 2D slice per file")
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        slices.append((f, pixels * slope + intercept, iop, ipp, row_mm, col_mm))
    if len(slices) < 2:
        raise InputError(f"{folder}: a single DICOM slice; expected a series of at least 2 slices")
    row_cos, col_cos = slices[0][2][:3], slices[0][2][3:]
    normal = np.cross(row_cos, col_cos)
    shapes = {s[1].shape for s in slices}
    if len(shapes) > 1:
        raise InputError(f"{folder}: DICOM slices of different sizes {sorted(shapes)}; expected one series")
    slices.sort(key=lambda s: float(s[3] @ normal))
    pos = np.array([float(s[3] @ normal) for s in slices])
    gaps = np.diff(pos)
    if np.any(gaps < 1e-4):
        dup = slices[int(np.argmin(gaps)) + 1][0]
        raise InputError(f"{dup}: two DICOM slices at the same position; expected one series per folder")
    step = (slices[-1][3] - slices[0][3]) / (len(slices) - 1)  # (3,) mm between consecutive slices
    row_mm, col_mm = slices[0][4], slices[0][5]  # PixelSpacing: between rows, between columns
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_mm  # voxel i walks along a row (columns of the pixel array)
    lps[:3, 1] = col_cos * row_mm  # voxel j walks down a column (rows of the pixel array)
    lps[:3, 2] = step
    lps[:3, 3] = slices[0][3]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    data = np.stack([s[1].T for s in slices], axis=2)  # (cols, rows, slices)
    _check_finite(data, str(folder))
    return to_ras(data, ras, str(folder))


def read_slice_folder(folder: Path, files: list[Path]) -> Volume:
    """PNG/TIFF slices (sorted by name) stacked into a volume with 1 mm spacing; rows run posterior->anterior
    upwards, as `slice_image` writes them, so a folder of axial slices round-trips."""
    from PIL import Image, UnidentifiedImageError

    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("F") if im.mode not in ("I;16", "I;16B", "I", "F") else im, np.float32)
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"{f}: unreadable image ({type(e).__name__})") from None
        if arr.ndim != 2:
            raise InputError(f"{f}: image of shape {arr.shape}; expected a grayscale slice")
        if images and arr.shape != images[0].shape:
            raise InputError(f"{f}: slice of size {arr.shape}, but {files[0].name} is {images[0].shape}; "
                             f"expected one size per folder")
        images.append(arr)
    if len(images) < 2:
        raise InputError(f"{folder}: {len(images)} slice image; expected at least 2 to make a volume")
    data = np.stack([np.flipud(a).T for a in images], axis=2)  # (W, H, N)
    _check_finite(data, str(folder))
    return Volume(np.ascontiguousarray(data, dtype=np.float32), np.eye(4), str(folder))


def read_volumes(path: str | os.PathLike) -> list[Volume]:
    """A NIfTI file, a DICOM series folder or a PNG/TIFF slice folder -> RAS volumes (4D -> one per frame)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_file():
        if is_nifti(p):
            return read_nifti(p)
        if has_suffix(p, IMAGE_SUFFIXES):
            raise InputError(f"{p}: a single 2D image; expected a 3D volume (NIfTI, a DICOM series folder or a "
                             f"folder of PNG/TIFF slices)")
        raise InputError(f"{p}: unknown volume format; expected .nii, .nii.gz, a DICOM folder or a slice folder")
    images = sorted(f for f in p.iterdir() if has_suffix(f, IMAGE_SUFFIXES))
    if images:
        return [read_slice_folder(p, images)]
    niftis = sorted(f for f in p.iterdir() if is_nifti(f))
    if niftis:
        return [v for f in niftis for v in read_nifti(f)]
    return [read_dicom_series(p)]


def write_nifti(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike, dtype: type = np.float32) -> Path:
    """Write (X, Y, Z) data (float32 unless `dtype`, e.g. uint8 for label maps) with its affine (sform and qform
    set, so viewers agree); written under a temporary name and renamed into place."""
    path = Path(path)
    if not is_nifti(path):
        raise InputError(f"{path}: expected a .nii or .nii.gz file name")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a NIfTI file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), np.asarray(affine, dtype=np.float64))
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    img.header.set_xyzt_units("mm")
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    nib.save(img, str(tmp))
    os.replace(tmp, path)
    return path
