import math

import pytest
import torch
from torch import nn

from ganapps.engine.stabilizers import (
    EMA,
    ImagePool,
    InstanceNoise,
    LeCam,
    MinibatchStdDev,
    apply_spectral_norm,
    ema_beta,
    feature_matching_loss,
    gradient_penalty,
    init_weights,
    lazy_regularization_weight,
    r1_penalty,
    r2_penalty,
)


def _linear_critic(w: torch.Tensor):
    return lambda x: (x.flatten(1) * w.flatten()).sum(1)  # (B,)


# ----------------------------------------------------------------- gradient penalties


@pytest.mark.parametrize("shape", [(4, 6), (3, 2, 4, 4), (2, 1, 2, 3, 3)])
def test_gradient_penalty_of_linear_critic_is_closed_form(shape):
    torch.manual_seed(0)
    w = torch.randn(shape[1:])
    gp = gradient_penalty(_linear_critic(w), torch.randn(shape), torch.randn(shape))
    assert gp.item() == pytest.approx((w.norm().item() - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_with_center_and_one_sided():
    w = torch.full((8,), 0.25)  # ||w|| = 0.25 * sqrt(8) ~ 0.707
    real, fake = torch.randn(4, 8), torch.randn(4, 8)
    critic = _linear_critic(w)
    assert gradient_penalty(critic, real, fake, one_sided=True).item() == 0.0
    assert gradient_penalty(critic, real, fake, center=0.5).item() == pytest.approx(
        (math.sqrt(0.5) - 0.5) ** 2
    )
    big = _linear_critic(3 * w)
    assert gradient_penalty(big, real, fake, one_sided=True).item() == pytest.approx(
        (3 * math.sqrt(0.5) - 1) ** 2
    )


def test_gradient_penalty_backpropagates_into_critic_parameters():
    critic = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    gradient_penalty(critic, torch.randn(6, 5), torch.randn(6, 5)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic[0].parameters())


def test_gradient_penalty_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(_linear_critic(torch.ones(4)), torch.randn(2, 4), torch.randn(3, 4))


def test_r1_of_linear_critic_is_squared_weight_norm():
    w = torch.randn(3, 4, 4)
    real = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = _linear_critic(w)(real)
    assert r1_penalty(logits, real).item() == pytest.approx(w.square().sum().item(), rel=1e-5)
    fake = torch.randn(5, 3, 4, 4, requires_grad=True)
    assert r2_penalty(_linear_critic(2 * w)(fake), fake).item() == pytest.approx(
        4 * w.square().sum().item(), rel=1e-5
    )


def test_r1_of_quadratic_critic_is_per_sample_mean():
    # D(x) = 0.5 * ||x||^2 -> grad = x, so R1 = mean_b ||x_b||^2.
    real = torch.tensor([[1.0, 0.0], [3.0, 4.0]], requires_grad=True)
    logits = 0.5 * real.square().sum(1)
    assert r1_penalty(logits, real).item() == pytest.approx((1.0 + 25.0) / 2)


def test_r1_requires_input_with_grad():
    real = torch.randn(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(real.sum(1), real)


def test_lazy_regularization_weight_scales_by_interval():
    assert lazy_regularization_weight(10.0, 16) == 80.0
    assert lazy_regularization_weight(1.0, 1) == 0.5
    with pytest.raises(ValueError, match="interval"):
        lazy_regularization_weight(1.0, 0)


# ----------------------------------------------------------------- spectral norm


def _effective_matrix(module: nn.Module) -> torch.Tensor:
    w = module.weight
    if isinstance(module, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def test_spectral_norm_makes_top_singular_value_one():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(8, 4, 4, 2, 1),
        nn.Flatten(),
        nn.Linear(4 * 16 * 16, 1),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(5.0)
    assert apply_spectral_norm(net) is net
    net.train()
    for _ in range(10):
        net(torch.randn(2, 3, 8, 8))
    layers = [net[0], net[2], net[4]]
    for layer in layers:
        sigma = torch.linalg.matrix_norm(_effective_matrix(layer).detach(), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02), type(layer).__name__


def test_spectral_norm_skips_already_normed_layers():
    layer = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 4))
    net = nn.Sequential(layer, nn.Linear(4, 2))
    apply_spectral_norm(net)
    assert len(layer.parametrizations.weight) == 1
    assert len(net[1].parametrizations.weight) == 1


# ----------------------------------------------------------------- instance noise


def test_instance_noise_std_anneals_linearly_to_zero():
    noise = InstanceNoise(0.2, anneal_steps=100)
    assert [noise.sigma(s) for s in (0, 50, 100, 500)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    torch.manual_seed(0)
    x = torch.zeros(200, 100)
    assert noise(x, 0).std().item() == pytest.approx(0.2, rel=0.02)
    assert noise(x, 50).std().item() == pytest.approx(0.1, rel=0.02)
    assert noise(x, 100) is x
    assert InstanceNoise(0.0, 10)(x, 0) is x


# ----------------------------------------------------------------- EMA


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_ema_beta_zero_copies_and_beta_one_keeps():
    torch.manual_seed(0)
    net = _net()
    ema = EMA(net)
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()(torch.randn(8, 3))  # moves BatchNorm running stats
    ema.update(net, beta=1.0)
    for k, v in ema.module.named_parameters():
        assert torch.equal(v, start[k])
    assert torch.equal(ema.module[1].running_mean, net[1].running_mean)  # buffers are copied
    ema.update(net, beta=0.0)
    for (k, v), p in zip(ema.module.named_parameters(), net.parameters(), strict=True):
        assert torch.equal(v, p), k


def test_ema_update_interpolates_and_round_trips_state():
    net = nn.Linear(2, 2)
    ema = EMA(net)
    old = ema.module.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net, beta=0.75)
    assert torch.allclose(ema.module.weight, 0.75 * old + 0.25 * net.weight)
    other = EMA(nn.Linear(2, 2))
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight)


def test_ema_update_is_lerp_bit_for_bit_in_every_dtype():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 300), nn.BatchNorm1d(300))
    ema = EMA(net)
    ema.module[1].double()  # an averaged copy kept in float64 follows the float32 net through a cast
    for beta in (0.3, 0.5, 0.9, 0.999):
        with torch.no_grad():
            for q in net.parameters():
                q.add_(torch.randn_like(q))
        expected = {k: q.detach().to(e.dtype).lerp(e, beta) for (k, q), e in
                    zip(net.named_parameters(), ema.module.parameters(), strict=True)}
        ema.update(net, beta)
        for k, v in ema.module.named_parameters():
            assert v.dtype == (torch.float64 if k.startswith("1.") else torch.float32)
            assert torch.equal(v, expected[k]), (k, beta)


def test_ema_beta_gives_half_influence_after_halflife_images():
    beta = ema_beta(batch_size=32, halflife_images=10_000)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    assert ema_beta(32, 0) == 0.0
    # Rampup shortens the half-life early in training.
    ramped = ema_beta(32, 10_000, images_seen=1_000, rampup=0.05)
    assert ramped == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(32, 10_000, images_seen=10**9, rampup=0.05) == beta
    with pytest.raises(ValueError, match="images_seen"):
        ema_beta(32, 10_000, rampup=0.05)


# ----------------------------------------------------------------- image pool


def _tagged(start: int, n: int) -> torch.Tensor:
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def test_image_pool_returns_new_images_while_filling_and_detaches():
    pool = ImagePool(size=5)
    x = _tagged(0, 3).requires_grad_(True)
    out = pool.query(x)
    assert torch.equal(out, x) and not out.requires_grad
    assert torch.equal(pool.query(_tagged(3, 2)), _tagged(3, 2))
    assert len(pool) == 5


def test_image_pool_holds_at_most_size_and_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(size=4)
    pool.query(_tagged(0, 4))
    old = 0
    n = 2000
    for i in range(n):
        tag = 100 + i
        out = pool.query(_tagged(tag, 1))
        assert len(pool) == 4
        if out[0, 0, 0, 0].item() != tag:
            old += 1
            assert tag in {int(img[0, 0, 0].item()) for img in pool.images}  # the new image took its place
    assert old / n == pytest.approx(0.5, abs=0.04)


def test_image_pool_size_zero_is_identity():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert ImagePool(0).query(x) is x


def test_image_pool_state_round_trip_reproduces_next_queries():
    torch.manual_seed(1)
    pool = ImagePool(size=3)
    pool.query(_tagged(0, 5))
    state, rng = pool.state_dict(), torch.get_rng_state()
    first = [pool.query(_tagged(10 * i, 2)) for i in range(1, 6)]
    restored = ImagePool(size=3)
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    second = [restored.query(_tagged(10 * i, 2)) for i in range(1, 6)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert ImagePool(2).state_dict()["images"].numel() == 0
    with pytest.raises(ValueError, match="size"):
        ImagePool(2).load_state_dict(state)


# ----------------------------------------------------------------- feature matching


def test_feature_matching_is_zero_for_equal_batch_means_and_detaches_real():
    real = [torch.randn(4, 3, 2, 2, requires_grad=True), torch.randn(4, 5, requires_grad=True)]
    fake = [r.detach().flip(0).clone().requires_grad_(True) for r in real]  # same batch mean
    assert feature_matching_loss(real, fake).item() == pytest.approx(0.0, abs=1e-12)
    shifted = [f + 2.0 for f in fake]
    loss = feature_matching_loss(real, shifted)
    assert loss.item() == pytest.approx(4.0, rel=1e-5)
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None


# ----------------------------------------------------------------- minibatch stddev


def test_minibatch_std_of_identical_samples_is_zero_with_one_extra_channel():
    x = torch.randn(1, 3, 5, 5).expand(8, 3, 5, 5)
    out = MinibatchStdDev()(x)
    assert out.shape == (8, 4, 5, 5)
    assert torch.equal(out[:, :3], x)
    assert out[:, 3].abs().max().item() < 1e-3


def test_minibatch_std_matches_group_std_and_handles_features():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, 3)
    out = MinibatchStdDev(group_size=4, num_channels=1)(x)  # 6 -> groups of 3, sample i in group i % 2
    for i in range(6):
        group = x[i % 2 :: 2]
        expected = group.std(dim=0, unbiased=False).mean()
        assert out[i, 2].unique().numel() == 1
        assert out[i, 2, 0, 0].item() == pytest.approx(expected.item(), rel=1e-4)
    feats = MinibatchStdDev(group_size=4, num_channels=2)(torch.randn(8, 6))
    assert feats.shape == (8, 8)
    with pytest.raises(ValueError, match="num_channels"):
        MinibatchStdDev(num_channels=2)(torch.randn(4, 3, 2, 2))


# ----------------------------------------------------------------- LeCam


def test_lecam_tracks_emas_and_penalises_the_gap():
    lecam = LeCam(decay=0.9)
    lecam.update(torch.full((4, 1), 2.0), torch.full((4, 1), -1.0))
    lecam.update(torch.full((4, 1), 3.0), torch.full((4, 1), -1.0))
    assert lecam.state_dict() == pytest.approx({"ema_real": 2.1, "ema_fake": -1.0})
    # relu(1.5 - (-1))^2 + relu(2.1 - 0.5)^2
    penalty = lecam.penalty(torch.full((2,), 1.5), torch.full((2,), 0.5))
    assert penalty.item() == pytest.approx(2.5**2 + 1.6**2, rel=1e-5)
    # Zero when D's real outputs sit below the fake EMA and fake outputs above the real EMA.
    assert lecam.penalty(torch.full((2,), -1.5), torch.full((2,), 2.5)).item() == 0.0


def test_lecam_state_round_trip_and_requires_update():
    with pytest.raises(RuntimeError, match="update"):
        LeCam().penalty(torch.zeros(1), torch.zeros(1))
    lecam = LeCam()
    lecam.update(torch.tensor([0.5]), torch.tensor([-0.25]))
    other = LeCam()
    other.load_state_dict(lecam.state_dict())
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert other.penalty(real, fake).item() == lecam.penalty(real, fake).item() > 0


# ----------------------------------------------------------------- init


def test_init_normal_has_std_gain_and_zero_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 4), nn.BatchNorm2d(64), nn.InstanceNorm2d(8, affine=True))
    init_weights(net, "normal", 0.02)
    assert net[0].weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert net[0].weight.mean().abs().item() < 1e-3
    assert net[0].bias.abs().max().item() == 0.0
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.02) and net[1].weight.std().item() < 0.05
    assert net[2].bias.abs().max().item() == 0.0 and net[2].weight.std().item() > 0


def test_init_orthogonal_rows_are_orthonormal_times_gain():
    layer = init_weights(nn.Linear(32, 16), "orthogonal", gain=1.0)
    assert torch.allclose(layer.weight @ layer.weight.T, torch.eye(16), atol=1e-5)
    scaled = init_weights(nn.Linear(32, 16), "orthogonal", gain=0.5)
    assert torch.allclose(scaled.weight @ scaled.weight.T, 0.25 * torch.eye(16), atol=1e-5)


def test_init_reaches_spectral_normed_weights_and_rejects_unknown_kind():
    net = apply_spectral_norm(nn.Sequential(nn.Linear(256, 256)))
    init_weights(net, "xavier", gain=0.02)
    assert net[0].parametrizations.weight.original.std().item() == pytest.approx(0.02 / 16, rel=0.05)
    with pytest.raises(ValueError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(net, "uniform")
