import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import (
    Extractor,
    PixelExtractor,
    extract_features,
    load_images,
    source_statistics,
    statistics_cache_key,
)


def write_pngs(folder, arrays, mode=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(arrays):
        Image.fromarray(arr, mode=mode).save(folder / f"img_{i:03d}.png")
    return folder


def rgb_arrays(n, size=8, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))


class CountingExtractor:
    def __init__(self, name="count"):
        self.name = name
        self.images_seen = 0

    def __call__(self, images):
        self.images_seen += images.shape[0]
        return images.flatten(1)[:, :4]


def test_folder_of_pngs_loads_sorted_as_nchw_in_minus_one_one(tmp_path):
    arrays = rgb_arrays(3)
    arrays[0][0, 0] = (0, 128, 255)
    images = load_images(write_pngs(tmp_path / "a", arrays))
    assert images.shape == (3, 3, 8, 8) and images.dtype == torch.float32
    torch.testing.assert_close(images[0, :, 0, 0], torch.tensor([-1.0, 128 / 127.5 - 1, 1.0]))
    torch.testing.assert_close(images[2].permute(1, 2, 0), torch.from_numpy(arrays[2]).float() / 127.5 - 1)


def test_grayscale_folders_stay_one_channel_and_mixed_folders_become_rgb(tmp_path):
    gray = [np.full((8, 8), v, np.uint8) for v in (0, 255)]
    assert load_images(write_pngs(tmp_path / "g", gray)).shape == (2, 1, 8, 8)
    mixed = write_pngs(tmp_path / "m", gray)
    Image.fromarray(rgb_arrays(1)[0]).save(mixed / "z_rgb.png")
    images = load_images(mixed)
    assert images.shape == (3, 3, 8, 8)
    torch.testing.assert_close(images[1], torch.ones(3, 8, 8))  # white gray -> white RGB


def test_sixteen_bit_grayscale_uses_the_full_range(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(folder / "slice.png")
    torch.testing.assert_close(load_images(folder)[0, 0, 0], torch.tensor([-1.0, 1.0]))


def test_npy_and_pt_tensors_load_in_both_dtypes(tmp_path):
    uint8 = np.random.default_rng(0).integers(0, 256, size=(4, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "a.npy", uint8)
    torch.save(torch.from_numpy(uint8).float() / 127.5 - 1, tmp_path / "a.pt")
    np.save(tmp_path / "hw.npy", uint8[:, 0])  # (N, H, W) gains a channel axis
    torch.testing.assert_close(load_images(tmp_path / "a.npy"), load_images(tmp_path / "a.pt"))
    assert load_images(tmp_path / "hw.npy").shape == (4, 1, 8, 8)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "missing: no such file or folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no images found"),
        (lambda d: (d / "x.txt").write_text("hi") and d / "x.txt", "x.txt: unsupported file type"),
        (
            lambda d: np.save(d / "nhwc.npy", np.zeros((2, 8, 8, 3), np.uint8)) or d / "nhwc.npy",
            "expected images",
        ),
        (
            lambda d: np.save(d / "big.npy", np.full((2, 1, 8, 8), 3.0)) or d / "big.npy",
            r"values in \[3, 3\]",
        ),
        (lambda d: torch.save({"a": 1}, d / "dict.pt") or d / "dict.pt", "dict.pt: holds a dict"),
    ],
)
def test_bad_sources_raise_input_error_naming_the_file(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        load_images(make(tmp_path))


def test_unreadable_and_mismatched_images_are_named(tmp_path):
    folder = write_pngs(tmp_path / "a", rgb_arrays(2))
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: cannot read image"):
        load_images(folder)
    (folder / "broken.png").unlink()
    Image.fromarray(rgb_arrays(1, size=9)[0]).save(folder / "odd.png")
    with pytest.raises(InputError, match="odd.png: image is 9x9, expected 8x8"):
        load_images(folder)


class TinyNetExtractor:
    name = "tiny-net"

    def __init__(self):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)
        ).eval()

    def __call__(self, images):
        return self.net(images).flatten(1)


def test_feature_extraction_does_not_depend_on_batch_size(tmp_path):
    folder = write_pngs(tmp_path / "a", rgb_arrays(7, size=16))
    for extractor in (PixelExtractor(4), TinyNetExtractor()):
        one = extract_features(folder, extractor, batch_size=1, progress=False)
        all_ = extract_features(folder, extractor, batch_size=100, progress=False)
        assert one.shape[0] == 7
        np.testing.assert_allclose(one, all_, rtol=1e-5, atol=1e-6)


def test_pixel_extractor_is_an_extractor_of_area_means():
    extractor = PixelExtractor(2)
    assert isinstance(extractor, Extractor)
    images = torch.arange(16.0).view(1, 1, 4, 4) / 16
    torch.testing.assert_close(extractor(images), torch.tensor([[2.5, 4.5, 10.5, 12.5]]) / 16)


def test_folder_statistics_are_cached_until_the_folder_or_extractor_changes(tmp_path):
    folder = write_pngs(tmp_path / "a", rgb_arrays(5))
    cache = tmp_path / "cache"
    extractor = CountingExtractor()
    mu, sigma = source_statistics(folder, extractor, progress=False, cache_dir=cache)
    assert extractor.images_seen == 5 and len(list((cache / "stats").glob("*.npz"))) == 1
    mu2, sigma2 = source_statistics(folder, extractor, progress=False, cache_dir=cache)
    assert extractor.images_seen == 5  # served from the cache
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    key = statistics_cache_key(folder, "count")
    os.utime(folder / "img_000.png", ns=(1, 1))
    assert statistics_cache_key(folder, "count") != key
    source_statistics(folder, extractor, progress=False, cache_dir=cache)
    assert extractor.images_seen == 10  # a touched file invalidates the entry
    source_statistics(folder, CountingExtractor("other"), progress=False, cache_dir=cache)
    assert len(list((cache / "stats").glob("*.npz"))) == 3
    assert source_statistics(folder, extractor, progress=False, use_cache=False)[0].shape == (4,)
    assert extractor.images_seen == 15


def test_default_statistics_cache_follows_the_cache_folder_rule(monkeypatch, tmp_path):
    folder = write_pngs(tmp_path / "a", rgb_arrays(3))
    monkeypatch.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "c"))
    source_statistics(folder, CountingExtractor(), progress=False)
    assert len(list((tmp_path / "c" / "stats").glob("*.npz"))) == 1
    monkeypatch.delenv("GANAPPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    source_statistics(folder, CountingExtractor(), progress=False)
    assert len(list((tmp_path / "xdg" / "ganapps" / "stats").glob("*.npz"))) == 1
