"""Nets, a tiny training run per conditioning mode, the Synthesizer and the CLI (sample, evaluate, errors)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from ganapps.engine.errors import InputError
from ganapps.medical.config import PRESETS, MedicalConfig
from ganapps.medical.nets import POSITION_FEATURES, Discriminator, build_generator, position_features
from ganapps.medical.pipeline import Synthesizer


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("model", ["dcgan", "resnet"])
def test_generator_and_discriminator_shapes(model, size):
    gen = build_generator(model, "position", 8, size, 4)
    z, cond = torch.randn(2, 8), position_features(torch.tensor([0.1, 0.9]))
    fake = gen(z, cond)
    assert fake.shape == (2, 1, size, size) and fake.abs().max() <= 1
    disc = Discriminator(size, 4, cond_dim=POSITION_FEATURES, minibatch_std=True, residual=model == "resnet")
    assert disc(fake, cond).shape == (2,)


def test_spade_generator_follows_the_label_map():
    gen = build_generator("resnet", "label", 8, 32, 4, num_classes=3)
    seg = torch.nn.functional.one_hot(torch.randint(3, (2, 32, 32)), 3).permute(0, 3, 1, 2).float()
    assert gen(torch.randn(2, 8), seg).shape == (2, 1, 32, 32)
    disc = Discriminator(32, 4, in_channels=4)
    assert disc(torch.randn(2, 4, 32, 32)).shape == (2,)


def _train(tmp_path, head_nifti, condition: str, name: str):
    from ganapps.engine.trainer import train
    from ganapps.medical.task import MedicalTask

    img, labels, _ = head_nifti
    opts = dict(PRESETS["tiny"], steps=3, r1_interval=2, data=[str(img)], out=str(tmp_path / name),
                condition=condition, model="dcgan" if condition == "none" else "resnet", device="cpu", quiet=True,
                holdout_every=3)
    if condition == "label":
        opts["labels"] = [str(labels)]
    result = train(MedicalTask(MedicalConfig(**opts)))
    return result


@pytest.mark.parametrize("condition", ["none", "position", "label"])
def test_tiny_training_step_and_sampling_shapes(tmp_path, head_nifti, condition):
    result = _train(tmp_path, head_nifti, condition, f"run_{condition}")
    assert result.step == 3
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss/d"]) and np.isfinite(r["loss/g"]) for r in rows if "loss/d" in r)
    assert np.isfinite(result.evaluation["eval/swd"])
    synth = Synthesizer.from_checkpoint(result.run_dir)
    assert synth.spacing_mm == pytest.approx((1.5 * 24 / 32, 1.5 * 24 / 32, 2.0))
    if condition == "label":
        labels = torch.randint(3, (5, 32, 32))
        out = synth.from_labels(labels, seed=1)
        assert out.shape == (5, 1, 32, 32)
        torch.testing.assert_close(out, synth.from_labels(labels, seed=1))
        with pytest.raises(InputError, match="label"):
            synth(4)
        stack = synth.from_label_volume(head_nifti[1])
        assert stack.shape[1:] == (1, 32, 32) and 1 <= len(stack) <= 16
    else:
        out = synth(5, seed=3)
        assert out.shape == (5, 1, 32, 32) and out.abs().max() <= 1
        torch.testing.assert_close(out, synth(5, seed=3))
        assert not torch.equal(out, synth(5, seed=4))
    if condition == "none":  # a model folder holds only the generator and reproduces the run's samples
        synth.export(tmp_path / "model", fp16=False)
        torch.testing.assert_close(Synthesizer.from_checkpoint(tmp_path / "model")(5, seed=3), out)
    path = synth.save(out, tmp_path / "synth.nii.gz")
    im = nib.load(str(path))
    assert im.shape == (32, 32, len(out)) and im.header.get_zooms() == pytest.approx(synth.spacing_mm)
    assert len(list(synth.save(out, tmp_path / "pngs").glob("*.png"))) == len(out)


def test_cli_sample_and_evaluate(tmp_path, head_nifti, capsys):
    from ganapps.cli import main

    run = _train(tmp_path, head_nifti, "none", "run").run_dir
    code = main(["medical", "sample", "--model", str(run), "--n", "6", "--out", str(tmp_path / "s.nii.gz"),
                 "--json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["n"] == 6
    assert nib.load(str(tmp_path / "s.nii.gz")).shape == (32, 32, 6)
    code = main(["medical", "evaluate", "--model", str(run), "--n", "16", "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert {"swd", "kid", "precision", "recall", "ms_ssim_fake", "near_copy_share"} <= set(report)
    assert 0 <= report["near_copy_share"] <= 1 and report["n_fake"] == 16
    code = main(["medical", "evaluate", "--model", str(run), "--n", "16", "--baselines", "--json", "--quiet"])
    base = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["baselines"]
    assert code == 0
    # training slices are near-copies of themselves; the reference set covers itself (recall 1, SWD 0)
    assert base["(b) random training slices"]["near_copy_share"] == 1.0
    ref = base["(c) reference slices themselves"]
    assert ref["recall"] == 1.0 and ref["swd"] == pytest.approx(0.0, abs=1e-9)
    assert 0 <= base["(a) PCA Gaussian"]["recall"] <= 1


@pytest.mark.parametrize("args", [
    ["sample", "--n", "0"],
    ["sample", "--n", "2", "--model", "{tmp}/absent"],
    ["train", "--data", "{tmp}/absent.nii.gz", "--steps", "1"],
    ["train", "--size", "100"],
    ["train", "--window", "liver"],
])
def test_cli_bad_input_is_one_line_with_exit_2(tmp_path, head_nifti, capsys, args):
    from ganapps.cli import main

    run = _train(tmp_path, head_nifti, "none", "run").run_dir if args[0] == "sample" and "--model" not in args \
        else None
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if run is not None:
        args += ["--model", str(run), "--out", str(tmp_path / "o.nii.gz")]
    elif args[0] == "sample":
        args += ["--out", str(tmp_path / "o.nii.gz")]
    else:
        args += ["--out", str(tmp_path / "r")]
    code = main(["medical", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_modality_translation_reuses_the_cyclegan_task(tmp_path, head_nifti):
    pytest.importorskip("ganapps.cyclegan.task")
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.task import CycleGANTask
    from ganapps.engine.trainer import train
    from ganapps.medical.translate import export_translation_folders

    img, labels, _ = head_nifti
    cfg = MedicalConfig(data=[str(img)], labels=[str(labels)], condition="label", size=32, holdout_every=3)
    counts = export_translation_folders(tmp_path / "t1_tissue", cfg)
    assert counts["trainA"] == counts["trainB"] > 0 and counts["testA"] == counts["testB"] > 0
    run = CycleGANConfig(data=str(tmp_path / "t1_tissue"), channels=1, load_size=32, crop_size=32,
                         gen="resnet_6blocks", ngf=4, ndf=4, steps=1, out=str(tmp_path / "cg"), quiet=True,
                         use_tensorboard=False, write_report=False, eval_images=2, preview_images=1, device="cpu")
    result = train(CycleGANTask(run))
    assert result.step == 1


def test_intensity_extractor_blocks_are_hellinger_embeddings():
    from ganapps.medical.evaluate import IntensityExtractor

    x = torch.rand(3, 1, 32, 32) * 2 - 1
    f = IntensityExtractor()(x)
    assert f.shape == (3, 32 + 16 + 64)
    torch.testing.assert_close(f[:, :32].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(f[:, 32:48].norm(dim=1), torch.ones(3))
    # per image: the features of one image do not depend on the rest of the batch
    torch.testing.assert_close(IntensityExtractor()(x[:1]), f[:1])


def test_intensity_features_do_not_depend_on_the_background_level():
    """A slice with background -1 and the same slice with background -0.97 (what a tanh generator gives) are
    one image to a reader. Only the pixels whose 3x3 neighbourhood mixes background and tissue may move in
    the gradient histogram; with a zero-padded Sobel every border pixel also moves (0.5 -> 0.485, bin 8 -> 7)."""
    from ganapps.medical.evaluate import IntensityExtractor

    s = 64
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    r2 = (yy - 31.5) ** 2 + (xx - 30.0) ** 2
    tissue = r2 < 10**2  # a "brain" well inside the slice
    img = torch.where(r2 < 5**2, 0.7, 0.1) + 0.05 * torch.sin(xx / 3.0)  # two tissues with texture
    a = torch.where(tissue, img, torch.tensor(-1.0))[None, None]
    b = torch.where(tissue, img, torch.tensor(-0.97))[None, None]
    fa, fb = IntensityExtractor()(torch.cat([a, b]))
    torch.testing.assert_close(fa[:32], fb[:32], rtol=0, atol=0)  # -1 and -0.97 share the lowest of 32 bins
    mixed = torch.nn.functional.max_pool2d(tissue[None, None].float(), 3, 1, 1) - \
        -torch.nn.functional.max_pool2d(-tissue[None, None].float(), 3, 1, 1)  # 1 where the 3x3 window mixes
    moved_bound = float(mixed.sum()) / s**2
    tv = float(((fa[32:48] ** 2) - (fb[32:48] ** 2)).abs().sum()) / 2  # total variation of the gradient histograms
    assert moved_bound < 252 / s**2  # the ring is smaller than the border, so the bound below can catch it
    assert tv <= moved_bound + 1e-6
    assert float((fa[48:] - fb[48:]).abs().max()) <= 0.03 / 8 + 1e-6  # layout: cell means move by <= 0.03, / 8


def test_a_model_folder_written_by_the_previous_release_loads_with_a_warning(tmp_path):
    """Before width was `width`, medical configs named it `channels` (and the GAN loss `loss`)."""
    import shutil

    from ganapps.engine import checkpoint as ckpt
    from ganapps.engine.config import DeprecatedOption

    shipped = ckpt.shipped_model("medical-default")
    old = tmp_path / "old-model"
    shutil.copytree(shipped, old)
    text = (old / "config.yaml").read_text()
    assert "\nwidth: 12\n" in text and "\ngan_loss: " in text
    (old / "config.yaml").write_text(text.replace("\nwidth: 12\n", "\nchannels: 12\n").replace("\ngan_loss: ",
                                                                                              "\nloss: "))
    with pytest.warns(DeprecatedOption) as caught:
        synth = Synthesizer.from_checkpoint(old)
    assert sorted(str(w.message).split(": ")[1] for w in caught) == [
        "option 'channels' is deprecated; use 'width' (the old name is accepted until the next release)",
        "option 'loss' is deprecated; use 'gan_loss' (the old name is accepted until the next release)"]
    assert synth.config.width == 12 and synth.config.channels == 1
    assert torch.equal(synth(4, seed=0), Synthesizer.from_checkpoint(shipped)(4, seed=0))


def test_a_position_model_samples_a_whole_stack_in_order_at_the_training_spacing(tmp_path, head_nifti, capsys):
    from ganapps.cli import main
    from ganapps.medical.data import SliceDataset

    run = _train(tmp_path, head_nifti, "position", "run").run_dir
    synth = Synthesizer.from_checkpoint(run, device="cpu")
    train = SliceDataset(synth.config, "train")
    depth = 16  # the phantom's axial slices
    assert float(synth.gen.position_step) == pytest.approx(1 / (depth - 1))
    pos = synth.stack_positions()
    ks = (pos * (depth - 1)).round()
    trained = sorted(round(p * (depth - 1)) for _, _, p in train.index)
    assert ks.tolist() == list(range(trained[0], trained[-1] + 1))  # every grid slice, first to last, in order
    brain = synth.stack(seed=2)
    assert brain.shape == (len(pos), 1, 32, 32)
    torch.testing.assert_close(brain, synth.stack(seed=2))
    # one latent for the stack: the same as sampling those positions with that latent repeated
    z = torch.randn(1, synth.config.z_dim, generator=torch.Generator().manual_seed(2)).expand(len(pos), -1)
    torch.testing.assert_close(brain, synth._generate(z, pos, 64))
    assert main(["medical", "sample", "--model", str(run), "--out", str(tmp_path / "brain.nii.gz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == len(pos)
    img = nib.load(str(tmp_path / "brain.nii.gz"))
    assert img.shape == (32, 32, len(pos)) and nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert img.header.get_zooms() == pytest.approx(synth.spacing_mm)  # 2 mm apart, like the training slices
    # --n walks n evenly spaced positions; the stack says how far apart they are
    assert main(["medical", "sample", "--model", str(run), "--n", "4", "--out", str(tmp_path / "w.nii.gz")]) == 0
    capsys.readouterr()
    gap_slices = (trained[-1] - trained[0]) / 3
    assert nib.load(str(tmp_path / "w.nii.gz")).header.get_zooms()[2] == pytest.approx(2.0 * gap_slices, rel=1e-5)


def test_weights_without_a_position_step_load_and_ask_for_n(tmp_path, head_nifti):
    from safetensors.torch import load_file, save_file

    run = _train(tmp_path, head_nifti, "position", "run").run_dir
    Synthesizer.from_checkpoint(run, device="cpu").export(tmp_path / "m", fp16=False)
    w = load_file(str(tmp_path / "m" / "weights.safetensors"))
    save_file({k: v for k, v in w.items() if not k.endswith("position_step")}, str(tmp_path / "m" / "weights.safetensors"))
    old = Synthesizer.from_checkpoint(tmp_path / "m", device="cpu")
    assert float(old.gen.position_step) == 0
    with pytest.raises(InputError, match="do not record the training slice step"):
        old.stack()
    assert old(3, seed=0).shape == (3, 1, 32, 32)
    cfg = MedicalConfig(**dict(PRESETS["tiny"], condition="none", device="cpu"))
    with pytest.raises(InputError, match="position-conditioned"):
        Synthesizer.from_nets(Synthesizer.build_nets(cfg), cfg, torch.device("cpu")).stack()  # unconditional
