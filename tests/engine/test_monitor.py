"""Tests for ganapps.engine.monitor: batch health signals and the verdicts provoked by synthetic runs."""

import math
import random

import pytest
import torch

from ganapps.engine.monitor import (
    HealthMonitor,
    Verdict,
    batch_health,
    diagnose,
    format_timeline,
)

WINDOW = 5


def healthy(step: int, rng: random.Random) -> dict:
    """A record shaped like a healthy run's metrics.jsonl row, with realistic noise."""
    return {
        "step": step,
        "images": step * 64,
        "time": 1763760000.0 + step * 0.05,
        "loss/d": rng.uniform(0.4, 0.9),
        "loss/g": rng.uniform(0.8, 2.5),
        "reg/r1": rng.uniform(0.005, 0.05),
        "grad/gen_norm": rng.uniform(0.2, 3.0),
        "grad/disc_norm": rng.uniform(0.5, 6.0),
        "lr/gen": 1e-4,
        "lr/disc": 4e-4,
        "health/d_acc_real": rng.uniform(0.55, 0.92),
        "health/d_acc_fake": rng.uniform(0.5, 0.92),
        "health/d_real_mean": rng.uniform(0.1, 1.0),
        "health/d_fake_mean": rng.uniform(-1.0, -0.1),
        "health/diversity": rng.uniform(0.75, 1.1),
        "health/recall": rng.uniform(0.45, 0.9),
        "health/nonfinite": 0,
        "health/nonfinite_streak": 0,
        "health/rollbacks": 0,
        "time/step": rng.uniform(0.01, 0.02),
    }


def run(n: int, seed: int = 0, start: int = 0, every: int = 100) -> list[dict]:
    rng = random.Random(seed)
    return [healthy(start + i * every, rng) for i in range(n)]


def kinds(verdicts):
    return [v.kind for v in verdicts]


# ------------------------------------------------------------------------------------------- batch_health
def test_perfect_discriminator_has_accuracy_one():
    d_real = torch.tensor([[3.0], [2.0], [5.0], [0.1]], requires_grad=True)
    d_fake = torch.full((4, 1, 2, 2), -1.5)  # a patch D: mean over the map per sample
    h = batch_health(d_real, d_fake)
    assert h["health/d_acc_real"] == 1.0
    assert h["health/d_acc_fake"] == 1.0
    assert h["health/d_real_mean"] == pytest.approx(2.525)
    assert h["health/d_fake_mean"] == pytest.approx(-1.5)
    assert set(h) == {"health/d_acc_real", "health/d_acc_fake", "health/d_real_mean", "health/d_fake_mean"}


def test_accuracy_counts_samples_on_the_right_side_of_threshold():
    h = batch_health(torch.tensor([0.9, 0.2, 0.6, 0.4]), torch.tensor([0.1, 0.7, 0.3, 0.45]), threshold=0.5)
    assert h["health/d_acc_real"] == 0.5
    assert h["health/d_acc_fake"] == 0.75


def test_identical_fakes_have_zero_diversity_and_no_recall():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(16, 3, 8, 8, generator=g)
    fake = torch.randn(1, 3, 8, 8, generator=g).expand(16, 3, 8, 8)
    h = batch_health(real=real, fake=fake)
    assert h["health/diversity"] == 0.0
    assert h["health/recall"] <= 1 / 16


def test_fakes_equal_to_reals_have_diversity_one_and_full_recall():
    real = torch.randn(12, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    h = batch_health(real=real, fake=real.clone())
    assert h["health/diversity"] == pytest.approx(1.0)
    assert h["health/recall"] == 1.0


def test_recall_uses_kth_nearest_fake_as_ball_radius():
    # fakes at 0,1,2,3 on a line: k=3 gives every ball radius >= 2, the ball of 3 reaches from 0 to 6
    fake = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    real = torch.tensor([[1.5], [5.9], [6.5], [10.0]])
    h = batch_health(real=real, fake=fake)
    assert h["health/recall"] == 0.5


def test_half_the_modes_gives_half_the_recall():
    g = torch.Generator().manual_seed(2)
    centers = torch.tensor([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0], [0.0, -10.0]])
    real = centers.repeat_interleave(8, 0) + 0.1 * torch.randn(32, 2, generator=g)
    fake = centers[:2].repeat_interleave(16, 0) + 0.1 * torch.randn(32, 2, generator=g)
    assert batch_health(real=real[16:], fake=fake)["health/recall"] == 0.0  # the two missing modes
    assert 0.4 <= batch_health(real=real, fake=fake)["health/recall"] <= 0.5


def test_missing_or_single_sample_inputs_omit_keys():
    assert batch_health() == {}
    h = batch_health(torch.ones(3), None, real=torch.ones(1, 2), fake=torch.zeros(1, 2))
    assert set(h) == {"health/d_acc_real", "health/d_real_mean"}


def test_mismatched_sample_sizes_are_rejected_by_name():
    with pytest.raises(ValueError, match="real and fake"):
        batch_health(real=torch.zeros(4, 3), fake=torch.zeros(4, 5))


def test_batch_health_does_not_build_a_graph():
    x = torch.randn(4, 2, requires_grad=True)
    h = batch_health(x.sum(1) * 2, -x.sum(1), real=x, fake=x * 2)
    assert all(isinstance(v, float) for v in h.values())
    assert x.grad is None


# ------------------------------------------------------------------------------------------- diagnose
def test_healthy_run_gives_no_verdicts():
    records = run(200, seed=3)
    # realistic gaps: batch size 1 evaluations without diversity, null values
    for r in records[::7]:
        del r["health/diversity"], r["health/recall"]
    records[40]["grad/gen_norm"] = None
    assert diagnose(records) == []
    assert format_timeline(diagnose(records)) == "no problems found"


def test_overpowering_discriminator_is_reported_at_onset():
    records = run(30)
    for i, r in enumerate(records[15:]):
        r.update({"health/d_acc_real": 0.99, "health/d_acc_fake": 0.98, "loss/d": 0.3, "loss/g": 2.0 + 0.3 * i})
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["d_overpowering"]
    assert verdicts[0].step == records[15 + WINDOW - 1]["step"]
    assert verdicts[0].severity == "warning"
    assert "TTUR" in verdicts[0].remedy and "R1" in verdicts[0].remedy


def test_near_zero_d_loss_confirms_overpowering():
    records = run(30)
    for r in records[15:]:
        r.update({"health/d_acc_real": 1.0, "health/d_acc_fake": 1.0, "loss/d": 0.01, "loss/g": 4.0})
    assert kinds(diagnose(records)) == ["d_overpowering"]


def test_confident_d_with_falling_g_loss_is_not_overpowering():
    records = run(30)
    for i, r in enumerate(records[15:]):
        r.update({"health/d_acc_real": 0.97, "health/d_acc_fake": 0.97, "loss/d": 0.4, "loss/g": 3.0 - 0.1 * i})
    assert diagnose(records) == []


def test_low_diversity_is_mode_collapse():
    records = run(40)
    for r in records[20:]:
        r["health/diversity"] = 0.15
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["mode_collapse"]
    assert verdicts[0].step == records[20 + WINDOW - 1]["step"]
    assert "diversity" in verdicts[0].message and "minibatch" in verdicts[0].remedy


def test_low_recall_alone_is_mode_collapse():
    records = run(40)
    for r in records[20:]:
        r["health/recall"] = 0.1  # diversity stays healthy: G spreads but misses modes
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["mode_collapse"]
    assert "recall" in verdicts[0].message and "diversity" not in verdicts[0].message


def test_early_low_recall_is_burn_in_not_collapse():
    records = run(40)
    for r in records[:8]:
        r["health/recall"] = 0.02
        r["health/diversity"] = 0.1
    assert diagnose(records) == []


def test_collapse_from_the_start_is_reported_after_burn_in():
    records = run(40)
    for r in records:
        r["health/recall"] = 0.05
    verdicts = diagnose(records, warmup=10)
    assert kinds(verdicts) == ["mode_collapse"]
    assert verdicts[0].step == records[10]["step"]


def test_long_collapse_is_reported_once_and_relapse_again():
    records = run(80)
    for r in records[15:45] + records[60:]:
        r["health/diversity"] = 0.2
    records[30]["health/diversity"] = 0.9  # one noisy good record inside the collapse is not a recovery
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["mode_collapse", "mode_collapse"]
    assert [v.step for v in verdicts] == [records[19]["step"], records[64]["step"]]


def test_nan_loss_is_a_diverging_error():
    records = run(30)
    records[12]["loss/g"] = math.nan
    records[13]["loss/d"] = math.inf
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["diverging"]
    assert verdicts[0].step == records[12]["step"]
    assert verdicts[0].severity == "error"
    assert "loss/g" in verdicts[0].message and "clipping" in verdicts[0].remedy


def test_exploding_grad_norm_is_diverging():
    records = run(30)
    for i, r in enumerate(records[15:25]):
        r["grad/disc_norm"] = 2.0 * 4 ** max(i - 4, 0)  # 2 (x5), then x4 per record: 8, 32, 128, 512, 2048
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["diverging"]
    assert "grad/disc_norm" in verdicts[0].message
    assert verdicts[0].step == records[23]["step"]  # 2 -> 512 within 5 records; 2 -> 128 was not yet 100x


def test_nonfinite_counter_and_rollback_are_diverging():
    records = run(60)
    for r in records[10:]:
        r["health/nonfinite"] = 1
    for r in records[40:]:
        r["health/rollbacks"] = 1
    verdicts = diagnose(records)
    assert kinds(verdicts) == ["diverging", "diverging"]
    assert [v.step for v in verdicts] == [records[10]["step"], records[40]["step"]]
    assert "rollbacks" in verdicts[1].message


def test_vanishing_generator_gradients_with_confident_d():
    records = run(40)
    for r in records[20:]:
        r.update({"grad/gen_norm": 3e-6, "health/d_acc_fake": 0.99})
    verdicts = diagnose(records)
    assert "vanishing_g_grad" in kinds(verdicts)
    v = next(v for v in verdicts if v.kind == "vanishing_g_grad")
    assert v.step == records[24]["step"]
    assert "non-saturating" in v.remedy


def test_tiny_generator_gradients_without_confident_d_are_not_vanishing():
    records = run(40)
    for r in records[20:]:
        r["grad/gen_norm"] = 3e-6  # relative drop, but D is not winning
    assert diagnose(records) == []


def test_vanishing_needs_every_generator_net():
    records = run(40)
    for r in records:
        r["grad/gen_ba_norm"] = r.pop("grad/gen_norm")
        r["grad/gen_ab_norm"] = 1.0
    for r in records[20:]:
        r.update({"grad/gen_ba_norm": 1e-8, "health/d_acc_fake": 0.99})
    assert "vanishing_g_grad" not in kinds(diagnose(records))
    for r in records[20:]:
        r["grad/gen_ab_norm"] = 1e-8
    assert "vanishing_g_grad" in kinds(diagnose(records))


def test_monitor_update_matches_diagnose():
    records = run(120, seed=5)
    records[12]["loss/d"] = math.nan
    for r in records[30:50]:
        r["health/diversity"] = 0.1
    for i, r in enumerate(records[60:75]):
        r.update({"health/d_acc_real": 0.99, "health/d_acc_fake": 0.99, "loss/g": 2 + i, "grad/gen_norm": 1e-7})
    for r in records[90:]:
        r["health/recall"] = 0.1
    monitor = HealthMonitor(window=WINDOW)
    online = []
    for r in records:
        new = monitor.update(r)
        assert all(v.step == r["step"] for v in new)
        online.extend(new)
    offline = diagnose(records, window=WINDOW)
    assert online == offline == monitor.verdicts
    assert set(kinds(offline)) == {"diverging", "mode_collapse", "d_overpowering", "vanishing_g_grad"}


def test_format_timeline_has_one_line_per_verdict():
    verdicts = [
        Verdict(300, "diverging", "loss/d is nan", "lower LR", "error"),
        Verdict(900, "mode_collapse", "recall 0.1", "minibatch std", "warning"),
    ]
    lines = format_timeline(verdicts).splitlines()
    assert len(lines) == 2
    assert "300" in lines[0] and "diverging" in lines[0] and "loss/d is nan" in lines[0] and "lower LR" in lines[0]
    assert verdicts[1].to_dict() == {
        "step": 900, "kind": "mode_collapse", "message": "recall 0.1", "remedy": "minibatch std", "severity": "warning"
    }


def test_verdict_rejects_unknown_kind_and_severity():
    with pytest.raises(ValueError, match="kind"):
        Verdict(1, "sad", "m", "r", "warning")
    with pytest.raises(ValueError, match="severity"):
        Verdict(1, "diverging", "m", "r", "fatal")


def test_window_must_be_at_least_two():
    with pytest.raises(ValueError, match="window"):
        HealthMonitor(window=1)
