"""Endless, seeded, resumable batches from a map-style dataset (single process or one shard per rank).

Each epoch is a permutation drawn from (seed, epoch); the position within the epoch is part of the
checkpoint, so a resumed run sees exactly the batches the uninterrupted run would have seen. Each item is
fetched under its own torch seed (seed, epoch, position), so random crops and flips do not depend on the
number of workers or on where a run was resumed. Datasets draw their randomness from torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .errors import InputError

EPOCH_SEED_STRIDE = 1_000_003
"""Epoch e of a run seeded s draws its permutation with seed s * 1_000_003 + e (a prime stride: two seeds
share no permutation seed before epoch 1,000,003)."""
ITEM_SEED_STRIDE = 10_000_019
"""Item j of batch b in that epoch is fetched under torch seed (s * 1_000_003 + e) * 10_000_019 + b * batch + j
(mod 2**63 - 1): a prime stride above any epoch's item count (datasets under 10M items) keeps epochs apart."""


class _SeededItems(Dataset):
    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed also queues a lazy CUDA seed on CUDA builds, which records
            # a Python stack trace per call (about 6 ms each, per item).
            torch.random.default_generator.manual_seed(seed)
            return self.dataset[index]


class DataStream:
    """`next(stream)` gives the next batch; `state_dict()` is the data position for checkpoints.

    A dataset with a `get_batch(indices)` method (vectorised, e.g. points in memory) is read with one call
    per batch when `num_workers == 0`; other datasets go through a DataLoader with per-item seeds.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, *, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, pin_memory: bool = False):
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        per_rank = -(-self.n // world_size)
        self.batches_per_epoch = per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise InputError(f"dataset has {self.n} items, fewer than batch size {batch_size} x {world_size} "
                             f"process(es); lower --batch-size or add data")
        self.epoch = 0
        self.position = 0  # batches consumed in this epoch
        self._it: Any = None
        self._batched = hasattr(dataset, "get_batch") and num_workers == 0

    def _epoch_seed(self) -> int:
        return self.seed * EPOCH_SEED_STRIDE + self.epoch

    def _epoch_batches(self) -> list[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self._epoch_seed())
        perm = torch.randperm(self.n, generator=g)
        pad = (-self.n) % self.world_size
        if pad:  # as DistributedSampler: repeat the head so every rank gets as many items
            perm = torch.cat([perm, perm[:pad]])
        mine = perm[self.rank::self.world_size].tolist()
        base = self._epoch_seed() * ITEM_SEED_STRIDE
        out = []
        for b in range(self.batches_per_epoch):
            idx = mine[b * self.batch_size:(b + 1) * self.batch_size]
            out.append([(i, (base + b * self.batch_size + j) % (2**63 - 1)) for j, i in enumerate(idx)])
        return out

    def _start(self) -> None:
        batches = self._epoch_batches()[self.position:]
        if self._batched:
            self._it = iter(batches)
        else:
            # An own generator: creating a loader must not draw from the global RNG (exact resume).
            g = torch.Generator().manual_seed(self._epoch_seed())
            loader = DataLoader(_SeededItems(self.dataset), batch_sampler=batches, num_workers=self.num_workers,
                                pin_memory=self.pin_memory, persistent_workers=False, generator=g)
            self._it = iter(loader)

    def __iter__(self) -> DataStream:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._start()
        try:
            item = next(self._it)
        except StopIteration:
            self.epoch += 1
            self.position = 0
            self._start()
            item = next(self._it)
        self.position += 1
        if self._batched:
            idx = torch.tensor([i for i, _ in item])
            g = torch.Generator().manual_seed(item[0][1])
            return self.dataset.get_batch(idx, g)  # type: ignore[attr-defined]
        return item

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._it = None
