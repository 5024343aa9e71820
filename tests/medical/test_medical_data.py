"""Volume IO, RAS orientation, intensities, slicing, the slice dataset and every bad-input case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from medical_helpers import phantom, write_dicom_series, write_nifti

from ganapps.engine.errors import InputError
from ganapps.medical.config import MedicalConfig, parse_window
from ganapps.medical.data import (
    SliceDataset,
    Source,
    VolumeCache,
    ct_window,
    percentile_rescale,
    slices_to_volume,
    volume_slices,
    zscore,
)
from ganapps.medical.io import read_volumes
from ganapps.medical.pipeline import save_nifti, stack_affine


def test_flipped_affine_is_reoriented_to_ras_keeping_spacing(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    affine = np.array([[-2.0, 0, 0, 10], [0, 3.0, 0, -5], [0, 0, -4.0, 7], [0, 0, 0, 1]])  # L, A, I
    vol = read_volumes(write_nifti(tmp_path / "las.nii.gz", data, affine))[0]
    np.testing.assert_array_equal(vol.data, data[::-1, :, ::-1])
    np.testing.assert_allclose(np.diag(vol.affine)[:3], [2.0, 3.0, 4.0])
    assert vol.spacing == (2.0, 3.0, 4.0)
    # voxel (0, 0, 0) of the RAS volume is old voxel (3, 0, 5): same world position
    np.testing.assert_allclose(vol.affine @ [0, 0, 0, 1], affine @ [3, 0, 5, 1])


def test_permuted_axes_are_reoriented(tmp_path):
    data = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    affine = np.array([[0, 0, 1.0, 0], [1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])  # i->A, j->S, k->R
    vol = read_volumes(write_nifti(tmp_path / "perm.nii", data, affine))[0]
    assert vol.data.shape == (5, 3, 4)
    np.testing.assert_array_equal(vol.data, data.transpose(2, 0, 1))
    np.testing.assert_allclose(vol.spacing, (1.0, 1.0, 2.0))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_volume_slices_round_trip(axis):
    data = np.random.default_rng(1).random((4, 5, 6)).astype(np.float32)
    slices = volume_slices(data, axis)
    assert slices.shape[0] == data.shape[axis]
    np.testing.assert_array_equal(slices_to_volume(slices, axis), data)


def test_axial_slice_shows_anterior_at_top():
    data = np.zeros((4, 5, 3), np.float32)
    data[:, -1, :] = 1  # most anterior row
    img = volume_slices(data, 2)[0]  # (H=Y, W=X)
    assert img.shape == (5, 4) and img[0].all() and not img[1:].any()


def test_volume_to_slices_to_nifti_keeps_spacing_and_affine(tmp_path):
    img, _ = phantom((16, 16, 10))
    affine = np.array([[0.8, 0, 0, -6.0], [0, 0.8, 0, -6.0], [0, 0, 2.5, -11.25], [0, 0, 0, 1]])
    vol = read_volumes(write_nifti(tmp_path / "in.nii.gz", img, affine))[0]
    scaled = (vol.data - vol.data.min()) / (vol.data.max() - vol.data.min())  # [0, 1]
    slices = torch.from_numpy(volume_slices(scaled * 2 - 1, 2))[:, None]  # (N, 1, H, W) in [-1, 1]
    out = read_volumes(save_nifti(slices, tmp_path / "out.nii.gz", vol.spacing, 2, affine=vol.affine))[0]
    np.testing.assert_allclose(out.affine, affine)
    np.testing.assert_allclose(out.data, scaled, atol=1e-6)
    assert out.spacing == pytest.approx((0.8, 0.8, 2.5))


def test_synthetic_stack_affine_carries_spacing_and_is_centred(tmp_path):
    import nibabel as nib

    images = torch.zeros(7, 1, 8, 8)
    save_nifti(images, tmp_path / "s.nii.gz", (0.9, 1.1, 3.0), axis=2)
    im = nib.load(str(tmp_path / "s.nii.gz"))
    assert im.shape == (8, 8, 7)
    assert im.header.get_zooms() == pytest.approx((0.9, 1.1, 3.0))
    assert nib.aff2axcodes(im.affine) == ("R", "A", "S")
    centre = im.affine @ [3.5, 3.5, 3.0, 1]
    np.testing.assert_allclose(centre[:3], 0, atol=1e-6)
    assert int(im.header["sform_code"]) == 1 and int(im.header["qform_code"]) == 1
    np.testing.assert_allclose(stack_affine((8, 8, 7), (0.9, 1.1, 3.0), 2), im.affine)


def test_dicom_series_sorted_by_position_with_rescale(tmp_path):
    # file names in the opposite order of the positions; positions unevenly listed
    positions = [4.0, 0.0, 8.0, 2.0, 6.0]
    values = [20, 0, 40, 10, 30]
    names = ["a.dcm", "e.dcm", "b.dcm", "d.dcm", "c.dcm"]
    folder = write_dicom_series(tmp_path / "ct", values, positions, names=names)
    vol = read_volumes(folder)[0]
    assert vol.data.shape == (5, 6, 5)  # (columns, rows, slices) in RAS
    hu = vol.data[2, 2, :]  # away from the marked corner
    np.testing.assert_allclose(hu, [v * 2 - 1024 for v in (0, 10, 20, 30, 40)])  # inferior -> superior
    assert vol.spacing == pytest.approx((0.7, 0.5, 2.0))  # PixelSpacing = [row gap, column gap]
    # LPS -> RAS flips x and y: the first DICOM row/column corner lands at the far end of X and Y
    assert vol.data[-1, -1, 0] == (0 + 1) * 2 - 1024


@pytest.mark.parametrize(("hu", "expected"), [(-1000, -1.0), (0, -1.0), (20, -0.5), (40, 0.0), (60, 0.5),
                                              (80, 1.0), (3000, 1.0)])
def test_brain_window_arithmetic_in_hu(hu, expected):
    level, width = parse_window("brain")
    assert ct_window(np.array([hu], np.float32), level, width)[0] == pytest.approx(expected)


def test_window_presets_and_explicit_level_width():
    assert parse_window("lung") == (-600.0, 1500.0)
    assert parse_window("abdomen") == (40.0, 400.0)
    assert parse_window("bone") == (400.0, 1800.0)
    assert parse_window("-500,1000") == (-500.0, 1000.0)
    out = ct_window(np.array([-1000.0, -500.0, 0.0]), -500, 1000)
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0])
    with pytest.raises(InputError, match="window"):
        parse_window("liver")
    with pytest.raises(InputError, match="width"):
        parse_window("40,0")
    assert MedicalConfig(window="bone").intensity == "window"


def test_percentile_rescale_and_zscore_ranges():
    data = np.concatenate([np.zeros(100), np.linspace(1, 100, 1000), [1e6]]).astype(np.float32)
    out = percentile_rescale(data, 0.5, 99.5)
    assert out.min() == -1 and out.max() == 1 and np.isclose(out[-1], 1)  # the outlier is clipped
    mask = data > 0
    z = zscore(data, mask, "x")
    assert z.min() >= -1 and z.max() <= 1 and (z[~mask] == -1).all()


def test_dataset_filters_empty_slices_and_holds_out(head_nifti):
    img, labels, mask = head_nifti
    cfg = MedicalConfig(data=[str(img)], labels=[str(labels)], size=32, min_foreground=0.05, holdout_every=3,
                        condition="label")
    train, held, full = (SliceDataset(cfg, s) for s in ("train", "heldout", "all"))
    assert len(train) + len(held) == len(full) < 16  # the empty top and bottom slices are skipped
    assert {k for _, k, _ in train.index}.isdisjoint({k for _, k, _ in held.index})
    item = train[0]
    assert item["image"].shape == (1, 32, 32) and item["label"].shape == (32, 32)
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    # labels travel with their slice: labelled pixels are the bright ones
    assert item["image"][0][item["label"] > 0].mean() > item["image"][0][item["label"] == 0].mean() + 0.1
    assert train.num_classes == 3
    assert train.spacing == pytest.approx((1.5 * 24 / 32, 1.5 * 24 / 32, 2.0))


def test_zscore_with_mask_and_resampling(head_nifti):
    img, _, mask = head_nifti
    cfg = MedicalConfig(data=[str(img)], masks=[str(mask)], size=32, intensity="zscore", spacing_mm=3.0)
    ds = SliceDataset(cfg, "all")
    assert ds.spacing[2] == pytest.approx(3.0)
    assert len(ds) <= 11  # 16 slices x 2 mm resampled to 3 mm


def test_cache_is_bounded(head_nifti):
    img, _, _ = head_nifti
    cfg = MedicalConfig(data=[str(img)], size=32)
    src = Source(str(img), 0)
    none = VolumeCache(0)
    none.get(src, cfg)
    none.get(src, cfg)
    assert none.misses == 2 and none.bytes == 0
    big = VolumeCache(1 << 30)
    big.get(src, cfg)
    big.get(src, cfg)
    assert big.misses == 1 and big.hits == 1 and 0 < big.bytes <= 1 << 30
    small = VolumeCache(big.bytes)  # room for exactly one prepared volume
    other = Source(str(img), 0, mask=None, labels=None, tissue=False)
    small.get(src, cfg)
    small.get(Source(str(img), 0, mask=str(head_nifti[2])), cfg)
    assert len(small.items) == 1 and small.bytes <= small.max_bytes
    assert other == src


def test_4d_nifti_gives_one_volume_per_frame(tmp_path):
    data = np.random.default_rng(0).random((4, 4, 3, 2)).astype(np.float32)
    vols = read_volumes(write_nifti(tmp_path / "4d.nii.gz", data))
    assert len(vols) == 2 and vols[1].source.endswith("#1")


def test_png_slice_folder_round_trip(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (6, 5), dtype=np.uint8) for _ in range(3)]
    for i, a in enumerate(images):
        Image.fromarray(a).save(tmp_path / f"s{i}.png")
    vol = read_volumes(tmp_path)[0]
    np.testing.assert_array_equal(volume_slices(vol.data, 2), np.stack(images).astype(np.float32))


# ------------------------------------------------------------------------------------------- bad input
def _one_line(excinfo, name: str) -> None:
    msg = str(excinfo.value)
    assert name in msg and "\n" not in msg


def test_2d_nifti_is_rejected(tmp_path):
    f = write_nifti(tmp_path / "flat.nii.gz", np.zeros((8, 8), np.float32))
    with pytest.raises(InputError, match="2D") as e:
        read_volumes(f)
    _one_line(e, "flat.nii.gz")
    g = write_nifti(tmp_path / "flat3.nii.gz", np.zeros((8, 8, 1), np.float32))
    with pytest.raises(InputError, match="2D"):
        read_volumes(g)


def test_single_png_is_not_a_volume(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(InputError, match="2D") as e:
        read_volumes(tmp_path / "one.png")
    _one_line(e, "one.png")


def test_nan_volume_is_rejected(tmp_path):
    data = np.ones((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    with pytest.raises(InputError, match="NaN") as e:
        read_volumes(write_nifti(tmp_path / "nan.nii.gz", data))
    _one_line(e, "nan.nii.gz")


def test_empty_mask_is_rejected(head_nifti, tmp_path):
    img, _, _ = head_nifti
    empty = write_nifti(tmp_path / "empty_mask.nii.gz", np.zeros((20, 24, 16), np.uint8))
    cfg = MedicalConfig(data=[str(img)], masks=[str(empty)], size=32, intensity="zscore")
    with pytest.raises(InputError, match="empty mask") as e:
        SliceDataset(cfg)
    _one_line(e, "empty_mask.nii.gz")


def test_mismatched_mask_shape_is_rejected(head_nifti, tmp_path):
    img, _, _ = head_nifti
    bad = write_nifti(tmp_path / "small_mask.nii.gz", np.ones((10, 24, 16), np.uint8))
    cfg = MedicalConfig(data=[str(img)], masks=[str(bad)], size=32)
    with pytest.raises(InputError, match="shape") as e:
        SliceDataset(cfg)
    _one_line(e, "small_mask.nii.gz")


def test_unreadable_dicom_is_rejected(tmp_path):
    folder = write_dicom_series(tmp_path / "ct", [0, 10, 20], [0.0, 1.0, 2.0])
    (folder / "IM001.dcm").write_bytes(b"garbage, not DICOM" * 10)
    with pytest.raises(InputError, match="DICOM") as e:
        read_volumes(folder)
    _one_line(e, "IM001.dcm")


def test_truncated_nifti_and_missing_file(tmp_path):
    f = tmp_path / "broken.nii.gz"
    f.write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(InputError) as e:
        read_volumes(f)
    _one_line(e, "broken.nii.gz")
    with pytest.raises(InputError, match="no such") as e:
        read_volumes(tmp_path / "absent.nii.gz")


def test_config_pairs_and_options_are_checked():
    with pytest.raises(InputError, match="labels"):
        MedicalConfig(data=["a.nii", "b.nii"], labels=["a_lab.nii"])
    with pytest.raises(InputError, match="size"):
        MedicalConfig(size=100)
    with pytest.raises(InputError, match="window"):
        MedicalConfig(intensity="window")
    with pytest.raises(InputError, match="condition=label"):
        MedicalConfig(data=["a.nii"], condition="label")


def test_public_recipe_through_file_url(tmp_path):
    import tarfile

    from ganapps.recipes.medical_public import build

    src = tmp_path / "src" / "Task01_BrainTumour"
    for sub, n in (("imagesTr", 2), ("labelsTr", 2), ("imagesTs", 1)):
        (src / sub).mkdir(parents=True)
        for i in range(n):
            write_nifti(src / sub / f"BRATS_{i:03d}.nii.gz", np.zeros((4, 4, 4, 2), np.float32))
    archive = tmp_path / "Task01_BrainTumour.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="Task01_BrainTumour")
    counts = {"Task01_BrainTumour/imagesTr": 2, "Task01_BrainTumour/labelsTr": 2, "Task01_BrainTumour/imagesTs": 1}
    out = build("msd", tmp_path / "dest", url=archive.as_uri(), counts=counts, quiet=True)
    vols = read_volumes(out / "Task01_BrainTumour" / "imagesTr" / "BRATS_000.nii.gz")
    assert len(vols) == 2  # 4D: one volume per modality
    with pytest.raises(InputError, match="expected 3"):
        build("msd", tmp_path / "dest", counts={**counts, "Task01_BrainTumour/imagesTr": 3}, quiet=True)
