"""Body of one rank in the two-process gloo test (imported by torch.multiprocessing.spawn)."""

from __future__ import annotations

import os
import sys

import torch


def run_rank(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(__file__))
    from tiny_task import TinyConfig, TinyTask

    from ganapps.engine import distributed as dist
    from ganapps.engine.trainer import Trainer

    trainer = Trainer(TinyTask(TinyConfig(out=os.path.join(out, "run"), steps=6, checkpoint_every_steps=3,
                                          device="cpu")))
    trainer.train()
    weights = {f"{n}.{k}": v.clone() for n, net in trainer.nets.items() for k, v in net.state_dict().items()}
    start = trainer._initial["weights"]
    weights.update({f"_init.{n}.{k}": v for n, sd in start.items() if not n.endswith("_ema") for k, v in sd.items()})
    trainer.stream.load_state_dict({"epoch": 0, "position": 0})
    weights["_shard"] = torch.tensor([i for i, _ in trainer.stream._epoch_batches()[0]])
    torch.save(weights, os.path.join(out, f"rank{rank}.pt"))
    dist.shutdown()
