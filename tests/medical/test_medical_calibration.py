"""Intensity calibration of generated slices: the piecewise-linear quantile map, what training records, what the
Synthesizer measures and applies, and that exports and older weights keep their behaviour."""

from __future__ import annotations

import pytest
import torch

from ganapps.engine.errors import InputError
from ganapps.medical.config import PRESETS, MedicalConfig
from ganapps.medical.nets import KNOTS, intensity_quantiles, map_intensities
from ganapps.medical.pipeline import Synthesizer


def test_the_map_takes_knots_to_knots_is_monotone_and_clamps_beyond_the_ends():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(9, generator=g).sort().values * 2 - 1
    dst = torch.rand(9, generator=g).sort().values * 2 - 1
    torch.testing.assert_close(map_intensities(src, src, dst), dst, atol=1e-5, rtol=0)
    x = torch.linspace(-1.5, 1.5, 2001)
    y = map_intensities(x, src, dst)
    assert bool((y[1:] >= y[:-1] - 1e-6).all())
    assert torch.equal(y[x < src[0]], torch.full_like(y[x < src[0]], float(dst[0])))
    torch.testing.assert_close(y[x > src[-1]], torch.full_like(y[x > src[-1]], float(dst[-1])), atol=1e-5, rtol=0)
    # between two knots the map is the straight line through them
    mid = (src[3] + src[4]) / 2
    torch.testing.assert_close(map_intensities(mid[None], src, dst)[0], (dst[3] + dst[4]) / 2, atol=1e-5, rtol=0)
    inside = x[(x >= src[0]) & (x <= src[-1])]
    torch.testing.assert_close(map_intensities(inside, src, src), inside, atol=1e-5, rtol=0)  # src -> src: identity


def test_the_graph_form_of_the_map_is_the_same_map_tied_knots_included():
    src = torch.tensor([-1.0, -1.0, -1.0, -0.5, 0.0, 0.0, 0.3, 1.0])  # ties, as a background of exactly -1 gives
    dst = torch.tensor([-1.0, -0.9, -0.8, -0.4, 0.1, 0.2, 0.5, 0.9])
    x = torch.cat([torch.linspace(-1.2, 1.2, 1001), src])
    fast, graph = map_intensities(x, src, dst), map_intensities(x, src, dst, graph=True)
    torch.testing.assert_close(fast, graph, atol=1e-5, rtol=0)
    assert float(map_intensities(torch.tensor([-1.0]), src, dst)) == -1.0  # a tied knot maps to the first one's


def test_quantiles_of_known_values():
    v = torch.arange(1001, dtype=torch.float32) / 1000  # 0, 0.001, ..., 1
    q = intensity_quantiles(v.view(1, 1, 7, 143))
    assert q.shape == (KNOTS,)
    torch.testing.assert_close(q, torch.linspace(0, 1, KNOTS), atol=1e-3, rtol=0)  # nearest-rank rounding
    big = torch.rand(200_000, generator=torch.Generator().manual_seed(1))
    sub = intensity_quantiles(big, max_values=20_000)  # from a seeded draw of 20k of the values
    assert float((sub - torch.linspace(0, 1, KNOTS)).abs().max()) < 0.03  # > 7 standard errors at n = 20k


def _train(tmp_path, head_nifti, condition):
    from ganapps.engine.trainer import train
    from ganapps.medical.task import MedicalTask

    opts = dict(PRESETS["tiny"], steps=2, r1_interval=2, data=[str(head_nifti[0])], out=str(tmp_path / condition),
                condition=condition, model="dcgan", device="cpu", quiet=True, holdout_every=3)
    return train(MedicalTask(MedicalConfig(**opts))).run_dir


@pytest.mark.parametrize("condition", ["none", "position"])
def test_training_records_the_target_and_the_samples_follow_it(tmp_path, head_nifti, condition):
    from ganapps.medical.data import SliceDataset

    run = _train(tmp_path, head_nifti, condition)
    synth = Synthesizer.from_checkpoint(run, device="cpu")
    target = intensity_quantiles(SliceDataset(synth.config, "train").images())
    torch.testing.assert_close(synth.gen.intensity_quantiles[1], target)  # recorded by training
    assert synth.gen.is_calibrated  # the output quantiles measured on loading
    # on the samples the output quantiles were measured on, the calibrated samples have the target's quantiles
    n, g = Synthesizer.CALIBRATION_SAMPLES, torch.Generator().manual_seed(Synthesizer.CALIBRATION_SEED)
    z = torch.randn(n, synth.config.z_dim, generator=g)
    pos = synth.walk(n) if condition == "position" else None
    raw = synth._generate(z, pos, 64, calibrate=False)
    torch.testing.assert_close(intensity_quantiles(raw), synth.gen.intensity_quantiles[0])
    torch.testing.assert_close(intensity_quantiles(synth._generate(z, pos, 64)), target, atol=1e-5, rtol=0)
    # the map is monotone: every sample keeps the order of its pixels
    cal = synth(3, seed=5)
    plain = Synthesizer.from_checkpoint(run, device="cpu", calibrate=False)(3, seed=5)
    assert not torch.equal(cal, plain)
    order = plain.flatten(1).argsort(1)
    assert bool((cal.flatten(1).gather(1, order).diff(dim=1) >= -1e-6).all())


def test_exports_keep_the_calibration_and_older_weights_load_without_it(tmp_path, head_nifti):
    from safetensors.torch import load_file, save_file

    from ganapps.engine.export import PARITY_TOLERANCE

    run = _train(tmp_path, head_nifti, "position")
    synth = Synthesizer.from_checkpoint(run, device="cpu")
    synth.export(tmp_path / "m", fp16=False)
    again = Synthesizer.from_checkpoint(tmp_path / "m", device="cpu")
    torch.testing.assert_close(again(6, seed=1), synth(6, seed=1))
    synth.export(tmp_path / "ts", format="torchscript")
    traced = torch.jit.load(str(tmp_path / "ts" / "gen.pt"))
    z, pos = torch.randn(1, synth.config.z_dim), torch.tensor([0.4], dtype=torch.float64)
    with torch.no_grad():
        got, expected = traced(z, pos.float()), synth._generate(z, pos, 1)
    assert float((got - expected).abs().max()) <= PARITY_TOLERANCE
    # weights written before the calibration existed: the raw generator, as before
    w = load_file(str(tmp_path / "m" / "weights.safetensors"))
    save_file({k: v for k, v in w.items() if "intensity_quantiles" not in k}, str(tmp_path / "m" / "weights.safetensors"))
    old = Synthesizer.from_checkpoint(tmp_path / "m", device="cpu")
    assert not old.gen.is_calibrated
    torch.testing.assert_close(old(4, seed=2), Synthesizer.from_checkpoint(run, device="cpu", calibrate=False)(4, seed=2))
    old.calibrate_to(synth.gen.intensity_quantiles[1].view(1, 1, 1, KNOTS))  # the same target, given as images
    assert old.gen.is_calibrated
    torch.testing.assert_close(old(4, seed=2), synth(4, seed=2), atol=1e-5, rtol=0)


def test_label_models_are_not_calibrated():
    cfg = MedicalConfig(condition="label", num_classes=3, size=32, width=4, z_dim=8)
    synth = Synthesizer(Synthesizer.build_nets(cfg)["gen"], cfg)
    assert not synth.calibrate
    with pytest.raises(InputError, match="unconditional and position"):
        synth.calibrate_to(torch.zeros(1, 1, 32, 32))


def test_cli_raw_gives_the_uncalibrated_generator(tmp_path, head_nifti, capsys):
    import json

    import nibabel as nib
    import numpy as np

    from ganapps.cli import main

    run = _train(tmp_path, head_nifti, "none")
    for flag in ([], ["--raw"]):
        assert main(["medical", "sample", "--model", str(run), "--n", "3", "--seed", "4", "--device", "cpu",
                     "--out", str(tmp_path / f"s{len(flag)}.nii.gz"), "--quiet", *flag]) == 0
        assert main(["medical", "evaluate", "--model", str(run), "--n", "8", "--device", "cpu", "--json", "--quiet",
                     *flag]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["calibrated"] is not bool(flag)
    cal, raw = (nib.load(str(tmp_path / f"s{k}.nii.gz")).get_fdata() for k in (0, 1))
    plain = Synthesizer.from_checkpoint(run, device="cpu", calibrate=False)
    expected = nib.load(str(plain.save(plain(3, seed=4), tmp_path / "expected.nii.gz"))).get_fdata()
    np.testing.assert_array_equal(raw, expected)
    assert not np.allclose(cal, raw)
