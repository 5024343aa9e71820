"""Inference for the translation methods: `Translator` (on the engine's `InferenceModel`: `from_checkpoint`,
`export`) loads a run, checkpoint or model folder and translates tensors, arrays, PIL images, files and folders,
in each direction the model learned (CycleGAN: both; CUT, FastCUT, pix2pix: the one they were trained for),
any size (overlapping tiles beyond a size limit), and streams of video frames (optionally made temporally
consistent, `temporal.py`; whole clip files: `video.py`). Imports the engine and this package's config, data,
nets and temporal modules; never training code.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, array_to_tensor, has_suffix, tensor_to_array, tensor_to_pil
from ..engine.inference import InferenceModel
from ..engine.runtime import native_bf16
from .config import CycleGANConfig
from .data import list_images, read_image, to_array
from .nets import NET_OPTIONS, generator_for
from .temporal import TemporalFilter

DIRECTIONS = {"a2b": "gen_ab", "b2a": "gen_ba"}  # direction -> the generator that runs it


def _blend_ramp(length: int, overlap: int, left: bool, right: bool) -> torch.Tensor:
    """1-D tile weights: 0 over the first quarter of an interior overlap, a linear ramp to 1 over its middle
    half, 1 inside. Two neighbours' ramps sum to 1, and only pixels at least overlap/4 from a tile's cut
    edge count, so a net whose receptive radius is <= overlap/4 tiles exactly."""
    w = torch.ones(length)
    if overlap <= 0:
        return w
    d = torch.arange(length, dtype=torch.float32) + 0.5
    ramp = ((d - overlap / 4) / (overlap / 2)).clamp(0, 1)
    if left:
        w = torch.minimum(w, ramp)
    if right:
        w = torch.minimum(w, ramp.flip(0))
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad (B, C, H, W) on the bottom/right to multiples of `multiple` (reflect, replicate when the pad is
    too large to reflect); returns (padded, H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


@torch.no_grad()
def run_tiled(net: nn.Module, x: torch.Tensor, *, multiple: int = 4, tile_size: int = 1024,
              tile_overlap: int = 128) -> torch.Tensor:
    """net(x) for (B, C, H, W) of any size: padded to `multiple`; beyond `tile_size` it runs on overlapping
    tiles (starts on the `multiple` grid, so strided nets see the same pixel phase) blended with
    `_blend_ramp` weights, keeping memory bounded by the tile size. Returns (B, C_out, H, W) float32."""
    if tile_size % multiple or tile_overlap % multiple or tile_overlap >= tile_size:
        raise InputError(f"tile_size={tile_size}, tile_overlap={tile_overlap}: expected multiples of {multiple}, "
                         f"overlap < tile size")
    xp, h, w = pad_to_multiple(x, multiple)
    hp, wp = xp.shape[-2:]
    if hp <= tile_size and wp <= tile_size:
        return net(xp).float()[..., :h, :w]
    stride = tile_size - tile_overlap
    out = acc = None
    ys, xs = _starts(hp, tile_size, stride), _starts(wp, tile_size, stride)
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            tile = xp[..., y0:y0 + tile_size, x0:x0 + tile_size]
            y = net(tile).float()  # (B, C_out, th, tw)
            th, tw = y.shape[-2:]
            wy = _blend_ramp(th, tile_overlap, i > 0, i < len(ys) - 1)
            wx = _blend_ramp(tw, tile_overlap, j > 0, j < len(xs) - 1)
            wgt = (wy[:, None] * wx[None, :]).to(y.device)  # (th, tw)
            if out is None:
                out = y.new_zeros(y.shape[0], y.shape[1], hp, wp)
                acc = y.new_zeros(hp, wp)
            out[..., y0:y0 + th, x0:x0 + tw] += y * wgt
            acc[y0:y0 + th, x0:x0 + tw] += wgt
    return (out / acc.clamp_min(1e-8))[..., :h, :w]


def _as_tensor(x: torch.Tensor, channels: int) -> tuple[torch.Tensor, bool]:
    if x.ndim == 3:
        x, squeeze = x[None], True
    elif x.ndim == 4:
        squeeze = False
    else:
        raise InputError(f"tensor of shape {tuple(x.shape)}: expected (C, H, W) or (B, C, H, W) in [-1, 1]")
    if x.shape[1] != channels:
        raise InputError(f"tensor with {x.shape[1]} channels: the model expects {channels} (shape "
                         f"{tuple(x.shape)}, channels on axis 1)")
    if not x.is_floating_point():
        raise InputError(f"tensor of dtype {x.dtype}: expected float in [-1, 1]")
    if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
        raise InputError(f"tensor values in [{float(x.min()):.3g}, {float(x.max()):.3g}]: expected [-1, 1]")
    return x.float(), squeeze


class PaddedGenerator(nn.Module):
    """A generator as it is exported: images of any size (B, C, H, W) in [-1, 1], reflect-padded on the bottom
    and right to the net's `multiple` and cropped back, as `Translator` does (sides >= `multiple`, where
    `Translator` would switch to replicate padding) -> (B, C_out, H, W)."""

    def __init__(self, net: nn.Module, multiple: int):
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        ph, pw = (self.multiple - h % self.multiple) % self.multiple, (self.multiple - w % self.multiple) % self.multiple
        x = F.pad(image, (0, pw, 0, ph), mode="reflect")  # (B, C, H + ph, W + pw)
        return self.net(x)[..., :h, :w]


class Translator(InferenceModel):
    """Translate images A -> B (`direction="a2b"`) or B -> A with a trained model's generators (CycleGAN has
    both; CUT, FastCUT and pix2pix have the one of the direction they learned: `directions`).

    Call it on: a tensor (C, H, W) or (B, C, H, W) in [-1, 1] -> a tensor of the same shape (CPU, float32);
    a uint8 array (H, W) or (H, W, C) -> a uint8 array (H, W, channels); a PIL image -> a PIL image;
    a file path -> a PIL image; a folder -> {path: PIL image}; a list of any of these -> a list.
    Sizes need not match the training crop: inputs are padded to the net's multiple and, beyond
    `tile_size` pixels, translated in overlapping tiles.

    >>> t = Translator.from_checkpoint()  # the shipped photo <-> painting model  # doctest: +SKIP
    >>> painted = t("photo.jpg")  # doctest: +SKIP
    """

    config_class = CycleGANConfig
    default_model = "cyclegan-default"

    def __init__(self, gen_ab: nn.Module | None, gen_ba: nn.Module | None, *, config: CycleGANConfig | None = None,
                 channels: int = 3, multiple: int = 4, tile_size: int = 1024, tile_overlap: int = 128,
                 device: str | torch.device = "cpu", use_amp: bool | str = False):
        nets = {name: net for name, net in (("gen_ab", gen_ab), ("gen_ba", gen_ba)) if net is not None}
        if not nets:
            raise ValueError("Translator needs at least one generator")
        super().__init__(nets, config, device)
        self.directions = tuple(d for d, name in DIRECTIONS.items() if name in nets)
        self.channels, self.multiple = channels, multiple
        self.tile_size = max(multiple, tile_size // multiple * multiple)
        self.tile_overlap = tile_overlap // multiple * multiple
        self.use_amp = use_amp

    @classmethod
    def build_nets(cls, config: CycleGANConfig) -> dict[str, nn.Module]:
        c = config
        learned = DIRECTIONS if c.method == "cyclegan" or c.direction == "both" else (c.direction,)
        return {DIRECTIONS[d]: generator_for(c) for d in learned}

    def joined(self, other: Translator) -> Translator:
        """One model of both directions from two one-direction models of the same method and options (e.g.
        pix2pix trained a2b and b2a on the same pairs): its config says direction "both". Raises InputError
        when they do not fit (`export RUN --add RUN2` calls this)."""
        a, b = self.config, other.config
        where = f"{other.source or 'the second model'}"
        if a is None or b is None or a.method == "cyclegan" or b.method != a.method:
            raise InputError(f"{where}: --add joins two one-direction models (cut, fastcut, pix2pix) of one method")
        if {self.directions, other.directions} != {("a2b",), ("b2a",)}:
            raise InputError(f"{where}: learned {other.directions[0]}, like the first model; --add needs the other "
                             f"direction")
        differ = [name for name in NET_OPTIONS if getattr(a, name) != getattr(b, name)]
        if differ:
            raise InputError(f"{where}: its nets differ from the first model's ({', '.join(differ)})")
        nets = {**self.nets, **other.nets}
        config = copy.copy(a)
        config.direction = "both"
        return type(self)(nets.get("gen_ab"), nets.get("gen_ba"), config=config, channels=self.channels,
                          multiple=self.multiple, tile_size=self.tile_size, tile_overlap=self.tile_overlap,
                          device=self.device, use_amp=self.use_amp)

    @classmethod
    def from_nets(cls, nets: dict[str, nn.Module], config: CycleGANConfig, device: torch.device,
                  **options: Any) -> Translator:
        return cls(nets.get("gen_ab"), nets.get("gen_ba"), config=config, channels=config.channels,
                   multiple=next(iter(nets.values())).size_multiple, device=device, **options)

    def export_graphs(self, sizes: list[tuple[int, int]] | None = None) -> list:
        """The generators of the directions the model learned (`gen_ab`, `gen_ba`; CUT, FastCUT and pix2pix have
        one) as graphs image (B, C, H, W) -> translated (B, C, H, W), any
        batch and any H, W from the net's multiple up (padding inside the graph, no tiling), traced at batch 2
        and 64x64 and checked at `sizes` (the first at batch 3, the others at batch 1; default 67x93 and 257x301,
        at least the multiple plus odd margins)."""
        from ..engine.export import Graph

        m, c = self.multiple, self.channels
        if sizes is None:
            sizes = [(max(67, m + 3), max(93, m + 37)), (max(257, 2 * m + 1), max(301, 2 * m + 45))]
        small = [(h, w) for h, w in sizes if min(h, w) < m]
        if small:
            raise InputError(f"--check-sizes {small[0][0]}x{small[0][1]}: this generator takes sides of at least "
                             f"{m} pixels")
        g = torch.Generator().manual_seed(0)

        def image(b: int, h: int, w: int) -> torch.Tensor:
            return torch.rand(b, c, h, w, generator=g) * 2 - 1

        example = max(64, m)  # batch 2: an exporter may fix a size of 1 as a constant
        return [Graph(name, PaddedGenerator(self.export_net(name), m), {"image": image(2, example, example)},
                      ["translated"], dynamic={"image": {0: "batch", 2: "height", 3: "width"}},
                      checks=[{"image": image(3 if i == 0 else 1, h, w)} for i, (h, w) in enumerate(sizes)],
                      dim_min={"height": m, "width": m},
                      note=f"direction {d}: image (batch, {c}, height, width) float32 in [-1, 1], sides >= {m}, "
                           f"-> translated, same shape, in [-1, 1]; no tiling inside (tile large images yourself)")
                for d, name in DIRECTIONS.items() if d in self.directions]

    def translate_tensor(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """(B, C, H, W) float32 in [-1, 1] -> (B, C, H, W) float32 in [-1, 1] on the CPU."""
        if direction not in DIRECTIONS:
            raise InputError(f"direction={direction!r}: expected a2b or b2a")
        if direction not in self.directions:
            method = getattr(self.config, "method", "this model")
            raise InputError(f"direction={direction!r}: this model ({method}) has one generator and translates "
                             f"{self.directions[0]} only")
        net = self.nets[DIRECTIONS[direction]]
        use_amp = native_bf16(self.device) if self.use_amp == "auto" else self.use_amp  # auto: the engine's rule
        ctx = torch.autocast(self.device.type, dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            outs = [run_tiled(net, xi[None].to(self.device), multiple=self.multiple, tile_size=self.tile_size,
                              tile_overlap=self.tile_overlap) for xi in x]
        return torch.cat(outs).float().cpu().clamp(-1, 1)

    def translate_frames(self, frames: Iterable, direction: str = "a2b", *,
                         temporal: float | TemporalFilter | None = None) -> Iterator:
        """Translate a stream of video frames one at a time, in constant memory: each item of `frames` (any
        iterable, e.g. a decoder) is a uint8 array (H, W) or (H, W, C), a PIL image, or a tensor (C, H, W) in
        [-1, 1]; a uint8 array (H, W, channels) comes out for arrays and images, a (C, H, W) tensor for tensors.

        `temporal`: a strength in [0, 1) (0 or None: every frame on its own) or a `TemporalFilter`; the output
        is then blended with the previous output carried along the input's optical flow, where the motion is
        reliable, and starts afresh at shot cuts (see `TemporalFilter`).

        >>> for out in translator.translate_frames(decoder, temporal=0.7): writer.write(out)  # doctest: +SKIP
        """
        if isinstance(temporal, TemporalFilter):
            filt = temporal
        elif temporal:
            filt = TemporalFilter(float(temporal))
        else:
            filt = None
        for i, frame in enumerate(frames):
            as_tensor = isinstance(frame, torch.Tensor)
            if as_tensor:
                x, _ = _as_tensor(frame, self.channels)
                if x.shape[0] != 1:
                    raise InputError(f"frame {i}: tensor of shape {tuple(frame.shape)}; expected one frame (C, H, W)")
                arr = tensor_to_array(x[0])  # what the filter measures motion on
            elif isinstance(frame, Image.Image):
                arr = to_array(frame, self.channels, f"frame {i}")
            elif isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim in (2, 3):
                if frame.ndim == 3 and frame.shape[2] == self.channels:
                    arr = frame
                else:
                    arr = to_array(Image.fromarray(frame[:, :, 0] if frame.ndim == 3 and frame.shape[2] == 1
                                                   else frame), self.channels, f"frame {i}")
            else:
                raise InputError(f"frame {i}: a {type(frame).__name__}"
                                 f"{f' {frame.dtype} {frame.shape}' if isinstance(frame, np.ndarray) else ''}; "
                                 f"expected a uint8 array (H, W[, C]), a PIL image or a tensor (C, H, W)")
            y = self.translate_tensor(x if as_tensor else array_to_tensor(arr)[None], direction)[0]  # (C, H, W)
            if filt is not None:
                out = filt(arr, ((y + 1) / 2).permute(1, 2, 0).numpy())  # (H, W, C) in [0, 1]
                y = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1) * 2 - 1
            yield y if as_tensor else tensor_to_array(y)

    def _translate_array(self, arr: np.ndarray, direction: str) -> torch.Tensor:
        """(H, W, C) uint8 -> (C, H, W) in [-1, 1]."""
        return self.translate_tensor(array_to_tensor(arr)[None], direction)[0]

    def __call__(self, x: Any, direction: str = "a2b") -> Any:
        if isinstance(x, list | tuple):
            return [self(item, direction) for item in x]
        if isinstance(x, torch.Tensor):
            t, squeeze = _as_tensor(x, self.channels)
            y = self.translate_tensor(t, direction)
            return y[0] if squeeze else y
        if isinstance(x, Image.Image):
            return tensor_to_pil(self._translate_array(to_array(x, self.channels, "PIL image"), direction))
        if isinstance(x, np.ndarray):
            if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3, 4)):
                raise InputError(f"array of dtype {x.dtype} and shape {x.shape}: expected uint8 (H, W) or "
                                 f"(H, W, C) with C in 1, 3, 4 (use a float tensor (C, H, W) in [-1, 1] otherwise)")
            im = Image.fromarray(x[:, :, 0] if x.ndim == 3 and x.shape[2] == 1 else x)
            return tensor_to_array(self._translate_array(to_array(im, self.channels, "array"), direction))
        if isinstance(x, str | os.PathLike):
            p = Path(x)
            if p.is_dir():
                return {f: self(f, direction) for f in list_images(p, "input")}
            if not p.is_file():
                raise InputError(f"{p}: no such file or folder")
            if not has_suffix(p, IMAGE_SUFFIXES):
                raise InputError(f"{p}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
            return tensor_to_pil(self._translate_array(read_image(p, self.channels), direction))
        raise InputError(f"cannot translate a {type(x).__name__}: expected a tensor, array, PIL image, path or list")


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 4) -> Image.Image:
    """Input | output on one white canvas."""
    w, h = left.width + gap + right.width, max(left.height, right.height)
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    canvas.paste(left.convert("RGB"), (0, 0))
    canvas.paste(right.convert("RGB"), (left.width + gap, 0))
    return canvas


def contact_sheet(images: list[Image.Image], columns: int = 4, height: int = 128, gap: int = 6) -> Image.Image:
    """Pictures (e.g. input | output pairs) scaled to one height and laid out `columns` per row on white."""
    scaled = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height), Image.BICUBIC)
              for im in images]
    rows = [scaled[i:i + columns] for i in range(0, len(scaled), columns)]
    width = max(sum(im.width for im in row) + gap * (len(row) - 1) for row in rows)
    sheet = Image.new("RGB", (width, len(rows) * (height + gap) - gap), (255, 255, 255))
    for r, row in enumerate(rows):
        x = 0
        for im in row:
            sheet.paste(im, (x, r * (height + gap)))
            x += im.width + gap
    return sheet


def preview_grid(rows: list[list[torch.Tensor]], gap: int = 2) -> torch.Tensor:
    """Blocks of columns, e.g. [[real_a, fake_b, rec_a], [real_b, fake_a, rec_b]], each (N, C, H, W) of one
    size, -> one (C, H', W') picture in [-1, 1]: one line per image, the columns side by side, white gaps."""
    lines = []
    for cols in rows:
        for i in range(len(cols[0])):
            cells = []
            for col in cols:
                cells += [col[i].detach().float().cpu(), torch.ones(col.shape[1], col.shape[2], gap)]
            lines += [torch.cat(cells[:-1], 2), None]
    width = max(t.shape[2] for t in lines if t is not None)
    c = next(t for t in lines if t is not None).shape[0]
    out = [F.pad(t, (0, width - t.shape[2]), value=1.0) if t is not None else torch.ones(c, gap, width)
           for t in lines[:-1]]
    return torch.cat(out, 1)


def translation_metrics(translated: torch.Tensor, target: torch.Tensor, source: torch.Tensor) -> dict[str, float]:
    """How close translated images (N, C, H, W) are to the target domain (M, C, H, W), next to the identity
    baseline (the untranslated `source`): SWD x 1e3 (ProGAN, Laplacian-pyramid patches; lower is better)
    and KID on 16x16 pixel features (x 1e3); and how much periodic texture the translation added: the
    checkerboard index (engine.metrics.checkerboard; 1 = as much as the inputs have) and, beside it, the
    lattice-energy index (also raised by any sharpening). All in [-1, 1], one size, sides >= 16; the indices
    need sides that are multiples of 4 (left out otherwise)."""
    from ..engine.metrics import PixelExtractor, kid_from_features, sliced_wasserstein_distance
    from ..engine.metrics.checkerboard import checkerboard_index, lattice_energy_index

    pix = PixelExtractor(16)
    f_t, f_x, f_s = (pix(x).numpy() for x in (target, translated, source))
    n = min(len(f_t), len(f_x), 1000)
    out = {
        "swd": sliced_wasserstein_distance(target, translated).mean,
        "swd_identity": sliced_wasserstein_distance(target, source).mean,
        "kid_pixels_x1e3": 1e3 * kid_from_features(f_t, f_x, num_subsets=50, subset_size=n).mean,
        "kid_pixels_identity_x1e3": 1e3 * kid_from_features(f_t, f_s, num_subsets=50, subset_size=n).mean,
    }
    if translated.shape[-2] % 4 == 0 and translated.shape[-1] % 4 == 0:
        out["checkerboard_index"] = checkerboard_index(translated, source)
        out["checkerboard_energy_index"] = lattice_energy_index(translated, source)
    return {k: float(v) for k, v in out.items()}


def _load_folder(folder: str | os.PathLike, channels: int, size: int, limit: int, role: str):
    from .data import center_crop_or_resize

    files = list_images(folder, role)[:limit]
    return files, torch.stack([center_crop_or_resize(read_image(f, channels), size) for f in files])


def evaluate_folders(translator: Translator, folder_a: str | os.PathLike, folder_b: str | os.PathLike, *,
                     direction: str = "both", size: int = 128, limit: int = 500,
                     ground_truth: str | os.PathLike | None = None,
                     inception_weights: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Translate test folders (images resized and centre-cropped to `size`) and score them offline:
    `translation_metrics` per direction (SWD and pixel KID vs the target domain, and the identity baseline);
    with `ground_truth` (true translations of the inputs, matched by file name) mean PSNR (dB) and SSIM, next
    to the inputs' own; with `inception_weights` FID and KID (x 1e3) on Inception pool3 features."""
    from ..engine.metrics import psnr, ssim

    ch = translator.channels
    files_a, imgs_a = _load_folder(folder_a, ch, size, limit, "domain A")
    files_b, imgs_b = _load_folder(folder_b, ch, size, limit, "domain B")
    directions = list(translator.directions) if direction == "both" else [direction]
    extractor = None
    if inception_weights is not None:
        from ..engine.metrics import InceptionExtractor

        extractor = InceptionExtractor(inception_weights)
    result: dict[str, Any] = {"images_a": len(files_a), "images_b": len(files_b), "size": size}
    from tqdm.auto import tqdm

    for d in tqdm(directions, disable=not progress, unit="direction"):
        src, tgt, src_files = (imgs_a, imgs_b, files_a) if d == "a2b" else (imgs_b, imgs_a, files_b)
        fake = torch.cat([translator.translate_tensor(src[i:i + 16], d) for i in range(0, len(src), 16)])
        if min(len(src), len(tgt)) >= 2:
            result.update({f"{d}/{k}": v for k, v in translation_metrics(fake, tgt, src).items()})
        if ground_truth is not None:
            gt_dir = Path(ground_truth)
            missing = [f.name for f in src_files if not (gt_dir / f.name).is_file()]
            if missing:
                raise InputError(f"{gt_dir}: no ground truth for {missing[0]} ({len(missing)} missing); expected "
                                 f"files named as the inputs")
            from .data import center_crop_or_resize

            gt = torch.stack([center_crop_or_resize(read_image(gt_dir / f.name, ch), size) for f in src_files])
            result[f"{d}/psnr_db"] = float(psnr(fake, gt).mean())
            result[f"{d}/ssim"] = float(ssim(fake, gt).mean())
            result[f"{d}/psnr_identity_db"] = float(psnr(src, gt).mean())
            result[f"{d}/ssim_identity"] = float(ssim(src, gt).mean())
        if extractor is not None:
            from ..engine.metrics import fid_from_features, kid_from_features

            f_t, f_x = extractor(tgt).numpy(), extractor(fake).numpy()
            result[f"{d}/fid"] = float(fid_from_features(f_t, f_x))
            n = min(len(f_t), len(f_x), 1000)
            result[f"{d}/kid_x1e3"] = 1e3 * kid_from_features(f_t, f_x, subset_size=n).mean
    return result
