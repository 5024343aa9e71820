"""The training loop: runs a task's phases and owns optimizers, schedules, AMP, clipping, EMA, the
non-finite guard, checkpoints, logging, previews, health checks, signals and data-parallel training.

A task supplies nets, optimizer groups, phases, a dataset and optional preview/evaluate hooks (see
`engine.task`). No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from . import distributed as dist
from .config import TrainConfig, to_yaml
from .data import DataStream
from .errors import InputError
from .monitor import HealthMonitor, batch_health
from .schedules import lr_lambda
from .stabilizers import EMA, ema_beta
from .task import StepContext, Task, iter_phases


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


def pick_device(name: str) -> torch.device:
    """auto -> cuda, else mps, else cpu; an explicit device that is absent is an input error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("--device mps: MPS is not available here; use --device cpu or auto")
    if name == "cuda":
        return torch.device("cuda", dist.local_rank())
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _total_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """L2 norm of all gradients together (one fused kernel per dtype, no per-tensor sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


def _to_image(preview: Any) -> np.ndarray:
    """A preview (C,H,W) tensor in [-1,1] or (H,W[,C]) uint8 array -> (H,W,3) uint8."""
    if isinstance(preview, torch.Tensor):
        x = preview.detach().float().cpu().clamp(-1, 1)
        if x.ndim != 3:
            raise ValueError(f"preview tensor must be (C, H, W), got {tuple(x.shape)}")
        x = ((x + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        preview = x
    arr = np.asarray(preview)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr[..., :3].astype(np.uint8)


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
        self._stop_signal: int | None = None
        self._writer: Any = None

    # ----------------------------------------------------------------- set-up
    def _check_run_dir(self) -> None:
        has_ckpt = ckpt.latest_dir(self.ckpt_root) is not None
        if self.cfg.resume:
            if not has_ckpt:
                raise InputError(f"{self.run_dir}: --resume given but there is no complete checkpoint "
                                 f"(expected {self.ckpt_root}/latest)")
        elif has_ckpt or (self.run_dir / "metrics.jsonl").exists():
            raise InputError(f"{self.run_dir}: already holds a run; pass --resume to continue it or choose "
                             f"another --out")

    def _build(self) -> None:
        cfg = self.cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        self.nets = {k: v.to(self.device) for k, v in self.task.build_nets().items()}
        for net in self.nets.values():
            dist.broadcast_module(net)
        specs = self.task.optimizers()
        self.opt_params: dict[str, list[nn.Parameter]] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        decay_start = None if cfg.lr_decay_start_steps < 0 else cfg.lr_decay_start_steps
        for name, spec in specs.items():
            missing = [n for n in spec.nets if n not in self.nets]
            if missing:
                raise ValueError(f"optimizer {name} names unknown nets {missing}")
            params = [p for n in spec.nets for p in self.nets[n].parameters() if p.requires_grad]
            self.opt_params[name] = params
            self.optimizers[name] = spec.build(params)
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
                self.optimizers[name],
                lr_lambda(cfg.lr_schedule, cfg.steps, warmup_steps=cfg.warmup_steps, decay_start_steps=decay_start))
        self.opt_nets = {name: spec.nets for name, spec in specs.items()}
        self.phases = self.task.phases()
        for ph in self.phases:
            if ph.optimizer not in self.optimizers:
                raise ValueError(f"phase {ph.name} names unknown optimizer {ph.optimizer}")
        ema_names = tuple(getattr(self.task, "ema_nets", lambda: ())()) if cfg.ema_halflife_images > 0 else ()
        self.ema = {n: EMA(self.nets[n]) for n in ema_names}
        self.ctx = StepContext(self.nets, self.device, cfg)
        self.ctx.ema = {n: e.module for n, e in self.ema.items()}
        self.amp_dtype = None
        if cfg.use_amp:
            self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.ctx._autocast = self._autocast
        use_scaler = self.amp_dtype == torch.float16
        self.scalers = {n: torch.amp.GradScaler("cuda", enabled=use_scaler) for n in self.optimizers}
        self.stream = DataStream(self.task.dataset(), cfg.batch_size, cfg.seed, rank=self.rank,
                                 world_size=self.world_size, num_workers=cfg.num_workers,
                                 pin_memory=self.device.type == "cuda")
        # Per-rank noise differs; weights stay identical through broadcast + gradient averaging.
        if self.world_size > 1:
            torch.manual_seed(cfg.seed + 7919 * self.rank + 1)
        self.step = 0
        self.images_seen = 0
        self.lr_scale = 1.0
        self.nonfinite_total = 0
        self.nonfinite_streak = 0
        self.rollbacks = 0
        self.monitor = HealthMonitor()
        self._initial: dict[str, Any] | None = None
        self._latest: dict[str, Any] = {}
        self._last_eval: dict[str, float] = {}

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- state
    def _weights(self) -> dict[str, dict[str, torch.Tensor]]:
        w = {n: net.state_dict() for n, net in self.nets.items()}
        w.update({f"{n}_ema": e.module.state_dict() for n, e in self.ema.items()})
        return w

    def _state(self) -> dict[str, Any]:
        state = {
            "step": self.step, "images_seen": self.images_seen, "lr_scale": self.lr_scale,
            "nonfinite_total": self.nonfinite_total, "rollbacks": self.rollbacks,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
            "rng": ckpt.rng_state(), "data": self.stream.state_dict(),
        }
        if hasattr(self.task, "state_dict"):
            state["task"] = self.task.state_dict()
        return state

    def _load(self, weights: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> None:
        for n, net in self.nets.items():
            if n not in weights:
                raise InputError(f"checkpoint has no weights for net '{n}'")
            net.load_state_dict(weights[n])
        for n, e in self.ema.items():
            e.module.load_state_dict(weights.get(f"{n}_ema", weights[n]))
        for n, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][n])
        for n, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][n])
        for n, s in self.scalers.items():
            if n in state.get("scalers", {}):
                s.load_state_dict(state["scalers"][n])
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        self.rollbacks = int(state.get("rollbacks", 0))
        self.stream.load_state_dict(state["data"])
        if "task" in state and hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(state["task"])
        ckpt.set_rng_state(state["rng"])
        if self.world_size > 1:
            torch.manual_seed(self.cfg.seed + 7919 * self.rank + 1 + self.step)

    def save_checkpoint(self) -> Path | None:
        if not self.is_main:
            return None
        return ckpt.save(self.ckpt_root, self.step, self._weights(), self._state(), to_yaml(self.cfg),
                         keep=self.cfg.keep_checkpoints)

    def _rollback(self) -> None:
        """Back to the last checkpoint (or the start), with all learning rates lowered."""
        self.rollbacks += 1
        if self.rollbacks > 3:
            raise Diverged(f"{self.run_dir}: losses stayed non-finite after 3 rollbacks with lowered learning "
                           f"rates; try a lower --lr, --grad-clip-norm, or a regularised loss")
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
        self._apply_lr_scale()
        self.on_warning(f"[step {self.step}] non-finite losses {self.cfg.nonfinite_patience} steps in a row: "
                        f"rolled back to step {self.step}, learning rates x{self.lr_scale:g}")

    def _apply_lr_scale(self) -> None:
        for s in self.schedulers.values():
            s.base_lrs = [lr * self.lr_scale / getattr(s, "_ganapps_scale", 1.0) for lr in s.base_lrs]
            s._ganapps_scale = self.lr_scale
            s.last_epoch -= 1
            s.step()

    # ----------------------------------------------------------------- one step
    def _set_trainable(self, opt_name: str) -> None:
        owned = set(self.opt_nets[opt_name])
        for n, net in self.nets.items():
            net.requires_grad_(n in owned)

    def _run_step(self) -> tuple[dict[str, Any], bool]:
        """All due phases of one step; returns (logs, finite)."""
        ctx = self.ctx
        ctx.step, ctx.images_seen = self.step, self.images_seen
        ctx.scratch.clear()
        ctx.health_inputs = {}
        ctx.logging = (self.step + 1) % self.cfg.log_every_steps == 0
        logs: dict[str, Any] = {}
        batch = to_device(next(self.stream), self.device)
        finite = True
        for ph in iter_phases(self.phases, self.step):
            opt = self.optimizers[ph.optimizer]
            scaler = self.scalers[ph.optimizer]
            params = self.opt_params[ph.optimizer]
            self._set_trainable(ph.optimizer)
            for r in range(ph.repeats):
                if r > 0:
                    batch = to_device(next(self.stream), self.device)
                with self._autocast():
                    out = ph.loss(batch, ctx)
                loss = out["loss"]
                opt.zero_grad(set_to_none=True)
                if dist.any_flag(not bool(torch.isfinite(loss.detach()).all()), self.device):
                    finite = False
                    break
                scaler.scale(loss).backward()
                dist.all_reduce_grads(params)
                scaler.unscale_(opt)
                total = _total_norm(params)
                if not scaler.is_enabled() and dist.any_flag(not bool(torch.isfinite(total)), self.device):
                    finite = False  # the grad scaler skips such steps itself under fp16
                    opt.zero_grad(set_to_none=True)
                    break
                if self.cfg.grad_clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip_norm)
                scaler.step(opt)
                scaler.update()
                for k, v in out.items():  # the phase's own names (loss/d, reg/r1...) carry the figures;
                    if k != "loss":       # lazy phases keep their last value until they run again
                        self._latest[k] = v.detach() if isinstance(v, torch.Tensor) else v
                if ctx.logging:
                    for n in self.opt_nets[ph.optimizer]:
                        logs[f"grad/{n}_norm"] = float(_total_norm(list(self.nets[n].parameters())))
            if not finite:
                break
        for net in self.nets.values():
            net.requires_grad_(True)
        if ctx.logging:
            logs.update({k: float(v) if isinstance(v, torch.Tensor) else v for k, v in self._latest.items()})
        if finite:
            with warnings.catch_warnings():  # a group whose phase was not due this step still advances
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                for s in self.schedulers.values():
                    s.step()
            self.images_seen += self.cfg.batch_size * self.world_size
            for n, e in self.ema.items():
                beta = ema_beta(self.cfg.batch_size * self.world_size, self.cfg.ema_halflife_images,
                                images_seen=self.images_seen,
                                rampup=self.cfg.ema_rampup if self.cfg.ema_rampup > 0 else None)
                e.update(self.nets[n], beta)
            if self.world_size > 1:  # keep BatchNorm statistics identical across ranks
                for net in self.nets.values():
                    for b in net.buffers():
                        torch.distributed.broadcast(b.data, 0)
        return logs, finite

    # ----------------------------------------------------------------- outputs
    def _log(self, logs: dict[str, Any], step_time: float) -> dict[str, Any]:
        record: dict[str, Any] = {"step": self.step, "images": self.images_seen, "time": time.time()}
        record.update(logs)
        if self.ctx.health_inputs:
            h = dict(self.ctx.health_inputs)
            record.update(batch_health(h.get("d_real"), h.get("d_fake"), h.get("real"), h.get("fake"),
                                       threshold=h.get("threshold", 0.0)))
        for n, o in self.optimizers.items():
            record[f"lr/{n}"] = o.param_groups[0]["lr"]
        record["health/nonfinite"] = self.nonfinite_total
        record["health/nonfinite_streak"] = self.nonfinite_streak
        record["health/rollbacks"] = self.rollbacks
        record["time/step"] = step_time
        if self.is_main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if self._writer is not None:
                for k, v in record.items():
                    if k not in ("step", "time") and isinstance(v, int | float) and math.isfinite(v):
                        self._writer.add_scalar(k, v, self.step)
            for v in self.monitor.update(record):
                self.on_warning(f"[step {v.step}] {v.kind}: {v.message} Remedy: {v.remedy}")
        return record

    def preview(self) -> Path | None:
        fn = getattr(self.task, "preview", None)
        if fn is None or not self.is_main:
            return None
        self.ctx.step, self.ctx.images_seen = self.step, self.images_seen
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed)
            with torch.no_grad():
                image = _to_image(fn(self.ctx))
        from PIL import Image

        out = self.run_dir / "samples" / f"step_{self.step}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.png")
        Image.fromarray(image).save(tmp)
        os.replace(tmp, out)
        if self._writer is not None:
            self._writer.add_image("samples", image, self.step, dataformats="HWC")
        return out

    def evaluate(self) -> dict[str, float]:
        fn = getattr(self.task, "evaluate", None)
        if fn is None or not self.is_main:
            return {}
        self.ctx.step, self.ctx.images_seen = self.step, self.images_seen
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.seed + 1)
            with torch.no_grad():
                return {k if k.startswith("eval/") else f"eval/{k}": float(v) for k, v in fn(self.ctx).items()}

    # ----------------------------------------------------------------- the loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_signal = signum

    def train(self) -> TrainResult:
        cfg = self.cfg
        self._check_run_dir()
        dist.barrier()  # every rank has checked the run folder before rank 0 writes to it
        self._build()
        if cfg.resume:
            d = ckpt.latest_dir(self.ckpt_root)
            self._load(ckpt.load_weights(d), ckpt.load_state(d))
        else:
            self._initial = {"weights": {k: {n: t.clone() for n, t in v.items()} for k, v in self._weights().items()},
                             "state": copy.deepcopy(self._state())}
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / ".config.yaml.tmp"
            tmp.write_text(to_yaml(cfg))
            os.replace(tmp, self.run_dir / "config.yaml")
            if cfg.resume:  # drop log rows past the checkpoint so the log matches the trajectory
                self._truncate_metrics(self.step)
            if cfg.use_tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.run_dir / "tb"))
        old_handlers = {}
        with contextlib.suppress(ValueError):  # not the main thread: no signal handling
            for s in (signal.SIGINT, signal.SIGTERM):
                old_handlers[s] = signal.signal(s, self._on_signal)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=self.step, disable=cfg.quiet or not self.is_main, unit="step",
                   dynamic_ncols=True, file=sys.stderr)
        last_logs: dict[str, Any] = {}
        interrupted = stopped_early = False
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                logs, finite = self._run_step()
                if not finite:
                    self.nonfinite_total += 1
                    self.nonfinite_streak += 1
                    if self.nonfinite_streak >= cfg.nonfinite_patience:
                        self._rollback()
                        bar.n = self.step
                        bar.refresh()
                        continue
                    # a skipped step still advances the counter so the data and schedule move on
                    self.step += 1
                    bar.update(1)
                    continue
                self.nonfinite_streak = 0
                self.step += 1
                bar.update(1)
                if self.ctx.logging:
                    last_logs = self._log(logs, time.perf_counter() - t0)
                    bar.set_postfix({k.split("/", 1)[1]: f"{v:.3g}" for k, v in logs.items()
                                     if k.startswith("loss/") and isinstance(v, float)}, refresh=False)
                if self.step % cfg.sample_every_steps == 0:
                    self.preview()
                if self.step % cfg.checkpoint_every_steps == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
                if cfg.eval_every_steps and self.step % cfg.eval_every_steps == 0 and self.step < cfg.steps:
                    if self._periodic_evaluation() is False:
                        stopped_early = True
                        break
                sig = self._stop_signal
                if dist.any_flag(sig is not None, self.device):
                    interrupted = True
                    break
        finally:
            bar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        self.save_checkpoint()
        if interrupted:
            if self.is_main:
                self.on_warning(f"interrupted at step {self.step}: checkpoint saved in {self.ckpt_root}; "
                                f"continue with --resume")
            evaluation: dict[str, float] = {}
        elif stopped_early:
            evaluation = self._last_eval
        else:
            if self.step % cfg.sample_every_steps != 0:
                self.preview()
            evaluation = self.evaluate()
            if evaluation and self.is_main:
                self._append_metrics(evaluation)
        if self._writer is not None:
            for k, v in evaluation.items():
                self._writer.add_scalar(k, v, self.step)
            self._writer.close()
        if self.is_main and cfg.write_report:
            from .report import write_report

            write_report(self.run_dir, self.monitor.verdicts)
        dist.barrier()
        return TrainResult(self.run_dir, self.step, self.images_seen, last_logs, evaluation, interrupted,
                           stopped_early, list(self.monitor.verdicts), self.nonfinite_total, self.rollbacks)

    def _periodic_evaluation(self) -> bool | None:
        self._last_eval = self.evaluate()
        if self._last_eval and self.is_main:
            self._append_metrics(self._last_eval)
            if self._writer is not None:
                for k, v in self._last_eval.items():
                    self._writer.add_scalar(k, v, self.step)
        if self.on_evaluate is not None:
            return self.on_evaluate(self.step, self._last_eval)
        return None

    def _append_metrics(self, values: dict[str, float]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": self.step, "images": self.images_seen, "time": time.time(), **values}) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                break
        tmp = path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(x + "\n" for x in keep))
        os.replace(tmp, path)
        self.monitor = HealthMonitor()
        for line in keep:
            self.monitor.update(json.loads(line))


def train(task: Task, **kwargs: Any) -> TrainResult:
    return Trainer(task, **kwargs).train()
