"""CLI plumbing shared by every sub-app: dataclass fields become options, `--config` YAML, `--json`,
and errors turned into one line with exit code 2. Only the CLI layer imports this."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import sys
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, get_args, get_origin

import typer

from .engine.config import (
    DeprecatedOption,
    TrainConfig,
    deprecated_names,
    describe_options,
    from_yaml,
    load_yaml,
    resolve,
)
from .engine.errors import InputError
from .engine.spec import TaskSpec


def _option_type(hint: Any) -> tuple[Any, str]:
    """A dataclass field type -> (Typer-compatible annotation, extra help)."""
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        return type(choices[0]), "one of " + ", ".join(map(str, choices))
    if bool in get_args(hint):  # bool | Literal["auto"]: --name / --no-name, and the named choice when not given
        return bool, ""
    return hint, ""


def _option(param: str, name: str, hint: Any, **option: Any) -> inspect.Parameter:
    """A keyword parameter `param` shown as --name (--name/--no-name for booleans), None when not given."""
    typ, _ = _option_type(hint)
    flag = "--" + name.replace("_", "-")
    decl = [flag] if typ is not bool else [f"{flag}/--no-{name.replace('_', '-')}"]
    return inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[typ], typer.Option(*decl, **option)])  # noqa: UP045


def _field_options(cls: type[TrainConfig]) -> list[inspect.Parameter]:
    """One option per field the task supports (help and panel from the field), then hidden options under the
    previous release's names (e.g. --loss for --gan-loss), mapped by `_take_deprecated`."""
    hints = typing.get_type_hints(cls)
    hidden = set(getattr(cls, "unsupported", ()))
    params = []
    for doc in describe_options(cls):
        if doc.name not in hidden:
            text = "; ".join(x for x in (doc.help, _option_type(hints[doc.name])[1], f"default {doc.default!r}") if x)
            params.append(_option(doc.name, doc.name, hints[doc.name], help=text, rich_help_panel=doc.panel,
                                  show_default=False))
    return params + [_option(f"deprecated__{old}", old, hints[new], hidden=True)
                     for old, new in deprecated_names(cls).items()]


def _take_deprecated(cls: type[TrainConfig], kwargs: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Move values given under deprecated flags into `overrides` (today's names), warning on stderr."""
    for old, new in deprecated_names(cls).items():
        value = kwargs.pop(f"deprecated__{old}", None)
        if value is None:
            continue
        flag, new_flag = "--" + old.replace("_", "-"), "--" + new.replace("_", "-")
        if overrides.get(new) is not None:
            raise InputError(f"{flag} (deprecated) and {new_flag} both given; keep {new_flag}")
        warn(f"{flag} is deprecated; use {new_flag} (the old name is accepted until the next release)")
        overrides[new] = value


def warn(message: str) -> None:
    """One warning line on stderr (rank 0 only)."""
    if is_main_process():
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _showing_deprecations(fn: Callable[[], Any]) -> Any:
    """Run `fn`, showing the deprecated option names it maps (in YAML files) as warnings on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecatedOption)
        result = fn()
    for w in caught:
        if issubclass(w.category, DeprecatedOption):
            warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result


def train_command(app: typer.Typer, name: str, cls: type[TrainConfig], run: Callable[..., Any], *,
                  help: str, presets: dict[str, dict] | None = None,
                  extra: list[inspect.Parameter] | None = None) -> None:
    """Register `name` on `app` with one option per field of `cls` plus --config/--preset/--json.

    Help text and panel come from the field (`describe_options`); options the task lists as `unsupported` are
    left out; the previous release's option names stay as hidden flags. `run(cfg, json_out=..., **extra)` does
    the work and returns a dict for --json. A config class with a `preset_options(name, given)` classmethod
    decides what a preset sets from the options given in the file and as flags (e.g. per method).
    """
    params = _field_options(cls)
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
    field_names = {f.name for f in dataclasses.fields(cls)}
    out_default = next(f.default for f in dataclasses.fields(cls) if f.name == "out")

    def command(**kwargs: Any) -> None:
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in field_names}
        _take_deprecated(cls, kwargs, overrides)
        config_file = kwargs.pop("config")
        preset_name = kwargs.pop("preset", "default")
        json_out = kwargs.pop("json_out")
        preset: dict[str, Any] = {}
        if presets is not None:
            if preset_name not in presets:
                raise InputError(f"--preset {preset_name}: expected one of " + ", ".join(presets))
            preset = dict(presets[preset_name])
            scoped = getattr(cls, "preset_options", None)  # a preset that depends on the options given
            if scoped is not None:
                given = {**(load_yaml(config_file) if config_file else {}),
                         **{k: v for k, v in overrides.items() if v is not None}}
                preset = scoped(preset_name, given)
        if overrides.get("resume"):  # a resumed run starts from its own recorded options
            saved = Path(overrides.get("out") or out_default) / "config.yaml"
            if not saved.is_file():
                raise InputError(f"{saved}: not found; --resume needs an existing run in --out")
            recorded = _showing_deprecations(lambda: from_yaml(cls, saved))
            preset = {k: v for k, v in dataclasses.asdict(recorded).items() if k != "resume"}
        cfg = _showing_deprecations(
            lambda: resolve(cls, preset, str(config_file) if config_file else None, overrides))
        result = run(cfg, json_out=json_out, **kwargs)
        if json_out:
            print_json(result)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = help
    app.command(name, help=help)(command)


def run_train(spec: TaskSpec, cfg: TrainConfig, *, json_out: bool) -> dict[str, Any]:
    """`ganapps TASK train`: train `spec`'s task on `cfg`, print its one-line summary (unless --json) and return
    the figures for --json. Exit 130 after an interrupt (the trainer saved a checkpoint first)."""
    from .engine.trainer import train

    task = spec.build_task(cfg)
    result = train(task)
    ev = {k.removeprefix("eval/"): v for k, v in result.evaluation.items()}
    if not json_out and is_main_process():
        summary = task.summary(ev) if ev and hasattr(task, "summary") else ""
        print(f"{summary}  run {result.run_dir}".strip())
    if result.interrupted:
        raise typer.Exit(130)
    return {**ev, "run": str(result.run_dir), "steps": result.step, "samples": str(result.run_dir / "samples"),
            "verdicts": sorted({v.kind for v in result.verdicts})}


def task_app(spec: TaskSpec) -> typer.Typer:
    """The `ganapps TASK` group: the task's own commands (spec.cli), `train` from its config, and `export` when it
    has an inference class."""
    from functools import partial

    from ._inference_cli import export_command
    from .engine.spec import load_ref

    app = load_ref(spec.cli) if spec.cli else typer.Typer(no_args_is_help=True)
    train_command(app, "train", spec.config, partial(run_train, spec), help=spec.train_help, presets=spec.presets)
    if spec.inference is not None:
        export_command(app, spec.inference)
    return app


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
