"""CycleGAN, CUT, FastCUT and pix2pix on the built-in photo -> painting set at equal CPU time, and the training
step's speed and memory of each side by side.

Quality (default): one run per method, one process at a time with 1 torch thread; every method is trained to the
first CPU-time mark, then each is continued (from its checkpoint: the engine's resume is exact) to the next, so
an interrupted benchmark has every method at the marks it finished. CPU time is the process CPU seconds spent in
training steps (start-up and evaluation not counted). At each mark the generator is scored by
`evaluate_folders` (what `ganapps cyclegan evaluate` runs) on the 48 test photo crops at 128 px (photos never seen
in training): PSNR and SSIM to the true paintings (testA_painted), SWD and pixel KID against the painting domain's
test set (testB), and the checkerboard index, next to the untranslated photos' (the baseline). pix2pix trains on the paired version of the set (`build_paired`: the same
training photos, each with its painting); the unpaired methods on trainA / trainB.

Recipes: every method with its reference's defaults (`method_defaults`) at one CPU-sized scale: batch 1, Adam
2e-4, constant learning rate (a time budget has no known end to decay towards), ngf = ndf = 32; the ResNet
methods resnet_6blocks on 64x64 random crops of the 128x128 images; pix2pix the reference's U-Net at the images'
full 128x128 (unet_128; U-Nets need sides that are multiples of 2^7), batch norm and dropout.

Speed (`--speed`): s/step (process CPU) and peak RSS of each method's training step at the same generator and
crop, interleaved (A B C A B C ...), 1 thread each, in separate processes.

    python -m benchmarks methods                          # quality at 10, 20, 30 CPU-minutes (about 2 CPU-hours)
    python -m benchmarks methods -- --minutes 2,4         # other marks (also `make bench BENCH="methods -- ..."`)
    python -m benchmarks.bench_methods --minutes 20,60    # the issue's budgets
    python -m benchmarks.bench_methods --speed [--gen resnet_9blocks --ngf 64 --crop 128]
    python -m benchmarks.bench_methods --figure 30 docs/images/methods_builtin.jpg   # from the saved weights
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("cyclegan", "cut", "fastcut", "pix2pix")
COMMON = dict(batch_size=1, ngf=32, ndf=32, lr_schedule="constant", device="cpu", threads=1, quiet=True, use_amp=False,
              use_tensorboard=False, write_report=False, log_every_steps=10**9, sample_every_steps=10**9,
              checkpoint_every_steps=10**9, steps=10**9)
RECIPES = {
    "cyclegan": dict(gen="resnet_6blocks", preprocess="crop", load_size=128, crop_size=64),
    "cut": dict(gen="resnet_6blocks", preprocess="crop", load_size=128, crop_size=64),
    "fastcut": dict(gen="resnet_6blocks", preprocess="crop", load_size=128, crop_size=64),
    "pix2pix": dict(gen="unet_128", preprocess="crop", load_size=128, crop_size=128),
}
OUT = Path(os.environ.get("BENCH_METHODS_OUT", "/tmp/ganapps-bench-methods"))


def _cpu() -> float:
    return time.process_time()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _evaluate(tr, cfg, gen_name: str) -> dict:
    """evaluate_folders on the built-in test set at 128 px with a copy of the generator (eval mode)."""
    from ganapps.cyclegan.pipeline import Translator, evaluate_folders
    from ganapps.recipes.cyclegan_builtin import COUNTS, build

    root = build()
    net = copy.deepcopy(tr.nets[gen_name])
    t = Translator(net, None, config=cfg, channels=3, multiple=net.size_multiple, device="cpu")
    r = evaluate_folders(t, root / "testA", root / "testB", direction="a2b", size=128, limit=COUNTS["testA"],
                         ground_truth=root / "testA_painted")
    return {k.removeprefix("a2b/"): v for k, v in r.items() if k.startswith("a2b/")}


def quality_child(method: str, mark_min: float, out: Path) -> dict:
    """Train `method` until its training steps have used `mark_min` CPU-minutes in all, continuing its run from
    the checkpoint of the previous mark (the engine's resume reproduces the trajectory exactly), then score
    it. The run's CPU time so far lives in RUN/bench_state.json."""
    import torch
    from safetensors.torch import save_file

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.task import make_task
    from ganapps.engine import checkpoint as ckpt
    from ganapps.engine.config import to_yaml
    from ganapps.engine.trainer import Trainer

    torch.set_num_threads(1)
    run = out / method
    run.mkdir(parents=True, exist_ok=True)
    state_file = run / "bench_state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {
        "train_cpu_s": 0.0, "wall_train_s": 0.0, "steps": 0, "evals": [], "peak_rss_train_mb": None}
    cfg = CycleGANConfig(method=method, out=str(run / "run"), **COMMON, **RECIPES[method])
    (run / "config.yaml").write_text(to_yaml(cfg))
    tr = Trainer(make_task(cfg))
    tr._build()
    latest = ckpt.latest_dir(tr.ckpt_root)
    if latest is not None:
        tr._load(ckpt.load_weights(latest), ckpt.load_state(latest))
    assert tr.step == state["steps"], (tr.step, state["steps"])
    train_cpu, wall_train = state["train_cpu_s"], state["wall_train_s"]
    while train_cpu < mark_min * 60:
        c0, w0 = _cpu(), time.perf_counter()
        _, finite = tr._run_step()
        tr.step += 1
        train_cpu += _cpu() - c0
        wall_train += time.perf_counter() - w0
    peak = _peak_rss_mb()  # before evaluating: the training step's own peak (this process)
    scores = _evaluate(tr, cfg, "gen_ab")
    tr.save_checkpoint()
    save_file({k: v.detach().contiguous() for k, v in tr.nets["gen_ab"].state_dict().items()},
              str(run / f"gen_ab_{mark_min:g}min.safetensors"))
    state["evals"].append({"cpu_min": mark_min, "steps": tr.step, **scores})
    state.update(train_cpu_s=train_cpu, wall_train_s=wall_train, steps=tr.step,
                 peak_rss_train_mb=max(peak, state["peak_rss_train_mb"] or 0.0))
    state_file.write_text(json.dumps(state, indent=1))
    print(json.dumps({"method": method, **state["evals"][-1]}), file=sys.stderr, flush=True)
    return {"method": method, **state, "cpu_s_per_step": train_cpu / tr.step,
            "wall_s_per_step": wall_train / tr.step}


def speed_child(method: str, gen: str, ngf: int, crop: int, steps: int, antialias: str) -> dict:
    import torch
    from torch.utils.data import Dataset

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.task import make_task
    from ganapps.engine.trainer import Trainer

    torch.set_num_threads(1)

    class Noise(Dataset):  # the step's cost without decoding
        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return {"a": torch.rand(3, crop, crop) * 2 - 1, "b": torch.rand(3, crop, crop) * 2 - 1}

    opts = dict(COMMON, gen=gen, ngf=ngf, ndf=ngf, load_size=crop, crop_size=crop, preprocess="crop",
                out="/tmp/bench-methods-speed")
    if antialias != "default":
        opts["use_antialias"] = antialias == "on"
    task = make_task(CycleGANConfig(method=method, **opts))
    task.dataset = lambda: Noise()
    tr = Trainer(task)
    tr._build()
    for _ in range(2):
        tr._run_step()
        tr.step += 1
    c0, w0 = _cpu(), time.perf_counter()
    for _ in range(steps):
        tr._run_step()
        tr.step += 1
    return {"method": method, "antialias": tr.cfg.use_antialias, "cpu_s_per_step": (_cpu() - c0) / steps,
            "wall_s_per_step": (time.perf_counter() - w0) / steps, "peak_rss_mb": _peak_rss_mb()}


def figure(out: Path, mark: float, dest: Path, n: int = 4) -> Path:
    """The first `n` test photos, each method's translation at CPU-minute `mark` and the true painting, one row
    per photo (input | cyclegan | cut | fastcut | pix2pix | truth), from the weights the benchmark saved."""
    import torch
    from safetensors.torch import load_file

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.data import center_crop_or_resize, list_images, read_image
    from ganapps.cyclegan.pipeline import Translator, preview_grid
    from ganapps.engine.config import from_yaml
    from ganapps.engine.images import tensor_to_pil
    from ganapps.recipes.cyclegan_builtin import build

    root = build()
    files = list_images(root / "testA")[:n]
    x = torch.stack([center_crop_or_resize(read_image(f, 3), 128) for f in files])
    truth = torch.stack([center_crop_or_resize(read_image(root / "testA_painted" / f.name, 3), 128) for f in files])
    cols = [x]
    for m in METHODS:
        if not (out / m / f"gen_ab_{mark:g}min.safetensors").is_file():
            print(f"{m}: no weights at {mark:g} CPU-minutes; left out of the picture", file=sys.stderr)
            continue
        cfg = from_yaml(CycleGANConfig, out / m / "config.yaml")
        net = Translator.build_nets(cfg)["gen_ab"]
        net.load_state_dict(load_file(str(out / m / f"gen_ab_{mark:g}min.safetensors")))
        t = Translator(net, None, config=cfg, multiple=net.size_multiple, device="cpu")
        cols.append(t.translate_tensor(x, "a2b"))
    cols.append(truth)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(preview_grid([cols])).save(dest, quality=90)
    return dest


def _child(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_methods", *args], stdout=subprocess.PIPE,
                         text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])


def print_quality(results: list[dict]) -> None:
    base = results[0]["evals"][0]
    print(f"{'method':12s} {'CPU min':>7s} {'steps':>6s} {'PSNR dB':>8s} {'SSIM':>6s} {'SWD':>7s} {'KID x1e3':>9s} "
          f"{'checkerboard':>12s}")
    print(f"{'untranslated':12s} {'':>7s} {'':>6s} {base['psnr_identity_db']:8.2f} {base['ssim_identity']:6.3f} "
          f"{base['swd_identity']:7.1f} {base['kid_pixels_identity_x1e3']:9.1f} {1.0:12.2f}")
    for r in results:
        for e in r["evals"]:
            print(f"{r['method']:12s} {e['cpu_min']:7g} {e['steps']:6d} {e['psnr_db']:8.2f} {e['ssim']:6.3f} "
                  f"{e['swd']:7.1f} {e['kid_pixels_x1e3']:9.1f} {e.get('checkerboard_index', float('nan')):12.2f}")
    for r in results:
        print(f"{r['method']:10s} {r['cpu_s_per_step']:.3f} CPU s/step ({r['wall_s_per_step']:.3f} wall), peak RSS "
              f"while training {r['peak_rss_train_mb']:.0f} MB")


def _marks(text: str) -> tuple[float, ...]:
    """'10,20,30' -> (10.0, 20.0, 30.0): increasing positive CPU-minute marks."""
    try:
        marks = tuple(float(m) for m in text.split(","))
    except ValueError:
        marks = ()
    if not marks or marks[0] <= 0 or any(b <= a for a, b in zip(marks, marks[1:], strict=False)):
        raise argparse.ArgumentTypeError(f"{text!r}: expected increasing positive CPU-minutes, e.g. 10,20,30")
    return marks


def _methods(text: str) -> list[str]:
    chosen = text.split(",")
    if not chosen or any(m not in METHODS for m in chosen):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated subset of {','.join(METHODS)}")
    return chosen


def run_speed(a: argparse.Namespace, methods: list[str]) -> None:
    """Step speed and peak memory of each method side by side, interleaved rounds in separate processes."""
    variants = [(m, "default") for m in methods if m != "pix2pix"]
    if "fastcut" in methods:
        variants.append(("fastcut", "off"))  # FastCUT on CycleGAN's exact generator and critic
    print(f"step speed: {a.gen} ngf {a.ngf}, crop {a.crop}, batch 1; {a.steps} timed steps after 2, "
          f"{a.repeats} interleaved rounds", flush=True)
    rows: dict[tuple[str, str], list[dict]] = {}
    for rnd in range(a.repeats):
        for m, aa in variants:
            r = _child(["--speed-child", m, a.gen, str(a.ngf), str(a.crop), str(a.steps), aa])
            rows.setdefault((m, aa), []).append(r)
            print(f"round {rnd}  {m:9s} antialias {str(r['antialias']):5s} {r['cpu_s_per_step']:.3f} CPU s/step "
                  f"({r['wall_s_per_step']:.3f} wall)  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    ref = min(x["cpu_s_per_step"] for x in rows.get(("cyclegan", "default"), [{"cpu_s_per_step": float("nan")}]))
    for (m, _aa), rs in rows.items():
        best = min(x["cpu_s_per_step"] for x in rs)
        print(f"{m:9s} antialias {str(rs[0]['antialias']):5s} best {best:.3f} CPU s/step = {ref / best:.2f}x "
              f"CycleGAN's throughput, peak RSS {max(x['peak_rss_mb'] for x in rs):.0f} MB", flush=True)


def run_quality(a: argparse.Namespace, methods: list[str]) -> None:
    """Every method to each CPU-minute mark in turn (resuming its run), then the table."""
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"quality at {','.join(f'{m:g}' for m in a.minutes)} CPU-minutes per method; runs in {out} (an "
          f"interrupted benchmark continues where it stopped)", flush=True)
    results: dict[str, dict] = {}
    for mark in a.minutes:  # every method to a mark, then on to the next
        for m in methods:
            done = out / m / "bench_state.json"
            state = json.loads(done.read_text()) if done.is_file() else {"evals": [], "train_cpu_s": 0.0}
            if any(e["cpu_min"] == mark for e in state["evals"]):
                continue
            if state["train_cpu_s"] > mark * 60:
                raise SystemExit(f"{done}: the {m} run is past {mark:g} CPU-minutes already "
                                 f"({state['train_cpu_s'] / 60:.1f}); give another --out for these marks")
            results[m] = _child(["--quality-child", m, f"{mark:g}", "--out", str(out)])
            (out / "results.json").write_text(json.dumps(list(results.values()), indent=1))
    results = {m: json.loads((out / m / "bench_state.json").read_text()) | {"method": m} for m in methods}
    for r in results.values():
        r["cpu_s_per_step"] = r["train_cpu_s"] / r["steps"]
        r["wall_s_per_step"] = r["wall_train_s"] / r["steps"]
    (out / "results.json").write_text(json.dumps(list(results.values()), indent=1))
    print_quality(list(results.values()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_methods")
    p.add_argument("--minutes", type=_marks, default=(10.0, 20.0, 30.0),
                   help="CPU-minute marks of each run, comma-separated (default 10,20,30; the issue: 20,60)")
    p.add_argument("--methods", type=_methods, default=list(METHODS))
    p.add_argument("--out", default=str(OUT), help="run folders, generator weights at each mark, results.json")
    p.add_argument("--speed", action="store_true", help="the step speed comparison instead")
    p.add_argument("--gen", default="resnet_6blocks")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps per speed measurement")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--figure", nargs=2, metavar=("MARK", "DEST"), help="picture of the test translations at a mark")
    p.add_argument("--quality-child", nargs=2, metavar=("METHOD", "MARK"))
    p.add_argument("--speed-child", nargs=6, metavar=("METHOD", "GEN", "NGF", "CROP", "STEPS", "ANTIALIAS"))
    a = p.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if a.quality_child:
        print(json.dumps(quality_child(a.quality_child[0], float(a.quality_child[1]), Path(a.out))))
        return
    if a.figure:
        print(figure(Path(a.out), float(a.figure[0]), Path(a.figure[1])))
        return
    if a.speed_child:
        m, gen, ngf, crop, steps, aa = a.speed_child
        print(json.dumps(speed_child(m, gen, int(ngf), int(crop), int(steps), aa)))
        return
    import torch

    methods = a.methods
    print(f"torch {torch.__version__}, 1 thread per run, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    if a.speed:
        run_speed(a, methods)
    else:
        run_quality(a, methods)

if __name__ == "__main__":
    main(sys.argv[1:])
