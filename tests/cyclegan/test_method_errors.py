"""Bad training data for each one-way method through `ganapps cyclegan train`: one line on stderr naming the file
(or folder) and what was expected, exit code 2, no run folder half-written. pix2pix: unpaired folders, a mismatched
name, a pair of two sizes, an aligned image of odd width; cut and fastcut: the aligned (paired) layout, an empty
domain folder, a corrupt image (--strict)."""

from __future__ import annotations

import pytest
from cyclegan_helpers import write_images
from PIL import Image

from ganapps.cli import main


def _unpaired(root):
    write_images(root / "trainA", 2, seed=1)
    (root / "trainB").mkdir()
    for k in range(2):
        Image.new("RGB", (40, 40)).save(root / "trainB" / f"zebra_{k}.png")
    return ["--data", str(root)], "img_00.png: no image named img_00.*"


def _mismatched(root):
    write_images(root / "A", 3, seed=1)
    write_images(root / "B", 3, seed=2)
    (root / "B" / "img_01.png").rename(root / "B" / "img_11.png")
    return ["--data-a", str(root / "A"), "--data-b", str(root / "B")], "img_01.png: no image named img_01.*"


def _two_sizes(root):
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    Image.new("RGB", (20, 24)).save(root / "trainB" / "img_01.png")
    return ["--data", str(root)], "img_01.png: 20x24 pixels, its pair"


def _odd_width(root):
    (root / "train").mkdir(parents=True)
    Image.new("RGB", (80, 40)).save(root / "train" / "fine.png")
    Image.new("RGB", (81, 40)).save(root / "train" / "odd.png")
    return ["--data", str(root)], "odd.png: 81 pixels wide"


def _aligned(root):
    (root / "train").mkdir(parents=True)
    Image.new("RGB", (80, 40)).save(root / "train" / "pair.png")
    return ["--data", str(root)], f"{root / 'train'}: side-by-side A|B pairs"


def _empty_domain(root):
    write_images(root / "trainA", 2, seed=1)
    (root / "trainB").mkdir()
    return ["--data", str(root)], f"{root / 'trainB'}: domain B folder holds no images"


def _corrupt(root):
    write_images(root / "trainA", 2, seed=1)
    write_images(root / "trainB", 2, seed=2)
    (root / "trainB" / "broken.png").write_bytes(b"not a png")
    return ["--data", str(root), "--strict"], "broken.png: unreadable or corrupt image"


CASES = [("pix2pix", _unpaired), ("pix2pix", _mismatched), ("pix2pix", _two_sizes), ("pix2pix", _odd_width)] + [
    (m, case) for m in ("cut", "fastcut") for case in (_aligned, _empty_domain, _corrupt)]


@pytest.mark.parametrize("method,case", CASES, ids=[f"{m}-{c.__name__.strip('_')}" for m, c in CASES])
def test_bad_data_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, method, case):
    data_args, expected = case(tmp_path / "data")
    out = tmp_path / "run"
    code = main(["cyclegan", "train", "--method", method, "--preset", "tiny", "--steps", "1", "--quiet",
                 "--out", str(out), *data_args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err
    assert not (out / "checkpoints").exists()  # nothing half-written
