"""Memorization audit: how close each generated sample lies to its nearest training sample, measured against
the typical gap between training samples. Must not import Typer or any task package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganapps.engine.errors import InputError
from ganapps.engine.metrics.prdc import _CHUNK, _as_features, kth_neighbour_distance, pairwise_distance_blocks


@dataclass(frozen=True)
class Memorization:
    """Result of `memorization_audit`; `ratios` and `nearest_train` have one entry per generated sample."""

    near_copy_share: float  # share of generated samples with ratio < threshold
    threshold: float
    train_nn_median: float  # median distance from a training sample to its nearest other training sample
    baseline_share: float  # share of training samples flagged against the rest of the training set
    ratios: np.ndarray  # (M,) float64: distance to nearest training sample / train_nn_median
    nearest_train: np.ndarray  # (M,) int64: index of that training sample

    def summary(self) -> dict:
        """The scalar fields plus the ratios' median and minimum, JSON-ready."""
        return {
            "near_copy_share": self.near_copy_share,
            "threshold": self.threshold,
            "train_nn_median": self.train_nn_median,
            "baseline_share": self.baseline_share,
            "ratio_median": float(np.median(self.ratios)),
            "ratio_min": float(self.ratios.min()),
        }


def memorization_audit(
    generated_features: np.ndarray, train_features: np.ndarray, threshold: float = 0.5, chunk: int = _CHUNK
) -> Memorization:
    """Flag generated samples that are near-copies of training samples.

    generated_features (M, F), train_features (N, F), N >= 2: pixels (`PixelExtractor`) for copies in the
    literal sense, or any embedding. For each generated sample, ratio = Euclidean distance to its nearest
    training sample / median over training samples of the distance to their nearest *other* training
    sample. A fresh sample from the training distribution sits about as far from the training set as
    training samples sit from each other (ratio about 1); a sample under `threshold` (default 0.5: closer
    to a training image than half the typical gap between two training images) is counted as a near-copy;
    an exact copy has ratio 0. The same rule applied to the training set against itself gives
    `baseline_share`, the false-alarm rate to expect from sampling alone: it is near 0 in
    high-dimensional feature spaces and grows in low-dimensional ones, where nearest-neighbour distances
    spread out. Compare with the nearest-neighbour copy criteria of Carlini et al. 2023 ("Extracting
    training data from diffusion models"), which likewise normalise by neighbouring distances.
    """
    gen = _as_features(generated_features, "generated_features")
    train = _as_features(train_features, "train_features")
    if gen.shape[1] != train.shape[1]:
        raise InputError(
            f"memorization_audit: feature sizes differ, generated {tuple(gen.shape)} vs train {tuple(train.shape)}"
        )
    if train.shape[0] < 2:
        raise InputError(f"train_features: {train.shape[0]} sample, expected at least 2")
    if not threshold > 0:
        raise InputError(f"memorization_audit: threshold={threshold}, expected > 0")
    train_nn = kth_neighbour_distance(train, 1, chunk)  # (N,)
    median = float(np.median(train_nn.numpy()))
    if median <= 0:
        raise InputError("train_features: more than half the training samples have an exact duplicate")
    nearest = torch.empty(gen.shape[0], dtype=torch.float64)
    index = torch.empty(gen.shape[0], dtype=torch.int64)
    for start, block in pairwise_distance_blocks(gen, train, chunk):
        stop = start + block.shape[0]
        nearest[start:stop], index[start:stop] = block.min(dim=1)
    ratios = (nearest / median).numpy()
    return Memorization(
        near_copy_share=float((ratios < threshold).mean()),
        threshold=float(threshold),
        train_nn_median=median,
        baseline_share=float((train_nn / median < threshold).double().mean()),
        ratios=ratios,
        nearest_train=index.numpy(),
    )
