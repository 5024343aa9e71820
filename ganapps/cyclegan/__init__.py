"""Unpaired image-to-image translation (`ganapps cyclegan`): CycleGAN (Zhu et al. 2017) on the engine.
config -> data -> nets -> task (training) -> pipeline (inference: `Translator`) -> cli, top to bottom."""

from .pipeline import Translator

__all__ = ["Translator"]
