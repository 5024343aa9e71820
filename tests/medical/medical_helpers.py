"""Small generated volumes and DICOM series for the medical tests (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def phantom(shape=(20, 24, 16), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy ellipsoid 'head' with an inner 'ventricle' -> (intensities (X, Y, Z), labels 0/1/2)."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = x**2 / 0.8 + y**2 / 0.9 + z**2 / 0.7
    labels = np.where(r < 0.15, 2, np.where(r < 1.0, 1, 0)).astype(np.int16)
    img = np.where(labels == 1, 100.0, np.where(labels == 2, 180.0, 0.0)) + rng.normal(0, 5, shape) * (labels > 0)
    return img.astype(np.float32), labels


def write_nifti(path, data, affine=None):
    import nibabel as nib

    affine = np.diag([1.5, 1.5, 2.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def write_dicom_series(folder, values: list[float], positions: list[float], slope=2.0, intercept=-1024.0,
                       names: list[str] | None = None, shape=(6, 5)):
    """One axial slice file per value (constant raw pixel value), at z = position, pixel spacing 0.5 x 0.7."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series = generate_uid()
    for i, (v, zpos) in enumerate(zip(values, positions, strict=True)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID, series
        ds.Modality = "CT"
        ds.Rows, ds.Columns = shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelSpacing = [0.5, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, -20.0, float(zpos)]
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        arr = np.full(shape, v, dtype=np.uint16)
        arr[0, 0] = v + 1  # marks the first row/column corner
        ds.PixelData = arr.tobytes()
        name = names[i] if names else f"IM{i:03d}.dcm"
        ds.save_as(str(folder / name), enforce_file_format=True)
    return folder


@pytest.fixture
def head_nifti(tmp_path):
    img, labels = phantom()
    return (write_nifti(tmp_path / "head.nii.gz", img), write_nifti(tmp_path / "labels.nii.gz", labels),
            write_nifti(tmp_path / "mask.nii.gz", (labels > 0).astype(np.uint8)))
