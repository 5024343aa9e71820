"""The adversarial layer: GAN options validated once, and the Adversary's losses, stabilizers, phases and state,
checked on critics whose gradients are known in closed form."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ganapps.engine.adversarial import AdversarialConfig, Adversary
from ganapps.engine.errors import InputError
from ganapps.engine.task import StepContext, iter_phases


def cfg(**kw) -> AdversarialConfig:
    return AdversarialConfig(**{"steps": 100, **kw})


def linear_critic(w: torch.Tensor):
    """D(x) = x . w per sample: grad_x D = w everywhere, so ||grad|| = ||w|| for every input."""
    return lambda x: x.flatten(1) @ w


def ctx_at(step: int, c: AdversarialConfig) -> StepContext:
    ctx = StepContext({}, torch.device("cpu"), c)
    ctx.step = step
    return ctx


def test_label_smoothing_changes_only_the_real_target():
    torch.manual_seed(0)
    real, fake, other_fake = torch.randn(8, 3), torch.randn(8, 3), torch.randn(8, 3) * 3
    disc = linear_critic(torch.tensor([0.5, -1.0, 2.0]))
    smooth, plain = Adversary(cfg(real_label=0.9)), Adversary(cfg())
    gap = smooth.d_loss(disc, real, fake).loss - plain.d_loss(disc, real, fake).loss
    gap_other = smooth.d_loss(disc, real, other_fake).loss - plain.d_loss(disc, real, other_fake).loss
    d_real = disc(real)
    expected = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 0.9))
                - F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)))
    torch.testing.assert_close(gap, expected)
    torch.testing.assert_close(gap_other, expected)  # the fake term is untouched: the gap ignores the fakes
    assert torch.equal(smooth.g_loss(disc, fake)[0], plain.g_loss(disc, fake)[0])  # G's target is untouched


def test_gradient_penalty_of_a_linear_critic_is_known_and_added_with_its_weight():
    w = torch.tensor([3.0, 4.0])  # ||w|| = 5
    adv = Adversary(cfg(gan_loss="wasserstein", gp_weight=10.0))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    out = adv.d_loss(linear_critic(w), real, fake)
    assert float(out.logs["reg/gp"]) == pytest.approx((5.0 - 1.0) ** 2)
    d = linear_critic(w)(fake).mean() - linear_critic(w)(real).mean()
    torch.testing.assert_close(out.loss, d + 10.0 * 16.0)


def test_lazy_r1_phase_weight_is_gamma_over_two_times_interval():
    w = torch.tensor([1.0, -2.0, 2.0])  # ||w||^2 = 9
    c = cfg(r1_gamma=0.5, r1_interval=4)
    adv = Adversary(c)
    assert adv.r1_weight == 0.5 / 2 * 4

    def d_reg(batch, ctx):
        r1, logs = adv.r1_loss(linear_critic(w), batch)
        return {"loss": r1, **logs}

    phases = {p.name: p for p in adv.phases(d=lambda b, x: {}, g=lambda b, x: {}, d_reg=d_reg)}
    out = phases["D-reg"].loss(torch.randn(5, 3), ctx_at(0, c))
    assert float(out["reg/r1"]) == pytest.approx(9.0)
    assert float(out["loss"]) == pytest.approx(0.5 / 2 * 4 * 9.0)


def test_phases_repeat_d_n_critic_times_and_put_d_reg_every_interval_in_the_asked_order():
    c = cfg(n_critic=3, r1_gamma=1.0, r1_interval=4)
    adv = Adversary(c)
    noop = lambda batch, ctx: {}  # noqa: E731
    phases = adv.phases(d=noop, g=noop, d_reg=noop, order=("G", "D", "D-reg"))
    assert [(p.name, p.optimizer, p.repeats, p.every) for p in phases] == [
        ("G", "gen", 1, 1), ("D", "disc", 3, 1), ("D-reg", "disc", 1, 4)]
    runs = [[p.name for p in iter_phases(phases, step)] for step in range(9)]
    assert [step for step, names in enumerate(runs) if "D-reg" in names] == [0, 4, 8]
    assert all(names[:2] == ["G", "D"] for names in runs)
    assert [p.name for p in Adversary(cfg()).phases(d=noop, g=noop)] == ["D", "G"]  # no R1: no D-reg phase
    assert [p.name for p in Adversary(cfg(adv_weight=0.0)).phases(d=noop, g=noop)] == ["G"]
    with pytest.raises(ValueError, match="d_reg"):
        Adversary(cfg(r1_gamma=1.0)).phases(d=noop, g=noop)


def test_instance_noise_is_annealed_over_the_run_and_augmentation_starts_off_under_ada():
    x = torch.zeros(4000, 2)
    adv = Adversary(cfg(instance_noise_std=0.2, steps=100))
    adv.step = 0
    assert float(adv.view(x).std()) == pytest.approx(0.2, rel=0.05)
    adv.step = 50
    assert float(adv.view(x).std()) == pytest.approx(0.1, rel=0.05)
    adv.step = 100
    assert adv.view(x) is x
    images = torch.rand(2, 3, 8, 8)
    ada = Adversary(cfg(augment_policy="translation,cutout", use_ada=True))
    assert ada.view(images) is images  # p = 0 until ADA raises it
    always = Adversary(cfg(augment_policy="cutout"))
    assert not torch.equal(always.view(images), images)  # without ADA every op applies (p = 1)


def test_ada_raises_p_when_d_is_sure_of_the_reals_and_logs_the_p_it_used():
    c = cfg(augment_policy="translation", use_ada=True, ada_adjust_images=64, batch_size=4)
    adv = Adversary(c)
    disc = lambda x: torch.ones(len(x))  # noqa: E731  (sign(D(real)) = 1 > target 0.6: overfitting)

    def d(batch, ctx):
        return {"loss": adv.d_loss(disc, batch, batch).loss}

    phase = adv.phases(d=d, g=lambda b, x: {})[0]
    logged = [phase.loss(torch.zeros(4, 1, 8, 8), ctx_at(s, c))["aug/p"] for s in range(8)]
    step = 4 * 4 / 64  # batch x ADA interval (4 steps) / adjust_images
    assert logged == [0.0] * 4 + [step] * 4
    assert adv.augment.p == pytest.approx(2 * step)


def test_lecam_keeps_one_state_per_critic_and_the_state_round_trips():
    c = cfg(lecam_weight=0.3, augment_policy="color", use_ada=True, ada_adjust_images=16)
    adv = Adversary(c)
    phase = adv.phases(d=lambda batch, ctx: {"loss": sum(
        adv.d_loss(lambda x, s=s: x.mean((1, 2, 3)) * s, batch, -batch, key=k).loss
        for k, s in (("a", 1.0), ("b", 2.0)))}, g=lambda b, x: {})[0]
    torch.manual_seed(0)
    for step in range(5):
        phase.loss(torch.rand(4, 3, 8, 8) + 0.1, ctx_at(step, c))
    state = adv.state_dict()
    assert set(state["lecam"]) == {"a", "b"} and state["lecam"]["a"] != state["lecam"]["b"]
    assert state["augment_p"] > 0
    again = Adversary(c)
    again.load_state_dict(state)
    assert again.state_dict() == state and again.augment.p == adv.augment.p
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    disc = lambda x: x.mean((1, 2, 3))  # noqa: E731
    for a in (adv, again):
        a.step, a.augment.p = 10, 0.0  # compare the penalties, not augmentation draws
    torch.testing.assert_close(adv.d_loss(disc, real, fake, key="a").logs["reg/lecam_a"],
                               again.d_loss(disc, real, fake, key="a").logs["reg/lecam_a"])


def test_loading_the_state_from_before_any_d_step_forgets_the_lecam_averages():
    """What a rollback to the start of a run does: the EMAs start afresh at the next D step."""
    adv = Adversary(cfg(lecam_weight=0.1))
    start = adv.state_dict()
    adv.d_loss(lambda x: x.sum(1), torch.ones(4, 2), -torch.ones(4, 2))
    assert adv.state_dict()["lecam"][""]["ema_real"] == 2.0
    adv.load_state_dict(start)
    assert adv.state_dict() == start == {}
    adv.d_loss(lambda x: x.sum(1), 3 * torch.ones(4, 2), -torch.ones(4, 2))
    assert adv.state_dict()["lecam"][""]["ema_real"] == 6.0  # the first update sets the average


def test_the_previous_versions_flat_lecam_state_loads_as_the_only_critic():
    adv = Adversary(cfg(lecam_weight=0.1))
    adv.load_state_dict({"lecam": {"ema_real": 0.25, "ema_fake": -0.5}})
    assert adv.state_dict() == {"lecam": {"": {"ema_real": 0.25, "ema_fake": -0.5}}}


def test_g_loss_weights_the_adversarial_term_and_relativistic_needs_the_reals():
    disc = linear_critic(torch.tensor([1.0, 1.0]))
    fake = torch.randn(5, 2)
    loss, logs = Adversary(cfg(gan_loss="hinge", adv_weight=0.05)).g_loss(disc, fake, log="loss/g_ab")
    torch.testing.assert_close(loss, 0.05 * -disc(fake).mean())
    torch.testing.assert_close(logs["loss/g_ab"], -disc(fake).mean())
    with pytest.raises(ValueError, match="relativistic"):
        Adversary(cfg(gan_loss="relativistic")).g_loss(disc, fake)


def test_join_puts_the_condition_into_d_but_r1_differentiates_the_sample_only():
    """A conditional critic sees [image, label]; R1 is the gradient w.r.t. the image channels alone."""
    w = torch.tensor([2.0, 0.0, 0.0, 7.0])  # 2 image features, 2 label features
    label = torch.ones(3, 2)
    adv = Adversary(cfg())
    r1, _ = adv.r1_loss(linear_critic(w), torch.randn(3, 2), join=lambda x: torch.cat([x, label], 1))
    assert float(r1) == pytest.approx(4.0)  # ||(2, 0)||^2, not ||w||^2


def test_spectral_norm_and_init_are_applied_to_the_critic():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    Adversary(cfg(use_spectral_norm=True)).apply_to_disc(net, "normal")
    assert all(hasattr(m, "parametrizations") for m in net)
    plain = torch.nn.Linear(3, 4)
    before = plain.weight.detach().clone()
    Adversary(cfg()).apply_to_disc(plain)
    assert torch.equal(plain.weight, before) and not hasattr(plain, "parametrizations")


@pytest.mark.parametrize("opts, needle", [
    ({"gan_loss": "fancy"}, "gan_loss='fancy': unknown GAN loss"),
    ({"gan_loss": "hinge", "real_label": 0.9}, "gan_loss='hinge'"),
    ({"real_label": 0.0}, "real_label=0.0"),
    ({"augment_policy": "blur"}, "augment_policy='blur'"),
    ({"use_ada": True}, "use_ada"),
    ({"beta2": 1.0}, "beta2=1.0"),
    ({"n_critic": 0}, "n_critic=0"),
    ({"adv_weight": -1.0}, "adv_weight=-1.0"),
    ({"ada_target": 1.0}, "ada_target=1.0"),
])
def test_bad_gan_options_name_the_field(opts, needle):
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        cfg(**opts)


def test_a_task_refuses_the_options_it_lists_as_unsupported():
    @dataclasses.dataclass
    class PointsConfig(AdversarialConfig):
        unsupported = ("augment_policy", "use_ada")

    PointsConfig(lecam_weight=0.1)
    with pytest.raises(InputError, match="augment_policy='color': not supported by PointsConfig"):
        PointsConfig(augment_policy="color")
