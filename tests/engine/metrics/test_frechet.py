import numpy as np
import pytest
import scipy.linalg

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import feature_statistics, fid_from_features, frechet_distance


def _random_spd(rng, f):
    m = rng.normal(size=(f, f))
    return m @ m.T / f + 0.1 * np.eye(f)


def _pytorch_fid_route(mu1, s1, mu2, s2):
    # The reference formula as pytorch-fid writes it, via scipy's general matrix square root.
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_closed_form_for_rotated_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    v1, v2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    s1, s2 = q @ np.diag(v1) @ q.T, q @ np.diag(v2) @ q.T
    mu = rng.normal(size=6)
    expected = np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_agrees_with_scipy_sqrtm_route():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=20), rng.normal(size=20)
    s1, s2 = _random_spd(rng, 20), _random_spd(rng, 20)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_pytorch_fid_route(mu1, s1, mu2, s2), rel=1e-8)


def test_frechet_distance_is_symmetric():
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    s1, s2 = _random_spd(rng, 10), _random_spd(rng, 10)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)


def test_fid_is_zero_for_identical_sets_and_equals_squared_shift_for_translated_sets():
    feats = np.random.default_rng(4).normal(size=(300, 16))
    assert fid_from_features(feats, feats) < 1e-9
    shift = np.full(16, 0.5)
    # Translation leaves the covariance unchanged, so only ||shift||^2 = 16 * 0.25 remains.
    assert fid_from_features(feats, feats + shift) == pytest.approx(4.0, rel=1e-9)


def test_frechet_distance_is_finite_and_nonnegative_for_singular_covariances():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(10, 50)), rng.normal(size=(12, 50))  # fewer samples than dimensions
    value = fid_from_features(a, b)
    assert np.isfinite(value) and value > 0
    assert fid_from_features(a, a) < 1e-8


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    feats = np.random.default_rng(6).normal(size=(40, 3)).astype(np.float32)
    mu, sigma = feature_statistics(feats)
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64), rowvar=False), rtol=1e-12)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(InputError, match="expected"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


def test_sample_space_route_equals_the_covariance_route_on_full_rank_sets():
    from ganapps.engine.metrics.frechet import frechet_in_sample_space

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 6)), rng.normal(1.0, 2.0, size=(50, 6)) @ rng.normal(size=(6, 6))
    expected = frechet_distance(*feature_statistics(a), *feature_statistics(b))  # well conditioned: exact to rounding
    assert frechet_in_sample_space(a, b) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("n,m,f", [(5, 7, 16), (12, 9, 300), (2, 2, 4)])
def test_small_sets_take_the_sample_space_route_and_agree_with_the_covariance_route(n, m, f):
    rng = np.random.default_rng(n * m + f)
    a, b = rng.normal(size=(n, f)), rng.normal(1.0, 2.0, size=(m, f))
    s1, s2 = feature_statistics(a)[1], feature_statistics(b)[1]
    # The covariance route takes square roots of F - rank eigenvalues that are 0 up to eigh's rounding
    # (~F eps ||M||, M = s1^(1/2) s2 s1^(1/2), ||M|| <= tr s1 tr s2): each adds up to sqrt of that.
    bound = 2 * f * np.sqrt(f * np.finfo(np.float64).eps * np.trace(s1) * np.trace(s2))
    assert n * m <= f * f and fid_from_features(a, b) == pytest.approx(
        frechet_distance(*feature_statistics(a), *feature_statistics(b)), abs=bound)


def test_small_sample_note_names_the_count_and_points_to_kid():
    from ganapps.engine.metrics.frechet import small_sample_note

    assert small_sample_note(2048, 5000) is None
    note = small_sample_note(500, 3000)
    assert "500 < 2048" in note and "KID" in note
