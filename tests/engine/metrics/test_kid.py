import itertools

import numpy as np
import pytest

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import kid_from_features, polynomial_mmd2


def _brute_force_mmd2(a, b):
    k = lambda x, y: (x @ y / len(x) + 1.0) ** 3  # noqa: E731
    m, n = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    bb = sum(k(b[i], b[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    ab = sum(k(x, y) for x in a for y in b) / (m * n)
    return aa + bb - 2 * ab


def test_polynomial_mmd2_matches_the_unbiased_estimator_definition():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 3)), rng.normal(1.0, 1.0, size=(5, 3))
    assert polynomial_mmd2(a, b) == pytest.approx(_brute_force_mmd2(a, b), rel=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    shifted = rng.normal(0.5, 1.0, size=(300, 16))
    same = kid_from_features(a, b, num_subsets=20, subset_size=100)
    apart = kid_from_features(a, shifted, num_subsets=20, subset_size=100)
    assert abs(same.mean) < 0.02
    assert apart.mean > 0.15 and apart.mean > 10 * abs(same.mean)


def test_kid_of_whole_sets_equals_one_mmd2_with_zero_spread():
    # subset_size is clamped to N; drawing all N without replacement only permutes the sets.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 8)), rng.normal(0.3, 1.0, size=(50, 8))
    result = kid_from_features(a, b, num_subsets=5, subset_size=1000)
    assert result.std < 1e-12
    assert result.mean == pytest.approx(polynomial_mmd2(a, b), rel=1e-10)


def test_kid_is_deterministic_for_a_seed_and_varies_with_it():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(200, 8)), rng.normal(0.2, 1.0, size=(200, 8))
    assert kid_from_features(a, b, 10, 50, seed=7) == kid_from_features(a, b, 10, 50, seed=7)
    assert kid_from_features(a, b, 10, 50, seed=7) != kid_from_features(a, b, 10, 50, seed=8)


def test_kid_rejects_mismatched_feature_sizes():
    with pytest.raises(InputError, match="expected"):
        kid_from_features(np.zeros((10, 3)), np.zeros((10, 4)))
