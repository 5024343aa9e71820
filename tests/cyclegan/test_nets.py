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
