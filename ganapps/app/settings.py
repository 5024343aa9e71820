"""The app's options and limits as one validated dataclass (what `ganapps app` resolves its flags into).
Imports the engine's config helpers only."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

from ..engine.config import require
from ..engine.errors import InputError

DEFAULT_PORT = 7860


@dataclasses.dataclass
class AppConfig:
    """Where the app listens, what it may load, and how much one request may ask for.

    Every limit is named in the refusal a request gets when it goes over it (by its option, e.g.
    --max-upload-mb), so a user knows what to ask the person running the app for."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    runs: tuple[Path, ...] = ()  # roots whose run and model folders the pickers offer
    device: str = "auto"
    max_upload_mb: float = 50.0  # per uploaded file; also Gradio's own upload limit
    max_frames: int = 300  # frames of an uploaded clip
    max_pixels: int = 2048 * 2048  # pixels of an uploaded image or video frame
    max_voxels: int = 256 ** 3  # voxels of an uploaded label-map volume
    max_slices: int = 256  # slices sampled by one request
    max_predict_frames: int = 32  # frames predicted by one request
    max_adapt_steps: int = 200  # fine-tuning steps of one request
    queue_size: int = 32  # requests waiting at most; more are refused by the queue
    workers: int = 2  # requests run at once (one at a time per model, whatever this is)
    keep_outputs_minutes: float = 60.0  # results older than this are deleted while the app runs

    def __post_init__(self) -> None:
        self.runs = tuple(Path(p) for p in self.runs)
        require(self, positive=("max_frames", "max_pixels", "max_voxels", "max_slices", "max_predict_frames",
                                "queue_size", "workers"),
                non_negative=("max_adapt_steps",), above_zero=("max_upload_mb", "keep_outputs_minutes"))
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port}: expected 0..65535")
        for root in self.runs:
            if not root.is_dir():
                raise InputError(f"--runs {root}: not a folder; expected a folder of run folders")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)


def exposure_warning(cfg: AppConfig) -> str | None:
    """The warning `ganapps app` prints when --host lets other machines reach it; None on loopback."""
    if cfg.is_loopback:
        return None
    return (f"warning: --host {cfg.host} serves this app to every machine that can reach port {cfg.port}; it has no "
            f"login, and anyone there can upload files and run models")


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
