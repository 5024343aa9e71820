"""`Synthesizer` (on the engine's `InferenceModel`: `from_checkpoint`, `export`): inference only. Loads a trained
slice generator and writes synthetic slices as a NIfTI stack (training spacing, valid RAS affine) or PNG files.
Never imports training code (task, trainer).

    >>> synth = Synthesizer.from_checkpoint()            # the shipped medical-default model
    >>> images = synth(16, seed=0)                      # (16, 1, 64, 64) float32 in [-1, 1]
    >>> synth.save(images, "synth.nii.gz")
    >>> brain = position_model.stack(seed=0)             # one slice per training position, in order
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
from .data import AXES, one_hot, slices_to_volume, volume_slices
from .io import is_nifti, read_volumes, write_nifti
from .labels import area_mode
from .nets import build_generator, intensity_quantiles, position_features


class SliceGraph(torch.nn.Module):
    """A slice generator as exported: z (B, z_dim) [+ position (B,) in the training range, turned into Fourier
    features inside | labels one-hot (B, K, S, S)] -> image (B, 1, S, S) in [-1, 1], intensity-calibrated as
    `Synthesizer` samples are when the generator holds its calibration."""

    def __init__(self, gen: torch.nn.Module, condition: str, calibrated: bool = False):
        super().__init__()
        self.gen, self.condition, self.calibrated = gen, condition, calibrated

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition == "label":
            return self.gen(z, cond)
        x = self.gen(z, position_features(cond)) if self.condition == "position" else self.gen(z)
        return self.gen.calibrated(x.clamp(-1, 1), graph=True) if self.calibrated else x


class Synthesizer(InferenceModel):
    """A slice generator with its training options. `__call__(n, seed)` samples n slices (position models
    walk evenly through the training slice positions, so a stack looks like a volume); `from_labels(maps)`
    synthesizes one image per label map (label models).

    Intensity calibration (unconditional and position models): the samples go through the monotone map from the
    generator's own output intensity quantiles to the training slices' (`nets._Generator.calibrated`), which
    corrects a GAN's typical contrast drift (the shipped model's raw samples put white matter about 0.05 too
    dark) without seeing held-out data. Training records the training quantiles in the generator; the output
    quantiles are measured here on CALIBRATION_SAMPLES samples of a fixed seed when the weights do not hold them
    yet (a training checkpoint), and `export` writes them. `calibrate=False`: the raw generator output."""

    config_class = MedicalConfig
    default_model = "medical-default"
    CALIBRATION_SAMPLES, CALIBRATION_SEED = 512, 12345

    def __init__(self, gen: torch.nn.Module, config: MedicalConfig, device: str | torch.device = "cpu",
                 calibrate: bool = True):
        super().__init__({"gen": gen}, config, device)
        self.size = config.size
        self.calibrate = calibrate and config.condition != "label" and hasattr(gen, "intensity_quantiles")
        if self.calibrate and not self.gen.is_calibrated and not self.gen.intensity_quantiles[1].isnan().any():
            self._measure_output_quantiles()

    def calibrate_to(self, images: torch.Tensor) -> None:
        """Calibrate the samples to the intensity distribution of `images` (N, 1, S, S) in [-1, 1]: e.g. the
        training slices of a checkpoint written before training recorded them."""
        if self.config.condition == "label":
            raise InputError("intensity calibration is for unconditional and position models; a label model's "
                             "intensities follow its label maps")
        self.gen.intensity_quantiles[1] = intensity_quantiles(images).to(self.gen.intensity_quantiles)
        self.calibrate = True
        self._measure_output_quantiles()

    def _measure_output_quantiles(self) -> None:
        """Fill row 0 of the generator's `intensity_quantiles`: its raw samples' quantiles (fixed seed)."""
        n, g = self.CALIBRATION_SAMPLES, torch.Generator().manual_seed(self.CALIBRATION_SEED)
        z = torch.randn(n, self.config.z_dim, generator=g)
        pos = self.walk(n) if self.config.condition == "position" else None
        raw = self._generate(z, pos, 64, calibrate=False)
        self.gen.intensity_quantiles[0] = intensity_quantiles(raw).to(self.gen.intensity_quantiles)

    @classmethod
    def build_nets(cls, config: MedicalConfig) -> dict[str, torch.nn.Module]:
        c = config
        return {"gen": build_generator(c.model, c.condition, c.z_dim, c.size, c.width, c.num_classes,
                                       c.spade_hidden)}

    @classmethod
    def from_nets(cls, nets: dict[str, torch.nn.Module], config: MedicalConfig, device: torch.device,
                  calibrate: bool = True) -> Synthesizer:
        return cls(nets["gen"], config, device, calibrate=calibrate)

    @property
    def gen(self) -> torch.nn.Module:
        return self.nets["gen"]

    @property
    def is_calibrated(self) -> bool:
        """Whether samples are intensity-calibrated: asked for (`calibrate`) and the generator holds both rows."""
        return self.calibrate and self.gen.is_calibrated

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
        if self.is_calibrated:
            note += "; intensity-calibrated to the training slices as the Synthesizer's samples are"
        return [Graph("gen", SliceGraph(self.export_net("gen"), c.condition, self.is_calibrated), feeds(1), ["image"],
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
        pos = None
        if self.config.condition == "position":
            pos = positions if positions is not None else self.walk(n)
        return self._generate(z, pos, batch_size)

    def _generate(self, z: torch.Tensor, positions: torch.Tensor | None, batch_size: int,
                  calibrate: bool = True) -> torch.Tensor:
        """Latents (n, z_dim) [+ positions (n,)] -> (n, 1, S, S) in [-1, 1] on the CPU (intensity-calibrated
        when the model is and `calibrate`)."""
        n = len(z)
        cond = None if positions is None else position_features(positions.float().reshape(n))
        out = [self.gen(z[i:i + batch_size].to(self.device),
                        None if cond is None else cond[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, n, batch_size)]
        x = torch.cat(out).clamp(-1, 1)
        return self.gen.calibrated(x) if calibrate and self.is_calibrated else x

    def walk(self, n: int) -> torch.Tensor:
        """n positions (n,) evenly from the first to the last training slice position (position models)."""
        lo, hi = (float(v) for v in self.gen.position_range)
        return torch.linspace(lo, hi, n, dtype=torch.float64)

    def stack_positions(self) -> torch.Tensor:
        """(N,) the position of every training-grid slice from the first to the last training slice, in order
        (position models whose weights record `position_step`)."""
        if self.config.condition != "position":
            raise InputError("a stack of slice positions needs a position-conditioned model (condition=position)")
        step = float(self.gen.position_step)
        if step <= 0:
            raise InputError(f"{self.source or 'this model'}: its weights do not record the training slice step "
                             f"(written before this release); sample with --n N (N evenly walked positions)")
        lo, hi = (float(v) for v in self.gen.position_range)
        k0, k1 = round(lo / step), round(hi / step)
        return torch.arange(k0, k1 + 1, dtype=torch.float64) * step

    @torch.no_grad()
    def stack(self, seed: int = 0, same_latent: bool = True, batch_size: int = 64) -> torch.Tensor:
        """One synthetic brain: a slice at every training-grid position from the first to the last training slice,
        in order (N, 1, S, S), so `save` writes it at the training slice spacing. `same_latent`: one latent for the
        whole stack (its slices vary smoothly, like one subject's), else one per slice."""
        pos = self.stack_positions()
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(1 if same_latent else len(pos), self.config.z_dim, generator=g).expand(len(pos), -1)
        return self._generate(z, pos, batch_size)

    def slice_spacing_mm(self, positions: torch.Tensor) -> float:
        """Spacing (mm) between consecutive slices of a stack walked at evenly spaced `positions` (N,)."""
        step = float(self.gen.position_step)
        if len(positions) < 2 or step <= 0:
            return self.spacing_mm[2]
        return abs(float(positions[1] - positions[0])) / step * self.spacing_mm[2]

    @torch.no_grad()
    def from_labels(self, labels: torch.Tensor | np.ndarray, seed: int = 0, batch_size: int = 32,
                    latents: torch.Tensor | None = None) -> torch.Tensor:
        """Label maps (B, S, S) integers (e.g. a painted lesion class) -> images (B, 1, S, S) in [-1, 1].
        The latents (B, z_dim) are drawn from `seed` unless given."""
        if self.config.condition != "label":
            raise InputError("this model is not conditioned on label maps; sample with --n instead")
        labels = torch.as_tensor(np.asarray(labels)).long()
        if labels.ndim != 3 or labels.shape[-2:] != (self.size, self.size):
            raise InputError(f"label maps of shape {tuple(labels.shape)}; expected (B, {self.size}, {self.size})")
        seg = one_hot(labels, self.config.num_classes)
        if latents is None:
            latents = torch.randn(len(seg), self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        elif latents.shape != (len(seg), self.config.z_dim):
            raise ValueError(f"latents of shape {tuple(latents.shape)}; expected ({len(seg)}, {self.config.z_dim})")
        out = [self.gen(latents[i:i + batch_size].to(self.device), seg[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(seg), batch_size)]
        return torch.cat(out).clamp(-1, 1)

    def label_slices(self, path: str | os.PathLike) -> tuple[torch.Tensor, np.ndarray, tuple[int, int, int]]:
        """A label-map volume (NIfTI, DICOM or slice folder) cut like the training data: reoriented to RAS, sliced
        along the training axis, made square and reduced to the model's size by area mode (the class covering
        most of each pixel, as the training label slices were made) -> (slices (N, S, S) int64, the volume's RAS
        affine, its RAS shape)."""
        vols = read_volumes(path)
        if len(vols) != 1:
            raise InputError(f"{path}: label map with {len(vols)} frames; expected one 3D volume")
        data = vols[0].data
        if np.any(data < 0) or np.any(data != np.round(data)):
            raise InputError(f"{path}: label map with negative or fractional values; expected integers >= 0")
        lab = data.astype(np.int64)
        if lab.max() >= self.config.num_classes:
            raise InputError(f"{path}: class {int(lab.max())}; the model knows {self.config.num_classes} classes "
                             f"(0..{self.config.num_classes - 1})")
        if not lab.any():
            raise InputError(f"{path}: label map is all background; expected at least one labelled voxel")
        full = torch.from_numpy(volume_slices(lab, AXES[self.config.axis]))  # (N, H, W)
        return area_mode(full, self.size, self.config.square), vols[0].affine, lab.shape  # type: ignore[return-value]

    def from_label_volume(self, path: str | os.PathLike, seed: int = 0) -> torch.Tensor:
        """One synthetic image per slice of a label-map volume (see `label_slices`), in order (N, 1, S, S);
        slices without any labelled voxel are background (-1)."""
        labs, _, _ = self.label_slices(path)
        images = torch.full((len(labs), 1, self.size, self.size), -1.0)
        keep = labs.flatten(1).amax(1) > 0
        images[keep] = self.from_labels(labs[keep], seed=seed)
        return images

    def save(self, images: torch.Tensor, out: str | os.PathLike, labels: str | os.PathLike | None = None,
             positions: torch.Tensor | None = None) -> Path:
        """`out` ending in .nii/.nii.gz: one NIfTI stack along the training axis (intensities in [0, 1]); else a
        folder of PNGs. `labels`: the label volume `images` came from (`from_label_volume`): the stack's affine
        then puts every voxel where its labels are (the same world coordinates as the map, to within half an
        input voxel in-plane) at the model's in-plane spacing and the map's slice spacing; else a centred
        RAS affine with the training spacing, or, given the evenly spaced `positions` (N,) the slices were
        sampled at (position models), the spacing those positions are apart."""
        out = Path(out)
        if not is_nifti(out):
            return save_pngs(images, out)
        axis = AXES[self.config.axis]
        if positions is not None:
            x, y, _ = self.spacing_mm
            return save_nifti(images, out, (x, y, self.slice_spacing_mm(positions)), axis)
        affine = None
        if labels is not None:
            vol = read_volumes(labels)[0]
            if len(images) != vol.data.shape[axis]:
                raise ValueError(f"{len(images)} images for {vol.data.shape[axis]} slices of {labels}")
            affine = label_volume_affine(vol.affine, vol.data.shape, axis, self.size, self.config.square)
        return save_nifti(images, out, self.spacing_mm, axis, affine=affine)


def stack_affine(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], axis: int) -> np.ndarray:
    """RAS affine for a synthetic stack: diagonal voxel sizes (image columns, image rows, slices mapped back to
    the training axes) and the volume centred on the origin."""
    plane = [a for a in range(3) if a != axis]
    sizes = np.ones(3)
    sizes[plane[0]], sizes[plane[1]], sizes[axis] = spacing_mm
    affine = np.diag([*sizes, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) / 2 * sizes
    return affine


def label_volume_affine(affine: np.ndarray, shape: tuple[int, int, int], axis: int, size: int,
                        square_mode: str) -> np.ndarray:
    """RAS affine of a stack synthesized from a label volume of RAS `affine` and `shape`: the input's axes, the
    in-plane voxels scaled by side / size (side: the padded or cropped square) and shifted so the centre of
    the plane stays at the same world point; the slice axis unchanged."""
    plane = [a for a in range(3) if a != axis]
    side = max(shape[p] for p in plane) if square_mode == "pad" else min(shape[p] for p in plane)
    out = np.array(affine, dtype=np.float64)
    centre_in = np.array([(n - 1) / 2 for n in shape])
    centre_out = centre_in.copy()
    for p in plane:
        out[:3, p] = affine[:3, p] * side / size
        centre_out[p] = (size - 1) / 2
    out[:3, 3] = affine[:3, :3] @ centre_in + affine[:3, 3] - out[:3, :3] @ centre_out
    return out


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
