"""A minimal GAN task for trainer tests: MLPs on 2D Gaussian points, read through a TensorDataset."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from ganapps.engine.config import TrainConfig
from ganapps.engine.losses import get_loss
from ganapps.engine.task import OptimizerSpec, Phase, StepContext


@dataclasses.dataclass
class TinyConfig(TrainConfig):
    steps: int = 20
    batch_size: int = 16
    log_every_steps: int = 5
    sample_every_steps: int = 1000
    checkpoint_every_steps: int = 10
    use_tensorboard: bool = False
    write_report: bool = False
    quiet: bool = True
    ema_halflife_images: float = 100.0
    nan_steps: tuple = ()  # steps whose D loss is made NaN (non-finite guard tests)
    nan_persistent: bool = False


class NoisyPoints(Dataset):
    """Points with a random jitter drawn per item from torch's RNG (exercises per-item seeding)."""

    def __init__(self, n: int = 96):
        self.base = torch.randn(n, 2, generator=torch.Generator().manual_seed(123)) + 3

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.base[i] + 0.01 * torch.randn(2)


class TinyTask:
    def __init__(self, config: TinyConfig, dataset: Dataset | None = None):
        self.config = config
        self.loss = get_loss("nonsaturating")
        self._dataset = dataset
        self.calls = {"D": 0, "G": 0}
        self.counter = torch.zeros(())  # task-held state that must survive resume
        self.nan_seen: set[int] = set()

    def build_nets(self) -> dict[str, nn.Module]:
        return {"gen": nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)),
                "disc": nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"gen": OptimizerSpec(("gen",), 1e-3), "disc": OptimizerSpec(("disc",), 2e-3)}

    def phases(self) -> list[Phase]:
        return [Phase("D", "disc", self.d_loss), Phase("G", "gen", self.g_loss)]

    def dataset(self) -> Dataset:
        return self._dataset if self._dataset is not None else NoisyPoints()

    def ema_nets(self) -> tuple[str, ...]:
        return ("gen",)

    def state_dict(self) -> dict:
        return {"counter": self.counter.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counter = state["counter"].clone()

    def d_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        self.calls["D"] += 1
        self.counter += 1
        fake = ctx.nets["gen"](torch.randn(len(real), 4)).detach()
        d_real, d_fake = ctx.nets["disc"](real), ctx.nets["disc"](fake)
        loss = self.loss.d(d_real, d_fake)
        if ctx.step in self.config.nan_steps and (ctx.step not in self.nan_seen or self.config.nan_persistent):
            self.nan_seen.add(ctx.step)  # a transient fault unless nan_persistent
            loss = loss * float("nan")
        ctx.observe(d_real=d_real, d_fake=d_fake, real=real, fake=fake)
        return {"loss": loss, "loss/d": loss.detach()}

    def g_loss(self, real: torch.Tensor, ctx: StepContext) -> dict:
        self.calls["G"] += 1
        fake = ctx.nets["gen"](torch.randn(len(real), 4))
        loss = self.loss.g(ctx.nets["disc"](fake))
        return {"loss": loss, "loss/g": loss.detach()}

    def preview(self, ctx: StepContext) -> torch.Tensor:
        return torch.zeros(3, 8, 8)

    def evaluate(self, ctx: StepContext) -> dict:
        with torch.no_grad():
            fake = ctx.sample_net("gen")(torch.randn(256, 4))
        return {"mean_x": float(fake[:, 0].mean())}


class _Plain(TensorDataset):
    def __getitem__(self, i: int) -> torch.Tensor:
        return super().__getitem__(i)[0]


def tensor_points() -> Dataset:
    """Fixed points without per-item randomness, read through the DataLoader path."""
    return _Plain(torch.randn(64, 2, generator=torch.Generator().manual_seed(5)))
