"""Clip translation and graph export of the shipped CycleGAN model (models/cyclegan-default), in three parts:

1. flicker: clips rendered with known motion from photos of the built-in set (the cyclegan_builtin recipe's
   astronaut, coffee, motorcycle_left; a chelsea sprite moving over the second shot), three shots, two cuts.
   Warping error (Lai et al. 2018, L1) of the input clip, the per-frame and the temporal outputs under the true
   motion and under Farneback flow, the excess ratio, PSNR temporal vs per-frame (mean, lowest, first frames of
   shots), PSNR of both against the true painting of each frame (cv2.stylization, what the painting domain is
   made of), for several strengths, and without cut detection.
2. clip: 1280x720 H.264 + AAC clips of 2 s and 10 s (a pan over a photo), each translated by `translate_clip` in
   its own process: frames/s (wall and CPU) with and without the temporal filter, peak RSS (getrusage) and the
   resident memory after each frame, audio read back; then the same with an identity net at 25 fps (the
   decoder, filter and encoder alone over many frames).
3. onnx: the shipped generator exported to ONNX (parity-checked as `ganapps cyclegan export --format onnx` does)
   and run at 128x128, 257x301 and 720x1280: max |ONNX Runtime - PyTorch| and images/s of ONNX Runtime, PyTorch
   float32 and PyTorch bf16 autocast.

    python -m benchmarks vidtrans
    python -m benchmarks.bench_vidtrans --parts flicker,clip,onnx --fps 25 --seconds 2,10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SHOT_FRAMES = 24
FLICKER_SIZE = (192, 256)  # H, W


def _photos():
    import numpy as np
    from PIL import Image

    from ganapps.recipes._fetch import fetch_wheel_members
    from ganapps.recipes.cyclegan_builtin import WHEELS, default_dir

    wheel = next(k for k in WHEELS if k[0] == "scikit-image")  # the photos used here all come from this one
    files = fetch_wheel_members(*wheel, WHEELS[wheel], default_dir().parent / "cyclegan_builtin_photos", quiet=True,
                                recipe="cyclegan_builtin")
    return {Path(m).stem: np.asarray(Image.open(p).convert("RGB")) for m, p in files.items()}


def flicker_part(strengths: list[float]) -> None:
    import numpy as np

    from ganapps.cyclegan.pipeline import Translator
    from ganapps.cyclegan.temporal import FlickerMeter, Shot, TemporalFilter, psnr, render_shots
    from ganapps.recipes.cyclegan_builtin import paint

    ph = _photos()
    n = SHOT_FRAMES
    shots = [Shot(ph["astronaut"], n, pan=(1.37, 0.52)),
             Shot(ph["coffee"], n, pan=(-0.8, 1.1), zoom=1.006, rotation=0.2, sprite_from=ph["chelsea"],
                  sprite_size=56, sprite_start=(20, 30), sprite_velocity=(3, 1)),
             Shot(ph["motorcycle_left"], n, pan=(0.6, -0.35), rotation=-0.3)]
    frames, flows, masks = render_shots(shots, FLICKER_SIZE)
    starts = [t for t, f in enumerate(flows) if f is None]
    translator = Translator.from_checkpoint(device="cpu")
    t0 = time.perf_counter()
    per_frame = [a.astype(np.float32) / 255.0 for a in translator.translate_frames(frames)]
    per_s = len(frames) / (time.perf_counter() - t0)
    truth = [paint(f).astype(np.float32) / 255.0 for f in frames]
    print(f"{len(frames)} frames {FLICKER_SIZE[1]}x{FLICKER_SIZE[0]}, shots start at {starts}; per-frame "
          f"translation {per_s:.1f} frames/s; mean visible fraction under the true motion "
          f"{np.mean([m.mean() for m in masks if m is not None]):.3f}", flush=True)
    p_per = np.mean([psnr(o, g) for o, g in zip(per_frame, truth, strict=True)])
    print("warping error x1e3 (input / per-frame / temporal), excess ratio temporal:per-frame, PSNR temporal vs "
          "per-frame (mean over frames after each shot's first, lowest, first frames of shots), PSNR vs true painting "
          "(per-frame / temporal)", flush=True)
    mid = strengths[len(strengths) // 2]
    runs = [(s, 0.5, 0.1) for s in strengths] + [(mid, 0.0, 0.1), (mid, 0.0, float("inf"))]
    for strength, cut_fraction, colour in runs:  # the last two: no cut reset; neither cut reset nor colour test
        filt = TemporalFilter(strength, cut_fraction=cut_fraction, colour_tolerance=colour)
        t0 = time.perf_counter()
        temporal, resets = [], []
        for t, (f, o) in enumerate(zip(frames, per_frame, strict=True)):
            temporal.append(filt(f, o))
            if filt.last.cut:
                resets.append(t)
        filter_ms = 1e3 * (time.perf_counter() - t0) / len(frames)
        known, estimated = FlickerMeter(), FlickerMeter()
        for t in range(len(frames)):
            streams = {"input": frames[t], "per_frame": per_frame[t], "temporal": temporal[t]}
            known.update(streams, cut=flows[t] is None, motion=None if flows[t] is None else (flows[t], masks[t]))
            estimated.update(streams)
        p_tmp = np.mean([psnr(o, g) for o, g in zip(temporal, truth, strict=True)])
        label = f"strength {strength:.2f}" + ("" if cut_fraction else " NO cut reset") + \
            ("" if colour < 1 else " NO colour test")
        for name, res in (("true motion", known.summary()), ("Farneback  ", estimated.summary())):
            e = {k: 1e3 * res[f"warp_error/{k}"] for k in ("input", "per_frame", "temporal")}
            print(f"{label}  {name}: {e['input']:6.2f} / {e['per_frame']:6.2f} / {e['temporal']:6.2f}  ratio "
                  f"{res['excess_ratio/temporal']:.3f}  PSNR {res['psnr_db/temporal']:.2f} / "
                  f"{res['psnr_min_db/temporal']:.2f} / {res['psnr_shot_start_db/temporal']:.2f} dB  "
                  f"shots found {res['shot_starts']}", flush=True)
        print(f"{label}  filter resets at {resets}, {filter_ms:.1f} ms/frame; vs true painting "
              f"{p_per:.2f} / {p_tmp:.2f} dB", flush=True)


# --------------------------------------------------------------------------- 720p clips: speed and memory


def make_clip(path: Path, seconds: float, fps: int, size=(720, 1280)) -> Path:
    """A pan over the astronaut photo at `size`, H.264 + a 440 Hz AAC tone, `seconds` long."""
    import av
    import numpy as np

    from ganapps.cyclegan.temporal import Shot, iter_shots

    frames_n = round(seconds * fps)
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = size[1], size[0], "yuv420p"
    a = out.add_stream("aac", rate=44100, layout="stereo")
    shot = Shot(_photos()["astronaut"], frames_n, pan=(2.3, 0.7))
    for f, _, _ in iter_shots([shot], size, with_motion=False):  # frame by frame: never the whole clip in memory
        for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    sr = 44100
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(sr * seconds)) / sr)).astype(np.float32)
    for i in range(0, len(tone), sr):
        frame = av.AudioFrame.from_ndarray(np.stack([tone[i:i + sr]] * 2), format="fltp", layout="stereo")
        frame.sample_rate = sr
        for p in a.encode(frame):
            out.mux(p)
    for p in a.encode():
        out.mux(p)
    out.close()
    return path


def clip_child(src: str, dst: str, temporal: float, io_only: bool = False) -> dict:
    import torch

    from ganapps.cyclegan.pipeline import Translator
    from ganapps.cyclegan.video import translate_clip

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    translator = Translator.from_checkpoint(device="cpu")
    if io_only:  # decode, filter and encode only: the net returns its input
        Translator.translate_tensor = lambda self, x, direction="a2b": x.clone()
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    curve: list[float] = []  # resident memory after each frame
    frames_of = translator.translate_frames

    def tracked(*args, **kwargs):
        for out in frames_of(*args, **kwargs):
            curve.append(int(Path("/proc/self/statm").read_text().split()[1]) * page_mb)
            yield out

    translator.translate_frames = tracked
    before = resource.getrusage(resource.RUSAGE_SELF)
    res = translate_clip(translator, src, dst, temporal=temporal)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    res["peak_rss_mb"] = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    res["cpu_s_per_frame"] = cpu / max(res["frames"], 1)  # steadier than wall time on a shared machine
    n = len(curve)
    res["rss_curve_mb"] = {f"{q}%": round(curve[min(n - 1, max(0, round(q / 100 * n) - 1))]) for q in (0, 25, 50, 75, 100)}
    import av

    with av.open(dst) as c:
        res["audio_streams_out"] = len(c.streams.audio)
        res["audio_samples_out"] = sum(f.samples for f in c.decode(audio=0)) if c.streams.audio else 0
    return res


def clip_part(seconds: list[float], fps: int, threads: int, workdir: Path) -> None:
    """The shipped model on 2 s and 10 s clips at `fps` (temporal 0.7), the 2 s clip without the filter, then
    the same pipeline with the net replaced by the identity on 2 s and 10 s clips at 25 fps (decoder, filter
    and encoder alone: cheap enough for many frames)."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs = [(s, fps, 0.7, "model") for s in seconds] + [(seconds[0], fps, 0.0, "model")]
    runs += [(s, 25, 0.7, "io") for s in seconds]
    if os.environ.get("BENCH_VIDTRANS_RUNS"):  # e.g. "10:5:0.7:model,2:25:0.7:io" to rerun some of them
        runs = [(float(a), int(b), float(c), d) for a, b, c, d in
                (r.split(":") for r in os.environ["BENCH_VIDTRANS_RUNS"].split(","))]
    for s, rate, temporal, what in runs:
        src = workdir / f"clip_{s:g}s_{rate}fps.mp4"
        if not src.exists():
            make_clip(src, s, rate)
        dst = workdir / f"out_{s:g}s_{rate}fps_{temporal:g}_{what}.mp4"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "BENCH_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "benchmarks.bench_vidtrans", "--clip-child", str(src), str(dst), str(temporal),
               *(["--io-only"] if what == "io" else [])]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"clip child failed: {r.stderr.strip().splitlines()[-3:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"1280x720 {s:g} s at {rate} fps ({res['frames']} frames), temporal {temporal:g}"
              f"{', decode/filter/encode only (identity net)' if what == 'io' else ''}: "
              f"{res['frames_per_s']:.3f} frames/s ({res['cpu_s_per_frame']:.2f} CPU s/frame), peak RSS {res['peak_rss_mb']:.0f} MB, audio {res['audio']} -> "
              f"{res['audio_streams_out']} stream(s), {res['audio_samples_out']} samples read back, load average "
              f"{os.getloadavg()[0]:.1f}; RSS after the first frame and at 25/50/75/100% of the frames: "
              f"{' / '.join(str(v) for v in res['rss_curve_mb'].values())} MB", flush=True)


# --------------------------------------------------------------------------- ONNX export of the shipped model


def onnx_part(threads: int, iters: int) -> None:
    import tempfile

    import numpy as np
    import onnxruntime as ort
    import torch

    from ganapps.cyclegan.pipeline import Translator

    torch.set_num_threads(threads)
    translator = Translator.from_checkpoint(device="cpu")
    sizes = [(128, 128), (257, 301), (720, 1280)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        graphs = [g for g in translator.export_graphs(sizes) if g.name == "gen_ab"]
        from ganapps.engine.export import export_graphs

        res = export_graphs(graphs, Path(tmp) / "onnx", "onnx")
        print(f"export + parity check of gen_ab at {sizes} (and the batch-2 traced example): "
              f"{time.perf_counter() - t0:.0f} s, max |ONNX Runtime - PyTorch| {res['max_abs_diff']['gen_ab']:.2g}",
              flush=True)
        manifest = json.loads(Path(res["manifest"]).read_text())
        for check in manifest["graphs"]["gen_ab"]["checks"]:
            print(f"  inputs {check['shapes']['image']}: max |diff| {check['max_abs_diff']:.2g}", flush=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(res["files"][0], options, providers=["CPUExecutionProvider"])
        net = graphs[0].module
        for h, w in sizes:
            x = torch.rand(1, 3, h, w) * 2 - 1
            n = iters if h * w <= 300 * 300 else max(1, iters // 3)
            timings = {}
            for name in ("onnxruntime", "torch fp32", "torch bf16"):
                def once(name=name, x=x):
                    if name == "onnxruntime":
                        return session.run(None, {"image": x.numpy()})[0]
                    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=name.endswith("bf16")):
                        return net(x).float().numpy()
                once()  # warm-up
                t0 = time.perf_counter()
                for _ in range(n):
                    y = once()
                timings[name] = n / (time.perf_counter() - t0)
                if name == "torch bf16":
                    with torch.no_grad():
                        ref = net(x).numpy()
                    timings["bf16 max|diff|"] = float(np.abs(y - ref).max())
            print(f"{h}x{w}: images/s ONNX Runtime {timings['onnxruntime']:.2f}, PyTorch fp32 "
                  f"{timings['torch fp32']:.2f}, PyTorch bf16 {timings['torch bf16']:.2f} (bf16 max |diff| to fp32 "
                  f"{timings['bf16 max|diff|']:.3f}); {n} timed run(s), load average {os.getloadavg()[0]:.1f}",
                  flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--parts", default="flicker,clip,onnx")
    p.add_argument("--strengths", default="0.5,0.7,0.9")
    p.add_argument("--seconds", default="2,10", help="clip lengths for the memory comparison")
    p.add_argument("--fps", type=int, default=int(os.environ.get("BENCH_VIDTRANS_FPS", "5")))
    p.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "1")))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--workdir", default=os.environ.get("BENCH_VIDTRANS_DIR", "/tmp/bench-vidtrans"))
    p.add_argument("--clip-child", nargs=3, metavar=("SRC", "DST", "TEMPORAL"))
    p.add_argument("--io-only", action="store_true")
    a = p.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if a.clip_child:
        print(json.dumps(clip_child(a.clip_child[0], a.clip_child[1], float(a.clip_child[2]), a.io_only)))
        return
    import torch

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    parts = a.parts.split(",")
    if "flicker" in parts:
        print("-- flicker (shipped model, clips with known motion)", flush=True)
        flicker_part([float(s) for s in a.strengths.split(",")])
    if "clip" in parts:
        print("-- clip (1280x720, translate_clip in its own process)", flush=True)
        clip_part([float(s) for s in a.seconds.split(",")], a.fps, a.threads, Path(a.workdir))
    if "onnx" in parts:
        print("-- onnx (shipped gen_ab)", flush=True)
        onnx_part(a.threads, a.iters)


if __name__ == "__main__":
    main(sys.argv[1:])
