"""The footage renderer of the `video_footage` recipe: clips that look like filmed footage, made from real photos.
Static cameras with small local motion (head sway, blinks, lighting flicker), slow and fast pans and zooms with
hand-held jitter and motion blur, independently moving cut-outs that occlude the background and enter or leave
the frame, sensor noise, then H.264 (libx264 through PyAV) at realistic bit rates. numpy, OpenCV and PyAV only:
no torch, no task code. Clips are (T, H, W, 3) uint8, the decoded H.264 frames (16 frames at 128x128 by default).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..engine.errors import InputError

KINDS = ("talking_head", "static_scene", "slow_pan", "fast_pan", "objects_static", "objects_pan")
# Disjoint splits of the photos; faces are lfw_subset (200 aligned 25x25 gray faces): 100-199 held out.
VAL_SCENES = ("chelsea.png", "coffee.png", "rocket.jpg", "flower.jpg", "grace_hopper.jpg")
TRAIN_SCENES = ("astronaut.png", "brick.png", "camera.png", "cell.png", "china.jpg", "coins.png", "color.png",
                "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
                "page.png", "retina.jpg", "text.png")
LFW_VAL, LFW_TRAIN = range(100, 200), range(100)
# Portraits: head ellipse (cx, cy, rx, ry) and eye centres as fractions of the photo (measured by eye).
PORTRAITS = {
    "grace_hopper.jpg": {"head": (0.52, 0.36, 0.19, 0.25), "eyes": ((0.43, 0.335), (0.61, 0.335)), "eye_r": 0.035},
    "astronaut.png": {"head": (0.44, 0.20, 0.12, 0.15), "eyes": ((0.40, 0.195), (0.48, 0.195)), "eye_r": 0.02},
}
LFW_EYES = ((0.31, 0.38), (0.69, 0.38))
CRFS = (18, 21, 23, 25, 27, 29)  # x264 constant rate factors: 35-260 kbps at 128x128@25 fps on these clips
FPS = 25


def load_rgb(path: str | Path, max_side: int = 720) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB, area-shrunk so its longer side is at most `max_side`."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: unreadable image")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    s = max_side / max(img.shape[:2])
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img


class Sources:
    """Photos and faces of one split ("val" or "train"), loaded once from the recipe's files (name -> path)."""

    def __init__(self, split: str, files: Mapping[str, str | Path]):
        if split not in ("val", "train"):
            raise ValueError(f"Sources: split={split!r}, expected 'val' or 'train'")
        names = VAL_SCENES if split == "val" else TRAIN_SCENES
        self.scenes = {n: load_rgb(files[n]) for n in names}
        self.portraits = [n for n in names if n in PORTRAITS]
        lfw = np.load(files["lfw_subset.npy"])  # (200, 25, 25) float in [0, 1]
        self.faces = [(lfw[i] * 255).round().astype(np.uint8) for i in (LFW_VAL if split == "val" else LFW_TRAIN)]


# --------------------------------------------------------------------------- motion primitives


def smooth_path(rng: np.random.Generator, t: np.ndarray, amp: float, fmin: float = 0.03, fmax: float = 0.25,
                terms: int = 3) -> np.ndarray:
    """Hand-held style wander: a sum of `terms` sinusoids (cycles per frame in [fmin, fmax]), peak ~ amp."""
    out = np.zeros_like(t, dtype=np.float64)
    for _ in range(terms):
        f, ph = rng.uniform(fmin, fmax), rng.uniform(0, 2 * np.pi)
        out += np.sin(2 * np.pi * f * t + ph) * rng.uniform(0.3, 1.0)
    return out * amp / terms


def camera_frame(photo: np.ndarray, size: int, cx: float, cy: float, side: float, rot_deg: float) -> np.ndarray:
    """The square window of `side` photo pixels centred at (cx, cy), rotated by rot_deg, resampled to size x size."""
    m = cv2.getRotationMatrix2D((cx, cy), rot_deg, size / side)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    return cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def soft_ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float, feather: float = 0.25) -> np.ndarray:
    """(h, w) float mask: 1 inside the ellipse, falling smoothly to 0 over `feather` of the radius."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / max(rx, 1e-3)) ** 2 + ((yy - cy) / max(ry, 1e-3)) ** 2)
    return np.clip((1 + feather - r) / feather, 0, 1) ** 2


def local_warp(frame: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """out(p) = frame(p - d(p)): content moves by d (pixels), bilinear, border reflected."""
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(frame, xx - dx.astype(np.float32), yy - dy.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def make_cutout(rng: np.random.Generator, src: Sources, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A moving object: an elliptical or rounded cut-out of another photo, or a face -> (rgb (h, w, 3), alpha)."""
    side = int(size * rng.uniform(0.18, 0.42))
    if rng.random() < 0.35:
        face = src.faces[rng.integers(len(src.faces))]
        rgb = cv2.resize(np.repeat(face[..., None], 3, -1), (side, side), interpolation=cv2.INTER_CUBIC)
        return rgb, soft_ellipse(side, side, side / 2, side / 2, side * 0.42, side * 0.5, 0.15)
    photo = list(src.scenes.values())[rng.integers(len(src.scenes))]
    hh, ww = side, int(side * rng.uniform(0.6, 1.6))
    scale = rng.uniform(0.5, 1.5)
    ph, pw = min(int(hh / scale), photo.shape[0] - 1), min(int(ww / scale), photo.shape[1] - 1)
    y0, x0 = rng.integers(0, photo.shape[0] - ph), rng.integers(0, photo.shape[1] - pw)
    rgb = cv2.resize(photo[y0:y0 + ph, x0:x0 + pw], (ww, hh), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        return rgb, soft_ellipse(hh, ww, ww / 2, hh / 2, ww / 2 - 1, hh / 2 - 1, 0.08)
    a = np.zeros((hh, ww), np.float32)  # a rounded rectangle, feathered by ~1 px
    r = max(2, min(hh, ww) // 5)
    cv2.rectangle(a, (r, 0), (ww - 1 - r, hh - 1), 1.0, -1)
    cv2.rectangle(a, (0, r), (ww - 1, hh - 1 - r), 1.0, -1)
    for cx, cy in ((r, r), (ww - 1 - r, r), (r, hh - 1 - r), (ww - 1 - r, hh - 1 - r)):
        cv2.circle(a, (cx, cy), r, 1.0, -1)
    return rgb, cv2.GaussianBlur(a, (3, 3), 0.8)


def paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: float, y: float, angle: float) -> np.ndarray:
    """Composite a cut-out whose centre is at (x, y) (sub-pixel, rotated) over a float frame."""
    h, w = frame.shape[:2]
    oh, ow = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((ow / 2, oh / 2), angle, 1.0)
    m[0, 2] += x - ow / 2
    m[1, 2] += y - oh / 2
    obj = cv2.warpAffine(rgb.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpAffine(alpha.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return frame * (1 - a[..., None]) + obj * a[..., None]


# --------------------------------------------------------------------------- one clip


def _framing(rng: np.random.Generator, src: Sources, kind: str, big: int, info: dict) -> tuple:
    """The photo a clip films and where: (photo, head ellipse or None, eyes, eye radius, cx0, cy0, view side)."""
    if kind == "talking_head" and (not src.portraits or rng.random() < 0.5):
        # a webcam close-up: an LFW face upscaled to fill the frame (gray, soft, like a low-end camera)
        fi = int(rng.integers(len(src.faces)))
        face = cv2.resize(src.faces[fi], (big, big), interpolation=cv2.INTER_CUBIC)
        tint = rng.uniform(0.85, 1.15, 3)  # white balance of a colour webcam
        photo = np.clip(np.repeat(face[..., None], 3, -1) * tint, 0, 255).astype(np.uint8)
        info["source"] = f"lfw_{fi}"
        head = (0.5 * big, 0.55 * big, 0.42 * big, 0.52 * big)
        eyes = [(ex * big, ey * big, 0.09 * big) for ex, ey in LFW_EYES]
        return photo, head, eyes, big / 2, big / 2, float(big)
    names = src.portraits if kind == "talking_head" else list(src.scenes)
    name = names[rng.integers(len(names))]
    photo = src.scenes[name]
    ph, pw = photo.shape[:2]
    info["source"] = name
    if kind != "talking_head":
        view = rng.uniform(0.35, 0.75) * min(ph, pw)
        return photo, None, [], rng.uniform(0.35, 0.65) * pw, rng.uniform(0.35, 0.65) * ph, view
    p = PORTRAITS[name]
    hx, hy, hrx, hry = p["head"]
    view = rng.uniform(2.6, 3.4) * hry * ph  # frame the head and shoulders
    cx0, cy0 = hx * pw + rng.uniform(-0.05, 0.05) * view, hy * ph + rng.uniform(0.05, 0.2) * view
    s = big / view
    head = ((hx * pw - cx0) * s + big / 2, (hy * ph - cy0) * s + big / 2, hrx * pw * s, hry * ph * s)
    eyes = [((ex * pw - cx0) * s + big / 2, (ey * ph - cy0) * s + big / 2, p["eye_r"] * pw * s) for ex, ey in p["eyes"]]
    return photo, head, eyes, cx0, cy0, view


def _pan(rng: np.random.Generator, kind: str, t: np.ndarray, px: float) -> tuple[float, float, float, np.ndarray]:
    """The camera's pan velocity (photo pixels per frame), zoom factor per frame and rotation (degrees) at each
    time t for a clip of `kind`; px: photo pixels per output pixel."""
    vx = vy = 0.0
    zoom, rot = 1.0, np.zeros(len(t))
    if kind in ("slow_pan", "objects_pan"):
        speed, ang = rng.uniform(0.3, 2.0), rng.uniform(0, 2 * np.pi)
        vx, vy = speed * math.cos(ang) * px, speed * math.sin(ang) * px
        if rng.random() < 0.3:
            zoom = float(np.exp(rng.uniform(-0.012, 0.012)))
    if kind == "fast_pan":
        speed, ang = rng.uniform(2.0, 6.0), rng.uniform(0, 2 * np.pi)
        vx, vy = speed * math.cos(ang) * px, speed * math.sin(ang) * px
        if rng.random() < 0.4:
            zoom = float(np.exp(rng.choice([-1, 1]) * rng.uniform(0.01, 0.035)))
        if rng.random() < 0.3:
            rot = t * rng.uniform(-0.8, 0.8)
    return vx, vy, zoom, rot


def render_clip(rng: np.random.Generator, src: Sources, kind: str, length: int = 16,
                size: int = 128) -> tuple[np.ndarray, dict]:
    """One clip before compression: (length, size, size, 3) uint8 and its parameters. Rendered at 2x and
    area-downsampled (lens/sensor anti-aliasing); fast pans average sub-frames over the shutter (motion blur)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    big = 2 * size
    t = np.arange(length, dtype=np.float64)
    info: dict = {"kind": kind}
    photo, head, eyes, cx0, cy0, view = _framing(rng, src, kind, big, info)
    # camera trajectory in photo pixels
    px = view / size  # photo pixels per output pixel
    still = kind in ("talking_head", "static_scene", "objects_static")
    handheld = rng.uniform(0.0, 0.6) if still else rng.uniform(0.2, 1.2)
    if rng.random() < 0.4 and still:
        handheld = 0.0  # tripod
    jx, jy = smooth_path(rng, t, handheld * px), smooth_path(rng, t, handheld * px)
    vx, vy, zoom, rot = _pan(rng, kind, t, px)
    accel = rng.uniform(-0.04, 0.04)  # gentle ease-in/out of the pan
    info.update(handheld_px=round(handheld, 2), pan_px=round(math.hypot(vx, vy) / px, 2), zoom=round(zoom, 4))
    shutter = 3 if kind == "fast_pan" else 1
    local = _local_motion(rng, kind, t, big, info)
    objects = _objects(rng, src, kind, t, size, info)
    flicker = 1 + smooth_path(rng, t, rng.uniform(0.0, 0.05), 0.1, 0.45) if rng.random() < 0.6 else np.ones(length)
    drift = 1 + t * rng.uniform(-0.004, 0.004)
    noise_sigma = rng.uniform(0.5, 4.0)
    info.update(flicker=round(float(np.abs(flicker - 1).max()), 3), noise_sigma=round(noise_sigma, 2))

    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32)
    frames = []
    for i in range(length):
        acc = np.zeros((big, big, 3), np.float32)
        for s in range(shutter):
            ti = i - 0.5 * s / max(shutter - 1, 1) if shutter > 1 else float(i)
            tt = ti + accel * ti * ti / 2
            cx, cy = cx0 + vx * tt + np.interp(ti, t, jx), cy0 + vy * tt + np.interp(ti, t, jy)
            acc += camera_frame(photo, big, cx, cy, view * zoom ** tt, float(np.interp(ti, t, rot))).astype(np.float32)
        frame = acc / shutter
        if local is not None and local[0] == "head":
            frame = _head_frame(frame, i, local, head, eyes, xx, yy)
        elif local is not None:
            _, wx, wy, cxw, cyw, rw = local
            m = soft_ellipse(big, big, cxw, cyw, rw, rw, 0.8)
            frame = local_warp(frame, m * wx[i], m * wy[i])
        for rgb, alpha, ox, oy, ovx, ovy, spin, bob in objects:
            frame = paste(frame, rgb, alpha, ox + ovx * i, oy + ovy * i + bob[i], spin * i)
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) * flicker[i] * drift[i]
        # sensor noise: read noise + shot noise, slightly correlated (demosaicking), then 8-bit quantisation
        n = cv2.GaussianBlur(rng.normal(0, 1, frame.shape).astype(np.float32), (3, 3), 0.5) * 1.6
        frame = frame + n * noise_sigma * (0.5 + np.sqrt(np.clip(frame, 0, 255) / 255.0))
        frames.append(np.clip(frame, 0, 255).round().astype(np.uint8))
    return np.stack(frames), info


def _local_motion(rng: np.random.Generator, kind: str, t: np.ndarray, big: int, info: dict) -> tuple | None:
    """Head sway, nod and a blink (talking head) or a wind-like wobble of one region (60% of static scenes)."""
    if kind == "talking_head":
        amp = rng.uniform(0.3, 2.0) * 2  # output px at 2x
        sx, sy = smooth_path(rng, t, amp, 0.04, 0.2), smooth_path(rng, t, amp * 0.6, 0.04, 0.2)
        nod = smooth_path(rng, t, rng.uniform(0, 1.5), 0.05, 0.2)  # degrees
        blink_at = int(rng.integers(2, len(t) - 2)) if rng.random() < 0.7 else -10
        info.update(head_amp_px=round(amp / 2, 2), blink_at=blink_at)
        return "head", sx, sy, nod, blink_at
    if kind == "static_scene" and rng.random() < 0.6:
        wob = rng.uniform(0.3, 1.5) * 2
        cxw, cyw = rng.uniform(0.2, 0.8) * big, rng.uniform(0.2, 0.8) * big
        rw = rng.uniform(0.15, 0.35) * big
        info["wobble_px"] = round(wob / 2, 2)
        return "wobble", smooth_path(rng, t, wob, 0.08, 0.3), smooth_path(rng, t, wob, 0.08, 0.3), cxw, cyw, rw
    return None


def _head_frame(frame: np.ndarray, i: int, local: tuple, head: tuple, eyes: list, xx: np.ndarray,
                yy: np.ndarray) -> np.ndarray:
    """Frame i of a talking head: the head region sways and nods; during a blink the eyelids pull down."""
    _, sx, sy, nod, blink_at = local
    big = frame.shape[0]
    hcx, hcy, hrx, hry = head
    m = soft_ellipse(big, big, hcx, hcy, hrx * 1.1, hry * 1.1, 0.35)
    a = math.radians(nod[i])
    rx_, ry_ = xx - hcx, yy - hcy
    dxr, dyr = (math.cos(a) - 1) * rx_ - math.sin(a) * ry_, math.sin(a) * rx_ + (math.cos(a) - 1) * ry_
    frame = local_warp(frame, m * (sx[i] + dxr), m * (sy[i] + dyr))
    closure = {blink_at: 0.6, blink_at + 1: 1.0, blink_at + 2: 0.4}.get(i, 0.0)
    if closure > 0:
        for ex, ey, er in eyes:
            em = soft_ellipse(big, big, ex + sx[i], ey + sy[i], er * 1.3, er * 0.9, 0.5)
            frame = local_warp(frame, np.zeros_like(em), em * closure * er * 1.1)
    return frame


def _objects(rng: np.random.Generator, src: Sources, kind: str, t: np.ndarray, size: int, info: dict) -> list:
    """Independently moving cut-outs (at the 2x render scale): 1-2 in the object kinds, sometimes 1 in a fast pan;
    half of them enter through the border, reaching the middle by frame ~8."""
    objects = []
    n_obj = int(rng.integers(1, 3)) if kind.startswith("objects") else (
        1 if kind == "fast_pan" and rng.random() < 0.2 else 0)
    for _ in range(n_obj):
        rgb, alpha = make_cutout(rng, src, size)
        speed, ang = rng.uniform(0.8, 5.0), rng.uniform(0, 2 * np.pi)
        ovx, ovy = speed * math.cos(ang), speed * math.sin(ang)
        if rng.random() < 0.5:
            x0 = size / 2 - ovx * rng.uniform(6, 12) + rng.uniform(-20, 20)
            y0 = size / 2 - ovy * rng.uniform(6, 12) + rng.uniform(-20, 20)
        else:
            x0, y0 = rng.uniform(0.15, 0.85) * size, rng.uniform(0.15, 0.85) * size
        objects.append((cv2.resize(rgb, None, fx=2, fy=2), cv2.resize(alpha, None, fx=2, fy=2), 2 * x0, 2 * y0,
                        2 * ovx, 2 * ovy, rng.uniform(-2, 2), smooth_path(rng, t, rng.uniform(0, 1.0) * 2)))
    info["objects"] = n_obj
    return objects


# --------------------------------------------------------------------------- compression


# BT.601 limited range, as FFmpeg's default for these sizes: RGB (0-255) -> Y'CbCr and back
_RGB2YUV = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_YUV2RGB = np.linalg.inv(_RGB2YUV)


def rgb_to_yuv420(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, H and W even -> (3H/2, W) uint8 planar yuv420p (chroma = mean of each 2x2 block).
    Converted in numpy rather than by FFmpeg's swscale, whose SIMD paths may round differently per CPU."""
    h, w = frame.shape[:2]
    yuv = frame.astype(np.float64) @ _RGB2YUV.T + np.array([16.0, 128.0, 128.0])
    y = yuv[..., 0]
    uv = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean((1, 3))  # (H/2, W/2, 2)
    planes = [y.ravel(), uv[..., 0].ravel(), uv[..., 1].ravel()]
    return np.clip(np.concatenate(planes).round(), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def yuv420_to_rgb(planar: np.ndarray) -> np.ndarray:
    """(3H/2, W) uint8 yuv420p -> (H, W, 3) uint8 RGB; chroma upsampled by repeating each sample 2x2."""
    h, w = planar.shape[0] * 2 // 3, planar.shape[1]
    flat = planar.ravel()
    y = flat[:h * w].reshape(h, w).astype(np.float64)
    u = flat[h * w:h * w * 5 // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    v = flat[h * w * 5 // 4:].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1)
    yuv = np.stack([y - 16.0, u - 128.0, v - 128.0], -1)
    return np.clip((yuv @ _YUV2RGB.T).round(), 0, 255).astype(np.uint8)


def h264(frames: np.ndarray, crf: int, fps: int = FPS) -> tuple[np.ndarray, bytes]:
    """Encode (T, H, W, 3) uint8 (H, W even) with libx264 (yuv420p, preset medium, CRF `crf`, one thread: the
    bit stream does not depend on the machine's core count) into an mp4 in memory and decode it back.
    -> (decoded frames (T, H, W, 3) uint8, mp4 bytes). Reproducible at the recipe's 128x128 (tested); at 64 or
    96 px, repeated encodes of the same frames gave different streams now and then (PyAV 18.1.0)."""
    try:
        import av
    except ImportError:
        raise InputError("footage clips need PyAV (H.264 through libx264): pip install 'ganapps[video]'") from None
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        st.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        for f in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420(f), format="yuv420p")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    data = buf.getvalue()
    with av.open(io.BytesIO(data)) as inp:
        dec = np.stack([yuv420_to_rgb(fr.to_ndarray(format="yuv420p")) for fr in inp.decode(video=0)])
    if dec.shape != frames.shape:
        raise RuntimeError(f"H.264 round trip: decoded {dec.shape}, encoded {frames.shape}")
    return dec, data


def make_clip(seed: Sequence[int], src: Sources, kind: str, length: int = 16,
              size: int = 128) -> tuple[np.ndarray, dict, bytes]:
    """Clip number `seed` (a tuple of ints fixes it): rendered, then H.264 at a CRF drawn from CRFS.
    -> (decoded frames (T, H, W, 3) uint8, parameters, mp4 bytes)."""
    rng = np.random.default_rng(list(seed))
    raw, info = render_clip(rng, src, kind, length, size)
    crf = int(rng.choice(CRFS))
    dec, data = h264(raw, crf)
    info.update(crf=crf, kbps=round(len(data) * 8 / (length / FPS) / 1000, 1))
    return dec, info, data
