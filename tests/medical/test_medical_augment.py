"""Training-data variations the generator learns: AnatomyAugment (warp + gamma of slices and maps together),
LesionPainter, AugmentedSlices, and the task options anatomy_augment / paint_lesions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganapps.engine.errors import InputError
from ganapps.medical import labels as L
from ganapps.medical.augment import AnatomyAugment, AugmentedSlices, LesionPainter
from ganapps.medical.config import PRESETS, MedicalConfig
from ganapps.medical.data import SliceDataset

LEVELS = torch.tensor([-1.0, -0.5, 0.2, 0.7])  # background, CSF, GM, WM


def _brains(n=4, s=32) -> tuple[torch.Tensor, torch.Tensor]:
    """Piecewise-constant 'slices' (n, 1, s, s) whose intensity is the level of their label map (n, s, s)."""
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    maps = []
    for i in range(n):
        r = ((yy - 15.5 - i % 2) ** 2 + (xx - 15.0) ** 2).sqrt()
        maps.append(torch.where(r < 6, 3, torch.where(r < 10, 2, torch.where(r < 12, 1, 0))))
    lab = torch.stack(maps).long()
    return LEVELS[lab][:, None], lab


def test_no_warp_and_no_gamma_is_the_identity():
    img, lab = _brains()
    aug = AnatomyAugment(rotate_deg=0, scale=0, translate_px=0, elastic_px=0, gamma=1)
    out, out_lab = aug(img, lab, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)
    assert torch.equal(out_lab, lab)


def test_the_image_and_its_label_map_are_warped_on_one_grid():
    """Bilinear image and nearest labels of one warp agree wherever the warped map is uniform over a 5 x 5
    window (the bilinear neighbours of a sample lie inside it for warps whose local stretch is under 50%)."""
    img, lab = _brains()
    out, out_lab = AnatomyAugment(gamma=1.0)(img, lab, torch.Generator().manual_seed(3))
    assert not torch.equal(out_lab, lab)  # it did warp
    oh = F.one_hot(out_lab, 4).permute(0, 3, 1, 2).float()
    uniform = (F.avg_pool2d(oh, 5, 1, 2, count_include_pad=False).amax(1) == 1)  # (B, S, S)
    assert uniform.float().mean() > 0.25  # enough pixels to check (the 2-px CSF ring is never uniform)
    torch.testing.assert_close(out[:, 0][uniform], LEVELS[out_lab][uniform], atol=1e-5, rtol=0)
    # a different warp for the labels breaks that agreement
    _, other = AnatomyAugment(gamma=1.0)(img, lab, torch.Generator().manual_seed(4))
    assert not torch.allclose(out[:, 0][uniform], LEVELS[other][uniform], atol=1e-5)


def test_warped_slices_keep_their_range_and_background():
    img, lab = _brains()
    out, out_lab = AnatomyAugment(rotate_deg=10, elastic_px=2)(img, lab, torch.Generator().manual_seed(1))
    assert out.min() >= -1 and out.max() <= 1
    assert (out[:, 0][out_lab == 0] < -0.4).all()  # background pixels stay dark (bilinear blends at the edge)
    assert (out[:, 0, 0, :] == -1).all()  # the slice border stays background


def test_gamma_is_monotone_and_keeps_the_end_points():
    x = torch.linspace(-1, 1, 64).view(1, 1, 8, 8).repeat(8, 1, 1, 1)
    aug = AnatomyAugment(rotate_deg=0, scale=0, translate_px=0, elastic_px=0, gamma=1.5)
    out, _ = aug(x, None, torch.Generator().manual_seed(0))
    flat = out.flatten(1)
    assert (flat.diff(dim=1) >= 0).all() and (flat[:, 0] == -1).all() and torch.allclose(flat[:, -1], torch.ones(8))
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("spec, match", [
    ("rotate=2", "KEY=VALUE"), ("gamma=0.5", "gamma"), ("scale=x", "not a number"), ("p=2", "p="),
    ("elastic_grid=1", "elastic_grid"),
])
def test_bad_anatomy_augment_specs_name_the_option(spec, match):
    with pytest.raises(InputError, match=match) as e:
        MedicalConfig(anatomy_augment=spec)
    assert "anatomy_augment" in str(e.value)


def test_spec_parsing():
    assert AnatomyAugment.parse("") is None and AnatomyAugment.parse("off") is None
    assert AnatomyAugment.parse("on") == AnatomyAugment()
    assert AnatomyAugment.parse("elastic_px=1.25, gamma=1.0,elastic_grid=7") == AnatomyAugment(
        elastic_px=1.25, gamma=1.0, elastic_grid=7)


def test_lesion_painter_paints_a_lesion_class_inside_the_brain_at_its_level():
    img, lab = _brains(1)
    stats = L.TissueStats.measure(img, lab)
    torch.manual_seed(0)
    painter = LesionPainter(stats, p=1.0, radius_px=(3.0, 5.0))
    seen = set()
    for _ in range(20):
        out, out_lab = painter(img[0], lab[0])
        changed = out_lab != lab[0]
        cls = int(out_lab[changed][0])
        seen.add(cls)
        assert changed.any() and set(out_lab[changed].tolist()) == {cls} and cls in L.LESION_CLASSES
        assert (lab[0][changed] > 0).all()  # only brain pixels
        assert (out[0][lab[0] == 0] == -1).all()  # the background is untouched
        inside = out[0][changed].mean()
        if cls == L.HYPO:  # darker than grey matter, brighter than CSF
            assert stats.csf < inside < stats.gm
        else:
            assert inside > stats.wm
    assert seen == set(L.LESION_CLASSES)
    lab0 = lab[0]
    assert LesionPainter(stats, p=0.0)(img[0], lab0)[1] is lab0  # p = 0: the pair as it was


def _four_class_head(tmp_path):
    from medical_helpers import phantom, write_nifti

    img, labels = phantom()
    img = img.copy()
    x = np.linspace(-1, 1, img.shape[0])[:, None, None]
    tissue = np.where(labels == 1, np.where(x > 0, 3, 2), np.where(labels == 2, 1, 0)).astype(np.int16)
    noise = np.random.default_rng(0).normal(0, 5, img.shape)  # distinct slices (the audit rejects duplicates)
    for k, v in ((1, 40.0), (2, 120.0), (3, 160.0)):
        img[tissue == k] = v + noise[tissue == k]
    return write_nifti(tmp_path / "t1.nii.gz", img), write_nifti(tmp_path / "tissue.nii.gz", tissue)


def test_training_with_both_options_records_the_lesion_classes(tmp_path):
    from ganapps.engine.trainer import train
    from ganapps.medical.pipeline import Synthesizer
    from ganapps.medical.task import MedicalTask

    t1, tissue = _four_class_head(tmp_path)
    cfg = MedicalConfig(**dict(PRESETS["tiny"], steps=2, data=[str(t1)], labels=[str(tissue)], condition="label",
                               model="resnet", device="cpu", quiet=True, holdout_every=3, out=str(tmp_path / "run"),
                               anatomy_augment="on", paint_lesions=1.0))
    task = MedicalTask(cfg)
    assert isinstance(task.train_set, AugmentedSlices) and cfg.num_classes == L.NUM_CLASSES
    clean = SliceDataset(cfg, "train")
    torch.testing.assert_close(task.train_set.images(), clean.images())  # the audit sees the real slices
    item = task.train_set[len(clean) // 2]
    assert int(item["label"].max()) in L.LESION_CLASSES  # p = 1: every pair carries a lesion
    result = train(task)
    assert result.step == 2
    synth = Synthesizer.from_checkpoint(result.run_dir, device="cpu")
    assert synth.config.num_classes == L.NUM_CLASSES and synth.config.anatomy_augment == "on"


def test_paint_lesions_needs_a_label_model_and_the_tissue_classes(tmp_path, head_nifti):
    from ganapps.medical.task import MedicalTask

    with pytest.raises(InputError, match="condition=label"):
        MedicalConfig(paint_lesions=0.5)
    img, labels, _ = head_nifti  # classes 0/1/2: no white matter
    cfg = MedicalConfig(**dict(PRESETS["tiny"], data=[str(img)], labels=[str(labels)], condition="label",
                               paint_lesions=0.5, holdout_every=3))
    with pytest.raises(InputError, match="white matter"):
        MedicalTask(cfg)
