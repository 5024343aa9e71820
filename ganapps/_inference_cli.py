"""Options and plumbing every inference command shares (translate, predict, sample, evaluate, export): --model,
--device, --json and --quiet defined once, the CPU thread rule, loading a model, and the export command.
Only the CLI layer imports this.

--json: one JSON object as the last line of stdout. --quiet: no progress bars and no status lines (what was
written where); a command's report (evaluate's figures, predict's per-horizon table) still prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._cli import print_json
from .engine.errors import InputError
from .engine.export import FORMATS, PARITY_TOLERANCE
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


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """"128,257x301" -> [(128, 128), (257, 301)] (H x W; one number is a square)."""
    sizes = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        parts = item.lower().split("x")
        if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise InputError(f"--check-sizes {text}: expected sizes like 128 or 257x301, comma separated")
        h, w = int(parts[0]), int(parts[-1])
        sizes.append((h, w))
    if not sizes:
        raise InputError(f"--check-sizes {text!r}: expected at least one size like 128 or 257x301")
    return sizes


def export_command(app: typer.Typer, cls: type[InferenceModel]) -> None:
    """Register `export RUN --out DIR [--format safetensors|onnx|torchscript] [--fp16/--fp32] [--check-sizes]`
    on a task's app: `cls.from_checkpoint(RUN).export(DIR, ...)`."""

    def export(
        run: Annotated[Path, typer.Argument(help="run folder, checkpoint folder, model folder or .safetensors file")],
        out: Annotated[Path, typer.Option("--out", help="folder to write (safetensors: weights.safetensors + "
                                                        "config.yaml; onnx/torchscript: one graph per net + "
                                                        "config.yaml + export.json)")],
        fmt: Annotated[str, typer.Option("--format", help="safetensors (a model folder for --model), onnx (ONNX "
                                                          "Runtime and others) or torchscript; graphs are float32 "
                                                          "and written only if they match PyTorch within "
                                                          f"{PARITY_TOLERANCE:g}")] = "safetensors",
        fp16: Annotated[Optional[bool], typer.Option("--fp16/--fp32", help="safetensors: store parameters as "  # noqa: UP045
                                                     "float16 (loaded back as float32; the default)")] = None,
        check_sizes: Annotated[Optional[str], typer.Option(  # noqa: UP045
            "--check-sizes", help="onnx/torchscript of nets that take any size: the image sizes the parity check "
                                  "runs at, e.g. 128,257x301,720x1280 (default: two odd sizes)")] = None,
        add: Annotated[Optional[Path], typer.Option(  # noqa: UP045
            "--add", help="a second model to join into one (translation: the other direction of a cut, fastcut or "
                          "pix2pix model with the same nets)")] = None,
        json_out: JsonOpt = False,
        quiet: QuietOpt = False,
    ) -> None:
        sizes = parse_sizes(check_sizes) if check_sizes is not None else None
        if fmt not in FORMATS:
            raise InputError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
        if fmt != "safetensors":
            inference_threads()
        model = cls.from_checkpoint(run, device="cpu")
        if add is not None:
            model = model.joined(cls.from_checkpoint(add, device="cpu"))
        result = model.export(out, fp16=fp16, format=fmt, sizes=sizes)
        if json_out:
            print_json(result)
        elif quiet:
            pass
        elif fmt == "safetensors":
            print(f"{result['weights']}  sha256 {result['sha256']}  ({', '.join(result['nets'])}, {result['dtype']})")
        else:
            for path, (net, diff) in zip(result["files"], result["max_abs_diff"].items(), strict=True):
                print(f"{path}  sha256 {result['sha256'][net]}  parity: max |diff| {diff:.2g} to PyTorch over "
                      f"{result['checks'][net]} input sets (limit {PARITY_TOLERANCE:g})")

    export.__doc__ = (f"Write the nets {cls.__name__} uses (EMA copies when the checkpoint has them): a small model "
                      f"folder for --model, or ONNX / TorchScript graphs checked against PyTorch.")
    app.command("export")(export)
