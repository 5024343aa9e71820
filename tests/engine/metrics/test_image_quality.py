import kornia
import pytest
import torch
import torch.nn.functional as F

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import ms_ssim, ms_ssim_diversity, psnr, ssim
from ganapps.engine.metrics.image_quality import ms_ssim_levels


def smooth_images(n, size=32, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size // 8, size // 8, generator=g)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return torch.tanh(x + 0.3 * torch.randn(n, channels, size, size, generator=g))


def test_psnr_of_a_constant_offset_has_the_closed_form_value():
    x = torch.rand(3, 1, 16, 16) * 1.6 - 0.8
    # 0.1 in [-1, 1] is 0.05 in [0, 1]: MSE 0.0025, PSNR = 10 log10(1 / 0.0025) = 26.0206 dB.
    torch.testing.assert_close(psnr(x, x + 0.1), torch.full((3,), 26.0206), atol=1e-3, rtol=0)
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    x = smooth_images(4)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=g)
    values = [ssim(x, (x + s * noise).clamp(-1, 1)).mean().item() for s in (0.0, 0.05, 0.2, 0.5)]
    assert values[0] == pytest.approx(1.0, abs=1e-6)
    assert values == sorted(values, reverse=True) and values[-1] < 0.5


def test_ms_ssim_with_one_scale_equals_kornia_ssim():
    # Correlated pairs keep every channel's SSIM positive, where MS-SSIM's clipping to 0 does not act.
    x = smooth_images(3, seed=0)
    y = (x + 0.2 * smooth_images(3, seed=1)).clamp(-1, 1)
    reference = kornia.metrics.ssim((x + 1) / 2, (y + 1) / 2, 11, eps=0.0, padding="valid").mean(
        dim=(1, 2, 3)
    )
    torch.testing.assert_close(ms_ssim(x, y, levels=1), reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(ssim(x, y), reference)


def test_ms_ssim_scales_follow_image_size():
    assert [ms_ssim_levels(s, s) for s in (200, 161, 160, 64, 32, 11)] == [5, 5, 4, 3, 2, 1]
    with pytest.raises(InputError, match="allow 1..2 scales"):
        ms_ssim(smooth_images(1), smooth_images(1), levels=3)


def test_ms_ssim_is_one_for_identical_images_symmetric_and_lower_for_different_ones():
    x, y = smooth_images(4, 64, seed=0), smooth_images(4, 64, seed=1)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(ms_ssim(x, y), ms_ssim(y, x))
    assert (ms_ssim(x, y) < 0.5).all()
    assert (ms_ssim(x, (x + 0.1 * torch.randn_like(x)).clamp(-1, 1)) > ms_ssim(x, y)).all()


def test_ms_ssim_diversity_is_one_for_a_collapsed_generator_and_lower_for_a_diverse_one():
    diverse = smooth_images(16)
    collapsed = diverse[:1].expand(16, -1, -1, -1)
    assert ms_ssim_diversity(collapsed, num_pairs=20) == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim_diversity(diverse, num_pairs=20) < 0.5


def test_ms_ssim_diversity_does_not_depend_on_batch_size():
    images = smooth_images(10)
    assert ms_ssim_diversity(images, 30, batch_size=4) == pytest.approx(
        ms_ssim_diversity(images, 30, batch_size=64)
    )


def test_paired_metrics_reject_mismatched_or_too_small_images():
    with pytest.raises(InputError, match="expected two equal"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(InputError, match="smaller than window_size=11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="expected >= 2"):
        ms_ssim_diversity(torch.zeros(1, 1, 16, 16))
