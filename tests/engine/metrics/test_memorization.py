import numpy as np
import pytest
import torch

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import PixelExtractor, memorization_audit


def test_copies_of_training_samples_are_all_flagged_with_their_source():
    train = np.random.default_rng(0).normal(size=(200, 32))
    picks = np.array([5, 17, 17, 199])
    report = memorization_audit(train[picks], train)
    assert report.near_copy_share == 1.0
    np.testing.assert_allclose(report.ratios, 0.0, atol=1e-6)
    np.testing.assert_array_equal(report.nearest_train, picks)


def test_fresh_samples_from_the_training_distribution_are_not_flagged():
    rng = np.random.default_rng(1)
    train, fresh = rng.normal(size=(500, 32)), rng.normal(size=(300, 32))
    report = memorization_audit(fresh, train)
    assert report.near_copy_share < 0.01 and report.baseline_share < 0.01
    assert 0.8 < np.median(report.ratios) < 1.2  # as far from the train set as train samples from each other


def test_share_counts_only_the_near_copies_in_a_mixed_set():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(400, 32))
    near_copies = train[:50] + rng.normal(scale=0.05, size=(50, 32))
    report = memorization_audit(np.concatenate([near_copies, rng.normal(size=(150, 32))]), train)
    assert report.near_copy_share == pytest.approx(50 / 200)
    assert report.summary()["ratio_min"] < 0.1


def test_near_copy_images_are_flagged_in_pixel_space():
    g = torch.Generator().manual_seed(3)
    train = torch.rand(60, 1, 32, 32, generator=g) * 2 - 1
    copies = (train[:10] + 0.02 * torch.randn(10, 1, 32, 32, generator=g)).clamp(-1, 1)
    fresh = torch.rand(10, 1, 32, 32, generator=g) * 2 - 1
    extract = PixelExtractor(32)
    assert memorization_audit(extract(copies), extract(train)).near_copy_share == 1.0
    assert memorization_audit(extract(fresh), extract(train)).near_copy_share == 0.0


def test_audit_rejects_a_training_set_of_duplicates():
    with pytest.raises(InputError, match="exact duplicate"):
        memorization_audit(np.zeros((3, 2)), np.zeros((10, 2)))
