import math

import pytest
import torch
import torch.nn.functional as F

from ganapps.engine.errors import InputError
from ganapps.engine.losses import ALIASES, LOSSES, GANLoss, get_loss


def _logits(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(-1, 1)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_returns_finite_scalars_for_patch_logits(name):
    loss = get_loss(name)
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    d, g = loss.d(real, fake), loss.g(fake, real)
    assert d.shape == () and g.shape == ()
    assert torch.isfinite(d) and torch.isfinite(g)
    assert loss.name == name


def test_vanilla_d_at_zero_logits_is_two_log_two():
    zeros = torch.zeros(5, 1)
    for name in ("vanilla", "nonsaturating"):
        assert get_loss(name).d(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_vanilla_g_is_log_one_minus_sigmoid():
    fake = _logits(-3.0, 0.0, 2.5)
    expected = torch.log(1 - torch.sigmoid(fake)).mean()
    assert get_loss("vanilla").g(fake).item() == pytest.approx(expected.item(), rel=1e-5)


def test_nonsaturating_g_is_minus_log_sigmoid():
    fake = _logits(-3.0, 0.0, 2.5)
    expected = -torch.log(torch.sigmoid(fake)).mean()
    assert get_loss("nonsaturating").g(fake).item() == pytest.approx(expected.item(), rel=1e-5)


def test_nonsaturating_gradient_stays_large_where_vanilla_vanishes():
    # D confidently rejects the fakes: sigmoid(-8) ~ 3e-4.
    grads = {}
    for name in ("vanilla", "nonsaturating"):
        fake = torch.full((4, 1), -8.0, requires_grad=True)
        get_loss(name).g(fake).backward()
        grads[name] = fake.grad.abs().sum().item()
    assert grads["nonsaturating"] > 0.99
    assert grads["vanilla"] < 1e-3


def test_hinge_d_is_zero_once_logits_clear_the_margin():
    loss = get_loss("hinge")
    assert loss.d(_logits(1.0, 3.0), _logits(-1.0, -5.0)).item() == 0.0
    # Inside the margin: relu(1 - 0.5) + relu(1 + 0) = 0.5 + 1.
    assert loss.d(_logits(0.5), _logits(0.0)).item() == pytest.approx(1.5)


def test_hinge_and_wasserstein_g_is_minus_mean_fake():
    fake = _logits(1.0, -3.0)
    assert get_loss("hinge").g(fake).item() == pytest.approx(1.0)
    assert get_loss("wasserstein").g(fake).item() == pytest.approx(1.0)


def test_wasserstein_d_is_negative_when_critic_ranks_real_above_fake():
    loss = get_loss("wgan")
    assert loss.d(_logits(2.0, 4.0), _logits(-1.0)).item() == pytest.approx(-4.0)
    assert loss.d(_logits(-1.0), _logits(2.0, 4.0)).item() == pytest.approx(4.0)


def test_lsgan_is_zero_on_exact_targets_and_squared_error_otherwise():
    loss = get_loss("lsgan")
    assert loss.d(torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)).item() == 0.0
    assert loss.g(torch.ones(3, 1)).item() == 0.0
    # No 0.5 factor: (0 - 1)^2 + (1 - 0)^2.
    assert loss.d(_logits(0.0), _logits(1.0)).item() == pytest.approx(2.0)
    custom = get_loss("ls", a=-1.0, b=1.0, c=0.0)
    assert custom.d(_logits(1.0), _logits(-1.0)).item() == 0.0
    assert custom.g(_logits(0.0)).item() == 0.0


def test_relativistic_needs_real_logits_for_g():
    with pytest.raises(ValueError, match="real_logits"):
        get_loss("relativistic").g(_logits(0.0))


def test_relativistic_matches_rasgan_formula_and_is_symmetric():
    loss = get_loss("ragan")
    real, fake = _logits(2.0, 1.0), _logits(-1.0, 0.5, 0.0)
    d_expected = F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()
    assert loss.d(real, fake).item() == pytest.approx(d_expected.item(), rel=1e-6)
    # G's loss is D's with the roles of real and fake swapped.
    assert loss.g(fake, real).item() == pytest.approx(loss.d(fake, real).item(), rel=1e-6)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    smooth, plain = get_loss("vanilla", real_label=0.9), get_loss("vanilla")
    zeros = torch.zeros(2, 1)
    # The smoothed D loss is minimised at sigmoid(real) = 0.9, not at +inf.
    real = torch.full((2, 1), math.log(9.0), requires_grad=True)
    smooth.d(real, torch.full((2, 1), -30.0)).backward()
    assert real.grad.abs().max().item() < 1e-6
    # Fake side and G are untouched.
    assert smooth.d(torch.full((2, 1), 30.0), zeros).item() == pytest.approx(
        plain.d(torch.full((2, 1), 30.0), zeros).item() + 0.1 * 30.0, rel=1e-4
    )
    assert smooth.g(zeros).item() == plain.g(zeros).item()
    assert get_loss("lsgan", real_label=0.9).d(torch.full((2, 1), 0.9), zeros).item() == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize("name", ["hinge", "wasserstein"])
def test_label_smoothing_is_rejected_where_there_is_no_target(name):
    with pytest.raises(ValueError, match="real_label"):
        get_loss(name, real_label=0.9)
    assert get_loss(name, real_label=1.0).name == name


def test_bad_real_label_and_stray_targets_are_rejected():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        get_loss("vanilla", real_label=1.5)
    with pytest.raises(ValueError, match="lsgan"):
        get_loss("hinge", b=0.5)
    with pytest.raises(ValueError, match="real_label"):
        get_loss("lsgan", b=0.5, real_label=0.9)


def test_unknown_loss_names_the_choices():
    with pytest.raises(
        ValueError, match=r"^unknown GAN loss 'xyz': expected one of vanilla, nonsaturating, "
    ):
        get_loss("xyz")
    with pytest.raises(InputError):
        GANLoss("Hinge")


def test_aliases_resolve_to_canonical_names():
    assert {alias: get_loss(alias).name for alias in ALIASES} == {
        "ns": "nonsaturating",
        "ls": "lsgan",
        "least_squares": "lsgan",
        "wgan": "wasserstein",
        "ragan": "relativistic",
    }
    assert get_loss("lsgan").name == "lsgan"


def test_decision_threshold_sits_between_the_targets():
    assert get_loss("lsgan").threshold == 0.5
    assert get_loss("lsgan", a=-1.0, b=1.0).threshold == 0.0
    assert get_loss("hinge").threshold == 0.0
