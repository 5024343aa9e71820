"""Camera motion rendered over real photos: pans, zooms, slight rotations and a moving object pasted on top, as
(T, size, size, 3) uint8 clips (`render_camera_motion`) and as a dataset of clips fixed by (seed, item)
(`PhotoMotion`). No training code or Typer here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..engine.errors import InputError
from .data import to_tensor


def load_photo(path: str | os.PathLike, max_side: int = 320) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: unreadable image")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    s = max_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return img


def render_camera_motion(photo: np.ndarray, length: int, size: int, params: dict[str, float],
                         sprite: np.ndarray | None = None) -> np.ndarray:
    """A (length, size, size, 3) uint8 clip of a virtual camera moving over `photo`.

    params: cx, cy (start centre, 0-1 of the photo), view (window side, fraction of the short side),
    vx, vy (window sides per frame), zoom (window scale factor per frame), rot (degrees per frame);
    optional sprite_x/y, sprite_vx/vy (output pixels per frame) for a moving object pasted on top.
    """
    h, w = photo.shape[:2]
    short = min(h, w)
    frames = []
    view = params["view"] * short
    cx, cy = params["cx"] * w, params["cy"] * h
    for t in range(length):
        side = view * params["zoom"] ** t
        x = cx + params["vx"] * view * t
        y = cy + params["vy"] * view * t
        s = size / side
        m = cv2.getRotationMatrix2D((x, y), params["rot"] * t, s)
        m[0, 2] += size / 2 - x
        m[1, 2] += size / 2 - y
        frame = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if sprite is not None:
            sh, sw = sprite.shape[:2]
            sx = int(round(params["sprite_x"] + params["sprite_vx"] * t))
            sy = int(round(params["sprite_y"] + params["sprite_vy"] * t))
            x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(sx + sw, size), min(sy + sh, size)
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = sprite[y0 - sy:y1 - sy, x0 - sx:x1 - sx]
        frames.append(frame)
    return np.stack(frames)


def random_motion(rng: np.random.Generator, size: int, max_speed: float = 0.04) -> dict[str, float]:
    """Pans, zooms and slight rotations typical of hand-held and tripod footage, plus (half the time) an object."""
    speed = rng.uniform(0, max_speed)
    ang = rng.uniform(0, 2 * math.pi)
    p = {"cx": rng.uniform(0.3, 0.7), "cy": rng.uniform(0.3, 0.7), "view": rng.uniform(0.3, 0.7),
         "vx": speed * math.cos(ang), "vy": speed * math.sin(ang),
         "zoom": float(np.exp(rng.uniform(-0.03, 0.03))) if rng.random() < 0.5 else 1.0,
         "rot": rng.uniform(-1.0, 1.0) if rng.random() < 0.3 else 0.0}
    if rng.random() < 0.5:
        p.update(sprite_x=rng.uniform(0, size * 0.7), sprite_y=rng.uniform(0, size * 0.7),
                 sprite_vx=rng.uniform(-2, 2) * size / 64, sprite_vy=rng.uniform(-2, 2) * size / 64)
    return p


class PhotoMotion(Dataset):
    """Clips of camera motion (pans, zooms, rotation, a moving object) rendered from real photos on the fly;
    item i is fixed by (seed, i): (T, 3, size, size) in [-1, 1] (or 1 channel when gray)."""

    def __init__(self, photos: Sequence[str | os.PathLike], length: int, size: int = 64, items: int = 100_000,
                 seed: int = 0, gray: bool = False, max_speed: float = 0.04):
        if not photos:
            raise InputError("PhotoMotion: no photos given")
        self.photos = [load_photo(p) for p in photos]
        self.length, self.size, self.items, self.seed, self.gray, self.max_speed = \
            length, size, items, seed, gray, max_speed

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        photo = self.photos[rng.integers(len(self.photos))]
        params = random_motion(rng, self.size, self.max_speed)
        sprite = None
        if "sprite_x" in params:
            src = self.photos[rng.integers(len(self.photos))]
            side = int(self.size * rng.uniform(0.15, 0.35))
            y0, x0 = rng.integers(0, src.shape[0] - side), rng.integers(0, src.shape[1] - side)
            sprite = src[y0:y0 + side, x0:x0 + side]
        clip = render_camera_motion(photo, self.length, self.size, params, sprite)
        if self.gray:
            clip = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip])[..., None]
        return to_tensor(clip)
