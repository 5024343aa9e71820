"""The app's jobs without any web framework: bounded uploads, a pool of loaded models (one job at a time per
model, first come first served), a temporary workspace, and translate / predict / synthesize / report on the
CLI's own code paths (`Translator`, `ganapps video predict`'s helpers, `Synthesizer`, `engine.report`); the
workspace and the model pool live in `pool`.

Every refusal is an `InputError` with one line that names the uploaded file (never the server's temporary
path) or the limit's option. Imports the engine, the task packages and their CLIs' helpers; no Gradio.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.errors import InputError
from ..engine.images import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    VOLUME_SUFFIXES,
    array_to_tensor,
    float_to_uint8,
    has_suffix,
    tensor_to_pil,
)
from .pool import FifoLock, ModelPool, Progress, Workspace, _no_progress  # noqa: F401 (the app's jobs' names)
from .settings import AppConfig

# --------------------------------------------------------------------------- uploads


@contextlib.contextmanager
def user_names(*paths: str | os.PathLike | None) -> Iterator[None]:
    """Re-raise InputErrors with each uploaded file's server path replaced by its own name, also where a
    message quotes the path cut short (uploads live in UPLOADS/<hash>/<name>)."""
    try:
        yield
    except InputError as e:
        msg = str(e)
        for p in paths:
            if p:
                msg = msg.replace(str(p), Path(p).name)
                msg = re.sub(re.escape(str(Path(p).parent.parent)) + r"[^\s'\")]*", Path(p).name, msg)
        raise InputError(msg) from None


def check_upload(path: str | os.PathLike | None, cfg: AppConfig, suffixes: tuple[str, ...], what: str) -> Path:
    """An uploaded file that exists, has one of `suffixes` and is within --max-upload-mb."""
    if path is None:
        raise InputError(f"{what}: no file uploaded; expected {', '.join(suffixes)}")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p.name}: the upload is gone (uploads are kept for a while only); upload it again")
    if not has_suffix(p, suffixes):
        raise InputError(f"{p.name}: not a {what} (expected {', '.join(suffixes)})")
    size = p.stat().st_size
    if size > cfg.max_upload_bytes:
        raise InputError(f"{p.name}: {size / 2**20:.3g} MB; uploads are limited to {cfg.max_upload_mb:g} MB "
                         f"(--max-upload-mb)")
    return p


def check_pixels(name: str, width: int, height: int, cfg: AppConfig) -> None:
    if width * height > cfg.max_pixels:
        raise InputError(f"{name}: {width}x{height} pixels; this app takes at most {cfg.max_pixels:,} pixels per "
                         f"image or frame (--max-pixels)")


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when Pillow cannot read it (the decoder then reports it)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - the real decode reports a corrupt file, in the CLI's words
        return None


def count_frames(path: Path, cfg: AppConfig) -> tuple[int, int, int]:
    """(frames, height, width) of a clip, refusing it past --max-frames or --max-pixels without decoding more."""
    from ..video.data import iter_frames

    n, h, w = 0, 0, 0
    for img in iter_frames(path):
        if n == 0:
            h, w = img.shape[:2]
            check_pixels(path.name, w, h, cfg)
        n += 1
        if n > cfg.max_frames:
            raise InputError(f"{path.name}: more than {cfg.max_frames} frames; this app takes clips of at most "
                             f"{cfg.max_frames} frames (--max-frames)")
    return n, h, w


def clip_fps(path: Path) -> float:
    """The frame rate a video's header states, 25 when it states none (GIFs, frame folders), as `probe` does."""
    import cv2

    fps = 25.0
    if path.suffix.lower() != ".gif":
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
    return float(fps) if 0 < fps < 1000 else 25.0


class VideoSink:
    """Frames (H, W, 3) uint8 RGB streamed into a file: .webm as VP8 (what a browser plays without ffmpeg on
    the server), .mp4 as mp4v (the CLI's `write_video` format). Odd sizes are padded by one pixel."""

    CODECS = {".webm": "VP80", ".mp4": "mp4v"}

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self._writer = path, fps, None

    def write(self, frame: np.ndarray) -> None:
        import cv2

        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*self.CODECS[self.path.suffix])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise InputError(f"{self.path.name}: OpenCV cannot write {self.CODECS[self.path.suffix]} here")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.release()
        return self.path


def safe_stem(name: str) -> str:
    """A file stem made of letters, digits, '-' and '_' only (uploaded names are not trusted in paths)."""
    stem = Path(name).name
    for suffix in sorted(IMAGE_SUFFIXES + VIDEO_SUFFIXES + VOLUME_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60].strip("_")
    return cleaned or "upload"


# --------------------------------------------------------------------------- translate


@dataclass
class Result:
    """What a job hands the page: a picture and/or a video to show, files to download, a one-line summary, and
    an optional Markdown table of figures."""

    summary: str
    image: Path | None = None
    video: Path | None = None
    files: list[Path] = field(default_factory=list)
    table: str | None = None


def translate_upload(translator: Any, upload: str | os.PathLike | None, direction: str, cfg: AppConfig,
                     out: Path, progress: Progress = _no_progress) -> Result:
    """An uploaded image -> the translated image and input | output side by side (the CLI's `translate` with
    --side-by-side); an uploaded clip -> the same frame by frame, as videos."""
    from ..cyclegan.data import read_image, to_array
    from ..cyclegan.pipeline import side_by_side

    if direction not in ("a2b", "b2a"):
        raise InputError(f"direction {direction!r}: expected a2b or b2a")
    path = check_upload(upload, cfg, IMAGE_SUFFIXES + VIDEO_SUFFIXES, "image or clip")
    stem = safe_stem(path.name)
    with user_names(path):
        if has_suffix(path, IMAGE_SUFFIXES):
            size = image_size(path)
            if size is not None:
                check_pixels(path.name, *size, cfg)
            x = array_to_tensor(read_image(path, translator.channels))  # (C, H, W)
            progress(0.1, "translating")
            y = tensor_to_pil(translator.translate_tensor(x[None], direction)[0])
            pair = side_by_side(tensor_to_pil(x), y)
            translated, sbs = out / f"{stem}_{direction}.png", out / f"{stem}_{direction}_side_by_side.png"
            y.save(translated)
            pair.save(sbs)
            return Result(f"{path.name}: {x.shape[2]}x{x.shape[1]} translated {direction}", image=sbs,
                          files=[translated, sbs])

        from PIL import Image

        from ..video.data import iter_frames

        n, _, _ = count_frames(path, cfg)
        fps = clip_fps(path)
        translated = VideoSink(out / f"{stem}_{direction}.mp4", fps)
        sbs_video = VideoSink(out / f"{stem}_{direction}_side_by_side.webm", fps)
        for i, img in enumerate(iter_frames(path)):  # (H, W, 3) uint8
            x = array_to_tensor(to_array(Image.fromarray(img), translator.channels, path.name))  # (C, H, W)
            y = tensor_to_pil(translator.translate_tensor(x[None], direction)[0])
            translated.write(np.asarray(y.convert("RGB")))
            sbs_video.write(np.asarray(side_by_side(tensor_to_pil(x), y)))
            progress((i + 1) / n, f"frame {i + 1} of {n}")
        files = [translated.close(), sbs_video.close()]
        return Result(f"{path.name}: {n} frames translated {direction}", video=files[1], files=files)


# --------------------------------------------------------------------------- predict


def _int_in(value: Any, name: str, lo: int, hi: int, option: str | None = None) -> int:
    """A whole number from a form field (int, integral float or digits) within lo..hi; the limit's option is named."""
    try:
        f = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else math.nan
    except ValueError:
        f = math.nan
    if not math.isfinite(f) or f != int(f):
        raise InputError(f"{name} {value!r}: expected a whole number")
    v = int(f)
    if not lo <= v <= hi:
        raise InputError(f"{name} {v}: expected {lo}..{hi}" + (f" ({option})" if option else ""))
    return v


def horizon_table(scores: dict) -> str:
    """Per-horizon PSNR (dB) and SSIM of the model beside copy-last-frame (and flow) as a Markdown table."""
    flow = "flow_psnr" in scores
    head = ["horizon", "PSNR model", "PSNR copy-last"] + (["PSNR flow"] if flow else []) + \
        ["SSIM model", "SSIM copy-last"] + (["SSIM flow"] if flow else [])
    rows = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for i in range(len(scores["psnr"])):
        cells = [f"+{i + 1}", f"{scores['psnr'][i]:.2f}", f"{scores['copy_last_psnr'][i]:.2f}"]
        cells += [f"{scores['flow_psnr'][i]:.2f}"] if flow else []
        cells += [f"{scores['ssim'][i]:.3f}", f"{scores['copy_last_ssim'][i]:.3f}"]
        cells += [f"{scores['flow_ssim'][i]:.3f}"] if flow else []
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def predict_upload(predictor: Any, upload: str | os.PathLike | None, frames: Any, adapt: Any, score: bool,
                   cfg: AppConfig, out: Path, progress: Progress = _no_progress) -> Result:
    """Continue an uploaded clip (the CLI's `video predict`): `frames` predicted frames (0: the model's horizon)
    after `adapt` fine-tuning steps. With `score`, the context ends `frames` before the clip does, and the
    frames that follow are the ground truth of a per-horizon PSNR/SSIM table against copy-last (and flow)."""
    from ..video.cli import _continue, _read_inputs, _scores
    from ..video.data import to_uint8
    from ..video.pipeline import side_by_side, write_video

    k = _int_in(frames, "frames", 0, cfg.max_predict_frames, "--max-predict-frames") or \
        predictor.config.future_frames
    steps = _int_in(adapt, "adapt steps", 0, cfg.max_adapt_steps, "--max-adapt-steps")
    path = check_upload(upload, cfg, VIDEO_SUFFIXES, "clip")
    stem = safe_stem(path.name)
    with user_names(path):
        n, _, _ = count_frames(path, cfg)
        tc = predictor.context
        start = max(0, n - tc - k) if score and n >= tc else None
        progress(0.1, "reading the clip")
        info, first, context, truth = _read_inputs(path, predictor, k, start)
        progress(0.3, f"adapting {steps} steps" if steps else "predicting")
        pred, timing = _continue(predictor, path, first, context, k, steps, guard=True)
        fps = info.fps
        pred_file = write_video(out / f"{stem}_pred.mp4", to_uint8(pred), fps)
        side = VideoSink(out / f"{stem}_side_by_side.webm", fps)
        for f in side_by_side(to_uint8(context), to_uint8(pred), to_uint8(truth) if truth is not None else None):
            side.write(f)
        side.close()
    summary = (f"{path.name}: {k} frames predicted ({pred.shape[-1]}x{pred.shape[-2]}) from frames "
               f"{first}..{first + tc - 1} of {n}" + (f" after {steps} adapt steps ({timing['adapt_s']:.1f} s)"
                                                      if steps else ""))
    if timing.get("guard", "model") != "model":
        summary += f"; {timing['guard']} predicted the clip's earlier frames better than the model, so it was used"
    table = None
    if truth is not None:
        table = horizon_table(_scores(context, pred, truth))
        summary += f"; scored against the {len(truth)} frame(s) that follow"
    elif score:
        summary += "; the clip is too short to hold out frames for scoring"
    return Result(summary, video=side.path, files=[pred_file, side.path], table=table)


# --------------------------------------------------------------------------- synthesize


def slice_grid(images: torch.Tensor, min_tile: int = 128, gap: int = 2) -> Any:
    """(N, 1, S, S) in [-1, 1] -> one grayscale PIL picture, ceil(sqrt(N)) slices per row on white, each slice
    enlarged by a whole factor (nearest) to at least `min_tile` pixels."""
    from PIL import Image

    arr = float_to_uint8(images[:, 0]).numpy()  # (N, S, S)
    n, s = arr.shape[0], arr.shape[1]
    scale = max(1, math.ceil(min_tile / s))
    tile = s * scale
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = Image.new("L", (cols * tile + (cols - 1) * gap, rows * tile + (rows - 1) * gap), 255)
    for i, a in enumerate(arr):
        im = Image.fromarray(a).resize((tile, tile), Image.NEAREST)
        grid.paste(im, ((i % cols) * (tile + gap), (i // cols) * (tile + gap)))
    return grid


def parse_positions(text: str | None, n: int, synth: Any) -> torch.Tensor | None:
    """'FROM,TO' -> n slice positions evenly from FROM to TO, within the model's training range."""
    if not text or not text.strip():
        return None
    if synth.config.condition != "position":
        raise InputError(f"positions {text.strip()!r}: this model is not conditioned on slice position "
                         f"(condition: {synth.config.condition}); leave it empty")
    lo, hi = (float(v) for v in synth.gen.position_range)
    try:
        a, b = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"positions {text.strip()!r}: expected FROM,TO (two numbers in {lo:g}..{hi:g})") from None
    if not (lo <= a <= hi and lo <= b <= hi):
        raise InputError(f"positions {text.strip()!r}: expected FROM,TO within the training range {lo:g}..{hi:g}")
    return torch.linspace(a, b, n)


def check_volume_header(path: Path, cfg: AppConfig) -> None:
    """Refuse a NIfTI whose header states more than --max-voxels (before any voxel is read); a header nibabel
    cannot read is left to the volume reader, which reports it in the CLI's words."""
    import nibabel as nib

    try:
        shape = nib.load(str(path)).shape
    except Exception:  # noqa: BLE001
        return
    voxels = math.prod(shape) if shape else 0
    if voxels > cfg.max_voxels:
        raise InputError(f"{path.name}: {'x'.join(map(str, shape))} voxels; this app takes volumes of at most "
                         f"{cfg.max_voxels:,} voxels (--max-voxels)")


def paint_upload(path: Path, lesion: str, radius: Any, lesion_class: str, out: Path) -> tuple[Path, str]:
    """The CLI's `medical paint-lesion` on an uploaded map: a sphere of `radius` mm and class `lesion_class`
    centred at the world point `lesion` ('X,Y,Z' mm); returns the painted map (in `out`) and a line about it."""
    from ..medical.labels import paint_lesion_file, parse_class, parse_point

    center = parse_point(lesion, "lesion centre")
    try:
        r = float(radius)
    except (TypeError, ValueError):
        r = math.nan
    if not (math.isfinite(r) and 0 < r <= 100):
        raise InputError(f"lesion radius {radius!r}: expected a number of mm in (0, 100]")
    painted = paint_lesion_file(path, out / f"lesioned_{path.name}", center, r, parse_class(lesion_class))
    return Path(painted["out"]), f"a lesion of {painted['voxels']} voxels painted at {lesion} mm"


def synthesize(synth: Any, n: Any, seed: Any, positions: str | None, labels: str | os.PathLike | None,
               cfg: AppConfig, out: Path, progress: Progress = _no_progress, lesion: str | None = None,
               radius: Any = 6.0, lesion_class: str = "hypo") -> Result:
    """Sample slices (the CLI's `medical sample`): n slices for a seed (optionally at positions FROM..TO for a
    position model), or one slice per slice of an uploaded label map (label models; slices without labels are
    background), optionally with a lesion painted into the map first (`lesion`: its centre 'X,Y,Z' in mm,
    `radius` mm, `lesion_class`). Writes a slice grid (PNG) and the NIfTI stack the CLI writes (world-aligned
    with the map)."""
    seed = _int_in(seed, "seed", 0, 2**63 - 1)
    progress(0.1, "sampling")
    path, painted, walked = None, "", None
    if lesion and lesion.strip() and labels is None:
        raise InputError("lesion centre: a lesion is painted into a label map; upload one (.nii or .nii.gz)")
    if labels is not None:
        path = check_upload(labels, cfg, VOLUME_SUFFIXES, "label map")
        with user_names(path):
            check_volume_header(path, cfg)
            if lesion and lesion.strip():
                path, painted = paint_upload(path, lesion, radius, lesion_class, out)
            images = synth.from_label_volume(path, seed=seed)
        what = f"{len(images)} slices from the label map {Path(labels).name}" + (f" ({painted})" if painted else "")
    else:
        count = _int_in(n, "n", 1, cfg.max_slices, "--max-slices")
        if synth.config.condition == "label":
            raise InputError("label map: this model synthesizes from label maps; upload one (.nii or .nii.gz)")
        walked = parse_positions(positions, count, synth)
        if walked is None and synth.config.condition == "position":
            walked = synth.walk(count)  # as `medical sample --n`: the stack records how far apart they are
        images = synth(count, seed=seed, positions=walked)
        what = f"{count} slices, seed {seed}"
    grid, nifti = out / "slices.png", out / "synthetic.nii.gz"
    slice_grid(images).save(grid)
    synth.save(images, nifti, labels=path, positions=walked)
    spacing = (*synth.spacing_mm[:2], synth.slice_spacing_mm(walked)) if walked is not None else synth.spacing_mm
    return Result(f"{what}: {synth.size}x{synth.size}, spacing {' x '.join(f'{v:g}' for v in spacing)} mm",
                  image=grid, files=[nifti, grid] + ([path] if painted else []))


# --------------------------------------------------------------------------- runs


def run_report(run: Path) -> tuple[str, str]:
    """(one line on the run's health verdicts, the HTML of RUN/report.html) for a run folder, rendered without
    writing into it."""
    from ..engine.monitor import diagnose, format_timeline
    from ..engine.report import _render, load_records  # _render: report.html's content, not written to disk

    records = load_records(run)
    verdicts = diagnose(records)
    if not verdicts:
        summary = format_timeline(verdicts)
    else:
        seen = ", ".join(f"{v.kind} at step {v.step}" for v in verdicts[:4]) + (", ..." if len(verdicts) > 4 else "")
        summary = f"{len(verdicts)} problem(s) found: {seen} (the report below gives the remedies)"
    return summary, _render(run, records, verdicts)
