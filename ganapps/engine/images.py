"""The one [-1, 1] <-> uint8 conversion (tensors, channels-last arrays, PIL images) and the image, video and
volume file-suffix lists every task and the metrics share. Imports torch, numpy and Pillow only; no task.

Images cross every boundary as float32 in [-1, 1]; on disk and in arrays they are uint8 in [0, 255], with
value v <-> (v / 127.5 - 1) and back by rounding to the nearest level after clamping to [-1, 1].
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm", ".m4v")
VOLUME_SUFFIXES = (".nii", ".nii.gz")  # NIfTI; DICOM series are folders


def has_suffix(path: str | os.PathLike, suffixes: tuple[str, ...]) -> bool:
    """Whether the file name ends in one of `suffixes`, case-insensitively (so ".nii.gz" works)."""
    return os.fspath(path).lower().endswith(suffixes)


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 values in [0, 255], any shape -> float32 in [-1, 1], same shape."""
    return x.float() / 127.5 - 1.0


def float_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float values, any shape and device -> uint8 on the CPU, same shape ([-1, 1] -> [0, 255], clamped first)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Channels-last uint8 (..., H, W, C) -> channels-first float32 (..., C, H, W) in [-1, 1]; e.g. an image
    (H, W, C) -> (C, H, W), frames (T, H, W, C) -> (T, C, H, W). The array is copied, never shared."""
    t = torch.from_numpy(np.array(arr, copy=True))
    return uint8_to_float(t.movedim(-1, -3))


def tensor_to_array(x: torch.Tensor) -> np.ndarray:
    """Channels-first (..., C, H, W) in [-1, 1] -> channels-last uint8 (..., H, W, C) on the CPU."""
    return float_to_uint8(x).movedim(-3, -1).numpy()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """One image (C, H, W) in [-1, 1], C = 1 or 3 -> a PIL image ("L" or "RGB")."""
    arr = tensor_to_array(x)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
