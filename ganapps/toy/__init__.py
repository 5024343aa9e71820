"""The 2D Gaussian-mixture task (`ganapps toy`): the mode-collapse benchmark that proves the engine's
task protocol. config -> data -> nets -> task, top to bottom; SPEC registers it (ganapps.tasks)."""

from ..engine.spec import TaskSpec, TuneSpec
from .config import OBJECTIVES, PRESETS, SEARCH_GRID, ToyConfig, search_space

SPEC = TaskSpec(
    name="toy", help="2D Gaussian mixtures (ring, grid): the mode-collapse benchmark.",
    train_help="Train a GAN on a 2D mixture and score modes and quality.",
    config=ToyConfig, task="ganapps.toy.task:ToyTask", presets=PRESETS,
    tune=TuneSpec(search_space=search_space, grid=SEARCH_GRID, objectives=OBJECTIVES, flags=("dataset",)),
)
