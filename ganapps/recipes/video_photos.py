"""Real photos for the default video model: 17 images shipped in the scikit-image 0.26.0 wheel (fetched with
`pip download`, checked by sha256). 14 train the model through rendered camera motion; 3 are held out
(chelsea, coffee, rocket) and rendered into test clips (`eval_clips`) that no training step has seen.

    python -m ganapps.recipes.video_photos [DEST]     # fetch, verify, render the held-out clips, print counts

`ganapps video train` (the default photos dataset) fetches them on first use when they are missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.paths import data_dir
from ._fetch import fetch_wheel_members

VERSION = "0.26.0"
MEMBERS = {  # sha256 measured on the wheel scikit_image-0.26.0-cp311 manylinux
    "skimage/data/astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "skimage/data/brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "skimage/data/camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "skimage/data/cell.png": "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515",
    "skimage/data/coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "skimage/data/grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "skimage/data/gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "skimage/data/hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "skimage/data/ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "skimage/data/moon.png": "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    "skimage/data/motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "skimage/data/page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    "skimage/data/retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "skimage/data/text.png": "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
    "skimage/data/chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "skimage/data/coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "skimage/data/rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}
HELD_OUT = ("chelsea.png", "coffee.png", "rocket.jpg")


def default_dir() -> Path:
    return data_dir() / "video_photos"


def fetch(dest: str | Path | None = None, quiet: bool = True) -> tuple[list[Path], list[Path]]:
    """(train photos, held-out photos), fetched once into `dest` and verified."""
    files = fetch_wheel_members("scikit-image", VERSION, MEMBERS, dest or default_dir(), quiet=quiet,
                                recipe="video_photos")
    paths = list(files.values())
    return [p for p in paths if p.name not in HELD_OUT], [p for p in paths if p.name in HELD_OUT]


def eval_clips(dest: str | Path | None = None, clips_per_photo: int = 4, length: int = 16, size: int = 128,
               seed: int = 1234) -> list[Path]:
    """Render held-out camera-motion clips as mp4 (mp4v) into DEST/eval_clips; deterministic for a seed."""
    import cv2
    import numpy as np

    from ..video.data import load_photo, random_motion, render_camera_motion

    dest = Path(dest or default_dir())
    _, held = fetch(dest)
    out_dir = dest / "eval_clips"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k, photo_path in enumerate(held):
        photo = load_photo(photo_path, max_side=512)
        for j in range(clips_per_photo):
            rng = np.random.default_rng([seed, k, j])
            params = random_motion(rng, size)
            params.pop("sprite_x", None)  # camera motion only: sprites come from training photos
            clip = render_camera_motion(photo, length, size, params)
            path = out_dir / f"{photo_path.stem}_{j}.mp4"
            if not path.exists():
                w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (size, size))
                for f in clip:
                    w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
                w.release()
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0]) if argv else default_dir()
    train, held = fetch(dest, quiet=False)
    assert len(train) == 14 and len(held) == 3, (len(train), len(held))
    clips = eval_clips(dest)
    print(f"{len(train)} train photos, {len(held)} held-out photos, {len(clips)} held-out clips in {dest}")


if __name__ == "__main__":
    main()
