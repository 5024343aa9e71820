"""The Moving MNIST split: training and held-out sequences come from disjoint digits and disjoint seeds."""

from __future__ import annotations

import numpy as np
import pytest

from ganapps.video.data import EVAL_SEED_OFFSET, MNIST_TRAIN_DIGITS, MovingMNIST


def _labelled_digits(n: int = 5000) -> np.ndarray:
    """Digit i is a 28x28 block of the value 1 + i // 20 (1..250), so a frame tells which digits it holds."""
    return np.repeat((1 + np.arange(n) // 20).astype(np.uint8), 28 * 28).reshape(n, 28, 28)


def test_held_out_sequences_use_only_the_held_out_digits_and_seeds():
    digits = _labelled_digits()
    boundary = 1 + MNIST_TRAIN_DIGITS // 20  # the first value a held-out digit carries
    train = MovingMNIST.split(digits, "train", 4, 64, items=40, seed=3)
    held_out = MovingMNIST.split(digits, "eval", 4, 64, items=40, seed=3)
    assert (train.seed, held_out.seed) == (3, EVAL_SEED_OFFSET + 3)
    # values in [-1, 1] back to uint8: each frame's maximum is the largest label among its digits
    train_max = [int(round((train[i].max().item() + 1) * 127.5)) for i in range(len(train))]
    held_out_max = [int(round((held_out[i].max().item() + 1) * 127.5)) for i in range(len(held_out))]
    assert max(train_max) < boundary <= min(held_out_max)
    with pytest.raises(ValueError, match="split='test'"):
        MovingMNIST.split(digits, "test")
