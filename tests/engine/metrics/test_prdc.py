import numpy as np
import pytest

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import prdc


def _dense_reference(real, fake, k):
    """clovaai/generative-evaluation-prdc's formulas on full distance matrices."""
    d = lambda x, y: np.linalg.norm(x[:, None] - y[None], axis=-1)  # noqa: E731
    real_r = np.sort(d(real, real), axis=1)[:, k]
    fake_r = np.sort(d(fake, fake), axis=1)[:, k]
    rf = d(real, fake)
    return dict(
        precision=(rf < real_r[:, None]).any(axis=0).mean(),
        recall=(rf < fake_r[None, :]).any(axis=1).mean(),
        density=(rf < real_r[:, None]).sum(axis=0).mean() / k,
        coverage=(rf.min(axis=1) < real_r).mean(),
    )


def test_prdc_matches_the_reference_formulas_for_any_chunk_size():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 5)), rng.normal(0.3, 1.2, size=(45, 5))
    expected = _dense_reference(real, fake, 5)
    for chunk in (7, 1024):
        result = prdc(real, fake, k=5, chunk=chunk)
        assert vars(result) == pytest.approx(expected, abs=1e-12)


def test_prdc_of_identical_sets_is_perfect_with_density_exactly_one():
    real = np.random.default_rng(1).normal(size=(100, 8))
    result = prdc(real, real.copy(), k=5)
    assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)
    # Every ball holds its centre and k-1 neighbours, so the k-normalised count averages to 1.
    assert result.density == pytest.approx(1.0)


def test_prdc_of_a_far_shifted_set_is_near_zero():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(200, 8)), rng.normal(5.0, 1.0, size=(200, 8))
    result = prdc(real, fake)
    assert max(result.precision, result.recall, result.density, result.coverage) < 0.02


def test_collapsed_generator_scores_worse_on_recall_and_coverage_than_a_diverse_one():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 8))
    diverse = prdc(real, rng.normal(size=(300, 8)))
    collapsed = prdc(real, np.repeat(rng.normal(size=(1, 8)), 300, axis=0))
    assert diverse.recall > 0.6 and diverse.coverage > 0.6
    assert collapsed.recall < 0.02 and collapsed.coverage < 0.05
    assert collapsed.recall < diverse.recall and collapsed.coverage < diverse.coverage


def test_prdc_rejects_too_few_samples_and_mismatched_features():
    with pytest.raises(InputError, match="k=5 nearest neighbours need more than k samples"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
    with pytest.raises(InputError, match="feature sizes differ"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
