import math

import pytest
import torch

from ganapps.engine.schedules import SCHEDULES, lr_lambda


def test_constant_is_one_everywhere():
    f = lr_lambda("constant", 100)
    assert [f(s) for s in (0, 50, 99, 1000)] == [1.0, 1.0, 1.0, 1.0]


def test_linear_matches_the_cyclegan_epoch_formula():
    n_epochs, n_epochs_decay = 100, 100
    f = lr_lambda("linear", n_epochs + n_epochs_decay)  # decay starts at total // 2 = 100
    for epoch in range(n_epochs + n_epochs_decay):
        reference = 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)
        assert f(epoch) == pytest.approx(reference)
    assert f(99) == 1.0 and f(100) < 1.0
    assert f(199) == pytest.approx(1 / 101)  # the last step still learns a little
    assert f(200) == 0.0 and f(10_000) == 0.0


def test_linear_with_explicit_decay_start():
    f = lr_lambda("linear", 10, decay_start_steps=6)
    assert [f(s) for s in range(11)] == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])


def test_cosine_falls_from_one_to_zero_through_half():
    f = lr_lambda("cosine", 100)
    assert f(0) == 1.0
    assert f(50) == pytest.approx(0.5)
    assert f(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f(100) == pytest.approx(0.0, abs=1e-12) and f(500) == pytest.approx(0.0, abs=1e-12)
    values = [f(s) for s in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    g = lr_lambda("cosine", 100, decay_start_steps=60)
    assert g(59) == 1.0 and g(80) == pytest.approx(0.5)


def test_warmup_rises_linearly_then_hands_over():
    f = lr_lambda("constant", 100, warmup_steps=4)
    assert [f(s) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    c = lr_lambda("cosine", 100, warmup_steps=10)  # cosine starts where warm-up ends
    assert c(9) == pytest.approx(10 / 11)
    assert c(10) == 1.0 and c(55) == pytest.approx(0.5)


def test_lambda_drives_torch_lambdalr():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda("linear", 4, decay_start_steps=2))
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.1 * 2 / 3, 0.1 / 3, 0.0])


def test_bad_arguments_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match="expected one of constant, linear, cosine"):
        lr_lambda("step", 10)
    assert SCHEDULES == ("constant", "linear", "cosine")
    for kwargs in (
        {"warmup_steps": -1},
        {"warmup_steps": 11},
        {"decay_start_steps": 11},
        {"decay_start_steps": -2},
    ):
        with pytest.raises(ValueError):
            lr_lambda("linear", 10, **kwargs)
    with pytest.raises(ValueError, match="total_steps"):
        lr_lambda("cosine", 0)
    with pytest.raises(ValueError, match="constant"):
        lr_lambda("constant", 10, decay_start_steps=5)
    with pytest.raises(ValueError, match="step"):
        lr_lambda("constant", 10)(-1)
