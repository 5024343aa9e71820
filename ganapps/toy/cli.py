"""`ganapps toy train`: the 2D mixture benchmark from the command line."""

from __future__ import annotations

import typer

from .._cli import is_main_process, train_command
from ..engine.trainer import train
from .config import PRESETS, ToyConfig
from .task import ToyTask

app = typer.Typer(help="2D Gaussian mixtures (ring, grid): the mode-collapse benchmark.", no_args_is_help=True)


def run(cfg: ToyConfig, *, json_out: bool) -> dict:
    result = train(ToyTask(cfg))
    ev = {k.removeprefix("eval/"): v for k, v in result.evaluation.items()}
    if not json_out and ev and is_main_process():
        print(f"modes {ev['modes']:.0f}  high_quality {ev['high_quality']:.3f}  reverse_kl {ev['reverse_kl']:.3f}  "
              f"run {result.run_dir}")
    if result.interrupted:
        raise typer.Exit(130)
    return {**ev, "run": str(result.run_dir), "steps": result.step,
            "verdicts": sorted({v.kind for v in result.verdicts})}


train_command(app, "train", ToyConfig, run, help="Train a GAN on a 2D mixture and score modes and quality.",
              presets=PRESETS)
