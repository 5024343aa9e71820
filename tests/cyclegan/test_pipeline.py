"""Inference: Translator on every input kind and size, tiling without seams, the translate / evaluate / export
commands, and their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cyclegan_helpers import tiny
from PIL import Image
from torch import nn

from ganapps.cli import main
from ganapps.cyclegan.config import CycleGANConfig
from ganapps.cyclegan.pipeline import Translator, run_tiled
from ganapps.cyclegan.task import CycleGANTask
from ganapps.engine.errors import InputError
from ganapps.engine.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step tiny run (its checkpoint is what the pipeline loads)."""
    from cyclegan_helpers import write_images

    root = tmp_path_factory.mktemp("cg")
    for d, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        write_images(root / "data" / d, 3, seed=seed)
    torch.set_num_threads(1)
    train(CycleGANTask(CycleGANConfig(**tiny(data=str(root / "data"), out=str(root / "run"), steps=2))))
    return root / "run"


def test_translator_takes_tensors_arrays_pil_files_and_folders(run_dir, tmp_path):
    t = Translator.from_checkpoint(run_dir)
    x = torch.rand(3, 37, 53) * 2 - 1  # odd size: padded to the net's multiple, cropped back
    y = t(x)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.abs().max() <= 1
    assert t(x[None], direction="b2a").shape == (1, 3, 37, 53)
    arr = np.random.default_rng(0).integers(0, 255, (21, 30, 3), dtype=np.uint8)
    out = t(arr)
    assert out.shape == (21, 30, 3) and out.dtype == np.uint8
    assert t(arr[:, :, 0]).shape == (21, 30, 3)  # grayscale input, 3-channel model
    im = Image.fromarray(arr).convert("RGBA")
    assert t(im).size == (30, 21)
    Image.fromarray(arr).save(tmp_path / "x.png")
    assert t(tmp_path / "x.png").size == (30, 21)
    assert list(t(tmp_path)) == [tmp_path / "x.png"]
    assert len(t([x, arr])) == 2


def test_translator_loads_a_checkpoint_folder_and_both_directions_differ(run_dir):
    from ganapps.engine import checkpoint as ckpt

    t = Translator.from_checkpoint(ckpt.resolve(run_dir))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert not torch.equal(t(x, "a2b"), t(x, "b2a"))


def test_wrong_inputs_give_one_line_errors(run_dir, tmp_path):
    t = Translator.from_checkpoint(run_dir)
    with pytest.raises(InputError, match="4 channels: the model expects 3"):
        t(torch.zeros(1, 4, 16, 16))
    with pytest.raises(InputError, match=r"expected \[-1, 1\]"):
        t(torch.full((3, 8, 8), 5.0))
    with pytest.raises(InputError, match="direction"):
        t(torch.zeros(3, 8, 8), direction="a2c")
    with pytest.raises(InputError, match="float64"):
        t(np.zeros((4, 4, 3)))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="bad.png: unreadable or corrupt"):
        t(tmp_path / "bad.png")
    with pytest.raises(InputError, match="no such run"):
        Translator.from_checkpoint(tmp_path / "nothing")


class LocalNet(nn.Module):
    """Three 3x3 convs: receptive radius 3 pixels, no normalisation (so tiles are exactly local)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.Tanh(),
                                 nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.Tanh(),
                                 nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"), nn.Tanh())

    def forward(self, x):
        return self.net(x)


def test_tiling_with_overlap_beyond_the_receptive_field_equals_one_pass():
    x = torch.rand(1, 3, 100, 77) * 2 - 1
    net = LocalNet()
    whole = run_tiled(net, x, multiple=4, tile_size=128, tile_overlap=16)  # one pass: fits one tile
    tiled = run_tiled(net, x, multiple=4, tile_size=32, tile_overlap=16)  # overlap/4 = 4 >= radius 3
    assert tiled.shape == whole.shape == (1, 3, 100, 77)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiling_a_constant_image_shows_no_seams():
    """The blend weights of overlapping tiles must sum to one everywhere: a constant picture stays constant
    (no brighter or darker bands where tiles meet), for any overlap and for tiles cut at the image's end."""
    net = LocalNet()
    x = torch.full((1, 3, 150, 90), 0.3)
    with torch.no_grad():
        ref = net(x[..., :8, :8])[..., :1, :1]  # (1, 3, 1, 1): one value per channel
    for tile, overlap in ((32, 8), (48, 16), (64, 60)):
        y = Translator(net, net, tile_size=tile, tile_overlap=overlap)(x)
        assert y.shape == x.shape
        assert float((y - ref).abs().max()) < 1e-6, (tile, overlap)


def test_export_stores_only_generators_in_fp16_and_loads_back_fp32(run_dir, tmp_path):
    res = Translator.from_checkpoint(run_dir).export(tmp_path / "model")
    from safetensors.torch import load_file

    stored = load_file(res["weights"])
    assert {k.split(".")[0] for k in stored} == {"gen_ab", "gen_ba"}
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    t16, t32 = Translator.from_checkpoint(tmp_path / "model"), Translator.from_checkpoint(run_dir)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert next(t16.nets["gen_ab"].parameters()).dtype == torch.float32
    assert torch.allclose(t16(x), t32(x), atol=2e-2)


def test_cli_translate_keeps_names_sizes_and_side_by_side(run_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((33, 45, 3), np.uint8)).save(src / "a photo.jpg")
    Image.fromarray((np.arange(35 * 19).reshape(35, 19) * 90).astype(np.uint16)).save(src / "deep.png")  # 16-bit
    Image.new("LA", (20, 24)).save(src / "alpha.png")
    out = tmp_path / "out"
    assert main(["cyclegan", "translate", str(src / "*.jpg"), str(src / "deep.png"), str(src / "alpha.png"),
                 "--model", str(run_dir), "--out", str(out), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["count"] == 3
    assert Image.open(out / "a photo.jpg").size == (45, 33)
    assert Image.open(out / "deep.png").size == (19, 35)
    assert main(["cyclegan", "translate", str(src), "--model", str(run_dir), "--out", str(tmp_path / "sbs"),
                 "--side-by-side", "--direction", "b2a", "--grid", str(tmp_path / "grid.png"), "--quiet"]) == 0
    assert Image.open(tmp_path / "sbs" / "alpha.png").size == (2 * 20 + 4, 24)
    assert Image.open(tmp_path / "grid.png").height == 128  # 3 pairs, one row


def test_cli_errors_are_one_line_with_exit_2(run_dir, tmp_path, capsys):
    assert main(["cyclegan", "translate", str(tmp_path / "missing.png"), "--model", str(run_dir),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.png: no such file" in err and len(err.splitlines()) == 1
    assert main(["cyclegan", "translate", str(tmp_path / "*.png"), "--model", str(run_dir), "--out",
                 str(tmp_path / "o")]) == 2
    assert "matches no image" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["cyclegan", "train", "--data-a", str(empty), "--data-b", str(empty), "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{empty}: domain A folder holds no images" in err and len(err.splitlines()) == 1


def test_cli_evaluate_reports_swd_kid_and_paired_psnr(run_dir, tmp_path, capsys):
    data = run_dir.parent / "data"
    assert main(["cyclegan", "evaluate", "--model", str(run_dir), "--data", str(data), "--size", "32", "--json",
                 "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"a2b/swd", "a2b/swd_identity", "b2a/kid_pixels_x1e3", "b2a/kid_pixels_identity_x1e3"} <= set(res)
    assert main(["cyclegan", "evaluate", "--model", str(run_dir), "--data-a", str(data / "testA"), "--data-b",
                 str(data / "testB"), "--ground-truth", str(data / "testA"), "--size", "32", "--json",
                 "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["a2b/ssim_identity"] == pytest.approx(1.0) and res["a2b/ssim"] < 1.0
    assert 0 < res["a2b/psnr_db"] < 100
    assert main(["cyclegan", "evaluate", "--model", str(run_dir), "--data", str(data), "--inception-weights",
                 str(tmp_path / "none.pth")]) == 2
    assert "Inception weights file not found" in capsys.readouterr().err


def test_the_shipped_default_model_matches_its_card_and_translates():
    import hashlib

    import yaml

    from ganapps.engine.checkpoint import shipped_model

    folder = shipped_model(Translator.default_model)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest() == card["weights"]["sha256"]
    t = Translator.from_checkpoint()
    assert t.source == folder
    x = torch.rand(1, 3, 30, 42) * 2 - 1
    y = t(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x, atol=1e-2)
