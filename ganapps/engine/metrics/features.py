"""Image sources for the metrics (folders, .pt/.npy files, tensors) and batched feature extraction with a
per-folder statistics cache. Must not import Typer or any task package.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ganapps.engine.errors import InputError
from ganapps.engine.images import IMAGE_SUFFIXES, has_suffix, uint8_to_float
from ganapps.engine.paths import stats_dir

TENSOR_SUFFIXES = (".pt", ".pth", ".npy")
CACHE_VERSION = 2  # 2: entries record the image count
# Float tensors may overshoot [-1, 1] by rounding (e.g. a tanh output saved in float16).
_RANGE_TOLERANCE = 1e-3

Source = str | os.PathLike | torch.Tensor | np.ndarray
_GRAY_MODES = {"1", "L", "LA", "I;16", "I;16L", "I;16B", "I;16N", "I"}


@runtime_checkable
class Extractor(Protocol):
    """What the metrics need from a feature extractor.

    `name` identifies the extractor and its weights (it keys the statistics cache). Calling it maps images
    (B, C, H, W) float32 in [-1, 1] on the CPU to features (B, F) on the CPU; the extractor moves data to
    its own device. Per-image features must not depend on which other images share the batch.
    """

    name: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class PixelExtractor:
    """Weights-free features: each image area-resized to `size` x `size` and flattened, (B, C*size*size).

    Useful where no pretrained network fits the domain (grayscale medical slices, toy data) and for
    memorization audits (a near-copy is near in pixels). Limits: it sees only coarse layout, intensity and
    colour at `size` pixels; it is blind to texture and fine artefacts, is not translation invariant, and
    its FID is not comparable with any published (Inception) FID. Needs N > C*size*size samples for a
    full-rank covariance (the Frechet distance still works below that, less reliably).
    """

    def __init__(self, size: int = 16):
        if size < 1:
            raise InputError(f"PixelExtractor: size must be >= 1, got {size}")
        self.size = size
        self.name = f"pixels-area-{size}"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.size, self.size), mode="area")  # (B, C, s, s)
        return x.flatten(1)  # (B, C*s*s)


# ---------------------------------------------------------------------------------------------- sources


def describe(source: Source) -> str:
    """A short name for a source, for messages."""
    if isinstance(source, torch.Tensor | np.ndarray):
        return f"<{type(source).__name__} {tuple(source.shape)}>"
    return str(source)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside `folder` (suffixes in IMAGE_SUFFIXES), sorted by name.

    Raises InputError when the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (expected a folder of images or a .pt/.npy file)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and has_suffix(p, IMAGE_SUFFIXES))
    if not files:
        raise InputError(f"{folder}: no images found (expected files ending in {', '.join(IMAGE_SUFFIXES)})")
    return files


def as_images(x: torch.Tensor | np.ndarray, where: str = "tensor") -> torch.Tensor:
    """Validate and convert a tensor or array to images (N, C, H, W) float32 in [-1, 1].

    Accepts (N, C, H, W) with C in {1, 3}, or (N, H, W) (grayscale, a channel axis is added); uint8 in
    [0, 255] is mapped to [-1, 1]; float must already lie in [-1, 1]. Anything else raises InputError
    (channels-last arrays are refused rather than guessed).
    """
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise InputError(f"{where}: object array, expected a numeric (N, C, H, W) array")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{where}: holds a {type(x).__name__}, expected a tensor of images (N, C, H, W)")
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"{where}: shape {tuple(x.shape)}, expected images (N, C, H, W) with C = 1 or 3")
    if x.shape[0] == 0:
        raise InputError(f"{where}: holds no images (shape {tuple(x.shape)})")
    if x.dtype == torch.uint8:
        return uint8_to_float(x)
    if not x.is_floating_point():
        raise InputError(f"{where}: dtype {x.dtype}, expected uint8 in [0, 255] or float in [-1, 1]")
    x = x.float()
    if not torch.isfinite(x).all():
        raise InputError(f"{where}: holds NaN or infinite values")
    lo, hi = x.min().item(), x.max().item()
    if lo < -1 - _RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise InputError(f"{where}: values in [{lo:.3g}, {hi:.3g}], expected images in [-1, 1]")
    return x.clamp(-1.0, 1.0)


def _load_tensor_file(path: Path) -> torch.Tensor:
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: cannot read tensor file ({first_line})") from None
    return as_images(data, str(path))


def _image_header(path: Path) -> tuple[str, tuple[int, int]]:
    try:
        with Image.open(path) as im:
            return im.mode, im.size
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"{path}: cannot read image ({type(err).__name__})") from None


def _read_image(path: Path, gray: bool) -> torch.Tensor:
    """One image file as (C, H, W) float32 in [-1, 1]; C = 1 if `gray` else 3."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if gray and mode.startswith("I"):
                arr = np.asarray(im, dtype=np.float64)
                if arr.min() < 0 or arr.max() > 65535:
                    raise InputError(f"{path}: integer image outside [0, 65535], expected 8- or 16-bit")
                return torch.from_numpy(arr / 32767.5 - 1.0).float()[None]
            arr = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"{path}: cannot decode image ({type(err).__name__})") from None
    t = uint8_to_float(torch.from_numpy(arr.copy()))
    return t[None] if gray else t.permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


class ImageFolder:
    """A folder of same-sized images: checked up front (headers only), decoded batch by batch."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = list_image_files(folder)
        size0 = None
        modes = set()
        for path in self.files:
            mode, size = _image_header(path)
            if size0 is None:
                size0, first = size, path
            elif size != size0:
                raise InputError(
                    f"{path}: image is {size[0]}x{size[1]}, expected {size0[0]}x{size0[1]} like {first.name}"
                )
            modes.add(mode)
        # Grayscale only when every file is; otherwise RGB for all, as pytorch-fid reads folders.
        self.gray = modes <= _GRAY_MODES

    def __len__(self) -> int:
        return len(self.files)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, len(self.files), batch_size):
            yield torch.stack([_read_image(p, self.gray) for p in self.files[i : i + batch_size]])


class ImageTensor:
    """Images already in memory, (N, C, H, W) float32 in [-1, 1], served in batches of views."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, self.images.shape[0], batch_size):
            yield self.images[i : i + batch_size]


def open_images(source: Source) -> ImageFolder | ImageTensor:
    """Resolve a source to something with `len()` and `.batches(batch_size)` of (B, C, H, W) in [-1, 1].

    `source` is a folder of images, a .pt/.pth (torch.save of a tensor, loaded with weights_only=True) or
    .npy file, or a tensor/array (see `as_images`). Folder images are read as grayscale when every file is
    grayscale, else all as RGB (alpha dropped), like pytorch-fid; 16-bit grayscale is scaled by 65535.
    Raises InputError for a missing/empty folder, an unreadable file, or mismatched image sizes.
    """
    if isinstance(source, torch.Tensor | np.ndarray):
        return ImageTensor(as_images(source))
    path = Path(source)
    if path.is_dir():
        return ImageFolder(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (expected a folder of images or a .pt/.npy file)")
    if path.suffix.lower() in TENSOR_SUFFIXES:
        return ImageTensor(_load_tensor_file(path))
    raise InputError(f"{path}: unsupported file type, expected a folder of images or a .pt/.npy file")


def load_images(source: Source) -> torch.Tensor:
    """All images of a source as one tensor (N, C, H, W) float32 in [-1, 1] (see `open_images`)."""
    images = open_images(source)
    return torch.cat(list(images.batches(256)))


def iter_image_batches(source: Source, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches (B, C, H, W) float32 in [-1, 1] of a source, decoding folders lazily."""
    return open_images(source).batches(batch_size)


# ------------------------------------------------------------------------------------------ extraction


@torch.no_grad()
def extract_features(
    source: Source,
    extractor: Extractor,
    batch_size: int = 50,
    progress: bool = True,
    desc: str = "features",
) -> np.ndarray:
    """Features (N, F) float32 of every image in `source`, computed `batch_size` images at a time.

    A tqdm bar (on stderr) shows rate and ETA unless `progress` is False. The result does not depend on
    `batch_size` for extractors that treat images independently (eval-mode nets, `PixelExtractor`).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    images = open_images(source)
    out = []
    with tqdm(total=len(images), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch in images.batches(batch_size):
            feats = extractor(batch)
            if feats.ndim != 2 or feats.shape[0] != batch.shape[0]:
                raise InputError(
                    f"extractor {extractor.name}: returned shape {tuple(feats.shape)} for "
                    f"{batch.shape[0]} images, expected (B, F)"
                )
            out.append(feats.detach().float().cpu().numpy())
            bar.update(batch.shape[0])
    return np.concatenate(out)


def statistics_cache_key(folder: str | os.PathLike, extractor_name: str) -> str:
    """Hex key of a folder's statistics: its resolved path, every image's name, size and mtime, and the
    extractor name. Adding, removing, replacing or touching an image changes the key."""
    folder = Path(folder).resolve()
    files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in list_image_files(folder)]
    blob = json.dumps(
        {"v": CACHE_VERSION, "folder": str(folder), "files": files, "extractor": extractor_name}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), both float64. Needs N >= 2."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise InputError(f"features: shape {feats.shape}, expected (N, F) with N >= 2")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def source_statistics(
    source: Source,
    extractor: Extractor,
    batch_size: int = 50,
    progress: bool = True,
    use_cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    with_count: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, int]:
    """(mu (F,), sigma (F, F)) float64 of a source's features, and with `with_count` the number of images
    they came from; folders are cached (see `statistics_cache_key`) in `<cache_dir>/stats/<key>.npz`, by default
    `engine.paths.stats_dir()` (<cache>/stats). Tensors and files are never cached."""
    is_folder = not isinstance(source, torch.Tensor | np.ndarray) and Path(source).is_dir()
    path = None
    if use_cache and is_folder:
        key = statistics_cache_key(source, extractor.name)
        path = (Path(cache_dir) / "stats" if cache_dir else stats_dir()) / f"{key[:40]}.npz"
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                mu, sigma, n = data["mu"], data["sigma"], int(data["count"])
            return (mu, sigma, n) if with_count else (mu, sigma)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is recomputed and overwritten
    features = extract_features(source, extractor, batch_size, progress)
    mu, sigma = feature_statistics(features)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a killed process never leaves a half-written entry.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, count=len(features), folder=str(Path(source).resolve()),
                     extractor=extractor.name)
        os.replace(tmp, path)
    return (mu, sigma, len(features)) if with_count else (mu, sigma)
