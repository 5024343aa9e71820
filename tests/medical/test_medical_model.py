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
