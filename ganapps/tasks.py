"""The task registry: every task package of this install, each read through the `SPEC` its `__init__` exports.
Adding a task is one package with a SPEC and one name here; the CLI, `tune`, `export`, the option docs and
the dependency test iterate over this list.
"""

from __future__ import annotations

import importlib

from .engine.errors import InputError
from .engine.spec import TaskSpec

TASK_PACKAGES = ("toy", "cyclegan", "video", "medical")


def specs() -> list[TaskSpec]:
    """The SPEC of every task package, in TASK_PACKAGES order."""
    out = []
    for name in TASK_PACKAGES:
        spec = importlib.import_module(f"ganapps.{name}").SPEC
        if spec.name != name:
            raise RuntimeError(f"ganapps.{name}.SPEC is named {spec.name!r}; a task's SPEC names its package")
        out.append(spec)
    return out


def get(name: str) -> TaskSpec:
    """The spec of task `name`, or an InputError listing the tasks."""
    if name not in TASK_PACKAGES:
        raise InputError(f"task {name!r}: expected one of {', '.join(TASK_PACKAGES)}")
    return importlib.import_module(f"ganapps.{name}").SPEC
