"""Export of inference nets as graphs that run without ganapps: ONNX (torch's exporter, checked in ONNX Runtime)
and TorchScript (traced, checked with `torch.jit.load`). Every file is run on several inputs (other sizes and
batches than the one it was traced on) and compared with PyTorch before anything is written: an export whose
largest |difference| exceeds PARITY_TOLERANCE is refused and nothing is left behind. Imports torch, and onnx /
onnxruntime / onnxscript when ONNX is asked for (the `export` extra); no task, Typer or dataset format.

    >>> graph = Graph("gen_ab", net, {"image": x}, ["translated"], dynamic={"image": {0: "batch", 2: "height"}},
    ...               checks=[{"image": torch.rand(2, 3, 67, 93) * 2 - 1}])   # doctest: +SKIP
    >>> export_graphs([graph], "model-onnx", "onnx", config_yaml=text)      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import file_digest
from .errors import InputError

FORMATS = ("safetensors", "onnx", "torchscript")
GRAPH_FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARITY_TOLERANCE = 1e-4  # largest |exported - PyTorch| accepted, float32 outputs
MANIFEST = "export.json"


@dataclass
class Graph:
    """One net as a graph to export: `module` (eval mode, float32) called with the `inputs` tensors (by name,
    in order) returns one tensor named `outputs[0]`; `dynamic` marks the input dimensions that may vary
    (input name -> {dim: symbolic name}, one name per shared size, e.g. "batch"), each at least `dim_min[name]`;
    `checks` are further input sets (other sizes, other batches) the exported file must reproduce PyTorch on;
    `note` says how to feed it (written to the manifest)."""

    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    checks: list[dict[str, torch.Tensor]] = field(default_factory=list)
    note: str = ""
    dim_min: dict[str, int] = field(default_factory=dict)  # smallest value of a dynamic size (default 1)


class ExportRefused(InputError):
    """The exported graph does not reproduce PyTorch within PARITY_TOLERANCE (the message names the file,
    the input shapes and the difference)."""


def _onnx_modules():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError as e:
        raise InputError(f"--format onnx needs onnx, onnxruntime and onnxscript ({e.name} is missing): "
                         f"pip install 'ganapps[export]'") from None
    return onnx, onnxruntime


def _reason(e: BaseException) -> str:
    """One line of an exception: of its innermost cause (torch.export wraps the real one), the last
    "SomeError: ..." line of a nested traceback (TorchScript's), else the first line."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # no terminal colours
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    nested = [line for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]
    if nested:
        return nested[-1][:200]
    return f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__


def _shape(shape: tuple[int, ...], dims: dict[int, str]) -> list[int | str]:
    return [dims.get(i, n) for i, n in enumerate(shape)]


def _write_onnx(graph: Graph, path: Path, shown: Path) -> None:
    from torch.export import Dim

    _onnx_modules()
    dims: dict[str, Any] = {}
    for spec in graph.dynamic.values():
        for label in spec.values():
            dims.setdefault(label, Dim(label, min=graph.dim_min.get(label, 1), max=1 << 16))
    dynamic_shapes = tuple({d: dims[label] for d, label in graph.dynamic.get(name, {}).items()} or None
                           for name in graph.inputs)  # in input order (a dict must use forward's argument names)
    args = tuple(graph.inputs.values())
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph.module, args, None, input_names=list(graph.inputs),
                                        output_names=graph.outputs, dynamo=True, dynamic_shapes=dynamic_shapes,
                                        verbose=False)
            program.save(str(path))
    except Exception as e:  # noqa: BLE001 - any exporter failure means this net cannot be written as ONNX
        raise InputError(f"{shown}: the net '{graph.name}' cannot be exported to ONNX ({_reason(e)}); not "
                         f"written") from None


def _write_torchscript(graph: Graph, path: Path, shown: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings: the parity check below is what decides
            traced = torch.jit.trace(graph.module, tuple(graph.inputs.values()), check_trace=False)
            torch.jit.save(traced, str(path))
    except Exception as e:  # noqa: BLE001 - any tracer failure means this net cannot be written as TorchScript
        raise InputError(f"{shown}: the net '{graph.name}' cannot be traced to TorchScript ({_reason(e)}); not "
                         f"written") from None


def _runner(fmt: str, path: Path):
    """A function {name: tensor} -> output tensor that runs the written file."""
    if fmt == "onnx":
        _, ort = _onnx_modules()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda feeds: torch.from_numpy(session.run(None, {k: v.numpy() for k, v in feeds.items()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream; still asked for
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda feeds: module(*feeds.values())


@torch.no_grad()
def check_parity(graph: Graph, fmt: str, path: Path, tolerance: float = PARITY_TOLERANCE,
                 shown: Path | None = None) -> list[dict[str, Any]]:
    """Run the written file on the example inputs and every check; ExportRefused (naming `shown`, the file's
    destination) when it fails to run, an output's shape differs, or its largest |difference| to PyTorch
    (float32, CPU) exceeds `tolerance`. Returns one {"shapes", "max_abs_diff"} per input set."""
    shown = shown or path
    run = _runner(fmt, path)
    report = []
    for feeds in [graph.inputs, *graph.checks]:
        feeds = {k: v.detach().float().cpu().contiguous() for k, v in feeds.items()}
        expected = graph.module(*feeds.values()).float()
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        try:
            got = run(feeds).float()
        except Exception as e:  # noqa: BLE001 - a runtime that rejects an input the net takes is a failed check
            raise ExportRefused(f"{shown}: the exported '{graph.name}' fails on inputs {shapes} ({_reason(e)}): "
                                f"it fixed a size its example input had; {fmt} cannot take this net; not "
                                f"written") from None
        if got.shape != expected.shape:
            raise ExportRefused(f"{shown}: the exported '{graph.name}' returns {list(got.shape)} for inputs "
                                f"{shapes}, PyTorch {list(expected.shape)}; not written")
        diff = float((got - expected).abs().max()) if expected.numel() else 0.0
        if not diff <= tolerance:
            raise ExportRefused(f"{shown}: the exported '{graph.name}' differs from PyTorch by up to {diff:.3g} "
                                f"(> {tolerance:g}) on inputs {shapes}; not written")
        report.append({"shapes": shapes, "max_abs_diff": diff})
    return report


def check_destination(out: Path, expected: str) -> None:
    """An InputError naming `out` when it is a file, or when a file stands where one of its folders would go."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; expected {expected}")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(f"{out}: cannot write here ({blocker} is a file, not a folder)")


def export_graphs(graphs: list[Graph], out: str | os.PathLike, fmt: str, *, config_yaml: str | None = None,
                  tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Write each graph as OUT/<name>.onnx or OUT/<name>.pt, plus OUT/config.yaml (the model's options) and
    OUT/export.json (inputs, outputs, dynamic dimensions, parity figures, versions, sha256), after checking
    every file (`check_parity`). All files are made in a temporary folder next to OUT and moved in only when
    every check passed: a refused or failed export leaves OUT as it was. Returns {"format", "files",
    "sha256", "max_abs_diff", "checks", "manifest"}."""
    if fmt not in GRAPH_FORMATS:
        raise InputError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    check_destination(out, "a folder to write the export into")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.export", dir=out.parent))
    except OSError as e:
        raise InputError(f"{out}: cannot write the export here ({e.strerror or e})") from None
    try:
        manifest: dict[str, Any] = {"format": fmt, "tolerance": tolerance, "torch": torch.__version__, "graphs": {}}
        if fmt == "onnx":
            onnx, ort = _onnx_modules()
            manifest.update(onnx=onnx.__version__, onnxruntime=ort.__version__)
        for g in graphs:
            g.module.eval()
            path = stage / f"{g.name}{GRAPH_FORMATS[fmt]}"
            shown = out / path.name
            (_write_onnx if fmt == "onnx" else _write_torchscript)(g, path, shown)
            report = check_parity(g, fmt, path, tolerance, shown)
            with torch.no_grad():
                example_out = g.module(*g.inputs.values())
            out_dims = {}  # output dims that follow a dynamic input dim of the same size
            for name, spec in g.dynamic.items():
                for d, label in spec.items():
                    size = g.inputs[name].shape[d]
                    if d < example_out.ndim and example_out.shape[d] == size:
                        out_dims[d] = label
            manifest["graphs"][g.name] = {
                "file": path.name, "sha256": file_digest(path),
                "inputs": {k: {"shape": _shape(tuple(v.shape), g.dynamic.get(k, {})), "dtype": "float32"}
                           for k, v in g.inputs.items()},
                "outputs": {g.outputs[0]: {"shape": _shape(tuple(example_out.shape), out_dims), "dtype": "float32"}},
                "smallest": {label: g.dim_min.get(label, 1) for spec in g.dynamic.values() for label in spec.values()},
                "checks": report, "max_abs_diff": max(r["max_abs_diff"] for r in report), "note": g.note}
        if config_yaml is not None:
            (stage / "config.yaml").write_text(config_yaml)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1))
        out.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in stage.iterdir())
        for name in names:
            os.replace(stage / name, out / name)
    except OSError as e:
        raise InputError(f"{out}: cannot write the export ({e.strerror or e})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    graphs_info = manifest["graphs"]
    return {"format": fmt, "files": [str(out / v["file"]) for v in graphs_info.values()],
            "sha256": {k: v["sha256"] for k, v in graphs_info.items()},
            "max_abs_diff": {k: v["max_abs_diff"] for k, v in graphs_info.items()},
            "checks": {k: len(v["checks"]) for k, v in graphs_info.items()}, "manifest": str(out / MANIFEST)}
