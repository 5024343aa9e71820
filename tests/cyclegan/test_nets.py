"""Every generator and discriminator: output shapes, value range, norms, engine init."""

from __future__ import annotations

import pytest
import torch

from ganapps.cyclegan.nets import (
    GENERATORS,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
)
from ganapps.engine.stabilizers import init_weights


@pytest.mark.parametrize("kind,size", [("resnet_9blocks", 20), ("resnet_6blocks", 36), ("unet_128", 128),
                                       ("unet_256", 256)])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_generators_keep_the_image_shape_in_tanh_range(kind, size, norm):
    gen = build_generator(kind, 3, 3, 2, norm, use_dropout=False)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = gen(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1


def test_generators_map_channels():
    assert build_generator("resnet_6blocks", 1, 3, 4, "instance", False)(torch.zeros(1, 1, 16, 24)).shape == (1, 3, 16, 24)
    assert build_generator("unet_128", 3, 1, 2, "batch", True)(torch.zeros(2, 3, 128, 128)).shape == (2, 1, 128, 128)


def test_resnet_block_counts_and_size_multiples():
    assert sum(type(m).__name__ == "ResnetBlock" for m in build_generator("resnet_9blocks", 3, 3, 4, "instance",
                                                                           False).modules()) == 9
    assert ResnetGenerator(n_blocks=6, ngf=4).size_multiple == 4
    assert UnetGenerator(num_downs=7, ngf=2).size_multiple == 128
    assert {"resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256", "colourtone"} == set(GENERATORS)


@pytest.mark.parametrize("size,expected", [(64, 6), (256, 30), (32, 2)])
def test_patchgan_score_map_sizes_match_the_reference(size, expected):
    disc = build_discriminator("basic", 3, 4, 3, "instance")
    assert disc(torch.zeros(1, 3, size, size)).shape == (1, 1, expected, expected)


def test_n_layer_and_pixel_discriminators():
    assert build_discriminator("n_layers", 3, 4, 2, "batch")(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 6, 6)
    assert build_discriminator("n_layers", 1, 4, 5, "none")(torch.zeros(2, 1, 128, 128)).shape == (2, 1, 2, 2)
    pix = build_discriminator("pixel", 3, 4, 3, "instance")
    assert isinstance(pix, PixelDiscriminator) and pix(torch.zeros(2, 3, 9, 7)).shape == (2, 1, 9, 7)
    assert build_discriminator("basic", 3, 4, 3, "instance", use_minibatch_std=True)(
        torch.rand(4, 3, 64, 64)).shape == (4, 1, 6, 6)


def test_reference_bias_rule_and_norm_layers():
    """Convs carry a bias with instance norm, not with batch norm (whose shift replaces it)."""
    inst = build_generator("resnet_6blocks", 3, 3, 4, "instance", False)
    batch = build_generator("resnet_6blocks", 3, 3, 4, "batch", False)
    assert inst.model[1].bias is not None and batch.model[1].bias is None
    assert isinstance(inst.model[2], torch.nn.InstanceNorm2d) and not inst.model[2].affine
    assert isinstance(batch.model[2], torch.nn.BatchNorm2d)


def test_unet_skip_carries_the_leaky_relu_of_its_input_as_the_reference():
    """The reference's in-place LeakyReLU rewrites a block's input before it is concatenated."""
    from ganapps.cyclegan.nets import UnetSkipBlock

    block = UnetSkipBlock(2, 4, innermost=True, norm="none")
    x = torch.randn(1, 2, 4, 4)
    y = block(x)
    assert torch.equal(y[:, :2], torch.nn.functional.leaky_relu(x, 0.2))


def test_engine_init_sets_the_dcgan_statistics():
    torch.manual_seed(0)
    gen = init_weights(build_generator("resnet_9blocks", 3, 3, 64, "instance", False), "normal", 0.02)
    w = torch.cat([m.weight.detach().flatten() for m in gen.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 0.001 and abs(float(w.mean())) < 0.001


# -- CUT's additions: anti-aliased sampling, encoder taps, the PatchNCE head
def test_antialiased_resnet_keeps_the_shape_and_the_reference_layer_list():
    from ganapps.cyclegan.nets import BlurDownsample, resnet_layer_count

    for n_blocks in (6, 9):
        for aa in (False, True):
            gen = ResnetGenerator(3, 3, 4, "instance", False, n_blocks, use_antialias=aa)
            assert len(gen.model) == resnet_layer_count(n_blocks, aa)
            assert gen(torch.rand(1, 3, 20, 28) * 2 - 1).shape == (1, 3, 20, 28)
    gen = ResnetGenerator(3, 3, 4, "instance", False, 9, use_antialias=True)
    # the reference's indices 0, 4, 8, 12, 16: padded input, the two stride-1 down convs, blocks 1 and 5
    assert isinstance(gen.model[0], torch.nn.ReflectionPad2d) and isinstance(gen.model[7], BlurDownsample)
    assert all(isinstance(gen.model[i], torch.nn.Conv2d) for i in (4, 8))
    assert all(type(gen.model[i]).__name__ == "ResnetBlock" for i in (12, 16))
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.modules())


def test_blur_downsample_and_bilinear_upsample_keep_flat_images_flat():
    from ganapps.cyclegan.nets import BlurDownsample, bilinear_upsample

    x = torch.full((2, 3, 9, 8), 0.3)
    y = BlurDownsample(3)(x)
    assert y.shape == (2, 3, 5, 4) and torch.allclose(y, torch.full_like(y, 0.3))
    z = bilinear_upsample()(x)
    assert z.shape == (2, 3, 18, 16) and torch.allclose(z, torch.full_like(z, 0.3))
    assert not list(BlurDownsample(3).state_dict())  # a fixed kernel, not saved with the weights
    # blur before subsampling: a one-pixel checkerboard (the highest frequency) is removed, not aliased
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1
    assert float(BlurDownsample(1)(checker[None, None])[..., 1:-1, 1:-1].abs().max()) < 1e-6


def test_encoder_taps_are_the_layer_outputs_and_their_channels():
    from ganapps.cyclegan.nets import PatchMLPHead

    gen = ResnetGenerator(3, 3, 4, "instance", False, 6, use_antialias=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    layers = [0, 4, 8, 12, 16]
    feats = gen.encode(x, layers)
    for i, f in zip(layers, feats, strict=True):
        assert torch.equal(f, gen.model[: i + 1](x))
    assert [f.shape[1] for f in feats] == gen.feature_channels(layers) == [3, 8, 16, 16, 16]
    head = PatchMLPHead(gen.feature_channels(layers), width=32)
    ids = [torch.arange(10) for _ in feats]
    out = head(feats, ids)
    assert [o.shape for o in out] == [(20, 32)] * 5
    assert torch.allclose(out[2].norm(dim=1), torch.ones(20), atol=1e-4)  # L2-normalised rows
    # row b * P + i is image b's place ids[i]: the head sees each place's feature vector alone
    one = head([f[1:] for f in feats], ids)
    assert torch.allclose(out[3][10:], one[3], atol=1e-6)


def test_antialiased_patchgan_scores_the_same_patch_grid():
    for size in (32, 64):
        plain = build_discriminator("basic", 3, 4, 3, "instance")
        aa = build_discriminator("basic", 3, 4, 3, "instance", use_antialias=True)
        x = torch.zeros(1, 3, size, size)
        assert aa(x).shape == plain(x).shape


def test_full_res_unet_head_sees_the_input_at_full_resolution():
    """`unet_full_res`: the last conv reads [stem(x), upsampled features]; with the upsampled half of its weights
    zeroed the output is exactly tanh(conv(relu(leaky_relu(conv3x3(x))))), so a one-pixel change of the input
    moves only the 5x5 pixels around it (the reference U-Net's output comes from the half-resolution level)."""
    from ganapps.cyclegan.nets import UnetGenerator

    torch.manual_seed(0)
    ngf = 4
    gen = UnetGenerator(3, 3, 7, ngf, "instance", False, "resize", full_res=True).eval()
    plain = UnetGenerator(3, 3, 7, ngf, "instance", False, "resize").eval()
    assert not hasattr(plain.model, "stem")
    top = gen.model
    with torch.no_grad():
        top.head[2].weight[:, ngf:] = 0  # the channels from the x2 upsampling
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    stem, conv = top.stem[1], top.head[2]
    want = torch.tanh(torch.nn.functional.conv2d(torch.nn.functional.pad(torch.relu(torch.nn.functional.leaky_relu(
        torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1,) * 4, mode="reflect"), stem.weight, stem.bias),
        0.2)), (1,) * 4, mode="reflect"), conv.weight[:, :ngf], conv.bias))
    with torch.no_grad():
        y = gen(x)
        x2 = x.clone()
        x2[0, :, 60, 70] += 0.5
        moved = (gen(x2) - y).abs().amax(1)[0] > 0
    assert torch.allclose(y, want, atol=1e-6)
    rows, cols = torch.nonzero(moved, as_tuple=True)
    assert moved.any() and rows.min() >= 58 and rows.max() <= 62 and cols.min() >= 68 and cols.max() <= 72


def test_full_res_is_a_unet_option():
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.engine.errors import InputError

    assert CycleGANConfig(method="pix2pix", gen="unet_128", unet_full_res=True).unet_full_res
    with pytest.raises(InputError, match="option unet_full_res=True: for the U-Net generators only"):
        CycleGANConfig(gen="resnet_9blocks", unet_full_res=True)
