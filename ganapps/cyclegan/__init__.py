"""Unpaired image-to-image translation (`ganapps cyclegan`): CycleGAN (Zhu et al. 2017) on the engine.
config -> data -> nets -> task (training) -> pipeline (inference: `Translator`) -> cli, top to bottom;
SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, CycleGANConfig
from .pipeline import Translator

SPEC = TaskSpec(
    name="cyclegan", help="Unpaired image-to-image translation (CycleGAN): photo <-> painting, horse <-> zebra...",
    train_help="Train a CycleGAN on two image domains (the reference's recipe by default).",
    config=CycleGANConfig, task="ganapps.cyclegan.task:CycleGANTask", presets=PRESETS, inference=Translator,
    cli="ganapps.cyclegan.cli:app",
)

__all__ = ["SPEC", "Translator"]
