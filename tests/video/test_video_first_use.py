"""The video built-in photos fetched on first use: on a fresh cache `ganapps video train` (default dataset
"photos") fetches the scikit-image wheel's photos (here a local wheel read through pip's find-links, no
network), says so in one line, checks every sha256, and trains on them; a second run fetches nothing."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from recipe_helpers import make_wheel, sha256, use_local_index

from ganapps.cli import main
from ganapps.recipes import video_photos

TINY = ["--preset", "tiny", "--dataset", "photos", "--steps", "1", "--quiet", "--no-write-report", "--json"]


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (60, 80, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_train_fetches_the_photos_once_with_a_one_line_note(tmp_path, monkeypatch, capsys):
    members = {m: _png(k) for k, m in enumerate(video_photos.MEMBERS)}  # .jpg names hold PNG bytes: Pillow sniffs
    make_wheel(tmp_path / "wheels", "scikit-image", video_photos.VERSION, members)
    use_local_index(monkeypatch, tmp_path / "wheels")
    monkeypatch.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GANAPPS_DATA_DIR", raising=False)
    monkeypatch.setattr(video_photos, "MEMBERS", {m: sha256(b) for m, b in members.items()})
    assert main(["video", "train", "--out", str(tmp_path / "run"), *TINY]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("ganapps: fetching")]
    assert len(notes) == 1 and "17 file(s) of the scikit-image 0.26.0 wheel" in notes[0]
    assert "python -m ganapps.recipes.video_photos" in notes[0]
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 1
    assert len(list((tmp_path / "cache" / "data" / "video_photos").iterdir())) == 17
    assert main(["video", "train", "--out", str(tmp_path / "run2"), *TINY]) == 0
    assert "fetching" not in capsys.readouterr().err
