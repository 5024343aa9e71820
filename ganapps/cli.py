"""The `ganapps` command: mounts every task of the registry (ganapps.tasks: train, export and the task's own
commands), doctor, metrics and tune, and turns errors into one line and an exit code.

Exit codes: 0 ok, 2 bad input or usage, 1 internal error, 130 interrupted (checkpoint saved).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

try:  # Typer >= 0.26 vendors Click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer on Click
    from click import ClickException

from . import __version__, tasks
from ._cli import task_app
from .doctor import doctor
from .engine.errors import InputError

app = typer.Typer(help="GANs made practical: translation, video prediction, medical synthesis.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
for _spec in tasks.specs():
    app.add_typer(task_app(_spec), name=_spec.name, help=_spec.help, rich_help_panel="Tasks")
app.command("doctor")(doctor)


def _mount_tools() -> None:
    """Commands that work across tasks: metrics, tune and the web app (Gradio only loads when it runs)."""
    from . import metrics_cli, tune
    from .app import cli as app_cli

    app.add_typer(metrics_cli.app, name="metrics")
    app.add_typer(tune.app, name="tune")
    app.add_typer(app_cli.app, name="app")


_mount_tools()


def _version(value: bool) -> None:
    if value:
        print(f"ganapps {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="print the version and exit")] = False) -> None:
    """GANs made practical."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    debug = os.environ.get("GANAPPS_DEBUG") == "1"
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="ganapps")
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        code = 130
    except ClickException as e:  # usage errors: one line, pointing at --help
        if e.format_message():  # empty when the help text was shown instead
            print(f"error: {e.format_message()} (see --help)", file=sys.stderr)
        code = 2
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # internal error: one line, traceback on request
        if debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (set GANAPPS_DEBUG=1 for the traceback)", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
