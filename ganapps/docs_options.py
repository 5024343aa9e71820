"""Write docs/options.md: every task's train options (name, default, help, panel) and presets, from the task
registry and the config fields. `python -m ganapps.docs_options [PATH]`; a test checks the file is current."""

from __future__ import annotations

import sys
from pathlib import Path

from . import tasks
from .engine.config import describe_options

HEADER = ("# Train options of every task\n\nGenerated from the task registry and the config fields by "
          "`python -m ganapps.docs_options` (a test checks it is current). Each option is a flag of "
          "`ganapps TASK train` (`--name-with-dashes`, booleans as `--flag/--no-flag`) and a key of `--config` "
          "YAML files.\n")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render() -> str:
    parts = [HEADER]
    for spec in tasks.specs():
        hidden = set(getattr(spec.config, "unsupported", ()))
        parts.append(f"\n## {spec.name}\n\n{spec.train_help} Presets: "
                     + ", ".join(f"`{p}`" for p in spec.presets) + ".\n")
        for panel in ("Task", "GAN", "Trainer"):
            rows = [d for d in describe_options(spec.config) if d.panel == panel and d.name not in hidden]
            if not rows:
                continue
            parts.append(f"\n### {panel} options\n\n| option | default | meaning |\n|---|---|---|\n")
            parts.extend(f"| `--{d.name.replace('_', '-')}` | `{_cell(repr(d.default))}` | {_cell(d.help)} |\n"
                         for d in rows)
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "docs" / "options.md"
    path.write_text(render())
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
