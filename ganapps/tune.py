"""`ganapps tune TASK`: hyperparameter search with Optuna (TPE, random or grid; median pruning on the
task's periodic evaluation), studies persisted in SQLite so a killed search resumes where it stopped.

A task takes part by giving its SPEC (ganapps.tasks) a `TuneSpec`: `search_space(trial) -> dict` of option
overrides, a grid (option -> list of values, for --sampler grid), objectives (metric -> "maximize" | "minimize")
and the config fields shown as flags. This module is CLI-level code: the engine knows nothing of it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import os
import shutil
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from . import tasks
from ._cli import print_json
from .engine.checkpoint import write_text_atomic
from .engine.config import describe_options, load_yaml, resolve
from .engine.errors import InputError
from .engine.spec import TaskSpec, TuneSpec

app = typer.Typer(help="Hyperparameter search (Optuna) over a task's declared space.", no_args_is_help=True)


def _tune_spec(name: str) -> tuple[TaskSpec, TuneSpec]:
    spec = tasks.get(name)
    if spec.tune is None:
        tunable = [s.name for s in tasks.specs() if s.tune is not None]
        raise InputError(f"tune {name}: no search space declared; tunable tasks: " + ", ".join(tunable))
    return spec, spec.tune


def _sampler(name: str, grid: dict[str, list[Any]], seed: int):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise InputError(f"--sampler {name}: expected tpe, random or grid")


def _objective(spec: TaskSpec, tune: TuneSpec, *, metric: str, direction: str, base: dict[str, Any],
               study_dir: Path, grid: bool, eval_every_steps: int) -> Callable[[Any], float]:
    """One trial: train the task with the sampled overrides, reporting eval/<metric> at every periodic evaluation
    so the median pruner can stop it; a non-finite value counts as the worst."""
    import optuna

    from .engine.trainer import Trainer

    key = f"eval/{metric}"

    def objective(trial: optuna.Trial) -> float:
        overrides = tune.search_space(trial) if not grid else {
            k: trial.suggest_categorical(k, v) for k, v in tune.grid.items()}
        out = study_dir / "trials" / f"trial_{trial.number}"
        if out.exists():  # a trial cut off by a killed search starts over
            shutil.rmtree(out)
        cfg = resolve(spec.config, base, None, {**overrides, "out": str(out), "quiet": True, "use_tensorboard": False,
                                                "write_report": False, "eval_every_steps": eval_every_steps})

        def on_evaluate(step: int, metrics: dict[str, float]) -> bool:
            value = metrics.get(key, math.nan)
            trial.report(value if math.isfinite(value) else _worst(direction), step)
            return not trial.should_prune()

        result = Trainer(spec.build_task(cfg), on_warning=lambda _: None, on_evaluate=on_evaluate).train()
        if result.stopped_early:
            raise optuna.TrialPruned()
        value = result.evaluation.get(key, math.nan)
        for k, v in result.evaluation.items():
            trial.set_user_attr(k, v)
        return value if math.isfinite(value) else _worst(direction)

    return objective


def run_study(task_name: str, *, trials: int, metric: str, study_dir: Path, sampler: str = "tpe",
              base: dict[str, Any] | None = None, evals_per_trial: int = 4, seed: int = 0,
              quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) a study; returns the best trial's value, options and the paths written."""
    import optuna

    spec, tune = _tune_spec(task_name)
    if metric not in tune.objectives:
        raise InputError(f"--metric {metric}: expected one of " + ", ".join(tune.objectives))
    direction = tune.objectives[metric]
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(study_dir / 'study.db').resolve()}"
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(study_name=f"{task_name}-{metric}-{sampler}", storage=storage,
                                sampler=_sampler(sampler, tune.grid, seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
                                direction=direction, load_if_exists=True)
    base = dict(base or {})
    objective = _objective(spec, tune, metric=metric, direction=direction, base=base, study_dir=study_dir,
                           grid=sampler == "grid",
                           eval_every_steps=max(1, resolve(spec.config, base).steps // evals_per_trial))
    done = len([t for t in study.trials if t.state.is_finished()])
    if trials > done:
        from tqdm.auto import tqdm

        with tqdm(total=trials, initial=done, unit="trial", disable=quiet) as bar:
            study.optimize(objective, n_trials=trials - done, callbacks=[lambda s, t: bar.update(1)])
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise InputError(f"{study_dir}: no trial completed; raise --trials or the steps per trial")
    best = study.best_trial
    best_cfg = resolve(spec.config, base, None, {**best.params, "out": f"runs/{task_name}-tuned"})
    best_yaml = study_dir / "best.yaml"
    data = {k: v for k, v in dataclasses.asdict(best_cfg).items() if k not in ("resume",)}
    write_text_atomic(best_yaml, yaml.safe_dump(data, sort_keys=False))
    table = _table(study, metric)
    (study_dir / "trials.txt").write_text(table + "\n")
    plot = _plot(study, study_dir / "history.png", metric)
    return {"best_value": best.value, "best_params": best.params, "best_trial": best.number,
            "trials": len(study.trials), "pruned": len([t for t in study.trials if t.state.name == "PRUNED"]),
            "direction": direction, "best_config": str(best_yaml), "plot": str(plot), "table": table,
            "study": storage}


def _worst(direction: str) -> float:
    return -1e9 if direction == "maximize" else 1e9


def _table(study, metric: str) -> str:
    rows = [f"{'trial':>5}  {'state':<8}  {metric:>12}  params"]
    for t in study.trials:
        value = f"{t.value:12.4f}" if t.value is not None else f"{'-':>12}"
        params = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(t.params.items()))
        rows.append(f"{t.number:>5}  {t.state.name:<8}  {value}  {params}")
    return "\n".join(rows)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _plot(study, path: Path, metric: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.value is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.scatter([t.number for t in done], [t.value for t in done], s=14, label="trial")
    best, best_line = None, []
    for t in done:
        if best is None or (t.value > best if study.direction.name == "MAXIMIZE" else t.value < best):
            best = t.value
        best_line.append(best)
    ax.plot([t.number for t in done], best_line, color="tab:red", label="best so far")
    pruned = [t.number for t in study.trials if t.state.name == "PRUNED"]
    if pruned:
        ax.scatter(pruned, [min(best_line or [0])] * len(pruned), marker="x", color="grey", label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _tune_command(spec: TaskSpec) -> None:
    """Register `ganapps tune TASK`: the common study options plus the config fields the task's TuneSpec names
    as flags (e.g. the toy's --dataset), fixed for every trial."""
    hints = typing.get_type_hints(spec.config)
    docs = {d.name: d for d in describe_options(spec.config)}
    flags = spec.tune.flags  # type: ignore[union-attr]

    def command(**kwargs: Any) -> None:
        trials, steps, config = kwargs.pop("trials"), kwargs.pop("steps"), kwargs.pop("config")
        metric, sampler, seed, quiet = kwargs.pop("metric"), kwargs.pop("sampler"), kwargs.pop("seed"), kwargs.pop("quiet")
        study_dir, json_out = kwargs.pop("study_dir") or Path(f"runs/tune-{spec.name}"), kwargs.pop("json_out")
        if trials < 1 or steps < 1:
            raise InputError("--trials and --steps must be >= 1")
        base: dict[str, Any] = dict(load_yaml(config)) if config is not None else {}
        base.update({k: v for k, v in kwargs.items() if v is not None})
        base.update({"steps": steps, "seed": seed})
        result = run_study(spec.name, trials=trials, metric=metric, study_dir=study_dir, sampler=sampler, base=base,
                           seed=seed, quiet=quiet)
        if json_out:
            print_json({k: v for k, v in result.items() if k != "table"})
            return
        print(result["table"])
        print(f"best trial {result['best_trial']}: {metric} = {result['best_value']:.4f}  "
              f"({result['pruned']} of {result['trials']} trials pruned)")
        print(f"best config: {result['best_config']}  (ganapps {spec.name} train --config {result['best_config']})")
        print(f"plot: {result['plot']}")

    objectives = spec.tune.objectives  # type: ignore[union-attr]
    P = inspect.Parameter
    params = [
        P("trials", P.KEYWORD_ONLY, default=20, annotation=Annotated[int, typer.Option(
            help="trials in the study (a resumed study counts those done)")]),
        P("metric", P.KEYWORD_ONLY, default=next(iter(objectives)), annotation=Annotated[str, typer.Option(
            help="objective: " + ", ".join(objectives))]),
        P("sampler", P.KEYWORD_ONLY, default="tpe", annotation=Annotated[str, typer.Option(
            help="tpe (Bayesian), random or grid")]),
        P("study_dir", P.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, typer.Option(
            "--study-dir", help=f"study folder (SQLite, trials, best.yaml); default runs/tune-{spec.name}")]),
        P("steps", P.KEYWORD_ONLY, default=2000, annotation=Annotated[int, typer.Option(
            help="training steps per trial")]),
        P("seed", P.KEYWORD_ONLY, default=0, annotation=Annotated[int, typer.Option(
            help="seed of the sampler and of every trial's training")]),
        P("config", P.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, typer.Option(
            "--config", help="YAML of fixed options for every trial")]),
        *[P(f, P.KEYWORD_ONLY, default=None, annotation=Annotated[hints[f] | None, typer.Option(
            "--" + f.replace("_", "-"), help=f"{docs[f].help} (fixed for every trial)")]) for f in flags],
        P("quiet", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--quiet", help="no progress bar")]),
        P("json_out", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--json", help="print one JSON object as the last line")]),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    app.command(spec.name, help=f"Search the {spec.name} task's declared space ({spec.help.rstrip('.')}).")(command)


for _spec in tasks.specs():
    if _spec.tune is not None:
        _tune_command(_spec)
