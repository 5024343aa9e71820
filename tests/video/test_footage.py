"""The footage renderer of the video_footage recipe on stand-in photos (smooth random images under the recipe's
file names; the real ones are fetched from pinned wheels): every kind renders, the same seed gives the same clip
and the same H.264 stream, the stream decodes to the clip, and the kinds move as they should. At the recipe's 128 px:
at 64 or 96 px the same frames gave different libx264 streams in some of 8 encodes (PyAV 18.1.0), at 128 px never."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from ganapps.recipes import _footage as fo
from ganapps.recipes.video_footage import SIZE

pytest.importorskip("av")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> fo.Sources:
    d = tmp_path_factory.mktemp("footage")
    rng = np.random.default_rng(0)
    files = {}
    for name in fo.VAL_SCENES:
        img = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(d / name), img)
        files[name] = d / name
    np.save(d / "lfw_subset.npy", rng.random((200, 25, 25)))
    files["lfw_subset.npy"] = d / "lfw_subset.npy"
    return fo.Sources("val", files)


@pytest.mark.parametrize("kind", fo.KINDS)
def test_each_kind_renders_the_same_clip_and_stream_from_the_same_seed(sources, kind):
    import av

    a, info, data = fo.make_clip((1, 2, 3), sources, kind, 8, SIZE)
    b, _, data_b = fo.make_clip((1, 2, 3), sources, kind, 8, SIZE)
    assert a.shape == (8, SIZE, SIZE, 3) and a.dtype == np.uint8 and info["kind"] == kind and info["crf"] in fo.CRFS
    assert np.array_equal(a, b) and data == data_b
    with av.open(io.BytesIO(data)) as inp:  # the stream is real H.264 and decodes to the clip
        stream = inp.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [fo.yuv420_to_rgb(f.to_ndarray(format="yuv420p")) for f in inp.decode(stream)]
    assert np.array_equal(np.stack(frames), a)
    c, _, _ = fo.make_clip((1, 2, 4), sources, kind, 8, SIZE)
    assert not np.array_equal(a, c)  # another seed, another clip


def test_static_shots_change_less_from_frame_to_frame_than_fast_pans(sources):
    def change(kind: str) -> float:
        clips = [fo.make_clip((5, i), sources, kind, 6, SIZE)[0].astype(float) for i in range(4)]
        return float(np.mean([np.abs(np.diff(c, axis=0)).mean() for c in clips]))

    assert change("static_scene") < 0.5 * change("fast_pan")
