import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import ganapps.engine.metrics
from ganapps.engine.errors import InputError
from ganapps.metrics_cli import app

runner = CliRunner()


def smooth_images(n, size=32, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size // 8, size // 8, generator=g)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return torch.tanh(x + 0.3 * torch.randn(n, channels, size, size, generator=g))


@pytest.fixture
def sets(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("GANAPPS_INCEPTION_WEIGHTS", raising=False)
    real, other = smooth_images(40, seed=0), smooth_images(40, seed=1)
    torch.save(real, tmp_path / "real.pt")
    np.save(tmp_path / "other.npy", other.numpy())
    torch.save(real[:1].expand(40, -1, -1, -1).clone(), tmp_path / "collapsed.pt")
    folder = tmp_path / "real_png"
    folder.mkdir()
    from PIL import Image

    for i, img in enumerate(((real + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return tmp_path


def run_json(*args):
    result = runner.invoke(app, [*map(str, args), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_swd_command_prints_one_json_object_last(sets):
    same = run_json("swd", sets / "real.pt", sets / "real.pt")
    apart = run_json("swd", sets / "real.pt", sets / "other.npy")
    assert same["swd_x1e3_avg"] == 0.0 and apart["swd_x1e3_avg"] > 0
    assert list(apart["swd_x1e3"]) == ["32", "16"]


def test_fid_command_on_pixel_features_is_zero_for_one_set_and_cached_for_folders(sets):
    same = run_json("fid", sets / "real_png", sets / "real_png", "--features", "pixels", "--pixel-size", "8")
    assert same["fid"] < 1e-8 and same["features"] == "pixels-area-8"
    apart = run_json(
        "fid", sets / "real_png", sets / "other.npy", "--features", "pixels", "--pixel-size", "8"
    )
    assert apart["fid"] > 1.0
    assert len(list((sets / "cache" / "stats").glob("*.npz"))) == 1
    again = run_json("fid", sets / "real_png", sets / "other.npy", "--features", "pixels", "--pixel-size", "8")
    assert again["fid"] == apart["fid"] and again["images_a"] == apart["images_a"]  # count kept in the cache


def test_fid_on_fewer_images_than_feature_dimensions_warns_and_points_to_kid(sets):
    n = len(list((sets / "real_png").iterdir()))
    out = run_json("fid", sets / "real_png", sets / "other.npy", "--features", "pixels", "--pixel-size", "8")
    assert out["images_a"] == n and f"{min(n, out['images_b'])} < 192" in out["warning"] and "KID" in out["warning"]
    result = runner.invoke(app, ["fid", str(sets / "real_png"), str(sets / "other.npy"), "--features", "pixels",
                                 "--pixel-size", "8", "--quiet"])
    assert result.exit_code == 0 and "warning: FID on" in result.output


def test_kid_and_prdc_commands_rank_a_collapsed_generator_worse(sets):
    kid_fresh = run_json(
        "kid", sets / "real.pt", sets / "other.npy", "--features", "pixels", "--subsets", "5"
    )
    kid_collapsed = run_json(
        "kid", sets / "real.pt", sets / "collapsed.pt", "--features", "pixels", "--subsets", "5"
    )
    assert kid_collapsed["kid"] > kid_fresh["kid"] and kid_fresh["subset_size"] == 40
    fresh = run_json("prdc", sets / "real.pt", sets / "other.npy", "--features", "pixels")
    collapsed = run_json("prdc", sets / "real.pt", sets / "collapsed.pt", "--features", "pixels")
    assert collapsed["recall"] < fresh["recall"] and collapsed["coverage"] < fresh["coverage"]


def test_diversity_command_reports_each_set(sets):
    out = run_json("diversity", sets / "other.npy", sets / "collapsed.pt", "--pairs", "20")
    assert out["ms_ssim_b"] == pytest.approx(1.0, abs=1e-5) and out["ms_ssim_a"] < out["ms_ssim_b"]
    assert "ms_ssim_b" not in run_json("diversity", sets / "other.npy", "--pairs", "5")


def test_memorization_command_flags_copies_by_file_name(sets):
    out = run_json("memorization", sets / "real_png", sets / "collapsed.pt", "--show", "2")
    assert out["near_copy_share"] == 1.0 and out["n_flagged"] == 40
    assert out["closest"][0]["train"] == "00.png"
    assert run_json("memorization", sets / "real_png", sets / "other.npy")["near_copy_share"] == 0.0


def test_human_output_names_each_figure(sets):
    result = runner.invoke(app, ["swd", str(sets / "real.pt"), str(sets / "other.npy"), "--quiet"])
    assert result.exit_code == 0 and "swd_x1e3_avg:" in result.stdout


def test_bad_input_raises_input_error_naming_the_file(sets):
    result = runner.invoke(app, ["swd", str(sets / "nothing_here"), str(sets / "real.pt"), "--quiet"])
    assert isinstance(result.exception, InputError) and "nothing_here" in str(result.exception)
    result = runner.invoke(app, ["fid", str(sets / "real.pt"), str(sets / "other.npy"), "--quiet"])
    assert isinstance(result.exception, InputError)
    assert "pt_inception-2015-12-05-6726825d.pth" in str(result.exception)


def test_metrics_engine_imports_neither_typer_nor_task_packages():
    forbidden = {
        "typer",
        "click",
        "ganapps.cli",
        "ganapps.toy",
        "ganapps.cyclegan",
        "ganapps.video",
        "ganapps.medical",
    }
    for path in Path(ganapps.engine.metrics.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not any(n == f or n.startswith(f + ".") for n in names for f in forbidden), (path, names)
