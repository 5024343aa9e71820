"""Label maps: the tissue map, area-mode label slices, lesion painting (arrays, files, CLI), label faithfulness
(k-means Dice, painted-lesion Dice and contrast) and label-volume synthesis that keeps world coordinates."""

from __future__ import annotations

import itertools
import json

import nibabel as nib
import numpy as np
import pytest
import torch

from ganapps.engine.errors import InputError
from ganapps.medical import faithfulness as fa
from ganapps.medical import labels as L
from ganapps.medical.config import MedicalConfig
from ganapps.medical.nets import build_generator
from ganapps.medical.pipeline import Synthesizer


def _lattice_ball(radii) -> int:
    """Voxels (x, y, z) of an integer grid with sum((d / r)^2) <= 1, counted by brute force."""
    rng = [range(-int(r) - 1, int(r) + 2) for r in radii]
    return sum(1 for d in itertools.product(*rng) if sum((a / r) ** 2 for a, r in zip(d, radii, strict=True)) <= 1)


def test_tissue_map_takes_the_most_probable_class_inside_the_brain():
    t1 = np.array([0.0, 5, 5, 5, 5])
    gm = np.array([200.0, 10, 200, 60, 0])
    wm = np.array([10.0, 10, 30, 150, 0])
    # CSF = 255 - gm - wm: 45, 235, 25, 45, 255
    assert L.tissue_map(t1, gm, wm).tolist() == [L.BACKGROUND, L.CSF, L.GM, L.WM, L.CSF]


def test_area_mode_keeps_the_majority_class_of_each_output_pixel_and_pads_with_background():
    lab = torch.full((1, 8, 8), 1, dtype=torch.long)
    lab[0, :3, :3] = 2  # 9 of the 16 pixels of the top-left 4 x 4 block
    lab[0, 0, 4:] = 3  # a thin line: 4 of 16 pixels, lost (nearest sampling could have kept it)
    assert L.area_mode(lab, 2, "pad")[0].tolist() == [[2, 1], [1, 1]]
    wide = torch.full((1, 4, 8), 1, dtype=torch.long)  # padded to 8 x 8 with 2 rows of background above and below
    out = L.area_mode(wide, 4, "pad")[0]  # each output pixel covers 2 x 2
    assert out[0].tolist() == [0] * 4 and out[-1].tolist() == [0] * 4 and (out[1:3] == 1).all()


@pytest.mark.parametrize("radius", [1.5, 4.0, 6.0])
def test_painting_a_sphere_in_voxels_gives_the_lattice_ball(radius):
    lab = np.full((21, 22, 23), L.WM, dtype=np.int64)
    out = L.paint_lesion(lab, (10, 11, 11), radius, L.HYPO)
    assert (out == L.HYPO).sum() == _lattice_ball((radius,) * 3)
    assert ((out != L.HYPO) == (out == L.WM)).all()  # nothing else changed
    assert (lab == L.WM).all()  # the input is not modified


def test_a_radius_in_mm_stays_round_on_an_anisotropic_grid():
    lab = np.full((30, 30, 16), L.GM, dtype=np.int64)
    out = L.paint_lesion(lab, (15, 15, 8), 6.0, L.HYPER, spacing_mm=(1.0, 1.0, 2.0))
    assert (out == L.HYPER).sum() == _lattice_ball((6.0, 6.0, 3.0))


def test_a_lesion_stops_at_the_edge_of_the_labelled_anatomy():
    lab = np.zeros((20, 20, 20), dtype=np.int64)
    lab[:10] = L.WM  # half the volume is brain
    out = L.paint_lesion(lab, (9, 10, 10), 4.0, L.HYPO)
    painted = out == L.HYPO
    assert painted.any() and not painted[10:].any()
    assert painted.sum() == sum(1 for d in itertools.product(range(-5, 6), repeat=3)
                                if sum(a * a for a in d) <= 16 and 9 + d[0] < 10)


def test_a_blob_is_reproducible_for_a_seed_and_irregular():
    shape = (40, 40, 40)
    a = L.blob_mask(shape, (20, 20, 20), 10, irregularity=0.3, seed=1)
    assert np.array_equal(a, L.blob_mask(shape, (20, 20, 20), 10, irregularity=0.3, seed=1))
    assert not np.array_equal(a, L.blob_mask(shape, (20, 20, 20), 10, irregularity=0.3, seed=2))
    assert not np.array_equal(a, L.blob_mask(shape, (20, 20, 20), 10))
    # the radius stays within (1 +- 2 x 0.3) r: every point within r / 1.6 is inside, none beyond r / 0.4
    d = np.sqrt(sum((g - 20.0) ** 2 for g in np.meshgrid(*[np.arange(40)] * 3, indexing="ij")))
    assert a[d <= 10 / 1.6].all() and not a[d > 10 / 0.4].any()
    with pytest.raises(InputError, match="irregularity"):
        L.blob_mask(shape, (20, 20, 20), 10, irregularity=0.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"center": (30, 30, 30), "radius": 3.0}, "no labelled voxel"),
    ({"center": (10, 10, 10), "radius": 0.0}, "radius"),
    ({"center": (10, 10, 10), "radius": 3.0, "cls": 0}, "class"),
    ({"center": (10, 10), "radius": 3.0}, "3 coordinates"),
])
def test_bad_lesions_are_input_errors(kwargs, match):
    lab = np.full((20, 20, 20), L.WM)
    lab[15:] = 0
    with pytest.raises(InputError, match=match):
        L.paint_lesion(lab, **{"cls": L.HYPO, **kwargs})


def _label_volume(tmp_path, shape=(20, 24, 16)):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[2:18, 3:21, 2:14] = L.WM
    lab[5:15, 6:18, 4:12] = L.GM
    affine = np.array([[1.5, 0, 0, -14.0], [0, 1.5, 0, -20.0], [0, 0, 2.0, -10.0], [0, 0, 0, 1]])
    path = tmp_path / "map.nii.gz"
    nib.save(nib.Nifti1Image(lab, affine), str(path))
    return path, lab, affine


def test_paint_lesion_file_keeps_grid_affine_and_puts_the_lesion_at_the_world_point(tmp_path):
    src, lab, affine = _label_volume(tmp_path)
    world = (1.0, -3.5, 4.0)  # RAS mm: voxel (10, 11, 7)
    info = L.paint_lesion_file(src, tmp_path / "out.nii.gz", world, 4.5, L.HYPO)
    img = nib.load(info["out"])
    out = np.asarray(img.dataobj)
    np.testing.assert_allclose(img.affine, affine)
    assert out.shape == lab.shape and out.dtype == np.uint8
    painted = np.argwhere(out == L.HYPO)
    assert len(painted) == info["voxels"] == _lattice_ball((3.0, 3.0, 2.25))  # 4.5 mm on 1.5 x 1.5 x 2 mm voxels
    centroid = affine[:3, :3] @ painted.mean(0) + affine[:3, 3]
    np.testing.assert_allclose(centroid, world, atol=1e-6)  # the world point lands on a voxel centre here
    assert ((out == lab) | (out == L.HYPO)).all()


def test_cli_paint_lesion_and_its_bad_inputs(tmp_path, capsys):
    from ganapps.cli import main

    src, _, _ = _label_volume(tmp_path)
    out = tmp_path / "lesioned.nii.gz"
    code = main(["medical", "paint-lesion", str(src), "--out", str(out), "--center", "5,7,6", "--radius", "3",
                 "--units", "voxels", "--class", "hyper", "--json"])
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and info["voxels"] == _lattice_ball((3.0,) * 3) and info["center_voxel"] == [5, 7, 6]
    assert (np.asarray(nib.load(str(out)).dataobj) == L.HYPER).sum() == info["voxels"]
    bad = [
        [str(tmp_path / "absent.nii.gz"), "--center", "0,0,0", "--radius", "3"],
        [str(src), "--center", "0,0", "--radius", "3"],
        [str(src), "--center", "0,0,0", "--radius", "-1"],
        [str(src), "--center", "0,0,0", "--radius", "3", "--class", "tumour"],
        [str(src), "--center", "500,0,0", "--radius", "3"],
        [str(src), "--center", "0,0,0", "--radius", "3", "--units", "inches"],
    ]
    for args in bad:
        target = tmp_path / "bad.nii.gz"
        code = main(["medical", "paint-lesion", *args, "--out", str(target)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, args
        assert not target.exists()
    code = main(["medical", "paint-lesion", str(src), "--center", "0,0,0", "--radius", "3",
                 "--out", str(tmp_path / "out.png")])
    assert code == 2 and not (tmp_path / "out.png").exists()


def _ideal(maps: torch.Tensor, levels: dict[int, float]) -> torch.Tensor:
    """A piecewise-constant rendering of label maps (N, S, S) -> (N, 1, S, S)."""
    img = torch.full(maps.shape, -1.0)
    for k, v in levels.items():
        img[maps == k] = v
    return img[:, None]


def _maps(n=4, s=32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    out = []
    for _ in range(n):
        cy, cx = (torch.rand(2, generator=g) * 6 + s / 2 - 3).tolist()
        r = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
        lab = torch.zeros(s, s, dtype=torch.long)
        lab[r < 13] = L.CSF
        lab[r < 11] = L.GM
        lab[r < 7] = L.WM
        out.append(lab)
    return torch.stack(out)


LEVELS = {L.CSF: -0.5, L.GM: 0.2, L.WM: 0.7}


def test_segmenting_an_ideal_piecewise_constant_image_gives_dice_1():
    maps = _maps()
    real = _ideal(maps, LEVELS)
    order = fa.class_order(real, maps, [1, 2, 3])
    assert order == [L.CSF, L.GM, L.WM]
    assert fa.tissue_dice(real, maps, order) == {"CSF": 1.0, "grey matter": 1.0, "white matter": 1.0}
    # a renderer that confuses grey and white matter cannot score 1 on them
    wrong = _ideal(maps, {L.CSF: -0.5, L.GM: 0.7, L.WM: 0.7})
    d = fa.tissue_dice(wrong, maps, order)
    assert d["grey matter"] < 1 and d["white matter"] < 1


def test_an_ideally_rendered_lesion_scores_dice_1_and_its_painted_contrast():
    maps = _maps(1)
    stats = L.TissueStats.measure(_ideal(maps, LEVELS), maps)
    assert (stats.csf, stats.gm, stats.wm) == pytest.approx((-0.5, 0.2, 0.7))
    for cls in L.LESION_CLASSES:
        painted = L.paint_lesion(maps[0].numpy(), (16, 16), 4.0, cls)
        img = _ideal(torch.from_numpy(painted)[None], {**LEVELS, cls: stats.level(cls)})[0, 0].numpy()
        s = fa.lesion_scores(img, painted, cls, stats)
        assert s["dice"] == 1.0
        assert s["contrast"] == pytest.approx(s["reference_contrast"], abs=1e-6)
        flat = _ideal(maps, LEVELS)[0, 0].numpy()  # the lesion not rendered at all: not found
        assert fa.lesion_scores(flat, painted, cls, stats)["dice"] == 0.0


def test_painted_lesion_protocol_with_an_ideal_renderer():
    maps = _maps(3)
    stats = L.TissueStats(-0.5, 0.2, 0.7)

    def render(m, z):
        assert z.shape == (len(m), 8)
        return _ideal(m, {**LEVELS, L.HYPO: stats.level(L.HYPO), L.HYPER: stats.level(L.HYPER)})

    rows = fa.painted_lesions(render, maps, stats, z_dim=8, radii=(3.0, 5.0))
    assert set(rows) == {f"r{r} {L.CLASS_NAMES[c]}" for r in (3, 5) for c in L.LESION_CLASSES}
    for m in rows.values():
        assert m["dice"] == 1.0 and m["sign_ok"] == 1.0 and 1 <= m["n"] <= 6


def _label_model(tmp_path, head_nifti, num_classes=4):
    img, labels, _ = head_nifti
    cfg = MedicalConfig(data=[str(img)], labels=[str(labels)], condition="label", num_classes=num_classes,
                        size=32, width=4, z_dim=8, spade_hidden=8, device="cpu", holdout_every=3)
    torch.manual_seed(0)
    synth = Synthesizer(build_generator("resnet", "label", 8, 32, 4, num_classes, 8), cfg)
    synth.gen.spacing_mm.copy_(torch.tensor([0.75, 0.75, 2.0]))
    synth.export(tmp_path / "label-model", fp16=False)
    return tmp_path / "label-model"


def test_a_synthetic_stack_from_a_label_volume_keeps_its_world_coordinates(tmp_path, head_nifti):
    """The labelled region's world centroid in the output grid (area-mode slices written with the output affine)
    is where it was in the input map, to within half an input voxel plus half an output pixel in-plane."""
    from ganapps.medical.data import AXES, slices_to_volume
    from ganapps.medical.pipeline import label_volume_affine

    model = _label_model(tmp_path, head_nifti)
    synth = Synthesizer.from_checkpoint(model, device="cpu")
    src, lab, affine = _label_volume(tmp_path)
    region = np.zeros_like(lab)
    region[3:9, 14:21, 3:7] = 1  # an off-centre box
    path = tmp_path / "box.nii.gz"
    nib.save(nib.Nifti1Image(region, affine), str(path))
    slices, ras_affine, shape = synth.label_slices(path)
    out_aff = label_volume_affine(ras_affine, shape, AXES["axial"], 32, "pad")
    vol = slices_to_volume(slices.numpy(), AXES["axial"])  # (X', Y', Z)
    world_in = affine[:3, :3] @ np.argwhere(region).mean(0) + affine[:3, 3]
    world_out = out_aff[:3, :3] @ np.argwhere(vol).mean(0) + out_aff[:3, 3]
    tol = 0.5 * 1.5 + 0.5 * 1.5 * 24 / 32
    assert np.abs(world_in - world_out)[:2].max() <= tol and world_in[2] == pytest.approx(world_out[2])
    # the CLI writes that affine, one synthetic slice per input slice
    from ganapps.cli import main

    assert main(["medical", "sample", "--model", str(model), "--labels", str(src), "--out",
                 str(tmp_path / "sim.nii.gz"), "--quiet"]) == 0
    sim = nib.load(str(tmp_path / "sim.nii.gz"))
    assert sim.shape == (32, 32, 16) and nib.aff2axcodes(sim.affine) == ("R", "A", "S")
    np.testing.assert_allclose(sim.affine, label_volume_affine(affine, lab.shape, 2, 32, "pad"))
    assert sim.header.get_zooms() == pytest.approx((1.5 * 24 / 32, 1.5 * 24 / 32, 2.0))


def test_evaluate_prints_label_faithfulness_for_label_models(tmp_path, head_nifti, capsys):
    from ganapps.cli import main

    model = _label_model(tmp_path, head_nifti)
    assert main(["medical", "evaluate", "--model", str(model), "--n", "12", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    dice = report["faithfulness"]["dice"]
    assert set(dice) == {"class 1", "class 2"}  # the phantom's classes, not the built-in map's
    assert all(0 <= v <= 1 for v in dice.values())
    assert "lesions" not in report["faithfulness"]  # own data: its classes are not the built-in ones
    assert main(["medical", "evaluate", "--model", str(model), "--n", "12"]) == 0
    assert "label faithfulness" in capsys.readouterr().out


def test_tissue_stats_need_the_tissue_classes():
    with pytest.raises(InputError, match="white matter"):
        L.TissueStats.measure(torch.zeros(1, 1, 4, 4), torch.ones(1, 4, 4, dtype=torch.long) * L.GM)


@pytest.mark.slow
def test_the_shipped_label_model_reproduces_its_card():
    """`ganapps medical evaluate --model medical-label` (about a minute on one thread; fetches MNI152 once)."""
    import yaml

    from ganapps.engine import checkpoint as ckpt
    from ganapps.medical.evaluate import evaluate_model

    card = yaml.safe_load((ckpt.shipped_model("medical-label") / "card.yaml").read_text())["metrics"]
    r = evaluate_model("medical-label", device="cpu")
    f = r["faithfulness"]
    assert f["dice"]["grey matter"] == pytest.approx(card["label_faithfulness"]["dice_grey_matter"], abs=0.005)
    assert f["dice"]["white matter"] == pytest.approx(card["label_faithfulness"]["dice_white_matter"], abs=0.005)
    for key, row in (("r5 T1-hypointense lesion", "r5_hypointense"), ("r5 T1-hyperintense lesion", "r5_hyperintense")):
        assert f["lesions"][key]["dice"] == pytest.approx(card["painted_lesions"][row]["dice"], abs=0.005)
        assert f["lesions"][key]["sign_ok"] == 1.0
    assert r["near_copy_share"] == card["quality"]["near_copy_share"]
