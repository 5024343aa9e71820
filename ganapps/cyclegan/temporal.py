"""Temporal consistency of translated clips: optical flow between input frames (OpenCV DIS or Farneback),
occlusion masks from a forward-backward check, the flow-guided blend that carries the previous output along the
motion and resets at shot cuts, the warping error of Lai et al. 2018, and clips rendered with known motion to
measure it. Numpy + OpenCV on (H, W, C) frames; no torch, no training code, no Typer here.

    >>> filt = TemporalFilter(strength=0.8)
    >>> smooth = [filt(frame, out) for frame, out in zip(frames, per_frame_outputs)]   # uint8 in, [0, 1] floats

Flow convention (OpenCV's): `flow = estimate(src, dst)` gives src(p) ~ dst(p + flow(p)), so
`warp(dst_image, flow)` resamples dst into src's pixel grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")


def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W, 1) uint8 -> (H, W) uint8 luma (ITU-R BT.601, as OpenCV's RGB2GRAY)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense optical flow between two gray uint8 frames (H, W) -> (H, W, 2) float32 pixels (dx, dy), with
    src(p) ~ dst(p + flow(p)). "dis": DIS (Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse
    Search"), medium preset; "farneback": Farneback 2003 (pyramid 0.5 x 3, window 15, 3 iterations)."""

    def __init__(self, method: str = "dis"):
        if method not in FLOW_METHODS:
            raise ValueError(f"flow method {method!r}: expected one of {', '.join(FLOW_METHODS)}")
        self.method = method
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        if self._dis is not None:
            return self._dis.calc(src, dst, None)
        return cv2.calcOpticalFlowFarneback(src, dst, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """out(p) = image(p + flow(p)), bilinear, border replicated. image (H, W[, C]) float32, flow (H, W, 2) ->
    the image's shape (a single channel keeps its axis)."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    out = cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out[..., None] if image.ndim == 3 and out.ndim == 2 else out


def consistency_mask(bwd: np.ndarray, fwd: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Pixels of frame t whose motion is trustworthy, (H, W) bool: the backward flow `bwd` (t -> t-1) lands
    inside frame t-1, and the forward flow `fwd` (t-1 -> t) found there brings it back, as the check of
    Sundaram et al. 2010 (used by Ruder et al. 2016 for video style transfer):
    |bwd + fwd(p + bwd)|^2 <= alpha (|bwd|^2 + |fwd(p + bwd)|^2) + beta. Fails at occlusions and flow errors."""
    h, w = bwd.shape[:2]
    xs, ys = _grid(h, w)
    tx, ty = xs + bwd[..., 0], ys + bwd[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    back = warp(fwd, bwd)  # fwd sampled at p + bwd(p)
    err = ((bwd + back) ** 2).sum(-1)
    bound = alpha * ((bwd**2).sum(-1) + (back**2).sum(-1)) + beta
    return inside & (err <= bound)


@dataclass
class FilterStep:
    """What the filter did on one frame: `cut` (the state was reset: first frame or a detected shot change),
    `valid` (fraction of pixels whose motion and colour were explained by the previous frame)."""

    cut: bool
    valid: float


class TemporalFilter:
    """Flow-guided temporal consistency for per-frame outputs (blind: works on any image-to-image net).

    For frame t: the backward and forward DIS flows between input frames t and t-1 give the previous output
    warped into frame t, W_t, and a mask m_t of pixels whose motion passes the forward-backward check
    (`consistency_mask`) and whose input colour matches the warped previous input within `colour_tolerance`
    (mean |difference| over channels, in [0, 1]). The output is O'_t = O_t + strength * m~_t * (W_t - O_t),
    m~ the mask softened by a Gaussian of `feather` pixels (no seams at occlusion borders): a running average
    along motion trajectories, as the short-term term of Ruder et al. 2016 / the blending of Lai et al. 2018,
    without their learned parts. When fewer than `cut_fraction` of the pixels are valid (a shot cut, or motion
    the flow cannot follow) the state resets and O'_t = O_t, so a new shot never inherits the previous one.

    `__call__(frame, output)`: frame (H, W, C) uint8 input, output (H, W, C) float32 in [0, 1] (the per-frame
    translation) -> (H, W, C) float32 in [0, 1]. `last` holds the FilterStep of the latest call.
    """

    def __init__(self, strength: float = 0.8, *, cut_fraction: float = 0.5, colour_tolerance: float = 0.1,
                 feather: float = 1.5, flow: str = "dis"):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength={strength}: expected 0 <= strength < 1 (0: per-frame, no blending)")
        if not 0.0 <= cut_fraction <= 1.0:
            raise ValueError(f"cut_fraction={cut_fraction}: expected a fraction in [0, 1]")
        self.strength, self.cut_fraction, self.colour_tolerance, self.feather = \
            strength, cut_fraction, colour_tolerance, feather
        self.flow = FlowEstimator(flow)
        self.reset()

    def reset(self) -> None:
        self._prev_gray: np.ndarray | None = None
        self._prev_frame: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.last = FilterStep(cut=True, valid=0.0)

    def motion_mask(self, frame: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(backward flow t -> t-1 (H, W, 2), valid mask (H, W) bool) against the previous frame."""
        bwd = self.flow(gray, self._prev_gray)
        fwd = self.flow(self._prev_gray, gray)
        mask = consistency_mask(bwd, fwd)
        prev = warp(self._prev_frame, bwd)  # (H, W, C) float32 in [0, 1]
        colour = np.abs(frame.astype(np.float32) / 255.0 - prev).mean(-1)
        return bwd, mask & (colour <= self.colour_tolerance)

    def __call__(self, frame: np.ndarray, output: np.ndarray) -> np.ndarray:
        if frame.shape[:2] != output.shape[:2]:
            raise ValueError(f"frame {frame.shape} and output {output.shape} differ in size")
        gray = to_gray(frame)
        out = output.astype(np.float32, copy=False)
        if self._prev_gray is not None and self._prev_gray.shape != gray.shape:
            self.reset()
        if self._prev_gray is None or self.strength == 0.0:
            self.last = FilterStep(cut=self._prev_gray is None, valid=0.0)
        else:
            bwd, mask = self.motion_mask(frame, gray)
            valid = float(mask.mean())
            if valid < self.cut_fraction:
                self.last = FilterStep(cut=True, valid=valid)
            else:
                soft = mask.astype(np.float32)
                if self.feather > 0:
                    soft = cv2.GaussianBlur(soft, (0, 0), self.feather) * soft  # feathered inside, 0 outside
                carried = warp(self._prev_out, bwd)
                out = out + (self.strength * soft)[..., None] * (carried - out)
                self.last = FilterStep(cut=False, valid=valid)
        self._prev_gray, self._prev_out = gray, out
        self._prev_frame = frame.astype(np.float32) / 255.0
        return out


# --------------------------------------------------------------------------- measuring flicker


def warping_error(cur: np.ndarray, prev: np.ndarray, bwd: np.ndarray, mask: np.ndarray) -> float:
    """Warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency") for one frame pair, as
    mean |O_t - warp(O_{t-1})| over the non-occluded pixels and the channels, frames (H, W, C) in [0, 1]
    (the paper squares the difference; this is the L1 form). `bwd` (H, W, 2) maps frame t to t-1, `mask`
    (H, W) bool marks pixels visible in both. NaN when no pixel is valid."""
    if cur.ndim == 2:
        cur, prev = cur[..., None], prev[..., None]
    warped = warp(prev.astype(np.float32), bwd)
    diff = np.abs(cur.astype(np.float32) - warped).mean(-1)  # (H, W)
    n = int(mask.sum())
    return float(diff[mask].sum() / n) if n else float("nan")


PSNR_CAP_DB = 100.0  # identical images (as the video package's metrics cap it)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1], capped at PSNR_CAP_DB (identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(1.0 / mse))


@dataclass
class FlickerMeter:
    """Streams of frames (input, per-frame output, temporal output, ...) measured pair by pair: the warping
    error of each stream over the same non-occluded pixels, averaged over all frame pairs within shots, and the
    PSNR of every stream against a reference stream (the per-frame output), overall and on the first frame of
    each shot. Motion comes from `update(..., motion=(bwd, mask))` when it is known (rendered clips), else from
    `flow` (a different estimator than the filter's by default, Farneback vs DIS) with the forward-backward
    check; a pair is a cut when it is known to be one, or (estimated motion) when fewer than `cut_fraction` of
    the pixels pass the check and the colour test of `TemporalFilter`."""

    reference: str = "per_frame"
    flow: str = "farneback"
    cut_fraction: float = 0.5
    colour_tolerance: float = 0.1
    errors: dict[str, list[float]] = field(default_factory=dict)
    psnr_all: dict[str, list[float]] = field(default_factory=dict)
    psnr_shot_start: dict[str, list[float]] = field(default_factory=dict)
    shot_starts: list[int] = field(default_factory=list)
    frames: int = 0

    def __post_init__(self):
        self._flow = FlowEstimator(self.flow)
        self._prev: dict[str, np.ndarray] | None = None
        self._prev_gray: np.ndarray | None = None

    def _estimated_motion(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        gray = to_gray(frame)
        prev_gray, self._prev_gray = self._prev_gray, gray
        bwd = self._flow(gray, prev_gray)
        mask = consistency_mask(bwd, self._flow(prev_gray, gray))
        prev = warp(self._prev["input"].astype(np.float32), bwd)
        colour = np.abs(frame.astype(np.float32) / 255.0 - prev).mean(-1) <= self.colour_tolerance
        return bwd, mask, float((mask & colour).mean()) < self.cut_fraction

    def update(self, streams: dict[str, np.ndarray], *, cut: bool | None = None,
               motion: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """streams: name -> (H, W, C) frame; "input" (uint8) is required, the others float32 in [0, 1].
        `cut`: known shot boundary before this frame (None: detect it); `motion`: known (bwd flow, mask)."""
        cur = {k: (v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v.astype(np.float32))
               for k, v in streams.items()}
        if self._prev is None:
            is_cut = True
            self._prev_gray = to_gray(streams["input"])
        elif motion is not None:
            bwd, mask = motion
            is_cut = bool(cut)
            self._prev_gray = to_gray(streams["input"])
        else:
            bwd, mask, detected = self._estimated_motion(streams["input"])
            is_cut = detected if cut is None else cut
        if is_cut:
            self.shot_starts.append(self.frames)
        else:
            for name, img in cur.items():
                self.errors.setdefault(name, []).append(warping_error(img, self._prev[name], bwd, mask))
        ref = cur.get(self.reference)
        if ref is not None:
            for name, img in cur.items():
                if name not in ("input", self.reference):
                    value = psnr(img, ref)
                    (self.psnr_shot_start if is_cut else self.psnr_all).setdefault(name, []).append(value)
        self._prev = cur
        self.frames += 1

    def summary(self) -> dict[str, float | int | list[int]]:
        """Mean warping errors in [0, 1] units (`warp_error/<stream>`), the excess of each output over the
        input's own (`excess/<stream>`), its ratio to the reference's (`excess_ratio/<stream>`), and PSNR in dB
        against the reference, capped at PSNR_CAP_DB (`psnr_db/<stream>` mean over frames, `psnr_min_db/<stream>` the lowest frame,
        `psnr_shot_start_db/<stream>` the lowest over the first frames of shots)."""
        out: dict[str, float | int | list[int]] = {"frames": self.frames, "pairs": len(self.errors.get("input", [])),
                                                   "shots": len(self.shot_starts), "shot_starts": self.shot_starts}
        means = {k: float(np.nanmean(v)) if v else float("nan") for k, v in self.errors.items()}
        for k, v in means.items():
            out[f"warp_error/{k}"] = v
        base = means.get("input")
        ref_excess = None if base is None or self.reference not in means else means[self.reference] - base
        for k, v in means.items():
            if k == "input" or base is None:
                continue
            out[f"excess/{k}"] = v - base
            if k != self.reference and ref_excess:
                out[f"excess_ratio/{k}"] = (v - base) / ref_excess
        for k, v in self.psnr_all.items():
            out[f"psnr_db/{k}"] = float(np.mean(v))
            out[f"psnr_min_db/{k}"] = float(min(v))
        for k, v in self.psnr_shot_start.items():
            out[f"psnr_shot_start_db/{k}"] = float(min(v))
        return out


# --------------------------------------------------------------------------- clips with known motion


@dataclass
class Shot:
    """Camera motion over one photo for `frames` frames: pan `pan` (output pixels per frame, x and y), zoom
    factor per frame, rotation in degrees per frame, and optionally a square sprite cut from `sprite_from`
    (another photo) moving at `sprite_velocity` whole pixels per frame from `sprite_start`."""

    photo: np.ndarray
    frames: int
    pan: tuple[float, float] = (1.3, 0.45)
    zoom: float = 1.0
    rotation: float = 0.0
    sprite_from: np.ndarray | None = None
    sprite_size: int = 0
    sprite_start: tuple[int, int] = (0, 0)
    sprite_velocity: tuple[int, int] = (2, 1)


def _affine3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def render_shots(shots: Sequence[Shot], size: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray | None],
                                                                          list[np.ndarray | None]]:
    """Render a clip of consecutive shots at (H, W) with its true motion: returns frames (H, W, 3) uint8, and
    for each frame the backward flow to the previous frame (H, W, 2) and the mask of pixels visible in both
    (H, W) bool, None at the first frame of each shot (a cut). See `iter_shots`."""
    frames, flows, masks = [], [], []
    for frame, flow, mask in iter_shots(shots, size):
        frames.append(frame)
        flows.append(flow)
        masks.append(mask)
    return frames, flows, masks


def _paste_sprite(frame: np.ndarray, sprite: np.ndarray, shot: Shot, t: int) -> tuple[int, int, int, int]:
    """Paste the shot's sprite into `frame` at its place at time t (clipped to the frame); returns its box
    (x0, y0, x1, y1), which may reach outside the frame."""
    h, w = frame.shape[:2]
    x0 = shot.sprite_start[0] + shot.sprite_velocity[0] * t
    y0 = shot.sprite_start[1] + shot.sprite_velocity[1] * t
    box = (x0, y0, x0 + sprite.shape[1], y0 + sprite.shape[0])
    fx0, fy0, fx1, fy1 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = sprite[fy0 - box[1]:fy1 - box[1], fx0 - box[0]:fx1 - box[0]]
    return box


def iter_shots(shots: Sequence[Shot], size: tuple[int, int], *, with_motion: bool = True):
    """Yield (frame (H, W, 3) uint8, backward flow (H, W, 2) or None, visible mask (H, W) or None) frame by frame
    (a long clip is never held in memory); without `with_motion` only frames, flow and mask None.

    Each photo is first resized so that its short side is 1.25 x the distance the view sweeps (area
    interpolation when shrinking, so the clip is not aliased), then frame t is the photo under the affine map A_t
    (pan, zoom and rotation about the frame centre, bilinear), so pixel p of frame t was at A_{t-1} A_t^-1 p in
    frame t-1. Pixels that come from outside frame t-1, or from or next to the sprite where the background was
    covered, are masked out; the first frame of each shot has no motion (a cut)."""
    h, w = size
    xs, ys = _grid(h, w)
    for shot in shots:
        ph, pw = shot.photo.shape[:2]
        travel = shot.frames * max(abs(shot.pan[0]), abs(shot.pan[1])) + max(h, w)  # photo pixels the view sweeps
        scale = 1.25 * travel / min(ph, pw)
        photo = cv2.resize(shot.photo, (round(pw * scale), round(ph * scale)),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        ph, pw = photo.shape[:2]
        prev_a: np.ndarray | None = None
        prev_box: tuple[int, int, int, int] | None = None
        sprite = None
        if shot.sprite_from is not None and shot.sprite_size > 0:
            s = shot.sprite_size
            sprite = cv2.resize(shot.sprite_from, (s, s), interpolation=cv2.INTER_AREA)
        for t in range(shot.frames):
            # the frame centre pans over the photo; zoom and rotation about the frame centre
            cx = pw / 2 + shot.pan[0] * (t - shot.frames / 2)
            cy = ph / 2 + shot.pan[1] * (t - shot.frames / 2)
            m = cv2.getRotationMatrix2D((cx, cy), shot.rotation * t, shot.zoom**t)
            m[0, 2] += w / 2 - cx
            m[1, 2] += h / 2 - cy
            a = _affine3(m)
            frame = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            box = None if sprite is None else _paste_sprite(frame, sprite, shot, t)
            if prev_a is None or not with_motion:
                yield frame, None, None
            else:
                rel = prev_a @ np.linalg.inv(a)  # frame t -> frame t-1
                tx = rel[0, 0] * xs + rel[0, 1] * ys + rel[0, 2]
                ty = rel[1, 0] * xs + rel[1, 1] * ys + rel[1, 2]
                mask = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
                if box is not None:
                    in_now = _in_box(xs, ys, box, 0)
                    vx, vy = shot.sprite_velocity
                    tx = np.where(in_now, xs - vx, tx)
                    ty = np.where(in_now, ys - vy, ty)
                    now_inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
                    # sprite pixels: visible before if the sprite was in frame there (and not at its edge);
                    # background pixels: lost where the sprite covered them before, or at its edges now
                    sprite_ok = in_now & now_inside & ~_edge(xs, ys, box) & _in_box(tx, ty, prev_box, 0)
                    back_ok = ~_in_box(xs, ys, box, 1) & mask & ~_in_box(tx, ty, prev_box, 1)
                    mask = sprite_ok | back_ok
                yield frame, np.stack([tx - xs, ty - ys], -1).astype(np.float32), mask
            prev_a, prev_box = a, box


def _in_box(x: np.ndarray, y: np.ndarray, box: tuple[int, int, int, int] | None, margin: int) -> np.ndarray:
    if box is None:
        return np.zeros(x.shape, bool)
    return (x >= box[0] - margin) & (x <= box[2] - 1 + margin) & (y >= box[1] - margin) & (y <= box[3] - 1 + margin)


def _edge(x: np.ndarray, y: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    return _in_box(x, y, box, 0) & ~_in_box(x, y, (box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1), 0)
