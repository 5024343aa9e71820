"""`ganapps doctor RUN`: the health verdict timeline of a run, and RUN/report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._cli import print_json
from .engine.errors import InputError
from .engine.monitor import format_timeline
from .engine.report import doctor as run_doctor


def doctor(run: Annotated[Path, typer.Argument(help="run folder")],
           json_out: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
           ) -> None:
    """Diagnose a run: collapse, an overpowering discriminator, divergence, vanishing gradients; plots."""
    if not run.is_dir():
        raise InputError(f"{run}: not a folder; expected a run folder with metrics.jsonl")
    verdicts, report = run_doctor(run)
    print(format_timeline(verdicts))
    print(f"report: {report}")
    if json_out:
        print_json({"run": str(run), "report": str(report), "verdicts": [v.to_dict() for v in verdicts],
                    "kinds": sorted({v.kind for v in verdicts})})
