"""The 2D mixture task: the evaluation protocol on known cases, nets, and short runs on the engine."""

from __future__ import annotations

import math

import pytest
import torch

from ganapps.engine.trainer import train
from ganapps.toy.config import PRESETS, ToyConfig
from ganapps.toy.data import MixtureDataset, evaluate_samples, mode_centers, sample
from ganapps.toy.nets import Discriminator, Generator
from ganapps.toy.task import ToyTask


def test_mixtures_have_the_literature_geometry():
    ring, ring_std = mode_centers("ring")
    grid, grid_std = mode_centers("grid")
    assert ring.shape == (8, 2) and ring_std == 0.02
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    assert grid.shape == (25, 2) and grid_std == 0.05 and set(grid.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


def test_real_samples_score_perfectly():
    g = torch.Generator().manual_seed(0)
    for name, k in (("ring", 8), ("grid", 25)):
        ev = evaluate_samples(name, sample(name, 2500, g))
        assert ev["modes"] == k
        assert ev["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)  # mass within 3 std in 2D
        assert ev["reverse_kl"] < 0.02


def test_a_collapsed_generator_covers_one_mode_with_kl_log_k():
    centers, std = mode_centers("ring")
    points = centers[3] + std * torch.randn(2500, 2, generator=torch.Generator().manual_seed(1))
    ev = evaluate_samples("ring", points)
    assert ev["modes"] == 1 and ev["reverse_kl"] == pytest.approx(math.log(8))


def test_a_mode_needs_twenty_high_quality_samples():
    centers, _ = mode_centers("ring")
    points = torch.cat([centers[0].repeat(2481, 1), centers[1].repeat(19, 1)])
    assert evaluate_samples("ring", points)["modes"] == 1
    points = torch.cat([centers[0].repeat(2480, 1), centers[1].repeat(20, 1)])
    assert evaluate_samples("ring", points)["modes"] == 2


def test_points_off_the_modes_are_not_high_quality():
    centers, std = mode_centers("ring")
    off = centers * (1 + 4 * std / 2)  # 4 std outward from every mode
    ev = evaluate_samples("ring", off.repeat(100, 1))
    assert ev["high_quality"] == 0.0 and ev["modes"] == 0 and math.isinf(ev["reverse_kl"])


def test_dataset_batches_are_seeded():
    ds = MixtureDataset("grid")
    a = ds.get_batch(torch.arange(64), torch.Generator().manual_seed(3))
    b = ds.get_batch(torch.arange(64), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (64, 2)


def test_net_shapes():
    assert Generator(8, 32, 2)(torch.randn(5, 8)).shape == (5, 2)
    assert Discriminator(32, 2)(torch.randn(5, 2)).shape == (5,)
    assert Discriminator(32, 2, minibatch_std=True)(torch.randn(8, 2)).shape == (8,)


@pytest.mark.parametrize("loss", ["vanilla", "nonsaturating", "lsgan", "wasserstein", "hinge", "relativistic"])
def test_every_loss_trains_a_few_steps_with_finite_numbers(tmp_path, loss):
    cfg = ToyConfig(out=str(tmp_path / loss), steps=12, batch_size=32, hidden=16, gan_loss=loss, log_every_steps=4,
                    eval_samples=100, quiet=True, use_tensorboard=False, write_report=False,
                    gp_weight=1.0 if loss == "wasserstein" else 0.0, r1_gamma=0.1, r1_interval=4,
                    ema_halflife_images=500)
    result = train(ToyTask(cfg))
    assert result.nonfinite_steps == 0
    assert all(math.isfinite(v) for k, v in result.last_logs.items() if k.startswith(("loss/", "reg/")))
    assert result.last_logs["reg/r1"] >= 0  # R1 ran on its lazy cadence and its last value is logged
    assert set(result.evaluation) == {"eval/modes", "eval/high_quality", "eval/reverse_kl"}


def test_stabilizer_options_are_wired(tmp_path):
    cfg = ToyConfig(out=str(tmp_path / "s"), steps=8, batch_size=32, hidden=16, log_every_steps=4, eval_samples=100,
                    quiet=True, use_tensorboard=False, write_report=False, use_spectral_norm=True,
                    use_minibatch_std=True, lecam_weight=0.1, instance_noise_std=0.1, real_label=0.9,
                    init="orthogonal", n_critic=2, gan_loss="nonsaturating")
    task = ToyTask(cfg)
    result = train(task)
    assert "reg/lecam" in result.last_logs
    disc = task.build_nets()["disc"]
    assert hasattr(disc.body[0], "parametrizations")  # spectral norm applied
    assert task.adv.loss.real_label == 0.9


def test_plain_preset_is_vanilla_without_stabilizers():
    cfg = ToyConfig(**PRESETS["plain"])
    assert cfg.gan_loss == "vanilla" and cfg.ema_halflife_images == 0 and not cfg.use_spectral_norm
    assert cfg.r1_gamma == cfg.gp_weight == cfg.lecam_weight == cfg.instance_noise_std == 0


def test_a_plain_vanilla_gan_is_diagnosed_as_collapsed(tmp_path, capsys):
    """The acceptance case for the health monitor on a real run: vanilla minimax, no stabilizers."""
    import json

    from ganapps.cli import main

    run = str(tmp_path / "plain")
    code = main(["toy", "train", "--preset", "plain", "--out", run, "--steps", "800", "--hidden", "64",
                 "--batch-size", "128", "--quiet", "--no-use-tensorboard", "--json"])
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and trained["modes"] <= 2
    assert main(["doctor", run, "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "mode_collapse" in verdicts["kinds"]
