"""The training loop: runs a task's phases and owns optimizers, schedules, AMP, clipping, EMA, the
non-finite guard, checkpoints, previews, evaluation, signals and data-parallel training (the run folder's
logs and images are written by `engine.runlog`).

A task supplies nets, optimizer groups, phases, a dataset and optional preview/evaluate hooks (see
`engine.task`). No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt
from . import distributed as dist
from . import trainstate
from .config import TrainConfig, to_yaml
from .data import DataStream
from .errors import InputError, out_of_space, write_error
from .runlog import RunLog, check_run_folder, to_image, training_row
from .runtime import (
    EVAL_SEED_OFFSET,
    PREVIEW_SEED_OFFSET,
    amp_dtype,
    compile_nets,
    pick_device,
    rank_noise_seed,
    seed_everything,
    to_device,
)
from .schedules import lr_lambda
from .stabilizers import EMA, ema_beta
from .task import Phase, StepContext, Task, iter_phases


class Diverged(RuntimeError):
    """Training kept producing non-finite losses after every rollback allowed."""


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    step: int
    images_seen: int
    last_logs: dict[str, float]
    evaluation: dict[str, float]
    interrupted: bool
    stopped_early: bool
    verdicts: list[Any]
    nonfinite_steps: int
    rollbacks: int


def _total_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """L2 norm of all gradients together (one fused kernel per dtype, no per-tensor sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


class Trainer:
    """Run `task` for `task.config.steps` steps in the run folder `task.config.out`."""

    def __init__(self, task: Task, *, on_warning=None, on_evaluate=None):
        """`on_warning(text)` receives health warnings (default: stderr). `on_evaluate(step, metrics)` is
        called after each periodic evaluation (`eval_every_steps`); returning False stops training early
        (e.g. a pruned hyperparameter trial)."""
        self.task = task
        self.cfg: TrainConfig = task.config
        self.on_warning = on_warning or (lambda text: print(text, file=sys.stderr))
        self.on_evaluate = on_evaluate
        self.device = pick_device(self.cfg.device)
        self.rank, self.world_size = dist.init(self.device)
        self.is_main = self.rank == 0
        self.run_dir = Path(self.cfg.out)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.runlog = RunLog(self.run_dir, enabled=self.is_main, on_warning=self.on_warning)
        self._stop_signal: int | None = None

    # ----------------------------------------------------------------- set-up
    def _check_run_dir(self) -> None:
        check_run_folder(self.run_dir, self.ckpt_root, resume=self.cfg.resume)

    def _build(self) -> None:
        cfg = self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.nets = {k: v.to(self.device) for k, v in self.task.build_nets().items()}
        if cfg.init_from and not cfg.resume:
            self._init_from(cfg.init_from)
        for net in self.nets.values():
            dist.broadcast_module(net)
        self.net_params = {n: list(net.parameters()) for n, net in self.nets.items()}
        self._build_optimizers()
        self.phases = self.task.phases()
        for ph in self.phases:
            if ph.optimizer not in self.optimizers:
                raise ValueError(f"phase {ph.name} names unknown optimizer {ph.optimizer}")
        ema_names = tuple(getattr(self.task, "ema_nets", lambda: ())()) if cfg.ema_halflife_images > 0 else ()
        self.ema = {n: EMA(self.nets[n]) for n in ema_names}
        self.ctx = StepContext(self.nets, self.device, cfg)
        self.ctx.ema = {n: e.module for n, e in self.ema.items()}
        self.amp_dtype = amp_dtype(cfg.use_amp, self.device)
        self.ctx._autocast = self._autocast
        use_scaler = self.amp_dtype == torch.float16
        self.scalers = {n: torch.amp.GradScaler("cuda", enabled=use_scaler) for n in self.optimizers}
        self.stream = DataStream(self.task.dataset(), cfg.batch_size, cfg.seed, rank=self.rank,
                                 world_size=self.world_size, num_workers=cfg.num_workers,
                                 pin_memory=self.device.type == "cuda")
        if self.world_size > 1:  # per-rank noise differs; weights stay identical (broadcast + averaged grads)
            torch.manual_seed(rank_noise_seed(cfg.seed, self.rank))
        self.step = self.images_seen = 0
        self.lr_scale = 1.0
        self.nonfinite_total = self.nonfinite_streak = self.rollbacks = 0
        self._initial: dict[str, Any] | None = None
        self._latest: dict[str, Any] = {}
        self._last_eval: dict[str, float] = {}
        self._saved_step: int | None = None
        if cfg.use_compile:  # after the EMA copies, which stay eager
            compile_nets(self.nets, self.on_warning)

    def _init_from(self, path: str) -> None:
        """Load each net's weights (the EMA copy where saved) from a run, checkpoint or model folder before the
        first step; nets it has no weights for keep their initialisation. One-line InputError on a bad folder, on
        weights that do not fit, or when none of this run's nets is there."""
        folder = ckpt.resolve(path)
        weights = ckpt.load_weights(folder)
        loaded = []
        for name, net in self.nets.items():
            if name not in weights and f"{name}_ema" not in weights:
                continue
            state, own = ckpt.pick_weights(weights, name, where=folder / ckpt.WEIGHTS), net.state_dict()
            missing, extra = [k for k in own if k not in state], [k for k in state if k not in own]
            shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
            if missing or extra or shapes:
                raise InputError(f"{folder / ckpt.WEIGHTS}: --init-from weights of '{name}' do not fit this run's net "
                                 f"({len(missing)} tensors missing, {len(extra)} unexpected, {len(shapes)} of another "
                                 f"shape{', e.g. ' + shapes[0] if shapes else ''}); give the options it was trained with")
            net.load_state_dict(state)
            loaded.append(name)
        if not loaded:
            raise InputError(f"{folder / ckpt.WEIGHTS}: --init-from holds no weights for this run's nets "
                             f"({', '.join(self.nets)}; found: {', '.join(sorted(weights)) or 'none'})")

    def _build_optimizers(self) -> None:
        """One optimizer, LR schedule and parameter list per optimizer spec of the task."""
        cfg = self.cfg
        specs = self.task.optimizers()
        self.opt_params: dict[str, list[nn.Parameter]] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        decay_start = None if cfg.lr_decay_start_steps < 0 else cfg.lr_decay_start_steps
        for name, spec in specs.items():
            missing = [n for n in spec.nets if n not in self.nets]
            if missing:
                raise ValueError(f"optimizer {name} names unknown nets {missing}")
            named = [(f"{n}.{k}", p) for n in spec.nets for k, p in self.nets[n].named_parameters() if p.requires_grad]
            self.opt_params[name] = [p for _, p in named]
            self.optimizers[name] = spec.build(spec.groups(named) if spec.lr_by_prefix else self.opt_params[name])
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
                self.optimizers[name],
                lr_lambda(cfg.lr_schedule, cfg.steps, warmup_steps=cfg.warmup_steps, decay_start_steps=decay_start))
        self.opt_nets = {name: spec.nets for name, spec in specs.items()}

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- state
    def _weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return trainstate.weights(self.nets, self.ema)

    def _state(self) -> dict[str, Any]:
        counters = {k: getattr(self, k) for k in trainstate.COUNTERS}
        return trainstate.capture(counters, self.optimizers, self.schedulers, self.scalers, self.stream, self.task)

    def _load(self, weights: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> None:
        trainstate.load_weights(self.nets, self.ema, weights)
        counters = trainstate.restore(state, self.optimizers, self.schedulers, self.scalers, self.stream, self.task)
        for k, v in counters.items():
            setattr(self, k, v)
        if self.world_size > 1:
            torch.manual_seed(rank_noise_seed(self.cfg.seed, self.rank, self.step))

    def save_checkpoint(self) -> Path | None:
        """Write checkpoints/step_N (rank 0). A full disk raises `DiskFullError` on every rank, with `latest`
        still naming the previous checkpoint, so the run can continue with --resume once space is freed."""
        path, error = None, None
        if self.is_main:
            try:
                path = ckpt.save(self.ckpt_root, self.step, self._weights(), self._state(), to_yaml(self.cfg),
                                 keep=self.cfg.keep_checkpoints)
            except InputError as e:
                error = e
        if dist.any_flag(error is not None, self.device):
            raise error or InputError(f"{self.ckpt_root}: rank 0 could not write checkpoint step_{self.step}")
        self._saved_step = self.step
        return path

    def _rollback(self) -> None:
        """Back to the last checkpoint (or the start), with all learning rates lowered."""
        self.rollbacks += 1
        if self.rollbacks > self.cfg.max_rollbacks:
            raise Diverged(f"{self.run_dir}: losses stayed non-finite after {self.cfg.max_rollbacks} rollbacks "
                           f"with lowered learning rates; try a lower --lr, --grad-clip-norm, or a regularised loss")
        scale = self.lr_scale * self.cfg.nonfinite_lr_factor
        rollbacks, total = self.rollbacks, self.nonfinite_total
        d = ckpt.latest_dir(self.ckpt_root)
        if d is not None:
            self._load(ckpt.load_weights(d), ckpt.load_state(d))
        else:
            assert self._initial is not None
            self._load(self._initial["weights"], copy.deepcopy(self._initial["state"]))
        self.rollbacks, self.nonfinite_total, self.lr_scale = rollbacks, total, scale
        self.nonfinite_streak = 0
        trainstate.scale_learning_rates(self.schedulers, self.lr_scale)
        self.on_warning(f"[step {self.step}] non-finite losses {self.cfg.nonfinite_patience} steps in a row: "
                        f"rolled back to step {self.step}, learning rates x{self.lr_scale:g}")

    # ----------------------------------------------------------------- one step
    def _set_trainable(self, opt_name: str | None) -> None:
        """Gradients only for the nets of optimizer `opt_name` (all nets when None)."""
        owned = self.opt_nets[opt_name] if opt_name is not None else self.nets
        for n, params in self.net_params.items():
            flag = n in owned
            for p in params:
                p.requires_grad_(flag)

    def _run_step(self) -> tuple[dict[str, Any], bool]:
        """All due phases of one step; returns (logs, finite). A non-finite step changes no weight."""
        ctx = self.ctx
        ctx.step, ctx.images_seen = self.step, self.images_seen
        ctx.scratch.clear()
        ctx.health_inputs = {}
        ctx.logging = (self.step + 1) % self.cfg.log_every_steps == 0
        logs: dict[str, Any] = {}
        batch = to_device(next(self.stream), self.device)
        finite = True
        for ph in iter_phases(self.phases, self.step):
            self._set_trainable(ph.optimizer)
            for r in range(ph.repeats):  # n_critic: each repeat on a fresh batch; the next phase sees the last
                if r > 0:
                    batch = to_device(next(self.stream), self.device)
                finite = self._update(ph, batch, logs)
                if not finite:
                    break
            if not finite:
                break
        self._set_trainable(None)
        if ctx.logging:
            logs.update({k: float(v) if isinstance(v, torch.Tensor) else v for k, v in self._latest.items()})
        if finite:
            self._advance()
        return logs, finite

    def _update(self, ph: Phase, batch: Any, logs: dict[str, Any]) -> bool:
        """One optimizer update of phase `ph` on `batch`; False, with no update, when the loss or the gradient
        is non-finite on any rank."""
        opt, scaler, params = self.optimizers[ph.optimizer], self.scalers[ph.optimizer], self.opt_params[ph.optimizer]
        with self._autocast():
            out = ph.loss(batch, self.ctx)
        loss = out["loss"]
        opt.zero_grad(set_to_none=True)
        if dist.any_flag(not bool(torch.isfinite(loss.detach()).all()), self.device):
            return False
        scaler.scale(loss).backward()
        dist.all_reduce_grads(params)
        scaler.unscale_(opt)
        clip = self.cfg.grad_clip_norm
        if not scaler.is_enabled() or clip > 0:  # the fp16 grad scaler skips non-finite steps itself
            total = _total_norm(params)
            if not scaler.is_enabled() and dist.any_flag(not bool(torch.isfinite(total)), self.device):
                opt.zero_grad(set_to_none=True)
                return False
            if clip > 0:
                torch.nn.utils.clip_grads_with_norm_(params, clip, total)
        scaler.step(opt)
        scaler.update()
        for k, v in out.items():  # the phase's own names (loss/d, reg/r1...) carry the figures;
            if k != "loss":       # lazy phases keep their last value until they run again
                self._latest[k] = v.detach() if isinstance(v, torch.Tensor) else v
        if self.ctx.logging:
            for n in self.opt_nets[ph.optimizer]:
                logs[f"grad/{n}_norm"] = float(_total_norm(self.net_params[n]))
        return True

    def _advance(self) -> None:
        """After a finite step: LR schedules, the images counter, EMA, and (DDP) BatchNorm statistics."""
        cfg = self.cfg
        with warnings.catch_warnings():  # a group whose phase was not due this step still advances
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            for s in self.schedulers.values():
                s.step()
        self.images_seen += cfg.batch_size * self.world_size
        for n, e in self.ema.items():
            beta = ema_beta(cfg.batch_size * self.world_size, cfg.ema_halflife_images, images_seen=self.images_seen,
                            rampup=cfg.ema_rampup if cfg.ema_rampup > 0 else None)
            e.update(self.nets[n], beta)
        if self.world_size > 1:  # keep BatchNorm statistics identical across ranks
            for net in self.nets.values():
                for b in net.buffers():
                    torch.distributed.broadcast(b.data, 0)

    # ----------------------------------------------------------------- outputs
    def _log(self, logs: dict[str, Any], step_time: float) -> dict[str, Any]:
        lrs = {n: o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
        counters = {"nonfinite": self.nonfinite_total, "nonfinite_streak": self.nonfinite_streak,
                    "rollbacks": self.rollbacks}
        row = training_row(self.step, self.images_seen, logs, self.ctx.health_inputs, lrs, counters, step_time)
        self.runlog.log(row, self.step)
        return row

    def _hook(self, name: str, seed_offset: int) -> Any:
        """Run the task's `name` hook (preview / evaluate) on rank 0 without gradients, on a fixed seed and
        without touching the training RNG; None when the task has no such hook. The nets run in eval mode, as
        inference runs them: a preview must not move batch norm's running statistics (the preview images would
        otherwise leak into them) nor draw dropout masks."""
        fn = getattr(self.task, name, None)
        if fn is None or not self.is_main:
            return None
        self.ctx.step, self.ctx.images_seen = self.step, self.images_seen
        modules = [m for net in (*self.nets.values(), *self.ctx.ema.values()) for m in net.modules()]
        modes = [m.training for m in modules]
        try:
            for m in modules:
                m.training = False
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.cfg.seed + seed_offset)
                with torch.no_grad():
                    return fn(self.ctx)
        finally:
            for m, mode in zip(modules, modes, strict=True):
                m.training = mode

    def preview(self) -> Path | None:
        out = self._hook("preview", PREVIEW_SEED_OFFSET)
        return None if out is None else self.runlog.image(to_image(out), self.step)

    def evaluate(self) -> dict[str, float]:
        out = self._hook("evaluate", EVAL_SEED_OFFSET)
        return {} if out is None else {k if k.startswith("eval/") else f"eval/{k}": float(v) for k, v in out.items()}

    # ----------------------------------------------------------------- the loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_signal = signum

    def train(self) -> TrainResult:
        """Start (or resume), run the steps, finish. A full disk ends the run with a one-line `DiskFullError`;
        `latest` then names the last complete checkpoint."""
        self._check_run_dir()
        dist.barrier()  # every rank has checked the run folder before rank 0 writes to it
        self._build()
        try:
            self._start()
            stop = self._loop()
            evaluation = self._finish(stop)
        except (OSError, RuntimeError) as e:  # a write outside a checkpoint failed (metrics, samples, report)
            if not out_of_space(e):
                raise
            raise write_error(e, self.run_dir, "the run's logs, samples or report") from None
        finally:
            self.runlog.close()
        dist.barrier()
        return TrainResult(self.run_dir, self.step, self.images_seen, self._last_logs, evaluation,
                           stop == "interrupted", stop == "stopped_early", list(self.runlog.monitor.verdicts),
                           self.nonfinite_total, self.rollbacks)

    def _start(self) -> None:
        """Load the checkpoint to resume from (or keep the initial state for a rollback), open the run log."""
        if self.cfg.resume:
            d = ckpt.latest_dir(self.ckpt_root)
            self._load(ckpt.load_weights(d), ckpt.load_state(d))
            self._saved_step = self.step
        else:
            self._initial = {"weights": {k: {n: t.clone() for n, t in v.items()} for k, v in self._weights().items()},
                             "state": copy.deepcopy(self._state())}
        self.runlog.open(to_yaml(self.cfg), resume_step=self.step if self.cfg.resume else None,
                         tensorboard=self.cfg.use_tensorboard)
        self._last_logs: dict[str, Any] = {}

    def _loop(self) -> str | None:
        """Steps until cfg.steps; returns "interrupted" (SIGINT/SIGTERM), "stopped_early" (on_evaluate) or None."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        old_handlers = {}
        with contextlib.suppress(ValueError):  # not the main thread: no signal handling
            for s in (signal.SIGINT, signal.SIGTERM):
                old_handlers[s] = signal.signal(s, self._on_signal)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=cfg.quiet or not self.is_main, unit="step",
                   dynamic_ncols=True, file=sys.stderr)
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                logs, finite = self._run_step()
                if not finite:
                    self._skip_step()
                    bar.n = self.step
                    bar.refresh()
                    continue
                self.nonfinite_streak = 0
                self.step += 1
                bar.update(1)
                if self.ctx.logging:
                    self._last_logs = self._log(logs, time.perf_counter() - t0)
                    bar.set_postfix({k.split("/", 1)[1]: f"{v:.3g}" for k, v in logs.items()
                                     if k.startswith("loss/") and isinstance(v, float)}, refresh=False)
                stop = self._after_step()
                if stop is not None:
                    return stop
            return None
        finally:
            bar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)

    def _skip_step(self) -> None:
        """A non-finite step: count it; after `nonfinite_patience` in a row, roll back (lower LRs)."""
        self.nonfinite_total += 1
        self.nonfinite_streak += 1
        if self.nonfinite_streak >= self.cfg.nonfinite_patience:
            self._rollback()
        else:  # a skipped step still advances the counter so the data and schedule move on
            self.step += 1

    def _after_step(self) -> str | None:
        """Previews, checkpoints and evaluations that fall due at this step; then a pending signal."""
        cfg = self.cfg
        if self.step % cfg.sample_every_steps == 0:
            self.preview()
        if self.step % cfg.checkpoint_every_steps == 0 and self.step < cfg.steps:
            self.save_checkpoint()
        if cfg.eval_every_steps and self.step % cfg.eval_every_steps == 0 and self.step < cfg.steps:
            if self._periodic_evaluation() is False:
                return "stopped_early"
        if dist.any_flag(self._stop_signal is not None, self.device):
            return "interrupted"
        return None

    def _periodic_evaluation(self) -> bool | None:
        self._last_eval = self.evaluate()
        self.runlog.values(self.step, self.images_seen, self._last_eval)
        if self.on_evaluate is not None:
            return self.on_evaluate(self.step, self._last_eval)
        return None

    def _finish(self, stop: str | None) -> dict[str, float]:
        """The last checkpoint, and for a completed run the last preview, the evaluation and the report."""
        if self._saved_step != self.step:
            self.save_checkpoint()
        if stop == "interrupted":
            if self.is_main:
                self.on_warning(f"interrupted at step {self.step}: checkpoint saved in {self.ckpt_root}; "
                                f"continue with --resume")
            evaluation: dict[str, float] = {}
        elif stop == "stopped_early":
            evaluation = self._last_eval
        else:
            if self.step % self.cfg.sample_every_steps != 0:
                self.preview()
            evaluation = self.evaluate()
            self.runlog.values(self.step, self.images_seen, evaluation)
        if self.is_main and self.cfg.write_report:
            from .report import write_report

            write_report(self.run_dir, self.runlog.monitor.verdicts)
        return evaluation


def train(task: Task, **kwargs: Any) -> TrainResult:
    return Trainer(task, **kwargs).train()
