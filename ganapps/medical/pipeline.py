"""`Synthesizer` (on the engine's `InferenceModel`: `from_checkpoint`, `export`): inference only. Loads a trained
slice generator and writes synthetic slices as a NIfTI stack (training spacing, valid RAS affine) or PNG files.
Never imports training code (task, trainer).

    >>> synth = Synthesizer.from_checkpoint()            # the shipped medical-default model
    >>> images = synth(16, seed=0)                      # (16, 1, 64, 64) float32 in [-1, 1]
    >>> synth.save(images, "synth.nii.gz")
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..engine.errors import InputError
from ..engine.images import float_to_uint8
from ..engine.inference import InferenceModel
from .config import MedicalConfig
from .data import AXES, one_hot, slices_to_volume, to_square_size, volume_slices
from .io import is_nifti, read_volumes, write_nifti
from .nets import build_generator, position_features


class SliceGraph(torch.nn.Module):
    """A slice generator as exported: z (B, z_dim) [+ position (B,) in the training range, turned into Fourier
    features inside | labels one-hot (B, K, S, S)] -> image (B, 1, S, S) in [-1, 1]."""

    def __init__(self, gen: torch.nn.Module, condition: str):
        super().__init__()
        self.gen, self.condition = gen, condition

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition == "position":
            return self.gen(z, position_features(cond))
        return self.gen(z, cond) if cond is not None else self.gen(z)


class Synthesizer(InferenceModel):
    """A slice generator with its training options. `__call__(n, seed)` samples n slices (position models
    walk evenly through the training slice positions, so a stack looks like a volume); `from_labels(maps)`
    synthesizes one image per label map (label models)."""

    config_class = MedicalConfig
    default_model = "medical-default"

    def __init__(self, gen: torch.nn.Module, config: MedicalConfig, device: str | torch.device = "cpu"):
        super().__init__({"gen": gen}, config, device)
        self.size = config.size

    @classmethod
    def build_nets(cls, config: MedicalConfig) -> dict[str, torch.nn.Module]:
        c = config
        return {"gen": build_generator(c.model, c.condition, c.z_dim, c.size, c.width, c.num_classes)}

    @classmethod
    def from_nets(cls, nets: dict[str, torch.nn.Module], config: MedicalConfig, device: torch.device) -> Synthesizer:
        return cls(nets["gen"], config, device)

    @property
    def gen(self) -> torch.nn.Module:
        return self.nets["gen"]

    def export_graphs(self, sizes: list[tuple[int, int]] | None = None) -> list:
        """The generator as one graph `gen`: z (1, z_dim) [+ position (1,) | labels (1, K, S, S) one-hot] ->
        image (1, 1, S, S) (the net is built for its size S), checked on three draws. The batch is fixed at one
        slice: the generators reshape with `len(z)`, a Python int that tracing (TorchScript, and torch.export
        behind ONNX) turns into a constant; exported with a dynamic batch they run only at the traced one."""
        from ..engine.export import Graph

        if sizes:
            raise InputError(f"--check-sizes: the slice generator makes {self.size}x{self.size} images; there are "
                             f"no sizes to choose")
        c = self.config
        g = torch.Generator().manual_seed(0)
        cond_name = {"position": "position", "label": "labels"}.get(c.condition)

        def feeds(b: int) -> dict[str, torch.Tensor]:
            out = {"z": torch.randn(b, c.z_dim, generator=g)}
            if c.condition == "position":
                lo, hi = (float(v) for v in self.gen.position_range)
                out["position"] = lo + (hi - lo) * torch.rand(b, generator=g)
            elif c.condition == "label":
                labels = torch.randint(0, c.num_classes, (b, self.size, self.size), generator=g)
                out["labels"] = one_hot(labels, c.num_classes)
            return out

        note = f"z (1, {c.z_dim}) standard normal"
        if cond_name == "position":
            note += " and position (1,): a slice position in the training range (the gen.position_range buffer)"
        elif cond_name == "labels":
            note += f" and labels (1, {c.num_classes}, {self.size}, {self.size}) one-hot float32"
        note += (f" -> image (1, 1, {self.size}, {self.size}) in [-1, 1]; one slice per call (the generator reshapes "
                 f"with len(z), which a traced graph keeps as a constant)")
        return [Graph("gen", SliceGraph(self.export_net("gen"), c.condition), feeds(1), ["image"],
                      checks=[feeds(1), feeds(1)], note=note)]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.gen.spacing_mm)  # type: ignore[return-value]

    @torch.no_grad()
    def __call__(self, n: int, seed: int = 0, positions: torch.Tensor | None = None,
                 batch_size: int = 64) -> torch.Tensor:
        """n slices (n, 1, S, S) float32 in [-1, 1] on the CPU, reproducible for a seed."""
        if n < 1:
            raise InputError(f"--n {n}: expected at least 1 slice")
        if self.config.condition == "label":
            raise InputError("this model synthesizes from label maps: pass --labels (or call from_labels)")
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.z_dim, generator=g)
        cond = None
        if self.config.condition == "position":
            lo, hi = (float(v) for v in self.gen.position_range)
            pos = positions if positions is not None else torch.linspace(lo, hi, n)
            cond = position_features(pos.float().reshape(n))
        out = [self.gen(z[i:i + batch_size].to(self.device),
                        None if cond is None else cond[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, n, batch_size)]
        return torch.cat(out).clamp(-1, 1)

    @torch.no_grad()
    def from_labels(self, labels: torch.Tensor | np.ndarray, seed: int = 0, batch_size: int = 32) -> torch.Tensor:
        """Label maps (B, S, S) integers (e.g. a painted lesion class) -> images (B, 1, S, S) in [-1, 1]."""
        if self.config.condition != "label":
            raise InputError("this model is not conditioned on label maps; sample with --n instead")
        labels = torch.as_tensor(np.asarray(labels)).long()
        if labels.ndim != 3 or labels.shape[-2:] != (self.size, self.size):
            raise InputError(f"label maps of shape {tuple(labels.shape)}; expected (B, {self.size}, {self.size})")
        seg = one_hot(labels, self.config.num_classes)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(len(seg), self.config.z_dim, generator=g)
        out = [self.gen(z[i:i + batch_size].to(self.device), seg[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(seg), batch_size)]
        return torch.cat(out).clamp(-1, 1)

    def from_label_volume(self, path: str | os.PathLike, seed: int = 0) -> torch.Tensor:
        """A label-map volume (NIfTI, DICOM or slice folder) sliced like the training data -> one image per
        slice that holds any label."""
        vols = read_volumes(path)
        lab = np.rint(vols[0].data).astype(np.int64)
        slices = torch.from_numpy(volume_slices(lab, AXES[self.config.axis])).float()  # (N, H, W)
        slices = to_square_size(slices, self.size, self.config.square, 0.0, nearest=True).round().long()
        keep = slices.flatten(1).amax(1) > 0
        if not keep.any():
            raise InputError(f"{path}: label map is all background; expected at least one labelled voxel")
        return self.from_labels(slices[keep], seed=seed)

    def save(self, images: torch.Tensor, out: str | os.PathLike) -> Path:
        """`out` ending in .nii/.nii.gz: one NIfTI stack along the training axis; else a folder of PNGs."""
        out = Path(out)
        if is_nifti(out):
            return save_nifti(images, out, self.spacing_mm, AXES[self.config.axis])
        return save_pngs(images, out)


def stack_affine(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], axis: int) -> np.ndarray:
    """RAS affine for a synthetic stack: diagonal voxel sizes (image columns, image rows, slices mapped back to
    the training axes) and the volume centred on the origin."""
    plane = [a for a in range(3) if a != axis]
    sizes = np.ones(3)
    sizes[plane[0]], sizes[plane[1]], sizes[axis] = spacing_mm
    affine = np.diag([*sizes, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) / 2 * sizes
    return affine


def save_nifti(images: torch.Tensor, path: str | os.PathLike, spacing_mm: tuple[float, float, float],
               axis: int = 2, affine: np.ndarray | None = None) -> Path:
    """(N, 1, H, W) in [-1, 1] -> NIfTI (X, Y, Z) float32 in [0, 1] along `axis`, with `affine` or a centred one."""
    x = images.detach().float().cpu()
    if x.ndim == 4:
        x = x[:, 0]
    data = slices_to_volume(((x.numpy() + 1) / 2).astype(np.float32), axis)
    if affine is None:
        affine = stack_affine(data.shape, spacing_mm, axis)
    return write_nifti(data, affine, path)


def save_pngs(images: torch.Tensor, folder: str | os.PathLike) -> Path:
    """(N, 1, H, W) in [-1, 1] -> folder/slice_0000.png ... (8-bit grayscale)."""
    from PIL import Image

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; expected .nii/.nii.gz or a folder for PNGs")
    folder.mkdir(parents=True, exist_ok=True)
    arr = float_to_uint8(images[:, 0]).numpy()  # (N, H, W)
    for i, a in enumerate(arr):
        Image.fromarray(a, mode="L").save(folder / f"slice_{i:04d}.png")
    return folder
