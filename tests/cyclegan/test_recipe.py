"""The fast recipe's pieces, each by its defining property: the colourtone generator (alone and with a detail
residual) is the identity at init and a per-pixel map; resize upsampling has no transposed conv and no uneven
overlap; the colour critic sees only statistics; the sliced-W1 colour loss; the identity weight's schedule; the
presets; the checkerboard index on a checkerboard, a blur and a colour grade; a short run of the default recipe
that resumes exactly."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from cyclegan_helpers import tiny
from torch import nn

from ganapps.cli import main
from ganapps.cyclegan.colour import (
    ColourStatsDiscriminator,
    ColourToneGenerator,
    DualDiscriminator,
    sliced_w1,
)
from ganapps.cyclegan.config import PRESETS, CycleGANConfig
from ganapps.cyclegan.nets import (
    NLayerDiscriminator,
    ResnetGenerator,
    build_discriminator,
    build_generator,
    init_generator,
    upsample_layer,
)
from ganapps.cyclegan.pipeline import Translator
from ganapps.cyclegan.task import CycleGANTask
from ganapps.engine import checkpoint as ckpt
from ganapps.engine.errors import InputError
from ganapps.engine.metrics.checkerboard import checkerboard_index, lattice_energy_index


def _images(n=2, h=48, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize("use_colour_branch", [False, True])
def test_colourtone_generators_start_as_the_exact_identity(use_colour_branch):
    torch.manual_seed(0)
    kind = "resnet_6blocks" if use_colour_branch else "colourtone"
    g = init_generator(build_generator(kind, 3, 3, 8, "instance", False, upsample="resize",
                                       use_colour_branch=use_colour_branch), "normal", 0.02)
    assert isinstance(g, ColourToneGenerator) and (g.detail is not None) == use_colour_branch
    x = _images()
    # the knots' cumulative sum is exact only up to float32 rounding: a few ulps of values in [-1, 1]
    y = g(x)
    assert float((y - x).detach().abs().max()) <= 1e-6
    y.sum().backward()  # and it is trainable from there: the zero layers receive gradients
    assert float(g.head[-1].weight.grad.abs().sum()) > 0
    if use_colour_branch:
        assert float(g.detail.model[-1].weight.grad.abs().sum()) > 0


def test_the_colour_op_is_a_per_pixel_map_so_it_keeps_detail():
    torch.manual_seed(1)
    g = ColourToneGenerator()
    p = torch.randn(2, g.n_params) * 0.3  # some grade, curves and toning
    x = _images()
    perm = torch.randperm(48 * 56)
    shuffle = lambda t: t.flatten(2)[..., perm].view_as(t)  # noqa: E731
    y = g.apply_params(x, p)
    assert not torch.allclose(y, x, atol=1e-2)
    # the same parameters on rearranged pixels give the rearranged output: no pixel depends on its neighbours
    assert torch.allclose(g.apply_params(shuffle(x), p), shuffle(y), atol=1e-6)


def test_resize_upsampling_has_no_transposed_conv_and_no_checkerboard():
    t, r = (ResnetGenerator(3, 3, 8, n_blocks=2, upsample=k) for k in ("transpose", "resize"))
    assert any(isinstance(m, nn.ConvTranspose2d) for m in t.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in r.modules())
    assert sum(p.numel() for p in t.parameters()) == sum(p.numel() for p in r.parameters())
    assert r(_images(1, 72, 40)).shape == (1, 3, 72, 40)
    for kind in ("unet_128", "unet_256"):  # the U-Nets' up convs the same way (pix2pix --upsample resize)
        u = build_generator(kind, 3, 3, 4, "batch", True, upsample="resize")
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in u.modules())
        assert any(isinstance(m, nn.ConvTranspose2d) for m in build_generator(kind, 3, 3, 4, "batch", True).modules())
        n = u.size_multiple
        assert u(_images(2, n, 2 * n)).shape == (2, 3, n, 2 * n)
    # Odena et al.'s point: with all-ones kernels a constant input stays constant through resize-conv (every
    # output pixel sees the same number of taps) but turns into a period-2 pattern through a stride-2
    # transposed conv (uneven overlap).
    ones = torch.ones(1, 1, 8, 8)
    for kind in ("transpose", "resize", "bilinear"):
        layer = nn.Sequential(*upsample_layer(kind, 1, 1, bias=False))
        nn.init.ones_(layer[-1].weight)
        out = layer(ones)[..., 2:-2, 2:-2]  # (1, 1, 12, 12) away from the border
        if kind in ("resize", "bilinear"):
            assert torch.equal(out, torch.full_like(out, 9.0))
        else:
            assert set(out.unique().tolist()) == {1.0, 2.0, 4.0}  # 1, 2 or 4 taps by pixel parity


def test_the_colour_critic_sees_only_colour_statistics():
    torch.manual_seed(2)
    d = ColourStatsDiscriminator()
    x = _images()
    perm = torch.randperm(48 * 56)
    shuffled = x.flatten(2)[..., perm].view_as(x)
    assert torch.allclose(d(shuffled), d(x), atol=1e-5)  # any rearrangement of the pixels: the same score
    graded = (x * torch.tensor([1.0, 0.6, 0.3]).view(1, 3, 1, 1)).clamp(-1, 1)
    assert not torch.allclose(d(graded), d(x), atol=1e-3)


def test_the_dual_critic_averages_the_two_critics_losses():
    torch.manual_seed(3)
    patch, colour = NLayerDiscriminator(3, 8, 3), ColourStatsDiscriminator()
    dual = DualDiscriminator(patch, colour)
    x = _images(2, 64, 64)
    torch.set_grad_enabled(False)
    out = dual(x)
    n = patch(x).flatten(1).shape[1]
    assert out.shape == (2, 2 * n)
    lsgan = lambda s: (s - 1).pow(2).mean()  # noqa: E731
    assert float(lsgan(out)) == pytest.approx(0.5 * (float(lsgan(patch(x))) + float(lsgan(colour(x)))), rel=1e-5)
    torch.set_grad_enabled(True)
    assert isinstance(build_discriminator("dual", 3, 8, 3, "instance"), DualDiscriminator)


def test_sliced_w1_is_zero_for_equal_colour_sets_and_measures_a_shift():
    x = _images(1, 32, 32)
    perm = torch.randperm(32 * 32)
    rearranged = x.flatten(2)[..., perm].view_as(x)
    assert float(sliced_w1(x, rearranged)) <= 1e-6
    assert float(sliced_w1(x, torch.cat([rearranged, x]))) <= 1e-6  # the same distribution, twice the pixels
    # a constant shift t moves every projection on direction d by d.t: the distance is mean_d |d.t| exactly
    t = torch.tensor([0.3, -0.2, 0.1])
    torch.manual_seed(4)
    got = float(sliced_w1(x + t.view(1, 3, 1, 1), x, directions=16))
    torch.manual_seed(4)
    d = torch.randn(16, 3)
    d = d / d.norm(dim=1, keepdim=True)
    assert got == pytest.approx(float((d @ t).abs().mean()), rel=1e-4)
    y = x.clone().requires_grad_(True)
    sliced_w1(y, x + 0.5).backward()
    assert float(y.grad.abs().sum()) > 0


def test_sliced_w1_pools_earlier_images_and_gives_each_pixel_its_own_gradient():
    a, b = _images(1, 32, 32, seed=1), _images(1, 32, 32, seed=2) * 0.5 + 0.4  # a set of a dark and a bright image
    pixels = torch.cat([a, b]).transpose(0, 1).reshape(3, -1)[:, torch.randperm(2 * 32 * 32)]
    ref = pixels.reshape(3, 2, 32, 32).transpose(0, 1)  # the set's pixels, rearranged across the two images
    assert float(sliced_w1(a, ref)) > 0.05  # the dark image alone does not have the set's colours
    assert float(sliced_w1(a, ref, earlier=b)) <= 1e-6  # pooled with the set's other image it does
    # a shift t of both keeps every pixel's match: each of x's pixels gets the gradient it gets alone, none
    # flows into the earlier images, and the value is scaled by (1 + 1) / 1
    t = torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)
    x, earlier = (a + t).requires_grad_(True), (b + t).requires_grad_(True)
    torch.manual_seed(5)
    pooled = sliced_w1(x, torch.cat([a, b]), directions=8, earlier=earlier)
    pooled.backward()
    x_alone = (a + t).requires_grad_(True)
    torch.manual_seed(5)
    alone = sliced_w1(x_alone, a, directions=8)
    alone.backward()
    assert float(pooled.detach()) == pytest.approx(2 * float(alone.detach()), rel=1e-4)
    assert torch.allclose(x.grad, x_alone.grad, rtol=1e-4, atol=1e-9) and earlier.grad is None


def test_sliced_w1_on_a_random_subset_of_pixels_of_large_images():
    x = _images(1, 96, 96, seed=3)
    y = x.flatten(2)[..., torch.randperm(96 * 96)].view_as(x)
    torch.manual_seed(6)
    exact = sliced_w1(x + 0.2, y)
    torch.manual_seed(6)
    assert float(sliced_w1(x + 0.2, y, max_pixels=96 * 96)) == float(exact)  # not above the cap: all pixels
    z = x.clone().requires_grad_(True)
    torch.manual_seed(6)  # the same directions
    sub = sliced_w1(z + 0.2, y, max_pixels=1024)
    sub.backward()
    # 1024 random pixels of each image stand for it: close to the exact distance, gradients on those pixels only
    assert abs(float(sub.detach()) - float(exact)) <= 0.1 * float(exact)
    assert int((z.grad.abs().sum(1) > 0).sum()) == 1024


def test_curve_gain_scales_the_curve_slopes_only():
    torch.manual_seed(2)
    g1, g8 = ColourToneGenerator(), ColourToneGenerator(curve_gain=8.0)
    p = torch.randn(2, g1.n_params) * 0.1
    k = g1.knots
    p8 = torch.cat([p[:, :3], p[:, 3:3 + 3 * k] * 8, p[:, 3 + 3 * k:]], 1)
    x = _images()
    assert torch.allclose(g8.apply_params(x, p), g1.apply_params(x, p8), atol=1e-6)
    assert not torch.allclose(g8.apply_params(x, p), g1.apply_params(x, p), atol=1e-3)
    assert PRESETS["colour"]["curve_gain"] == 8.0 and CycleGANConfig().curve_gain == 1.0


def test_identity_weight_decays_linearly_to_zero(dataset, tmp_path):
    cfg = CycleGANConfig(**tiny(data=str(dataset), out=str(tmp_path / "r"), lambda_identity=0.5,
                                identity_decay_steps=200))
    task = CycleGANTask(cfg)
    assert [task.identity_weight(s) for s in (0, 50, 100, 199, 200, 5000)] == pytest.approx(
        [0.5, 0.375, 0.25, 0.0025, 0.0, 0.0])
    constant = CycleGANTask(CycleGANConfig(**tiny(data=str(dataset), out=str(tmp_path / "r"))))
    assert {constant.identity_weight(s) for s in (0, 10**6)} == {0.5}  # the reference: no decay


def test_presets_reference_is_the_reference_and_default_is_the_fast_recipe():
    assert PRESETS["reference"] == {}  # the class defaults are the reference's (test_task.test_reference_defaults)
    d = CycleGANConfig(**PRESETS["default"])
    assert d.gen in ("colourtone", "resnet_6blocks", "resnet_9blocks") and d.disc == "dual"
    assert d.lambda_colour > 0 and d.identity_decay_steps > 0 and d.ema_halflife_images > 0
    for name, preset in PRESETS.items():
        CycleGANConfig(**preset), name  # noqa: B018


@pytest.mark.parametrize("opts,field", [
    (dict(gen="colourtone", channels=1), "gen"),
    (dict(disc="dual", channels=1), "disc"),
    (dict(gen="colourtone", upsample="resize"), "upsample"),
    (dict(gen="unet_128", use_colour_branch=True), "use_colour_branch"),
    (dict(identity_decay_steps=-1), "identity_decay_steps"),
    (dict(lambda_colour=-1.0), "lambda_colour"),
])
def test_bad_recipe_options_name_the_field(opts, field):
    with pytest.raises(InputError, match=f"option {field}="):
        CycleGANConfig(**opts)


def _smooth_images(n=4, size=64, seed=0):
    """Smooth random images (low-pass noise), like photos mostly low-frequency, in [-0.7, 0.7]."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bicubic",
                      align_corners=False)
    x = x + 0.05 * torch.rand(n, 3, size, size, generator=g)
    return (x - x.mean()) / (x.abs().max() + 1e-6) * 0.7


def test_checkerboard_index_flags_a_checkerboard_not_a_blur_or_a_colour_grade():
    x = _smooth_images().double()  # float64, so the grade below is exact to ~1e-16
    i, j = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    board = 0.05 * (-1.0) ** (i + j)  # the period-2 pattern of a stride-2 transposed conv
    checker = x + board
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :] / 256).expand(3, 1, 5, 5).double()
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=3)
    graded = x * torch.tensor([1.2, 0.9, 0.5]).double().view(1, 3, 1, 1) + \
        torch.tensor([0.1, 0.0, -0.2]).double().view(1, 3, 1, 1)
    # a per-channel gain and offset scales each channel's mean-free spectrum by a constant: both ratios unchanged
    assert checkerboard_index(graded, x) == pytest.approx(1.0, abs=1e-9)
    assert lattice_energy_index(graded, x) == pytest.approx(1.0, abs=1e-9)
    assert checkerboard_index(x, x) == pytest.approx(1.0, abs=1e-12)
    # the acceptance bound (1.5): the checkerboard is far above it, the blur below it (and loses lattice energy)
    assert checkerboard_index(checker, x) > 10 * 1.5
    assert lattice_energy_index(checker, x) > 1.5
    assert checkerboard_index(blurred, x) < 1.5 and lattice_energy_index(blurred, x) < 1.0
    with pytest.raises(InputError, match="multiples of 4"):
        checkerboard_index(x[..., :62], x[..., :62])


def test_colour_recipe_trains_resumes_exactly_and_exports(dataset, tmp_path, capsys):
    """A few steps of `--preset colour` at a tiny size (colourtone, dual critic, colour loss, identity decay,
    EMA): the resumed run lands on the same weights (the colour loss's image history is in the checkpoint)."""
    size = ["--preset", "colour", "--load-size", "36", "--crop-size", "32", "--eval-images", "4", "--preview-images", "2",
            "--no-use-tensorboard", "--no-write-report", "--quiet", "--identity-decay-steps", "3"]
    full = tmp_path / "full"
    assert main(["cyclegan", "train", "--data", str(dataset), "--out", str(full), "--steps", "4",
                 "--checkpoint-every-steps", "2", "--log-every-steps", "1", *size, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4 and out["a2b/checkerboard_index"] > 0 and "a2b/checkerboard_energy_index" in out
    logs = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss/colour"] > 0 for r in logs if "loss/colour" in r) and len(logs) >= 4
    assert "loss/idt_a" in logs[0] and "loss/idt_a" not in logs[-1]  # decayed to 0 by step 3
    half = tmp_path / "half"
    shutil.copytree(full / "checkpoints" / "step_2", half / "checkpoints" / "step_2")
    (half / "checkpoints" / "latest").write_text("step_2\n")
    shutil.copy(full / "config.yaml", half / "config.yaml")
    assert main(["cyclegan", "train", "--out", str(half), "--resume", "--quiet"]) == 0
    a, b = ckpt.load_weights(ckpt.resolve(full)), ckpt.load_weights(ckpt.resolve(half))
    assert {"gen_ab_ema", "gen_ba_ema"} <= set(a)
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    t = Translator.from_checkpoint(full)  # the EMA generators, from the recorded options
    x = torch.rand(1, 3, 30, 42) * 2 - 1
    assert isinstance(t.nets["gen_ab"], ColourToneGenerator) and t(x).shape == x.shape
    assert main(["cyclegan", "export", str(full), "--out", str(tmp_path / "model"), "--quiet"]) == 0
    y = Translator.from_checkpoint(tmp_path / "model")(x)
    assert float((y - t(x)).abs().max()) < 2e-2  # fp16 weights
    assert t.nets["gen_ab"].curve_gain == 8.0
    # a model whose options predate curve_gain (no such key) is rebuilt as it was trained: gain 1
    cfg = tmp_path / "model" / "config.yaml"
    cfg.write_text("".join(line for line in cfg.read_text().splitlines(True) if not line.startswith("curve_gain:")))
    assert Translator.from_checkpoint(tmp_path / "model").nets["gen_ab"].curve_gain == 1.0


def test_lr_global_gives_the_colour_branch_its_own_learning_rate(dataset, tmp_path):
    from ganapps.engine.trainer import Trainer

    cfg = CycleGANConfig(**tiny(data=str(dataset), out=str(tmp_path / "r"), use_colour_branch=True, lr_g=2e-4,
                                lr_global=1e-3, lr_schedule="constant"))
    tr = Trainer(CycleGANTask(cfg))
    tr._build()
    groups = tr.optimizers["gen"].param_groups
    colour = {id(p) for g in ("gen_ab", "gen_ba") for m in (tr.nets[g].enc, tr.nets[g].head) for p in m.parameters()}
    assert [g["lr"] for g in groups] == [1e-3, 2e-4]
    assert {id(p) for p in groups[0]["params"]} == colour
    assert not colour & {id(p) for p in groups[1]["params"]} and len(groups[1]["params"]) > 0
    with pytest.raises(InputError, match="option lr_global="):
        CycleGANConfig(lr_global=1e-3)
