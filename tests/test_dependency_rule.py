"""Dependencies point one way: cli -> task packages -> engine -> torch. Checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import ganapps
from ganapps import tasks

ROOT = Path(ganapps.__file__).parent
TASKS = tasks.TASK_PACKAGES


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    pkg = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # resolve relative imports against the module's package
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module or "")
    return names


def test_engine_imports_no_task_typer_or_dataset_format():
    for path in (ROOT / "engine").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith("typer"), f"{path} imports {name}"
            assert not name.startswith(("nibabel", "pydicom", "cv2", "av")), f"{path} imports {name}"
            assert not any(name.startswith(f"ganapps.{t}") for t in TASKS), f"{path} imports {name}"
            assert not name.startswith(("ganapps.cli", "ganapps._cli", "ganapps.doctor", "ganapps.tasks")), \
                f"{path} imports {name}"


def test_pipelines_never_import_training_code():
    for path in ROOT.glob("*/pipeline.py"):
        for name in _imports(path):
            assert not name.endswith((".task", ".trainer")), f"{path} imports {name}"


def test_task_packages_do_not_import_each_other_except_through_the_registry():
    for task in TASKS:
        for path in (ROOT / task).rglob("*.py"):
            for name in _imports(path):
                others = [t for t in TASKS if t != task and name.startswith(f"ganapps.{t}")]
                assert not others, f"{path} imports {name}; reach another task through ganapps.tasks"


def test_the_registry_lists_every_task_package_and_imports_none_by_name():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"engine", "recipes", "app"}
    assert set(TASKS) == packages  # a task package that is not registered would be invisible to the CLI
    assert [s.name for s in tasks.specs()] == list(TASKS)
    for module in (ROOT / "tasks.py", ROOT / "engine" / "spec.py"):
        assert not any(name.startswith(tuple(f"ganapps.{t}" for t in TASKS)) for name in _imports(module)), module


def test_recipes_import_the_engine_and_task_data_only_and_the_engine_no_recipe():
    for path in (ROOT / "recipes").glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(("typer", "ganapps.cli", "ganapps._cli", "ganapps._inference_cli")), \
                f"{path} imports {name}"
            assert not name.endswith((".task", ".trainer", ".pipeline")), f"{path} imports {name}"
            tasks = [t for t in TASKS if name.startswith(f"ganapps.{t}")]
            assert not tasks or name == f"ganapps.{tasks[0]}.data", f"{path} imports {name}"
    for path in (ROOT / "engine").rglob("*.py"):
        assert not any(n.startswith("ganapps.recipes") for n in _imports(path)), path
