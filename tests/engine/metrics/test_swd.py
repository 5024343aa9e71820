import pytest
import torch
import torch.nn.functional as F

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import laplacian_pyramid, sliced_wasserstein_distance
from ganapps.engine.metrics.swd import pyr_up, swd_levels


def smooth_images(n, size=32, channels=3, seed=0):
    """Random low-frequency images plus fine noise, (n, C, size, size) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size // 8, size // 8, generator=g)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return torch.tanh(x + 0.3 * torch.randn(n, channels, size, size, generator=g))


def blur(x, sigma):
    k = int(4 * sigma) | 1
    coords = torch.arange(k) - k // 2
    g = torch.exp(-(coords.float() ** 2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, -1).expand(x.shape[1], 1, 1, -1)
    x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="reflect"), g, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode="reflect"), g.transpose(-1, -2), groups=x.shape[1])


@pytest.fixture(scope="module")
def real():
    return smooth_images(48, seed=0)


@pytest.fixture(scope="module")
def other_real():
    return smooth_images(48, seed=1)


def test_swd_is_zero_for_identical_sets(real):
    result = sliced_wasserstein_distance(real, real.clone())
    assert result.mean == 0.0 and all(v == 0.0 for v in result.per_level.values())


def test_swd_grows_as_the_generated_set_gets_blurrier(real, other_real):
    fresh = sliced_wasserstein_distance(real, other_real).mean
    slightly = sliced_wasserstein_distance(real, blur(other_real, 1.0)).mean
    strongly = sliced_wasserstein_distance(real, blur(other_real, 2.0)).mean
    assert 0 < fresh < slightly < strongly


def test_swd_of_a_collapsed_generator_exceeds_a_diverse_one(real, other_real):
    collapsed = other_real[:1].expand(48, -1, -1, -1).contiguous()
    assert (
        sliced_wasserstein_distance(real, collapsed).mean > sliced_wasserstein_distance(real, other_real).mean
    )


def test_swd_ignores_a_global_brightness_shift_unless_normalised_by_the_reference(real):
    # ProGAN normalises each set by its own patch statistics, so a constant offset cancels (documented limit).
    dimmed = 0.8 * real
    assert sliced_wasserstein_distance(dimmed, dimmed + 0.1).mean < 1e-2
    assert sliced_wasserstein_distance(dimmed, dimmed + 0.1, normalize="reference").mean > 20
    assert sliced_wasserstein_distance(dimmed, dimmed.clone(), normalize="reference").mean == 0.0


def test_swd_levels_follow_progan_resolutions():
    assert swd_levels(128, 128) == 4 and swd_levels(64, 48) == 2 and swd_levels(28, 28) == 1
    result = sliced_wasserstein_distance(
        smooth_images(4, 64), smooth_images(4, 64, seed=1), dirs_per_repeat=8
    )
    assert list(result.per_level) == [64, 32, 16]
    assert result.mean == pytest.approx(sum(result.per_level.values()) / 3)


def test_laplacian_pyramid_reconstructs_the_images(real):
    pyramid = laplacian_pyramid(real, 3)
    assert [p.shape[-1] for p in pyramid] == [32, 16, 8]
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = pyr_up(image) + band
    torch.testing.assert_close(image, real, atol=1e-5, rtol=0)


def test_swd_does_not_depend_on_batch_size(real, other_real):
    whole = sliced_wasserstein_distance(real, other_real, batch_size=64)
    pieces = sliced_wasserstein_distance(real, other_real, batch_size=13)
    assert pieces.per_level == pytest.approx(whole.per_level, rel=1e-5)


def test_swd_compares_sets_of_different_sizes(real, other_real):
    assert sliced_wasserstein_distance(real, other_real[:20]).mean > 0


def test_swd_rejects_mismatched_and_too_small_images(real):
    with pytest.raises(InputError, match="SWD needs one image shape"):
        sliced_wasserstein_distance(real, smooth_images(4, 64))
    with pytest.raises(InputError, match="smaller than min_resolution=16"):
        sliced_wasserstein_distance(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    with pytest.raises(InputError, match="divisible by 2"):
        sliced_wasserstein_distance(torch.zeros(2, 1, 33, 33), torch.zeros(2, 1, 33, 33))
