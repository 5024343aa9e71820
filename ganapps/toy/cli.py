"""`ganapps toy train`: the 2D mixture benchmark from the command line."""

from __future__ import annotations

import typer

from .._cli import is_main_process, train_command
from ..engine.trainer import train
from .config import PRESETS, ToyConfig
from .task import ToyTask

app = typer.Typer(help="2D Gaussian mixtures (ring, grid): the mode-collapse benchmark.", no_args_is_help=True)

HELP = {
    "dataset": "ring (8 modes) or grid (25 modes)",
    "loss": "vanilla, nonsaturating, lsgan, wasserstein, hinge or relativistic",
    "z_dim": "latent size", "hidden": "MLP width", "layers": "hidden layers per net",
    "lr_g": "generator learning rate", "lr_d": "discriminator learning rate (TTUR when different)",
    "beta1": "Adam beta1", "beta2": "Adam beta2", "n_critic": "D updates per G update",
    "r1_gamma": "R1 penalty weight (0: off)", "r1_interval": "lazy R1 interval in steps",
    "gp_weight": "WGAN-GP weight (0: off)", "use_spectral_norm": "spectral norm on D",
    "real_label": "one-sided label smoothing target for real (1: off)",
    "instance_noise_std": "instance noise std, annealed to 0", "use_minibatch_std": "minibatch std layer in D",
    "lecam_weight": "LeCam regularizer weight (0: off)", "init": "weight init",
    "eval_samples": "samples for the final evaluation",
}


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
              task_help=HELP, presets=PRESETS)
