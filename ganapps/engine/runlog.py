"""A run folder's record of training, checkpoints aside: config.yaml, metrics.jsonl, TensorBoard events, preview
images, and the health monitor that reads every logged row. The trainer builds the rows; this writes them.
No task, Typer or dataset-format imports here.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import latest_dir, write_text_atomic
from .errors import InputError
from .health import batch_health
from .monitor import HealthMonitor

METRICS = "metrics.jsonl"
CONFIG = "config.yaml"


def to_image(preview: Any) -> np.ndarray:
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


def check_run_folder(run_dir: Path, ckpt_root: Path, *, resume: bool) -> None:
    """An InputError unless `run_dir` is new (for a new run) or holds a complete checkpoint (for --resume)."""
    has_ckpt = latest_dir(ckpt_root) is not None
    if resume:
        if not has_ckpt:
            raise InputError(f"{run_dir}: --resume given but there is no complete checkpoint "
                             f"(expected {ckpt_root}/latest)")
    elif has_ckpt or (run_dir / METRICS).exists():
        raise InputError(f"{run_dir}: already holds a run; pass --resume to continue it or choose another --out")


def training_row(step: int, images_seen: int, logs: dict[str, Any], health_inputs: dict[str, Any],
                 lrs: dict[str, float], counters: dict[str, int], step_time: float) -> dict[str, Any]:
    """One metrics.jsonl row: step, images, time, the phases' figures (`logs`), the batch health of the D outputs
    and samples a phase observed (`health/*`), learning rates (`lr/NAME`), the non-finite guard's counters
    (`health/NAME`) and the step's duration (`time/step`, seconds)."""
    row: dict[str, Any] = {"step": step, "images": images_seen, "time": time.time()}
    row.update(logs)
    if health_inputs:
        h = health_inputs
        row.update(batch_health(h.get("d_real"), h.get("d_fake"), h.get("real"), h.get("fake"),
                                threshold=h.get("threshold", 0.0)))
    row.update({f"lr/{n}": lr for n, lr in lrs.items()})
    row.update({f"health/{k}": v for k, v in counters.items()})
    row["time/step"] = step_time
    return row


class RunLog:
    """Writes the rows, scalars and images of one run into `run_dir`; every method is a no-op when `enabled`
    is False (the ranks other than 0). `monitor` sees every logged row; its new verdicts go to `on_warning`."""

    def __init__(self, run_dir: Path, *, enabled: bool, on_warning: Callable[[str], None]):
        self.run_dir = run_dir
        self.enabled = enabled
        self.on_warning = on_warning
        self.monitor = HealthMonitor()
        self.writer: Any = None

    def open(self, config_yaml: str, *, resume_step: int | None, tensorboard: bool) -> None:
        """Create the folder and write config.yaml before the first step; on resume, drop the rows logged past
        `resume_step` (so the log matches the trajectory) and replay the rest into the monitor."""
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / CONFIG, config_yaml)
        if resume_step is not None:
            self._truncate(resume_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"))

    def log(self, record: dict[str, Any], step: int) -> None:
        """Append one training row to metrics.jsonl and TensorBoard, and report the verdicts it starts."""
        if not self.enabled:
            return
        self._append(record)
        self._scalars(record, step)
        for v in self.monitor.update(record):
            self.on_warning(f"[step {v.step}] {v.kind}: {v.message} Remedy: {v.remedy}")

    def values(self, step: int, images_seen: int, values: dict[str, float]) -> None:
        """Append a row of figures outside the training rows (evaluations) to metrics.jsonl and TensorBoard."""
        if not self.enabled or not values:
            return
        self._append({"step": step, "images": images_seen, "time": time.time(), **values})
        self._scalars(values, step)

    def image(self, image: np.ndarray, step: int) -> Path | None:
        """Write samples/step_N.png (atomically) and the TensorBoard image; `image` is (H, W, 3) uint8."""
        if not self.enabled:
            return None
        from PIL import Image

        out = self.run_dir / "samples" / f"step_{step}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.png")
        try:
            Image.fromarray(image).save(tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        if self.writer is not None:
            self.writer.add_image("samples", image, step, dataformats="HWC")
        return out

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _append(self, row: dict[str, Any]) -> None:
        with open(self.run_dir / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")

    def _scalars(self, values: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if k not in ("step", "time") and isinstance(v, int | float) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def _truncate(self, step: int) -> None:
        path = self.run_dir / METRICS
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                break
        write_text_atomic(path, "".join(x + "\n" for x in keep))
        self.monitor = HealthMonitor()
        for line in keep:
            self.monitor.update(json.loads(line))
