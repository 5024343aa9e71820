"""Trainer options as a validated dataclass, the help text that lives with each field, deprecated option names,
and the preset -> YAML -> explicit-option merge.

Task configs subclass `TrainConfig` (GAN tasks through `adversarial.AdversarialConfig`) so one flat mapping of
options drives a whole run. No Typer here.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, get_args, get_origin

import yaml

from .errors import InputError

C = TypeVar("C", bound="TrainConfig")


def opt(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its help text: `steps: int = opt(1000, "training steps")`. `factory` for lists."""
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """Options every task shares. Units are in the names; booleans read as predicates."""

    options_panel: ClassVar[str] = "Trainer"  # the --help panel of the fields this class declares
    deprecated_names: ClassVar[dict[str, str]] = {}  # old option name -> new name, accepted in YAML files

    out: str = opt("runs/run", "run folder (config, metrics, checkpoints, samples, report)")
    steps: int = opt(1000, "training steps (one step = every due phase once)")
    batch_size: int = opt(64, "images (or points) per step per process")
    seed: int = opt(0, "seed for weights, noise and data order")
    device: Literal["auto", "cpu", "cuda", "mps"] = opt("auto", "training device (auto: CUDA, else MPS, else CPU)")
    use_amp: bool | Literal["auto"] = opt(
        "auto", "mixed precision: bf16 autocast on CPU, fp16 + grad scaling on CUDA; auto (when not given): bf16 "
                "on a CPU with native bf16 (AMX or AVX512-BF16), float32 elsewhere; --no-use-amp: float32")
    use_compile: bool = opt(False, "torch.compile the nets (inductor, kernels cached under the ganapps cache); "
                                   "falls back to eager with a warning where it cannot compile. Off by default: the "
                                   "first steps compile for minutes on a CPU (docs/ENGINE.md, Speed)")
    grad_clip_norm: float = opt(0.0, "clip gradients to this L2 norm (0: off)")
    lr_schedule: Literal["constant", "linear", "cosine"] = opt(
        "constant", "learning-rate schedule (linear: constant, then linear decay to 0)")
    lr_decay_start_steps: int = opt(-1, "step where decay starts (-1: the schedule's default: linear half-way, "
                                        "cosine 0)")
    warmup_steps: int = opt(0, "linear LR warm-up steps")
    ema_halflife_images: float = opt(0.0, "EMA generator half-life in images (0: off)")
    ema_rampup: float = opt(0.0, "EMA half-life ramp-up ratio (StyleGAN2-ADA; 0: off)")
    log_every_steps: int = opt(50, "log every N steps")
    sample_every_steps: int = opt(500, "preview every N steps")
    checkpoint_every_steps: int = opt(500, "checkpoint every N steps")
    eval_every_steps: int = opt(0, "evaluate (eval/* in metrics.jsonl) every N steps (0: only at the end)")
    keep_checkpoints: int = opt(3, "checkpoints kept")
    nonfinite_patience: int = opt(5, "non-finite steps in a row before a rollback")
    nonfinite_lr_factor: float = opt(0.5, "LR factor at each rollback")
    max_rollbacks: int = opt(3, "rollbacks (each to the last checkpoint, LRs lowered) before training stops "
                                "with an error")
    num_workers: int = opt(0, "data loader worker processes")
    threads: int = opt(0, "torch CPU threads (0: torch's default)")
    use_tensorboard: bool = opt(True, "write TensorBoard events to RUN/tb")
    write_report: bool = opt(True, "write RUN/report.html (plots, samples, health verdicts) at the end")
    resume: bool = opt(False, "continue the run in --out from its latest checkpoint")
    init_from: str = opt("", "start from the weights of a run, checkpoint or model folder (EMA copies where saved), e.g. a "
                        "shipped model to fine-tune on your data: each net found there is loaded (shapes must match), "
                        "the others (a critic a model folder lacks) start fresh; optimizers and step start anew; "
                        "--resume takes precedence")
    quiet: bool = opt(False, "no progress bar")

    def __post_init__(self) -> None:
        require(self, positive=("steps", "batch_size", "log_every_steps", "sample_every_steps",
                                "checkpoint_every_steps", "keep_checkpoints", "nonfinite_patience"),
                non_negative=("grad_clip_norm", "ema_halflife_images", "ema_rampup", "warmup_steps", "num_workers",
                              "eval_every_steps", "threads", "max_rollbacks"))
        if self.use_amp not in (True, False, "auto") or isinstance(self.use_amp, int) and not isinstance(
                self.use_amp, bool):
            raise InputError(f"option use_amp={self.use_amp!r}: expected true, false or auto")
        if not 0 < self.nonfinite_lr_factor <= 1:
            raise InputError(f"option nonfinite_lr_factor={self.nonfinite_lr_factor!r}: expected in (0, 1]")
        check_choices(self)


class OptionDoc(NamedTuple):
    """One option of a config class, as the CLI and the docs show it."""

    name: str
    help: str
    panel: str  # "Trainer", "GAN" or "Task": the class that first declares the field
    default: Any


def describe_options(cls: type) -> list[OptionDoc]:
    """Every field of a config class with the help text and panel of the class that first declares it
    (a subclass that only changes a default keeps the declaring class's help)."""
    out = []
    for f in dataclasses.fields(cls):
        owner = next(c for c in reversed(cls.__mro__) if f.name in getattr(c, "__dataclass_fields__", {}))
        declared = owner.__dataclass_fields__[f.name]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        out.append(OptionDoc(f.name, declared.metadata.get("help", ""), vars(owner).get("options_panel", "Task"),
                             default))
    return out


class DeprecatedOption(DeprecationWarning):
    """An option given under its previous release's name (mapped to today's name)."""


def deprecated_names(cls: type) -> dict[str, str]:
    """Old option name -> new name, gathered over the class and its bases (a subclass may add its own)."""
    names: dict[str, str] = {}
    for c in reversed(cls.__mro__):
        names.update(vars(c).get("deprecated_names", {}))
    fields = field_types(cls)
    return {old: new for old, new in names.items() if old not in fields and new in fields}


def _rename_deprecated(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Map deprecated option names in a YAML mapping to today's, with a DeprecationWarning naming the new one."""
    renames = deprecated_names(cls)
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in renames:
            new = renames[k]
            if new in data:
                raise InputError(f"{where}: options '{k}' (deprecated) and '{new}' both given; keep '{new}'")
            warnings.warn(f"{where}: option '{k}' is deprecated; use '{new}' (the old name is accepted until the "
                          f"next release)", DeprecatedOption, stacklevel=3)
            k = new
        out[k] = v
    return out


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
    """Field name -> type hint (ClassVars left out)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def _coerce(name: str, value: Any, hint: Any, where: str) -> Any:
    """Check a YAML value against a field type; only int -> float widening is allowed."""
    origin = get_origin(hint)
    if origin is Literal:
        return value  # validated by __post_init__ with the choices listed
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        if any(get_origin(a) is Literal and value in get_args(a) and type(value) is str for a in args):
            return value  # a named choice beside a type (use_amp: auto)
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
    """Preset -> optional YAML file -> explicit options (None means 'not given'), then validate.
    Deprecated names in the YAML file are mapped to today's with a DeprecationWarning."""
    hints = field_types(cls)
    merged: dict[str, Any] = dict(preset or {})
    if config_file:
        for k, v in _rename_deprecated(cls, load_yaml(config_file), str(config_file)).items():
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
    """Rebuild a config written by `to_yaml` (this version's or the previous one's: deprecated names are mapped
    with a DeprecationWarning), ignoring options this version no longer has."""
    data = _rename_deprecated(cls, load_yaml(path), str(path))
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
