"""docs/ENGINE.md's "Adding a task" example, run as written: one package with a SPEC plus one name in the
registry gives a task that trains through the generic CLI with the trainer's and the GAN layer's options."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from ganapps import tasks
from ganapps._cli import task_app

DOC = Path(__file__).resolve().parents[1] / "docs" / "ENGINE.md"


def _example() -> str:
    section = DOC.read_text().split("### Adding a task", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_task_registers_and_trains_through_the_cli(tmp_path, monkeypatch):
    package = tmp_path / "line"
    package.mkdir()
    (package / "__init__.py").write_text(_example())
    spec = importlib.util.spec_from_file_location("ganapps.line", package / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ganapps.line", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(tasks, "TASK_PACKAGES", (*tasks.TASK_PACKAGES, "line"))  # the one line

    line = tasks.get("line")
    assert [s.name for s in tasks.specs()][-1] == "line"
    root = typer.Typer()
    root.add_typer(task_app(line), name="line", help=line.help)
    assert "A 1-D Gaussian." in CliRunner().invoke(root, ["--help"]).output
    result = CliRunner().invoke(root, [
        "line", "train", "--steps", "300", "--lr-g", "5e-3", "--lr-d", "5e-3", "--out", str(tmp_path / "run"), "--quiet",
        "--no-use-tensorboard", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["steps"] == 300 and (tmp_path / "run" / "checkpoints" / "latest").is_file()
    # the generator started near 0 and the real data sit at 3: adversarial training moved it most of the way
    assert abs(out["mean"] - 3.0) < 1.0, out
