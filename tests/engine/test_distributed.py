"""Data parallel training: two CPU processes with gloo end with identical weights; only rank 0 writes."""

from __future__ import annotations

import os
import socket
import sys

import torch
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(__file__))
from ddp_worker import run_rank  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_hold_identical_weights(tmp_path):
    mp.spawn(run_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    assert not torch.equal(w0.pop("_shard"), w1.pop("_shard"))  # each rank read its own shard
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    # the weights moved away from the (broadcast) start: the ranks trained, not just agreed
    moved = [not torch.equal(w0[k], w0[f"_init.{k}"]) for k in w0 if not k.startswith("_init.")]
    assert all(moved)
    run = tmp_path / "run"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len([x for x in lines if '"loss/d"' in x]) == 1  # one writer: rank 0 logged step 5 once
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_6"
