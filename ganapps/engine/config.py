"""Trainer options as a validated dataclass, and the preset -> YAML -> explicit-option merge.

Task configs subclass `TrainConfig` so one flat mapping of options drives a whole run. No Typer here.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from .errors import InputError

C = TypeVar("C", bound="TrainConfig")


@dataclasses.dataclass
class TrainConfig:
    """Options every task shares. Units are in the names; booleans read as predicates."""

    out: str = "runs/run"
    steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    use_amp: bool = False
    grad_clip_norm: float = 0.0  # 0 disables clipping
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    lr_decay_start_steps: int = -1  # -1: the schedule's own default (linear: half-way, cosine: 0)
    warmup_steps: int = 0
    ema_halflife_images: float = 0.0  # 0 disables the EMA generator
    ema_rampup: float = 0.0  # StyleGAN2-ADA rampup ratio; 0 disables
    log_every_steps: int = 50
    sample_every_steps: int = 500
    checkpoint_every_steps: int = 500
    eval_every_steps: int = 0  # 0: evaluate once, at the end
    keep_checkpoints: int = 3
    nonfinite_patience: int = 5  # consecutive skipped steps before a rollback
    nonfinite_lr_factor: float = 0.5  # LR multiplier applied at each rollback
    max_rollbacks: int = dataclasses.field(default=3, metadata={
        "help": "rollbacks allowed (each to the last checkpoint with lowered LRs) before training stops with an error"})
    num_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    use_tensorboard: bool = True
    write_report: bool = True  # RUN/report.html at the end of training
    resume: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        require(self, positive=("steps", "batch_size", "log_every_steps", "sample_every_steps",
                                "checkpoint_every_steps", "keep_checkpoints", "nonfinite_patience"),
                non_negative=("grad_clip_norm", "ema_halflife_images", "ema_rampup", "warmup_steps", "num_workers",
                              "eval_every_steps", "threads", "max_rollbacks"))
        if not 0 < self.nonfinite_lr_factor <= 1:
            raise InputError(f"option nonfinite_lr_factor={self.nonfinite_lr_factor!r}: expected in (0, 1]")
        check_choices(self)


def check_choices(cfg: Any) -> None:
    """Raise InputError for a Literal-typed field whose value is not one of its choices."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        hint = hints.get(f.name)
        if get_origin(hint) is Literal:
            choices = get_args(hint)
            if getattr(cfg, f.name) not in choices:
                raise InputError(f"option {f.name}={getattr(cfg, f.name)!r}: expected one of "
                                 + ", ".join(map(str, choices)))


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(name: str, value: Any, hint: Any, where: str) -> Any:
    """Check a YAML value against a field type; only int -> float widening is allowed."""
    origin = get_origin(hint)
    if origin is Literal:
        return value  # validated by __post_init__ with the choices listed
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = args[0]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise InputError(f"{where}: option {name}={value!r}: expected true or false")
    if hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise InputError(f"{where}: option {name}={value!r}: expected {hint.__name__}")
    return value


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file: a YAML mapping of option names to values."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InputError(f"{p}: cannot read config file ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise InputError(f"{p}: not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping of option: value, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def resolve(cls: type[C], preset: dict[str, Any] | None = None, config_file: str | None = None,
            overrides: dict[str, Any] | None = None) -> C:
    """Preset -> optional YAML file -> explicit options (None means 'not given'), then validate."""
    hints = field_types(cls)
    merged: dict[str, Any] = dict(preset or {})
    if config_file:
        for k, v in load_yaml(config_file).items():
            if k not in hints:
                raise InputError(f"{config_file}: unknown option '{k}'; known options: "
                                 + ", ".join(sorted(hints)))
            merged[k] = _coerce(k, v, hints[k], str(config_file))
    for k, v in (overrides or {}).items():
        if v is not None:
            if k not in hints:
                raise InputError(f"unknown option '{k}'")
            merged[k] = v
    return cls(**merged)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def from_yaml(cls: type[C], path: str | os.PathLike) -> C:
    """Rebuild a config written by `to_yaml`, ignoring options this version no longer has."""
    data = load_yaml(path)
    hints = field_types(cls)
    return cls(**{k: v for k, v in data.items() if k in hints})


def require(cfg: Any, *, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
            above_zero: tuple[str, ...] = ()) -> None:
    """Validate fields by name: `positive` integers >= 1, `non_negative` >= 0, `above_zero` > 0 (floats)."""
    for name in positive:
        if getattr(cfg, name) < 1:
            raise InputError(f"option {name}={getattr(cfg, name)!r}: expected a positive integer")
    for name in non_negative:
        if getattr(cfg, name) < 0:
            raise InputError(f"option {name}={getattr(cfg, name)!r}: expected >= 0")
    for name in above_zero:
        if getattr(cfg, name) <= 0:
            raise InputError(f"option {name}={getattr(cfg, name)!r}: expected > 0")
