"""Paired data for pix2pix: two folders matched by file name or side-by-side A|B images, one crop and flip for both
images of a pair, the built-in paired set, and the one-line errors for data that is not paired."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cyclegan_helpers import write_images
from PIL import Image

from ganapps.cli import main
from ganapps.cyclegan.data import PairedDataset, load_pairs, paired_files, paired_source, split_aligned
from ganapps.engine.errors import InputError


def _pairs(root, n=3, size=(40, 36), shift=1):
    """A/ of random images, B/ the same images with their channels rolled (same names)."""
    files = write_images(root / "A", n, size=size)
    (root / "B").mkdir()
    for f in files:
        Image.fromarray(np.roll(np.asarray(Image.open(f)), shift, axis=2)).save(root / "B" / f.name)
    return root / "A", root / "B"


def test_pairs_are_matched_by_name_without_suffix(tmp_path):
    a, b = _pairs(tmp_path)
    (b / "img_01.png").rename(b / "img_01.jpg")  # another format, same name: still a pair
    assert [(x.name, y.name) for x, y in paired_files(a, b)] == [
        ("img_00.png", "img_00.png"), ("img_01.png", "img_01.jpg"), ("img_02.png", "img_02.png")]


def test_unmatched_names_are_an_error_naming_the_file(tmp_path):
    a, b = _pairs(tmp_path)
    (b / "img_02.png").rename(b / "other.png")
    with pytest.raises(InputError, match=r"img_02.png: no image named img_02\.\* in .*B \(2 of 6 images unmatched\)"):
        paired_files(a, b)
    Image.new("RGB", (4, 4)).save(a / "img_00.jpg")
    with pytest.raises(InputError, match="img_00.*same name as img_00"):
        paired_files(a, b)


def test_both_images_of_a_pair_get_one_crop_and_one_flip(tmp_path):
    a, b = _pairs(tmp_path, size=(40, 36))
    ds = PairedDataset((a, b), preprocess="crop", crop_size=24, use_flip=True)
    torch.manual_seed(0)
    crops = set()
    for _ in range(12):
        item = ds[1]
        assert item["a"].shape == item["b"].shape == (3, 24, 24)
        assert torch.equal(item["b"], item["a"].roll(1, 0))  # B is A with its channels rolled, pixel for pixel
        crops.add(float(item["a"].sum()))
    assert len(crops) > 1  # the crops and flips do vary between draws


def test_aligned_images_split_into_their_halves(tmp_path):
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 255, (32, 32, 3), np.uint8), rng.integers(0, 255, (32, 32, 3), np.uint8)
    (tmp_path / "train").mkdir()
    Image.fromarray(np.concatenate([left, right], 1)).save(tmp_path / "train" / "x.png")
    assert paired_source(str(tmp_path)) == tmp_path / "train"
    ds = PairedDataset(tmp_path / "train", preprocess="none", use_flip=False, crop_size=32)
    item = ds[0]
    assert torch.equal(item["a"], torch.from_numpy(left).permute(2, 0, 1).float() / 127.5 - 1)
    assert torch.equal(item["b"], torch.from_numpy(right).permute(2, 0, 1).float() / 127.5 - 1)
    files, xa, xb = load_pairs(tmp_path / "train", 3, 16, 10)
    assert files == [tmp_path / "train" / "x.png"] and xa.shape == xb.shape == (1, 3, 16, 16)
    with pytest.raises(InputError, match="33 pixels wide"):
        split_aligned(np.zeros((4, 33, 3), np.uint8), "y.png")


@pytest.mark.parametrize("case", ["odd", "sizes"])
def test_pairs_that_cannot_align_are_errors_naming_the_file(tmp_path, case):
    if case == "odd":
        (tmp_path / "train").mkdir()
        Image.new("RGB", (65, 32)).save(tmp_path / "train" / "bad.png")
        source, match = tmp_path / "train", "bad.png: 65 pixels wide"
    else:
        a, b = _pairs(tmp_path)
        Image.new("RGB", (20, 20)).save(b / "img_01.png")
        source, match = (a, b), r"img_01.png: 20x20 pixels, its pair .*img_01.png is 40x36"
    with pytest.raises(InputError, match=match):
        PairedDataset(source, preprocess="resize_and_crop", load_size=32, crop_size=32)


def _cli_error(capsys, *args):
    code = main(["cyclegan", "train", "--method", "pix2pix", "--preset", "tiny", "--steps", "1", "--quiet", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def test_cli_refuses_unpaired_folders_odd_widths_and_missing_layouts(tmp_path, capsys):
    root = tmp_path / "unpaired"
    write_images(root / "trainA", 2, seed=1)
    (root / "trainB").mkdir()
    for k in range(2):
        Image.new("RGB", (40, 40)).save(root / "trainB" / f"zebra_{k}.png")
    code, err = _cli_error(capsys, "--data", str(root), "--out", str(tmp_path / "r1"))
    assert code == 2 and len(err.splitlines()) == 1 and "img_00.png: no image named img_00.*" in err
    assert "--method cyclegan, cut or fastcut" in err
    aligned = tmp_path / "aligned"
    (aligned / "train").mkdir(parents=True)
    Image.new("RGB", (81, 40)).save(aligned / "train" / "odd.png")
    code, err = _cli_error(capsys, "--data", str(aligned), "--out", str(tmp_path / "r2"))
    assert code == 2 and len(err.splitlines()) == 1 and "odd.png: 81 pixels wide" in err
    (tmp_path / "empty").mkdir()
    code, err = _cli_error(capsys, "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r3"))
    assert code == 2 and "no trainA/ and trainB/" in err and "nor train/" in err
    assert not (tmp_path / "r1" / "checkpoints").exists()  # nothing half-written


def test_builtin_paired_set_pairs_each_photo_with_its_painting(tmp_path, monkeypatch):
    import ganapps.recipes.cyclegan_builtin as builtin

    src = tmp_path / "unpaired"
    rng = np.random.default_rng(0)
    for name, n in {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2, "testA_painted": 2}.items():
        (src / name).mkdir(parents=True)
        for k in range(n):
            img = rng.integers(0, 255, (128, 128, 3), np.uint8)
            if name == "testA_painted":
                img = builtin.paint(np.asarray(Image.open(src / "testA" / f"{k:04d}.png")))
            Image.fromarray(img).save(src / name / f"{k:04d}.png")
    monkeypatch.setattr(builtin, "PAIRED_COUNTS", {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2})
    root = builtin.build_paired(tmp_path / "paired", source=src)
    assert builtin.verify_paired(root) == {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2}
    photo = np.asarray(Image.open(root / "trainA" / "0001.png"))
    assert np.array_equal(photo, np.asarray(Image.open(src / "trainA" / "0001.png")))
    assert np.array_equal(np.asarray(Image.open(root / "trainB" / "0001.png")), builtin.paint(photo))
    assert np.array_equal(np.asarray(Image.open(root / "testB" / "0000.png")),
                          np.asarray(Image.open(src / "testA_painted" / "0000.png")))
    assert len(paired_files(root / "trainA", root / "trainB")) == 3
    assert builtin.build_paired(tmp_path / "paired", source=src) == root  # the verified copy is reused
