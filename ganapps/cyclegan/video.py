"""Whole clips through a `Translator`: streaming decode with PyAV, every frame translated (optionally made
temporally consistent by `temporal.TemporalFilter`), H.264 at the input's frame rate and size, the audio track
copied (re-encoded to AAC only where the output container cannot hold it), written under a temporary name and
renamed into place; and the flicker figures of a translated clip. Imports this package's pipeline and temporal
modules and the engine; no training code, no Typer. PyAV comes with the `video` extra.

    >>> translate_clip(Translator.from_checkpoint(), "clip.mp4", "painted.mp4", temporal=0.7)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.errors import InputError
from ..engine.images import VIDEO_SUFFIXES, has_suffix
from .pipeline import Translator
from .temporal import FlickerMeter, TemporalFilter

CLIP_OUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")  # H.264 in all of them
MP4_AUDIO = ("aac", "mp3", "alac", "ac3", "eac3", "opus", "flac")  # codecs MP4/MOV hold as they are
DEFAULT_STRENGTH = 0.7  # measured in docs/cyclegan.md ("Video"): halves the excess warping error with margin


def is_clip(path: str | os.PathLike) -> bool:
    """A clip file by its suffix (GIFs too: FFmpeg decodes them)."""
    return has_suffix(path, VIDEO_SUFFIXES) and not Path(path).is_dir()


def _av():
    try:
        import av
    except ImportError:
        raise InputError("translating clips needs PyAV: pip install 'ganapps[video]' (or pip install av)") from None
    return av


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
    return text[:120]


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # e.g. its folder is a file: then nothing was written there either
        pass


class ClipReader:
    """A clip opened for streaming: `fps` (Fraction), `height`, `width`, `frame_count` (from the header; 0 when
    it has none), `audio` (the first audio stream or None), `time_base` of the video stream. `events()` yields
    ("video", frame (H, W, 3) uint8 RGB, pts) and ("audio", packet, None) in file order; packets that do not
    decode are skipped and counted in `skipped`. Raises InputError naming the file when it holds no video
    stream or no decodable frame (checked on open, before anything is written)."""

    def __init__(self, path: str | os.PathLike, *, audio: bool = True):
        self._av = av = _av()
        self.path = Path(path)
        self.skipped, self.error = 0, None
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such clip file")
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise InputError(f"{self.path}: cannot open this clip ({_reason(e)})") from None
        try:
            if not self.container.streams.video:
                raise InputError(f"{self.path}: holds no video stream")
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
            self.fps = Fraction(rate) if rate and 0 < float(rate) < 1000 else Fraction(25)
            self.time_base = self.stream.time_base
            self.audio = self.container.streams.audio[0] if audio and self.container.streams.audio else None
            self.frame_count = int(self.stream.frames or 0)
            self._events = self._demux()
            self._pending: list[tuple[str, Any, Any]] = []
            for event in self._events:  # peek up to the first decoded frame
                self._pending.append(event)
                if event[0] == "video":
                    break
            else:
                raise InputError(f"{self.path}: no decodable video frames")
            first = self._pending[-1][1]
            self.height, self.width = first.shape[:2]
        except BaseException:
            self.container.close()
            raise

    def _demux(self) -> Iterator[tuple[str, Any, Any]]:
        av = self._av
        streams = [self.stream] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield "audio", packet, None
                    continue
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    self.skipped += 1
                    continue
                for frame in decoded:
                    yield "video", frame.to_ndarray(format="rgb24"), (frame.pts, frame.time_base)
        except av.error.FFmpegError as e:  # a truncated container: keep what decoded
            self.skipped += 1
            self.error = _reason(e)

    def events(self) -> Iterator[tuple[str, Any, Any]]:
        while self._pending:
            yield self._pending.pop(0)
        yield from self._events

    def frames(self) -> Iterator[np.ndarray]:
        """Only the video frames, (H, W, 3) uint8."""
        for kind, item, _ in self.events():
            if kind == "video":
                yield item

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ClipWriter:
    """H.264 (x264 CRF 18, preset medium with a 10-frame lookahead; yuv420p, yuv444p for odd sizes) at `fps` into `path` (.mp4, .m4v, .mov, .mkv), through a
    temporary file in the same folder that `close()` renames into place; `discard()` removes it. With
    `audio_from` (an input audio stream) its packets are copied by `mux_audio`, or decoded and re-encoded to
    AAC when the container cannot hold the codec (PCM in MP4, for instance)."""

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: Fraction, time_base=None,
                 audio_from=None):
        self._av = av = _av()
        self.path = Path(path)
        if not has_suffix(self.path, CLIP_OUT_SUFFIXES):
            raise InputError(f"{self.path}: cannot write a clip with suffix {self.path.suffix!r}; expected "
                             f"{', '.join(CLIP_OUT_SUFFIXES)}")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{os.getpid()}{self.path.suffix}")
        blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise InputError(f"{self.path}: cannot write the output clip here ({blocker} is a file, not a folder)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.container = av.open(str(self.tmp), "w")
        except (av.error.FFmpegError, OSError) as e:
            _remove(self.tmp)
            raise InputError(f"{self.path}: cannot write the output clip here ({_reason(e)})") from None
        try:
            self.stream = self.container.add_stream("libx264", rate=fps)
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            # a 10-frame rate-control lookahead (x264's medium preset has 40): the encoder's buffers fill within
            # about 20 frames instead of 60 (measured at 1280x720: 1.07 GB plateau instead of 1.24 GB, output
            # PSNR 42.5 vs 42.9 dB against its input), so memory is flat early in a clip
            self.stream.options = {"crf": "18", "preset": "medium", "x264-params": "rc-lookahead=10"}
            self.time_base = Fraction(time_base) if time_base else 1 / Fraction(fps)
            self.stream.time_base = self.stream.codec_context.time_base = self.time_base
            self.fps, self.frames, self._last_time, self._last_stamp = fps, 0, None, None
            self.audio, self.audio_mode = None, None
            if audio_from is not None:
                name = audio_from.codec_context.name
                if self.path.suffix.lower() == ".mkv" or name in MP4_AUDIO:
                    self.audio = self.container.add_stream_from_template(audio_from)
                    self.audio_mode = f"copied ({name})"
                else:
                    ctx = audio_from.codec_context
                    layout = {1: "mono", 2: "stereo"}.get(ctx.channels, "stereo")
                    self.audio = self.container.add_stream("aac", rate=ctx.sample_rate, layout=layout)
                    self.audio_mode = f"re-encoded ({name} -> aac)"
                    self._decoder = audio_from
        except BaseException:
            self.discard()
            raise

    def write(self, frame: np.ndarray, pts: tuple[int | None, Any] | None = None) -> None:
        """One (H, W, 3) uint8 frame; `pts` (value, time base) from the decoder keeps the input's timing (frames
        without one, or out of order, follow the previous one by 1 / fps)."""
        value, base = pts if pts is not None else (None, None)
        t = Fraction(value) * base if value is not None and base else Fraction(self.frames) / self.fps  # seconds
        if self._last_time is not None and t <= self._last_time:
            t = self._last_time + 1 / self.fps
        stamp = round(t / self.time_base)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + 1
        self._last_time, self._last_stamp = t, stamp
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts, vf.time_base = stamp, self.time_base
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def mux_audio(self, packet) -> None:
        if self.audio is None:
            return
        if self.audio_mode.startswith("copied"):
            packet.stream = self.audio
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            for out in self.audio.encode(frame):
                self.container.mux(out)

    def close(self) -> Path:
        """Flush the encoders, close the file and rename it into place."""
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            if self.audio is not None and not self.audio_mode.startswith("copied"):
                for packet in self.audio.encode():
                    self.container.mux(packet)
            self.container.close()
            os.replace(self.tmp, self.path)
        except BaseException as e:
            self.discard()
            if isinstance(e, OSError | self._av.error.FFmpegError):
                raise InputError(f"{self.path}: cannot write the output clip ({_reason(e)})") from None
            raise
        return self.path

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken file; the partial file is removed below anyway
            pass
        _remove(self.tmp)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total or None, disable=not enabled, unit="frame", file=sys.stderr)


def translate_clip(translator: Translator, src: str | os.PathLike, dst: str | os.PathLike, *, direction: str = "a2b",
                   temporal: float = DEFAULT_STRENGTH, progress: bool = False) -> dict[str, Any]:
    """Translate every frame of clip `src` into `dst` (.mp4/.m4v/.mov/.mkv, H.264) in constant memory: the same
    frame rate, time stamps and size, the audio track kept; `temporal` > 0 makes it temporally consistent
    (`TemporalFilter` of that strength). Nothing is left at `dst` when it fails. Returns {"output", "frames",
    "fps", "height", "width", "audio", "temporal_strength", "cuts", "seconds", "frames_per_s", "skipped_packets"}."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.is_dir():
        raise InputError(f"{dst}: is a folder; expected an output clip file ({', '.join(CLIP_OUT_SUFFIXES)})")
    if src.resolve() == dst.resolve():
        raise InputError(f"{dst}: the output would overwrite the input clip")
    filt = TemporalFilter(temporal) if temporal else None
    with ClipReader(src) as reader:
        writer = ClipWriter(dst, width=reader.width, height=reader.height, fps=reader.fps,
                            time_base=reader.time_base, audio_from=reader.audio)
        cuts: list[int] = []
        stamps: list[Any] = []  # the decoder's time stamp of the frame being translated (one at a time)
        t0 = time.perf_counter()
        try:
            with _progress(reader.frame_count, progress) as bar:
                def frames() -> Iterator[np.ndarray]:
                    for kind, item, pts in reader.events():
                        if kind == "audio":
                            writer.mux_audio(item)
                        else:
                            stamps.append(pts)
                            yield item

                for out in translator.translate_frames(frames(), direction, temporal=filt):
                    if filt is not None and filt.last.cut and writer.frames:
                        cuts.append(writer.frames)
                    if out.shape[2] == 1:
                        out = np.repeat(out, 3, axis=2)
                    writer.write(out, stamps.pop())
                    bar.update(1)
        except BaseException:
            writer.discard()
            raise
        path = writer.close()
        seconds = time.perf_counter() - t0
        return {"output": str(path), "frames": writer.frames, "fps": float(reader.fps), "height": reader.height,
                "width": reader.width, "audio": writer.audio_mode, "temporal_strength": float(temporal or 0.0),
                "cuts": cuts, "seconds": seconds, "frames_per_s": writer.frames / max(seconds, 1e-9),
                "skipped_packets": reader.skipped}


def evaluate_clip(translator: Translator, src: str | os.PathLike, *, direction: str = "a2b",
                  temporal: float = DEFAULT_STRENGTH, limit: int | None = None, flow: str = "farneback",
                  progress: bool = False) -> dict[str, Any]:
    """Flicker figures of translating clip `src` frame by frame and with the temporal filter (one pass; the
    per-frame output is what the filter starts from): `FlickerMeter.summary()` over the streams "input",
    "per_frame" and "temporal", motion estimated with `flow` (Farneback by default: a different estimator from
    the filter's DIS, so the filter is not graded by its own flow), at most `limit` frames."""
    if not 0 < temporal < 1:
        raise InputError(f"--temporal-strength {temporal}: expected a strength in (0, 1) to compare against")
    filt = TemporalFilter(temporal)
    meter = FlickerMeter(flow=flow)
    cuts: list[int] = []
    with ClipReader(src, audio=False) as reader, _progress(reader.frame_count, progress) as bar:
        for i, frame in enumerate(reader.frames()):
            if limit is not None and i >= limit:
                break
            per_frame = next(translator.translate_frames([frame], direction))
            arr = per_frame.astype(np.float32) / 255.0
            smooth = filt(frame, arr)
            if filt.last.cut and i:
                cuts.append(i)
            meter.update({"input": frame, "per_frame": arr, "temporal": smooth})
            bar.update(1)
    out = meter.summary()
    out.update({"clip": str(src), "direction": direction, "temporal_strength": temporal, "flow": flow,
                "filter_cuts": cuts})
    return out
