"""Checkpoints: safetensors weights + a weights-only trainer state, written atomically.

Layout: RUN/checkpoints/step_N/{weights.safetensors, state.pt, config.yaml}; RUN/checkpoints/latest holds
the name of the newest complete step folder. Loading never unpickles code (safetensors and
`torch.load(weights_only=True)`). No task imports here.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InputError, drop_tracebacks, out_of_space, write_error

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
CONFIG = "config.yaml"
LATEST = "latest"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (any hashlib algorithm), read in 1 MiB chunks."""
    import hashlib

    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def flatten_weights(nets: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{"gen": state_dict, ...} -> {"gen.layer.weight": tensor, ...} (contiguous CPU copies)."""
    flat = {}
    for name, sd in nets.items():
        for k, v in sd.items():
            flat[f"{name}.{k}"] = v.detach().to("cpu").contiguous().clone()
    return flat


def unflatten_weights(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in flat.items():
        name, _, rest = k.partition(".")
        nets.setdefault(name, {})[rest] = v
    return nets


def rng_state() -> dict[str, Any]:
    """Every RNG a CPU run draws from, as tensors and plain values (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(ckpt_root: str | os.PathLike, step: int, weights: dict[str, dict[str, torch.Tensor]],
         state: dict[str, Any], config_yaml: str, keep: int = 3) -> Path:
    """Write step_N/ under a temporary name, rename it into place, then repoint `latest`.

    A process killed at any moment leaves `latest` naming a complete checkpoint. A write that fails (disk full:
    `DiskFullError` naming the folder, the bytes needed and the bytes free; another OS error: `InputError`)
    leaves no temporary or unreferenced folder behind and `latest` on the previous checkpoint.
    """
    root = Path(ckpt_root)
    final = root / f"step_{step}"
    flat = flatten_weights(weights)
    tmp: Path | None = None
    old = root / f".{final.name}.old{os.getpid()}"  # a same-step checkpoint being replaced
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".step_{step}.", dir=root))
        save_file(flat, str(tmp / WEIGHTS), metadata={"format": "ganapps", "step": str(step)})
        torch.save(state, tmp / STATE)
        (tmp / CONFIG).write_text(config_yaml)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        tmp = None
        write_text_atomic(root / LATEST, final.name + "\n")
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        _discard(root, final, tmp, old)
        if not (isinstance(e, OSError) or out_of_space(e)):
            raise  # a bug or an interrupt
        drop_tracebacks(e)  # closes a half-written file the failed writer still held, so its space is free
        error = write_error(e, root, f"checkpoint {final.name}", lambda: _checkpoint_bytes(root, flat, state, config_yaml))
        kept = latest_dir(root)
        raise type(error)(f"{error}; " + (f"{LATEST} still names {kept.name}" if kept else "no complete checkpoint yet")) from None
    _prune(root, keep)
    return final


def _discard(root: Path, final: Path, tmp: Path | None, old: Path) -> None:
    """After a failed `save`: remove the temporary folder (putting back a same-step checkpoint moved aside), or
    the new folder when `latest` could not be repointed to it."""
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)
    elif final.is_dir() and latest_dir(root) != final:
        shutil.rmtree(final, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def payload_bytes(obj: Any) -> int:
    """Bytes of the tensors and arrays inside nested dicts, lists and tuples (a lower bound on a file's size)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(payload_bytes(v) for v in obj)
    return 0


def _checkpoint_bytes(root: Path, flat: dict[str, torch.Tensor], state: dict[str, Any], config_yaml: str) -> int:
    """A lower bound on the disk space a checkpoint takes: each file's tensor payload, in whole file-system
    blocks."""
    try:
        block = os.statvfs(root if root.exists() else root.parent).f_frsize or 1
    except (AttributeError, OSError):  # no statvfs (Windows) or no such folder
        block = 1
    files = (payload_bytes(flat), payload_bytes(state), len(config_yaml.encode()))
    return sum(-(-n // block) * block for n in files)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to a unique temporary file beside `path`, then rename it into place: readers see the old file
    or the new one, never half of one; the temporary file is removed when anything fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prune(root: Path, keep: int) -> None:
    steps = sorted((p for p in root.glob("step_*") if p.is_dir() and p.name[5:].isdigit()),
                   key=lambda p: int(p.name[5:]))
    latest = latest_dir(root)
    for p in steps[:-keep]:
        if p != latest:
            shutil.rmtree(p, ignore_errors=True)


def latest_dir(ckpt_root: str | os.PathLike) -> Path | None:
    root = Path(ckpt_root)
    try:
        name = (root / LATEST).read_text().strip()
    except OSError:
        return None
    d = root / name
    return d if (d / WEIGHTS).is_file() else None


def resolve(path: str | os.PathLike) -> Path:
    """A run folder, a checkpoint folder, a model folder or a weights file -> the folder holding weights."""
    p = Path(path)
    if p.is_file():
        if p.name.endswith(".safetensors"):
            return p.parent
        raise InputError(f"{p}: not a checkpoint; expected a run folder, a checkpoint folder or a .safetensors file")
    if not p.exists():
        if len(p.parts) == 1 and any((d / p.name / WEIGHTS).is_file() for d in model_dirs()):
            return shipped_model(p.name)  # a bare name: a shipped model, e.g. "medical-label"
        raise InputError(f"{p}: no such run, checkpoint or model")
    if (p / WEIGHTS).is_file():
        return p
    if (p / "checkpoints").is_dir():
        d = latest_dir(p / "checkpoints")
        if d is None:
            raise InputError(f"{p}: run folder has no complete checkpoint (checkpoints/latest missing or broken)")
        return d
    raise InputError(f"{p}: no {WEIGHTS} and no checkpoints/ folder; expected a run, checkpoint or model folder")


def load_weights(ckpt_dir: str | os.PathLike) -> dict[str, dict[str, torch.Tensor]]:
    f = Path(ckpt_dir) / WEIGHTS
    try:
        return unflatten_weights(load_file(str(f)))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{f}: corrupt or unreadable weights ({str(e).splitlines()[0][:120]})") from None


def load_state(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    f = Path(ckpt_dir) / STATE
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise InputError(f"{f}: corrupt or unreadable trainer state ({type(e).__name__})") from None


def load_for_inference(path: str | os.PathLike, config_cls: type) -> tuple[Path, Any, dict[str, dict[str, torch.Tensor]]]:
    """What a pipeline needs: (folder, its config rebuilt as `config_cls`, {net: state_dict}).

    `path` is a run folder, checkpoint folder, model folder or weights file (see `resolve`).
    """
    from .config import from_yaml

    folder = resolve(path)
    cfg_file = folder / CONFIG
    if not cfg_file.is_file():
        raise InputError(f"{cfg_file}: missing; a checkpoint or model folder needs config.yaml beside its weights")
    return folder, from_yaml(config_cls, cfg_file), load_weights(folder)


def pick_weights(weights: dict[str, dict[str, torch.Tensor]], name: str, *, use_ema: bool = True,
                 where: str | os.PathLike = "checkpoint") -> dict[str, torch.Tensor]:
    """The EMA copy of net `name` when present (and wanted), else the net itself, as float32 tensors."""
    sd = weights.get(f"{name}_ema") if use_ema and f"{name}_ema" in weights else weights.get(name)
    if sd is None:
        raise InputError(f"{where}: no weights for '{name}' (found: {', '.join(sorted(weights)) or 'none'})")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def model_dirs() -> list[Path]:
    """Where shipped default models are looked for, in order: $GANAPPS_MODELS_DIR, the checkout's models/ (a
    source tree or an editable install: the folder beside the package, next to pyproject.toml), and the
    installed package's own ganapps/models/ (a wheel carries a copy of models/; see setup.py)."""
    import importlib.resources

    dirs = [Path(os.environ["GANAPPS_MODELS_DIR"]).expanduser()] if os.environ.get("GANAPPS_MODELS_DIR") else []
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        dirs.append(checkout / "models")
    package = importlib.resources.files("ganapps") / "models"
    if isinstance(package, Path):  # an unpacked install (pip always unpacks wheels)
        dirs.append(package)
    return dirs


def shipped_model(name: str) -> Path:
    """Folder of the shipped default model `name` (e.g. "video-default"): the first of `model_dirs()` that
    holds name/weights.safetensors; an InputError listing the places searched when none does."""
    dirs = model_dirs()
    for d in dirs:
        if (d / name / WEIGHTS).is_file():
            return d / name
    raise InputError(f"shipped model {name!r} not found (looked in {', '.join(str(d) for d in dirs) or 'nowhere'}); "
                     f"pass a run, checkpoint or model folder, or set GANAPPS_MODELS_DIR")
