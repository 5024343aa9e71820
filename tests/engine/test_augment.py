import pytest
import torch

from ganapps.engine.augment import AdaptiveAugment, DiffAugment, rand_cutout, rand_translation


@pytest.mark.parametrize("channels", [1, 3])
def test_diffaugment_keeps_shape_and_passes_gradients(channels):
    torch.manual_seed(0)
    x = (torch.rand(4, channels, 16, 16) * 2 - 1).requires_grad_(True)
    out = DiffAugment()(x)
    assert out.shape == x.shape
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_diffaugment_with_p_zero_or_empty_policy_is_identity():
    x = torch.randn(3, 3, 8, 8)
    assert DiffAugment(p=0.0)(x) is x
    assert torch.equal(DiffAugment("")(x), x)


def test_diffaugment_draws_new_parameters_per_call_and_sample():
    torch.manual_seed(0)
    aug = DiffAugment("color")
    x = torch.rand(1, 3, 8, 8).expand(4, 3, 8, 8) * 2 - 1
    a, b = aug(x), aug(x)
    assert not torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_color_on_a_constant_image_only_shifts_brightness():
    # Saturation and contrast scale deviations from a mean; a constant image has none.
    torch.manual_seed(0)
    x = torch.full((64, 3, 4, 4), 0.2)
    shift = DiffAugment("color")(x) - x
    per_sample = shift.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    assert per_sample.min() >= -0.5 and per_sample.max() <= 0.5
    assert per_sample[:, 0].std() > 0.2  # U[-0.5, 0.5) has std 0.29


def test_color_is_saturation_free_for_one_channel():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 6, 6) * 2 - 1
    out = DiffAugment("color")(x)
    # brightness + contrast is an affine map per sample: out = k * x + m
    for xi, oi in zip(x, out, strict=True):
        xs, os_ = xi.flatten(), oi.flatten()
        k = (os_ - os_.mean()).dot(xs - xs.mean()) / (xs - xs.mean()).square().sum()
        assert 0.5 <= k.item() < 1.5
        assert torch.allclose(os_, k * (xs - xs.mean()) + os_.mean(), atol=1e-5)


def test_translation_moves_content_by_at_most_an_eighth_with_zero_fill():
    torch.manual_seed(0)
    h = w = 16
    x = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w).expand(32, 2, h, w)
    out = rand_translation(x)
    moved = 0
    for o in out:
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros(h + 4, w + 4)
                shifted[2 : 2 + h, 2 : 2 + w] = x[0, 0]
                ref = shifted[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]
                if torch.equal(o[0], ref) and torch.equal(o[1], ref):
                    matches.append((dy, dx))
        assert len(matches) == 1
        moved += matches[0] != (0, 0)
    assert moved > 20


def test_cutout_zeroes_one_rectangle_of_at_most_half_size():
    torch.manual_seed(0)
    x = torch.ones(64, 3, 16, 16)
    out = rand_cutout(x)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(out[:, 0], out[:, 2])  # same region in every channel
    zeros = (out[:, 0] == 0).float()
    rows, cols = zeros.amax(2).sum(1), zeros.amax(1).sum(1)
    assert (zeros.sum((1, 2)) == rows * cols).all()  # a rectangle
    assert rows.max() == 8 and cols.max() == 8 and rows.min() >= 4 and cols.min() >= 4


def test_diffaugment_applies_each_op_with_probability_p():
    torch.manual_seed(0)
    x = torch.ones(2000, 1, 8, 8)
    out = DiffAugment("cutout", p=0.3)(x)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.04)


def test_diffaugment_rejects_bad_policy_p_and_shape():
    with pytest.raises(ValueError, match="color, translation, cutout"):
        DiffAugment("color,zoom")
    aug = DiffAugment()
    with pytest.raises(ValueError, match="p="):
        aug.p = 1.5
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        aug(torch.randn(3, 8, 8))


def test_ada_raises_p_when_d_is_confident_on_reals():
    ada = AdaptiveAugment(target=0.6, adjust_images=1000, interval=4)
    ps = []
    for _ in range(8):
        ada.accumulate(torch.full((10, 1), 3.0))
        ps.append(ada.update(batch_images=10))
    # Adjusts only on every 4th call, by 10 * 4 / 1000.
    assert ps == pytest.approx([0, 0, 0, 0.04, 0.04, 0.04, 0.04, 0.08])
    assert ada.last_rt == 1.0


def test_ada_keeps_p_at_zero_with_negative_logits_and_clamps_at_one():
    ada = AdaptiveAugment(adjust_images=100, interval=1)
    for _ in range(5):
        ada.accumulate(-torch.rand(8) - 0.1)
        assert ada.update(batch_images=8) == 0.0
    for _ in range(30):
        ada.accumulate(torch.rand(8) + 0.1)
        p = ada.update(batch_images=8)
    assert p == 1.0


def test_ada_moves_towards_target_and_round_trips_state():
    ada = AdaptiveAugment(target=0.6, adjust_images=100, interval=2, p=0.5)
    ada.accumulate(torch.tensor([1.0, 1.0, -1.0, -1.0]))  # r_t = 0 < target: p falls
    ada.update(5)
    ada.accumulate(torch.tensor([1.0, -1.0]))
    assert ada.update(5) == pytest.approx(0.4)
    ada.accumulate(torch.tensor([1.0, 1.0, 1.0]))
    ada.update(5)
    restored = AdaptiveAugment(target=0.6, adjust_images=100, interval=2)
    restored.load_state_dict(ada.state_dict())
    ada.accumulate(torch.tensor([1.0]))
    restored.accumulate(torch.tensor([1.0]))
    assert restored.update(5) == ada.update(5) == pytest.approx(0.5)
