"""What a task package declares about itself (`TaskSpec`), so that the CLI, `tune`, `export`, the option docs and
the dependency test can iterate over tasks instead of listing them. The list of tasks is `ganapps.tasks`;
nothing here imports a task.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any


def load_ref(ref: str) -> Any:
    """'package.module:attribute' -> the attribute, imported on first use (keeps training code and Typer apps
    out of `import ganapps.TASK`)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """What `ganapps tune TASK` searches: `search_space(trial) -> option overrides` (Optuna suggestions),
    `grid` (option -> values, for --sampler grid), `objectives` (eval metric -> "maximize" | "minimize"), and
    `flags`: config fields shown as options of the tune command itself (e.g. the toy's dataset)."""

    search_space: Callable[[Any], dict[str, Any]]
    grid: dict[str, list[Any]]
    objectives: dict[str, str]
    flags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task: its name (the CLI group), config class and presets, training task (lazily imported), inference
    class (None for tasks without one), its own extra CLI commands (a Typer app reference, lazily imported) and
    its tune search, if any. The shipped default model is the
    inference class's `default_model`."""

    name: str
    help: str
    train_help: str
    config: type
    task: str  # "module:Class" implementing engine.task.Task (or "module:function" config -> such a task)
    presets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=lambda: {"default": {}})
    inference: type | None = None
    cli: str | None = None  # "module:app": the task's commands besides train and export
    tune: TuneSpec | None = None

    @property
    def default_model(self) -> str | None:
        return getattr(self.inference, "default_model", None)

    def task_class(self) -> Any:
        """The task class, or the factory that picks one from the config (e.g. by a `method` option)."""
        return load_ref(self.task)

    def build_task(self, config: Any) -> Any:
        return self.task_class()(config)
