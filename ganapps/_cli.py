"""CLI plumbing shared by every sub-app: dataclass fields become options, `--config` YAML, `--json`,
and errors turned into one line with exit code 2. Only the CLI layer imports this."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_args, get_origin

import typer

from .engine.config import TrainConfig, from_yaml, resolve
from .engine.errors import InputError

# Option help shared by all train commands; tasks add their own in HELP dicts.
HELP = {
    "out": "run folder (config, metrics, checkpoints, samples, report)",
    "steps": "training steps (one step = every due phase once)",
    "batch_size": "images (or points) per step per process",
    "seed": "seed for weights, noise and data order",
    "device": "auto, cpu, cuda or mps",
    "use_amp": "mixed precision: bf16 autocast on CPU, fp16 + grad scaling on CUDA",
    "grad_clip_norm": "clip gradients to this L2 norm (0: off)",
    "lr_schedule": "constant, linear (constant, then linear decay to 0) or cosine",
    "lr_decay_start_steps": "step where decay starts (-1: the schedule's default)",
    "warmup_steps": "linear LR warm-up steps",
    "ema_halflife_images": "EMA generator half-life in images (0: off)",
    "ema_rampup": "EMA half-life ramp-up ratio (StyleGAN2-ADA; 0: off)",
    "resume": "continue the run in --out from its latest checkpoint",
    "log_every_steps": "log every N steps",
    "sample_every_steps": "preview every N steps",
    "checkpoint_every_steps": "checkpoint every N steps",
    "keep_checkpoints": "checkpoints kept",
    "nonfinite_patience": "non-finite steps in a row before a rollback",
    "nonfinite_lr_factor": "LR factor at each rollback",
    "quiet": "no progress bar",
    "num_workers": "data loader worker processes",
    "threads": "torch CPU threads (0: torch's default)",
    "eval_every_steps": "evaluate (eval/* in metrics.jsonl) every N steps (0: only at the end)",
    "use_tensorboard": "write TensorBoard events to RUN/tb",
    "write_report": "write RUN/report.html (plots, samples, health verdicts) at the end",
}

TRAIN_GROUP = "Trainer"


def _option_type(hint: Any) -> tuple[Any, str]:
    """A dataclass field type -> (Typer-compatible annotation, extra help)."""
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        return type(choices[0]), "one of " + ", ".join(map(str, choices))
    return hint, ""


def train_command(app: typer.Typer, name: str, cls: type[TrainConfig], run: Callable[..., Any], *,
                  help: str, task_help: dict[str, str], presets: dict[str, dict] | None = None,
                  extra: list[inspect.Parameter] | None = None) -> None:
    """Register `name` on `app` with one option per field of `cls` plus --config/--preset/--json.

    `run(cfg, json_out=..., **extra)` does the work and returns a dict for --json.
    """
    hints = typing.get_type_hints(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    params: list[inspect.Parameter] = []
    for f in dataclasses.fields(cls):
        typ, extra_help = _option_type(hints[f.name])
        text = task_help.get(f.name) or HELP.get(f.name, "")
        text = "; ".join(x for x in (text, extra_help, f"default {defaults[f.name]!r}") if x)
        flag = "--" + f.name.replace("_", "-")
        decl = [flag] if typ is not bool else [f"{flag}/--no-{f.name.replace('_', '-')}"]
        panel = TRAIN_GROUP if f.name in HELP and f.name not in task_help else "Task"
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[typ], typer.Option(*decl, help=text, rich_help_panel=panel,  # noqa: UP045
                                                             show_default=False)]))
    params.append(inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Optional[Path], typer.Option("--config", help="YAML file of options; flags win")]))  # noqa: UP045
    if presets:
        params.append(inspect.Parameter(
            "preset", inspect.Parameter.KEYWORD_ONLY, default="default",
            annotation=Annotated[str, typer.Option("--preset", help="recipe: " + ", ".join(presets))]))
    params.append(inspect.Parameter(
        "json_out", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")]))
    params.extend(extra or [])
    field_names = set(defaults)

    def command(**kwargs: Any) -> None:
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in field_names}
        config_file = kwargs.pop("config")
        preset_name = kwargs.pop("preset", "default")
        json_out = kwargs.pop("json_out")
        preset: dict[str, Any] = {}
        if presets is not None:
            if preset_name not in presets:
                raise InputError(f"--preset {preset_name}: expected one of " + ", ".join(presets))
            preset = dict(presets[preset_name])
        if overrides.get("resume"):  # a resumed run starts from its own recorded options
            out = overrides.get("out") or defaults["out"]
            saved = Path(out) / "config.yaml"
            if not saved.is_file():
                raise InputError(f"{saved}: not found; --resume needs an existing run in --out")
            preset = {k: v for k, v in dataclasses.asdict(from_yaml(cls, saved)).items() if k != "resume"}
        cfg = resolve(cls, preset, str(config_file) if config_file else None, overrides)
        result = run(cfg, json_out=json_out, **kwargs)
        if json_out:
            print_json(result)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = help
    app.command(name, help=help)(command)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun launch, which stay silent."""
    return os.environ.get("RANK", "0") == "0"


def print_json(obj: dict[str, Any]) -> None:
    """One JSON object on the last line of stdout (non-finite floats as null); rank 0 only."""
    if is_main_process():
        print(json.dumps(_clean(obj)), flush=True)
