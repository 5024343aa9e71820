"""Options and plumbing every inference command shares (translate, predict, sample, evaluate, export): --model,
--device, --json and --quiet defined once, the CPU thread rule, loading a model, and the export command.
Only the CLI layer imports this.

--json: one JSON object as the last line of stdout. --quiet: no progress bars and no status lines (what was
written where); a command's report (evaluate's figures, predict's per-horizon table) still prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ._cli import print_json
from .engine.inference import DEVICE_HELP, InferenceModel

MAX_DEFAULT_THREADS = 4

DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line of stdout")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="no progress bar or status lines (reports still print)")]


def model_option(default_model: str) -> Any:
    """The --model option of a task whose shipped default model is `default_model`."""
    return Annotated[Path | None, typer.Option(
        "--model", help=f"run folder, checkpoint folder, model folder or .safetensors file; default: the shipped "
                        f"{default_model} model")]


def inference_threads() -> None:
    """Torch CPU threads for inference: $OMP_NUM_THREADS when set, else torch's default capped at
    MAX_DEFAULT_THREADS (these commands often run on a shared machine)."""
    import torch

    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    else:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), MAX_DEFAULT_THREADS)))


def load(cls: type[InferenceModel], model: Path | None, device: str, **options: Any) -> Any:
    """`cls.from_checkpoint(model)` (None: the shipped default) on `device`, after the thread rule."""
    inference_threads()
    return cls.from_checkpoint(model, device=device, **options)


def export_command(app: typer.Typer, cls: type[InferenceModel]) -> None:
    """Register `export RUN --out DIR [--fp16/--fp32]` on a task's app: `cls.from_checkpoint(RUN).export(DIR)`."""

    def export(
        run: Annotated[Path, typer.Argument(help="run folder, checkpoint folder, model folder or .safetensors file")],
        out: Annotated[Path, typer.Option("--out", help="model folder to write (weights.safetensors + config.yaml)")],
        fp16: Annotated[bool, typer.Option("--fp16/--fp32", help="store parameters as float16 (loaded back as "
                                                                 "float32)")] = True,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        result = cls.from_checkpoint(run, device="cpu").export(out, fp16=fp16)
        if json_out:
            print_json(result)
        elif not quiet:
            print(f"{result['weights']}  sha256 {result['sha256']}  ({', '.join(result['nets'])}, {result['dtype']})")

    export.__doc__ = (f"Write a small model folder holding only the nets {cls.__name__} uses (EMA copies when the "
                      f"checkpoint has them), for --model.")
    app.command("export")(export)
