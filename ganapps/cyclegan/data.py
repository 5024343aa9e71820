"""Translation data: the reference's folder layout (trainA/ trainB/ testA/ testB/) or two arbitrary folders,
explicit decoding (8/16-bit, grayscale, palette, alpha), the reference's resize/crop/flip, the unpaired dataset
(CycleGAN, CUT) and the paired one (pix2pix: two folders matched by file name, or side-by-side A|B images).
Randomness comes from torch's RNG (the engine seeds each item). No training code here."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, array_to_tensor, has_suffix

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


class CorruptImage(InputError):
    """An image file that cannot be decoded (the message names it)."""


def list_images(folder: str | os.PathLike, role: str = "domain") -> list[Path]:
    """Image files directly in `folder`, sorted by name; an error naming the folder when it is missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {role} folder not found (expected a folder of images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and has_suffix(p, IMAGE_SUFFIXES))
    if not files:
        raise InputError(f"{folder}: {role} folder holds no images (expected files ending in "
                         f"{', '.join(IMAGE_SUFFIXES)})")
    return files


def domain_folders(data: str = "", data_a: str = "", data_b: str = "", split: str = "train") -> tuple[Path, Path]:
    """(folder of domain A, folder of domain B): `data/{split}A`, `data/{split}B` for the reference layout,
    else the two folders given."""
    if data_a or data_b:
        return Path(data_a), Path(data_b)
    root = Path(data)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found (expected {split}A/ and {split}B/ inside)")
    a, b = root / f"{split}A", root / f"{split}B"
    if not a.is_dir() and not b.is_dir() and (root / split).is_dir():
        raise InputError(f"{root / split}: side-by-side A|B pairs (the aligned layout, for --method pix2pix); "
                         f"this method needs {split}A/ and {split}B/ folders")
    return a, b


def to_array(im: Image.Image, channels: int, where: str = "image") -> np.ndarray:
    """A PIL image -> (H, W, channels) uint8, converting explicitly:
    16-bit and 32-bit integer -> 8-bit by scaling the full range (x / 257; the reference's convert('RGB')
    clips them to 255 instead); float images are taken as [0, 1]; palette -> RGB(A);
    RGBA / LA -> composited over white; gray -> replicated to 3 channels; colour -> luma (ITU-R 601-2,
    PIL's "L") for 1 channel."""
    if channels not in (1, 3):
        raise InputError(f"{where}: channels={channels}, expected 1 or 3")
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "I" and arr.max() > 65535:
            arr = arr / 2**24
        arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, "L")
    elif mode == "F":
        arr = np.clip(np.asarray(im) * 255.0, 0, 255).round().astype(np.uint8)
        im = Image.fromarray(arr, "L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        im = im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im).convert("RGB")
    if channels == 1:
        im = im.convert("L")
        return np.asarray(im)[:, :, None]
    return np.asarray(im.convert("RGB"))


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Decode an image file to (H, W, channels) uint8; CorruptImage naming the file when it cannot."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            return to_array(im, channels, str(path))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise CorruptImage(f"{path}: unreadable or corrupt image ({reason})") from None


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    out = np.asarray(im.resize((width, height), Image.BICUBIC))
    return out[:, :, None] if out.ndim == 2 else out


def fixed_transform(arr: np.ndarray, preprocess: str, load_size: int, crop_size: int) -> np.ndarray:
    """The deterministic part of the reference's `get_transform` (bicubic resizes); (H, W, C) uint8."""
    h, w = arr.shape[:2]
    if preprocess == "resize_and_crop":
        return _resize(arr, load_size, load_size)
    if preprocess in ("scale_width", "scale_width_and_crop"):
        if w == load_size and h >= crop_size:
            return arr
        return _resize(arr, load_size, int(max(load_size * h / w, crop_size)))
    if preprocess == "none":  # sides to the nearest multiple of 4
        nh, nw = max(4, int(round(h / 4) * 4)), max(4, int(round(w / 4) * 4))
        return _resize(arr, nw, nh)
    if preprocess == "crop":
        return arr
    raise InputError(f"preprocess={preprocess!r}: expected one of {', '.join(PREPROCESS)}")


def random_transform(arr: np.ndarray, preprocess: str, crop_size: int, use_flip: bool,
                     where: str = "image") -> torch.Tensor:
    """Random crop (when the preprocess crops) and horizontal flip, then to (C, H, W) float32 in [-1, 1].
    Draws from torch's global RNG."""
    if preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        h, w = arr.shape[:2]
        if h < crop_size or w < crop_size:
            raise InputError(f"{where}: {w}x{h} pixels, smaller than crop_size={crop_size}; lower --crop-size "
                             f"or use --preprocess resize_and_crop")
        i = int(torch.randint(0, h - crop_size + 1, ()))
        j = int(torch.randint(0, w - crop_size + 1, ()))
        arr = arr[i:i + crop_size, j:j + crop_size]
    if use_flip and float(torch.rand(())) < 0.5:
        arr = arr[:, ::-1]
    return array_to_tensor(arr)  # (C, H, W)


class ImageSet:
    """One domain's files, decoded on demand or once into memory (after the fixed resize).

    Unreadable files are skipped with a warning naming each (an error with `strict`); a domain left with no
    readable image is an error naming its folder."""

    def __init__(self, folder: str | os.PathLike, *, channels: int, preprocess: str, load_size: int,
                 crop_size: int, cache: bool, strict: bool, role: str = "domain"):
        self.folder = Path(folder)
        self.channels, self.preprocess = channels, preprocess
        self.load_size, self.crop_size = load_size, crop_size
        files = list_images(self.folder, role)
        self.files: list[Path] = []
        self.cache: list[np.ndarray] | None = [] if cache else None
        for f in files:
            try:
                if self.cache is not None:
                    self.cache.append(self._load(f))
                else:
                    with Image.open(f) as im:  # header only: catches non-images cheaply
                        im.size  # noqa: B018
            except (CorruptImage, OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
                self._skip(f, e, strict)
                continue
            self.files.append(f)
        if not self.files:
            raise InputError(f"{self.folder}: {role} folder has no readable image ({len(files)} files, all corrupt)")

    @staticmethod
    def _skip(path: Path, err: Exception, strict: bool) -> None:
        msg = str(err) if isinstance(err, CorruptImage) else f"{path}: unreadable or corrupt image ({err})"
        if strict:
            raise CorruptImage(msg) from None
        warnings.warn(f"{msg}; skipped", stacklevel=3)

    def _load(self, path: Path) -> np.ndarray:
        arr = read_image(path, self.channels)
        return fixed_transform(arr, self.preprocess, self.load_size, self.crop_size)

    def __len__(self) -> int:
        return len(self.files)

    def get(self, index: int) -> tuple[np.ndarray, Path]:
        if self.cache is not None:
            return self.cache[index], self.files[index]
        for k in range(len(self.files)):  # a file that fails to decode late is skipped too
            i = (index + k) % len(self.files)
            try:
                return self._load(self.files[i]), self.files[i]
            except CorruptImage as e:
                self._skip(self.files[i], e, strict=False)
        raise InputError(f"{self.folder}: no readable image left")


class UnpairedDataset(Dataset):
    """The reference's `UnalignedDataset`: item i is A[i % |A|] with a uniformly random B, each through the
    same preprocessing; length max(|A|, |B|). Items: {"a": (C, H, W), "b": (C, H, W)} in [-1, 1]."""

    def __init__(self, folder_a: str | os.PathLike, folder_b: str | os.PathLike, *, channels: int = 3,
                 preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256,
                 use_flip: bool = True, cache: bool = True, cache_max_images: int = 5000, strict: bool = False):
        if preprocess not in PREPROCESS:
            raise InputError(f"preprocess={preprocess!r}: expected one of {', '.join(PREPROCESS)}")
        n_files = sum(len(list_images(f, r)) for f, r in ((folder_a, "domain A"), (folder_b, "domain B")))
        use_cache = cache and n_files <= cache_max_images
        kw = dict(channels=channels, preprocess=preprocess, load_size=load_size, crop_size=crop_size,
                  cache=use_cache, strict=strict)
        self.a = ImageSet(folder_a, role="domain A", **kw)
        self.b = ImageSet(folder_b, role="domain B", **kw)
        self.preprocess, self.crop_size, self.use_flip = preprocess, crop_size, use_flip

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        arr_a, path_a = self.a.get(index % len(self.a))
        arr_b, path_b = self.b.get(int(torch.randint(0, len(self.b), ())))
        return {"a": random_transform(arr_a, self.preprocess, self.crop_size, self.use_flip, str(path_a)),
                "b": random_transform(arr_b, self.preprocess, self.crop_size, self.use_flip, str(path_b))}


def center_crop_or_resize(arr: np.ndarray, size: int) -> torch.Tensor:
    """For evaluation: resize the short side to `size` (bicubic), centre-crop to size x size;
    (C, size, size) float32 in [-1, 1]."""
    h, w = arr.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    arr = _resize(arr, nw, nh)
    i, j = (nh - size) // 2, (nw - size) // 2
    return array_to_tensor(arr[i:i + size, j:j + size])


# -- paired data (pix2pix)
UNPAIRED_HINT = "for unpaired data use --method cyclegan, cut or fastcut"


def paired_files(folder_a: str | os.PathLike, folder_b: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Images of two folders paired by file name without its suffix (photo.jpg <-> photo.png), in name order.
    An error naming the first image without a partner (or with two) when the names do not match one to one."""
    files = {}
    for folder, role in ((folder_a, "domain A"), (folder_b, "domain B")):
        by_stem: dict[str, Path] = {}
        for f in list_images(folder, role):
            if f.stem in by_stem:
                raise InputError(f"{f}: same name as {by_stem[f.stem].name}; paired images are matched by name, "
                                 f"so each name must appear once per folder")
            by_stem[f.stem] = f
        files[role] = by_stem
    a, b = files["domain A"], files["domain B"]
    lonely = [(a[k], folder_b) for k in sorted(a) if k not in b] + [(b[k], folder_a) for k in sorted(b) if k not in a]
    if lonely:
        f, other = lonely[0]
        raise InputError(f"{f}: no image named {f.stem}.* in {other} ({len(lonely)} of {len(a) + len(b)} images "
                         f"unmatched); paired data needs the same file names in both folders ({UNPAIRED_HINT})")
    return [(a[k], b[k]) for k in sorted(a)]


def paired_source(data: str = "", data_a: str = "", data_b: str = "", split: str = "train"
                  ) -> tuple[Path, Path] | Path:
    """Where a split's pairs are: (folder A, folder B) matched by name (`--data-a/--data-b`, or
    `data/{split}A`, `data/{split}B`), else the folder of side-by-side A|B images `data/{split}` (the
    reference's aligned layout)."""
    if data_a or data_b:
        return Path(data_a), Path(data_b)
    root = Path(data)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found (expected {split}A/ and {split}B/ or {split}/ inside)")
    if (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir():
        return root / f"{split}A", root / f"{split}B"
    if (root / split).is_dir():
        return root / split
    raise InputError(f"{root}: no {split}A/ and {split}B/ (pairs with matching file names) nor {split}/ "
                     f"(side-by-side A|B images) inside")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; CorruptImage naming the file when it cannot be read."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise CorruptImage(f"{path}: unreadable or corrupt image ({str(e).splitlines()[0][:100]})") from None


def split_aligned(arr: np.ndarray, where: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """A side-by-side A|B image (H, 2W, C) -> its halves (H, W, C), (H, W, C); odd widths are an error."""
    w = arr.shape[1]
    if w % 2:
        raise InputError(f"{where}: {w} pixels wide; a side-by-side A|B image needs an even width (two halves "
                         f"of one size)")
    return arr[:, : w // 2], arr[:, w // 2:]


class PairedDataset(Dataset):
    """pix2pix's data: aligned pairs, given as two folders matched by file name (`paired_files`) or as one
    folder of side-by-side A|B images (the reference's `AlignedDataset`). Both images of a pair get the same
    resize, crop and flip, so pixels stay in correspondence. Items {"a": (C, H, W), "b": (C, H, W)} in [-1, 1];
    length: the number of pairs.

    Checked up front from the file headers: unmatched names, pairs of different sizes, A|B images of odd
    width (each an error naming the file). Unreadable files: the pair is skipped with a warning (`strict`: an
    error)."""

    def __init__(self, source: tuple[str | os.PathLike, str | os.PathLike] | str | os.PathLike, *,
                 channels: int = 3, preprocess: str = "resize_and_crop", load_size: int = 286, crop_size: int = 256,
                 use_flip: bool = True, cache: bool = True, cache_max_images: int = 5000, strict: bool = False):
        if preprocess not in PREPROCESS:
            raise InputError(f"preprocess={preprocess!r}: expected one of {', '.join(PREPROCESS)}")
        self.channels, self.preprocess = channels, preprocess
        self.load_size, self.crop_size, self.use_flip = load_size, crop_size, use_flip
        self.aligned = not isinstance(source, tuple)
        if self.aligned:
            pairs: list[tuple[Path, Path | None]] = [(f, None) for f in list_images(source, "A|B image")]
        else:
            pairs = list(paired_files(*source))  # type: ignore[misc]
        self.pairs: list[tuple[Path, Path | None]] = []
        use_cache = cache and len(pairs) * (1 if self.aligned else 2) <= cache_max_images
        self.cache: list[tuple[np.ndarray, np.ndarray]] | None = [] if use_cache else None
        for fa, fb in pairs:
            try:
                wa, ha = image_size(fa)
                if fb is None:
                    if wa % 2:
                        raise InputError(f"{fa}: {wa} pixels wide; a side-by-side A|B image needs an even width "
                                         f"(two halves of one size)")
                else:
                    wb, hb = image_size(fb)
                    if (wa, ha) != (wb, hb):
                        raise InputError(f"{fb}: {wb}x{hb} pixels, its pair {fa} is {wa}x{ha}; paired images "
                                         f"need one size")
                if self.cache is not None:
                    self.cache.append(self._load(fa, fb))
            except CorruptImage as e:
                ImageSet._skip(fa, e, strict)
                continue
            self.pairs.append((fa, fb))
        if not self.pairs:
            raise InputError(f"{pairs[0][0].parent}: no readable pair ({len(pairs)} pairs, all corrupt)")

    def _load(self, fa: Path, fb: Path | None) -> tuple[np.ndarray, np.ndarray]:
        if fb is None:
            a, b = split_aligned(read_image(fa, self.channels), str(fa))
        else:
            a, b = read_image(fa, self.channels), read_image(fb, self.channels)
        return (fixed_transform(a, self.preprocess, self.load_size, self.crop_size),
                fixed_transform(b, self.preprocess, self.load_size, self.crop_size))

    def __len__(self) -> int:
        return len(self.pairs)

    def _get(self, index: int) -> tuple[np.ndarray, np.ndarray, Path]:
        if self.cache is not None:
            return (*self.cache[index], self.pairs[index][0])
        for k in range(len(self.pairs)):  # a pair that fails to decode late is skipped too
            fa, fb = self.pairs[(index + k) % len(self.pairs)]
            try:
                return (*self._load(fa, fb), fa)
            except CorruptImage as e:
                ImageSet._skip(fa, e, strict=False)
        raise InputError(f"{self.pairs[0][0].parent}: no readable pair left")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        a, b, fa = self._get(index)
        # one crop and one flip for both: transform them stacked on the channel axis
        ab = random_transform(np.concatenate([a, b], axis=2), self.preprocess, self.crop_size, self.use_flip,
                              str(fa))  # (2C, H, W)
        return {"a": ab[: a.shape[2]], "b": ab[a.shape[2]:]}


def load_pairs(source: tuple[Path, Path] | Path, channels: int, size: int, limit: int
               ) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
    """For evaluation: up to `limit` pairs (`paired_source`), each image resized and centre-cropped to `size`:
    (files of A, (N, C, size, size), (N, C, size, size))."""
    if isinstance(source, tuple):
        pairs: list[tuple[Path, Path | None]] = list(paired_files(*source))[:limit]
    else:
        pairs = [(f, None) for f in list_images(source, "A|B image")[:limit]]
    a, b = [], []
    for fa, fb in pairs:
        if fb is None:
            xa, xb = split_aligned(read_image(fa, channels), str(fa))
        else:
            xa, xb = read_image(fa, channels), read_image(fb, channels)
        a.append(center_crop_or_resize(xa, size))
        b.append(center_crop_or_resize(xb, size))
    return [p[0] for p in pairs], torch.stack(a), torch.stack(b)
