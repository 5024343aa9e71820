"""The app's workspace (one temporary folder for everything it writes) and its pool of loaded models (one job
at a time per model, first come first served). Imports the engine's checkpoint layout only; no Gradio.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..engine import checkpoint as ckpt

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, desc: str) -> None:
    pass



class Workspace:
    """One temporary folder for everything the app writes: `uploads/` (where the web framework stores uploaded
    files) and `jobs/` (one folder per request). Job folders older than `keep_s` are deleted when a new job
    starts; `close` deletes the whole folder."""

    def __init__(self, keep_s: float = 3600.0, parent: str | os.PathLike | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="ganapps-app-", dir=parent))
        self.uploads, self.jobs = self.root / "uploads", self.root / "jobs"
        self.uploads.mkdir()
        self.jobs.mkdir()
        self.keep_s = keep_s

    def job_dir(self) -> Path:
        now = time.time()
        for old in self.jobs.iterdir():
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > self.keep_s:
                    shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.jobs))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class FifoLock:
    """A lock granted in the order it was asked for (a ticket queue); `waiting` counts the holders-to-be."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = self._serving = 0

    @property
    def waiting(self) -> int:
        """Requests queued behind the current holder."""
        return max(0, self._next - self._serving - 1)

    @property
    def busy(self) -> bool:
        return self._next != self._serving

    def __enter__(self) -> FifoLock:
        with self._cond:
            ticket = self._next
            self._next += 1
            self._cond.wait_for(lambda: self._serving == ticket)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class ModelPool:
    """Loaded models by (class, weights folder, weights mtime), at most `capacity` kept (least recently used
    dropped first), and one job at a time per model: `use` waits its turn on that model's FIFO lock, so two
    requests never hold two copies' worth of work on one model at once. `loader(cls, folder)` loads a model."""

    def __init__(self, loader: Callable[[type, Path], Any], capacity: int = 4):
        self._loader, self._capacity = loader, capacity
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self._gates: dict[str, FifoLock] = {}

    def _key(self, cls: type, folder: Path) -> tuple:
        weights = ckpt.resolve(folder) / ckpt.WEIGHTS
        return cls.__name__, str(weights), weights.stat().st_mtime_ns

    @contextlib.contextmanager
    def use(self, cls: type, folder: Path, progress: Progress = _no_progress) -> Iterator[Any]:
        with self._lock:
            gate = self._gates.setdefault(f"{cls.__name__}:{folder}", FifoLock())
        if gate.busy:
            progress(0.0, f"waiting for {gate.waiting + 1} job(s) on this model")
        with gate:
            key = self._key(cls, folder)
            with self._lock:
                model = self._models.pop(key, None)
            if model is None:
                progress(0.0, "loading the model")
                model = self._loader(cls, folder)
            with self._lock:
                self._models[key] = model
                while len(self._models) > self._capacity:
                    self._models.popitem(last=False)
            yield model
