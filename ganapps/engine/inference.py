"""The base every task's inference class stands on (`Translator`, `Predictor`, `Synthesizer`): loading a run,
checkpoint or model folder (or the task's shipped default model), the device rule, and export: to a weights-only
model folder (safetensors, the default), or to ONNX / TorchScript graphs checked against PyTorch (`export.py`).
Imports the engine's checkpoint, config and export code and torch; never a task, Typer or training code.

    >>> from ganapps.video import Predictor
    >>> pred = Predictor.from_checkpoint()              # the shipped default model, on cuda when there is one
    >>> pred.export("my-model", fp16=True)              # {"weights": ..., "sha256": ..., "nets": ["gen"], ...}
    >>> pred.export("my-onnx", format="onnx")           # {"files": [".../gen.onnx"], "max_abs_diff": ..., ...}
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import to_yaml
from .errors import InputError

DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda, cuda:N or mps"


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """The inference device rule: "auto" -> cuda when available, else cpu. An explicit device that is
    malformed or absent here is an InputError naming --device."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {name}: expected {DEVICE_HELP}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    return dev


class InferenceModel:
    """Trained nets in eval mode on one device, with the config that built them.

    A task's inference class sets `config_class`, `default_model` (the shipped model's folder name) and two
    class methods: `build_nets(config)` -> {checkpoint name: untrained net} and `from_nets(nets, config, device,
    **options)` -> an instance; its constructor calls `InferenceModel.__init__`. `from_checkpoint` and `export`
    are then the same for every task, and so is the weights layout of an exported folder:
    `weights.safetensors` with one tensor per `<net>.<parameter>` (the nets as inference uses them: EMA copies
    when the checkpoint has them, stored under the plain net name) and `config.yaml`.
    """

    config_class: ClassVar[type]
    default_model: ClassVar[str]

    def __init__(self, nets: dict[str, nn.Module], config: Any, device: str | torch.device = "cpu"):
        self.device = pick_device(device)
        self.nets = {name: net.to(self.device).eval() for name, net in nets.items()}
        self.config = config
        self.source: Path | None = None  # the folder it was loaded from, when it was

    @classmethod
    def build_nets(cls, config: Any) -> dict[str, nn.Module]:
        raise NotImplementedError

    @classmethod
    def from_nets(cls, nets: dict[str, nn.Module], config: Any, device: torch.device, **options: Any):
        raise NotImplementedError

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, *, device: str | torch.device = "auto",
                        use_ema: bool = True, **options: Any):
        """Load a run folder (its latest checkpoint), a checkpoint folder, a model folder or a weights file;
        None loads the task's shipped default model. The EMA copy of each net is used when present and
        `use_ema`; float16-stored weights come back as float32. `options` go to the task's constructor."""
        folder, cfg, weights = ckpt.load_for_inference(
            ckpt.shipped_model(cls.default_model) if path is None else path, cls.config_class)
        nets = cls.build_nets(cfg)
        for name, net in nets.items():
            state = ckpt.pick_weights(weights, name, use_ema=use_ema, where=folder / ckpt.WEIGHTS)
            try:
                net.load_state_dict(state)
            except RuntimeError as e:
                raise InputError(f"{folder / ckpt.WEIGHTS}: weights of '{name}' do not fit the net described by "
                                 f"{folder / ckpt.CONFIG} ({str(e).splitlines()[0][:100]})") from None
        model = cls.from_nets(nets, cfg, pick_device(device), **options)
        model.source = folder
        return model

    def joined(self, other: InferenceModel) -> InferenceModel:
        """One model holding this model's nets and `other`'s (`export RUN --add RUN2`); tasks whose models can
        be joined override this."""
        raise InputError(f"{type(self).__name__}: these models cannot be joined (--add)")

    def export_net(self, name: str) -> nn.Module:
        """A float32 CPU copy of one net in eval mode (what graph exports trace; this model is left as it is)."""
        return copy.deepcopy(self.nets[name]).float().cpu().eval()

    def export_graphs(self, sizes: list[tuple[int, int]] | None = None) -> list:
        """The task's nets as `export.Graph`s (inputs, dynamic dimensions, parity checks; `sizes` (H, W) of the
        check inputs for nets that take any size), on the CPU in float32. Tasks override this."""
        raise InputError(f"{type(self).__name__}: this model has no graph export; use --format safetensors")

    def export(self, out: str | os.PathLike, *, fp16: bool | None = None, format: str = "safetensors",
               sizes: list[tuple[int, int]] | None = None) -> dict[str, Any]:
        """Write the model for use elsewhere. `format="safetensors"` (the default): a model folder
        OUT/{weights.safetensors, config.yaml} holding only what inference needs, for `from_checkpoint`.
        "onnx" / "torchscript": one graph file per net (`export_graphs`), float32, each checked against PyTorch
        on inputs of several sizes (`sizes`) and refused, with nothing written, beyond export.PARITY_TOLERANCE
        (see `export.export_graphs`).

        safetensors: parameters are stored as float16 when `fp16` (default; half the size; `from_checkpoint`
        loads them back as float32), buffers (e.g. a slice spacing or position range) always at their own
        precision. Each file is written under a temporary name and renamed into place. Returns {"weights",
        "sha256", "config", "nets", "dtype"}."""
        from .export import FORMATS, check_destination, export_graphs

        if format not in FORMATS:
            raise InputError(f"--format {format}: expected one of {', '.join(FORMATS)}")
        if format != "safetensors":
            if fp16:
                raise InputError(f"--fp16: {format} exports are float32 (checked against float32 PyTorch); "
                                 f"float16 storage is for --format safetensors")
            if self.config is None:
                raise ValueError("this model was built without its config; export needs one (see from_checkpoint)")
            return export_graphs(self.export_graphs(sizes), out, format, config_yaml=to_yaml(self.config))
        if sizes:
            raise InputError("--check-sizes: only graph exports (onnx, torchscript) run parity checks")
        fp16 = True if fp16 is None else fp16
        from safetensors.torch import save_file

        out = Path(out)
        check_destination(out, "a model folder to write")
        if self.config is None:
            raise ValueError("this model was built without its config; export needs one (see from_checkpoint)")
        nets = {}
        for name, net in self.nets.items():
            params = {k for k, _ in net.named_parameters()}
            nets[name] = {k: v.half() if fp16 and k in params and v.is_floating_point() else v
                          for k, v in net.state_dict().items()}
        dtype = "float16" if fp16 else "float32"
        weights, config = out / ckpt.WEIGHTS, out / ckpt.CONFIG
        tmp_w, tmp_c = (p.with_name(f".{p.name}.tmp{os.getpid()}") for p in (weights, config))
        made = [p for p in (out, *out.parents) if not p.exists()]  # folders to remove again if writing fails
        try:
            out.mkdir(parents=True, exist_ok=True)
            save_file(ckpt.flatten_weights(nets), str(tmp_w),
                      metadata={"format": "ganapps", "dtype": dtype, "nets": ",".join(nets)})
            tmp_c.write_text(to_yaml(self.config))
            os.replace(tmp_w, weights)
            os.replace(tmp_c, config)
            made = []
        except OSError as e:
            raise InputError(f"{out}: cannot write the model folder ({e.strerror or e})") from None
        finally:
            tmp_w.unlink(missing_ok=True)
            tmp_c.unlink(missing_ok=True)
            for folder in made:  # a failed write: the (empty) folders this call made go again, deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()
        return {"weights": str(weights), "sha256": ckpt.file_digest(weights), "config": str(config),
                "nets": list(nets), "dtype": dtype}
