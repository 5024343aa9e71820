"""The FID Inception v3 network (pytorch-fid's variant of the TF 2015-12-05 graph), its local weights, and the
Inception Score. Never downloads anything; must not import Typer or any task package.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ganapps.engine.checkpoint import file_digest
from ganapps.engine.errors import InputError

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
# torch.hub's convention: the hex after the last '-' in the file name starts the file's sha256.
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "GANAPPS_INCEPTION_WEIGHTS"


class FIDInceptionA(torchvision.models.inception.InceptionA):
    """InceptionA whose average pool ignores padded zeros, as TensorFlow's does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(torchvision.models.inception.InceptionC):
    """InceptionC whose average pool ignores padded zeros, as TensorFlow's does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class FIDInceptionE1(torchvision.models.inception.InceptionE):
    """First InceptionE (Mixed_7b): average pool ignores padded zeros."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        branch_pool = self.branch_pool(self._pool(x))
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionE2(FIDInceptionE1):
    """Second InceptionE (Mixed_7c): the TF graph max-pools here where the paper average-pools."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 3, stride=1, padding=1)


class FIDInceptionV3(nn.Module):
    """Inception v3 as used for FID (Heusel et al. 2017) by pytorch-fid and TTUR: torchvision's Inception3
    with 1008 classes, no aux head, and the TF graph's pooling quirks; parameter names match the
    `pt_inception-2015-12-05` state dict, loaded into `self.net`.

    forward: images (B, C, H, W) in [-1, 1], C in {1, 3} (grayscale is repeated to RGB), any H, W (resized
    bilinearly to 299, as pytorch-fid) -> (pool (B, 2048), logits (B, 1008)). The logits omit the fc bias,
    like the original Inception Score code and torch-fidelity. Randomly initialised until weights load.
    """

    def __init__(self):
        super().__init__()
        net = torchvision.models.inception_v3(
            weights=None, aux_logits=False, init_weights=False, num_classes=1008
        )
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE1(1280)
        net.Mixed_7c = FIDInceptionE2(2048)
        self.net = net
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)  # (B, 3, 299, 299)
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))  # (B, 64, 73, 73)
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))  # (B, 192, 35, 35)
        for block in (
            n.Mixed_5b,
            n.Mixed_5c,
            n.Mixed_5d,
            n.Mixed_6a,
            n.Mixed_6b,
            n.Mixed_6c,
            n.Mixed_6d,
            n.Mixed_6e,
        ):
            x = block(x)  # ends (B, 768, 17, 17)
        x = n.Mixed_7c(n.Mixed_7b(n.Mixed_7a(x)))  # (B, 2048, 8, 8)
        pool = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 2048)
        return pool, F.linear(pool, n.fc.weight)  # logits (B, 1008)


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Locate the FID Inception weights: `path`, else $GANAPPS_INCEPTION_WEIGHTS, else the torch hub cache
    where pytorch-fid stores them ($TORCH_HOME or ~/.cache/torch, then hub/checkpoints/<FID_WEIGHTS_FILENAME>).
    Raises InputError saying how to get the file when none exists; never downloads."""
    how = (
        f"get {FID_WEIGHTS_FILENAME} from {FID_WEIGHTS_URL} (or run pytorch-fid once, which saves it to the "
        f"torch hub cache) and pass --inception-weights PATH or set {WEIGHTS_ENV}"
    )
    if path is not None:
        if not Path(path).is_file():
            raise InputError(f"{path}: Inception weights file not found; {how}")
        return Path(path)
    if os.environ.get(WEIGHTS_ENV):
        env_path = Path(os.environ[WEIGHTS_ENV])
        if not env_path.is_file():
            raise InputError(f"{env_path} (from ${WEIGHTS_ENV}): Inception weights file not found; {how}")
        return env_path
    hub_path = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILENAME
    if hub_path.is_file():
        return hub_path
    raise InputError(f"FID Inception weights not found (looked in {hub_path}); {how}")


def load_fid_inception(
    path: str | os.PathLike | None = None,
    verify: bool = True,
    expected_sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX,
) -> tuple[FIDInceptionV3, str]:
    """The FID Inception net with weights from a local file (see `find_inception_weights`), in eval mode,
    and the file's sha256. With `verify`, the sha256 must start with `expected_sha256_prefix`. Loading uses
    torch.load(weights_only=True) and a strict key match. Raises InputError on any mismatch."""
    weights = find_inception_weights(path)
    digest = file_digest(weights)
    if verify and not digest.startswith(expected_sha256_prefix):
        raise InputError(
            f"{weights}: sha256 {digest[:16]}... does not start with {expected_sha256_prefix}, expected the "
            f"pytorch-fid file {FID_WEIGHTS_FILENAME} (pass --no-verify to use other weights anyway)"
        )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file; all mean "not a state dict"
        raise InputError(f"{weights}: cannot load as a torch state dict ({type(err).__name__})") from None
    return fid_inception_from_state_dict(state, str(weights)), digest


def fid_inception_from_state_dict(state: dict, where: str = "state dict") -> FIDInceptionV3:
    """An `FIDInceptionV3` in eval mode holding `state` (keys and shapes of pytorch-fid's file; BatchNorm
    `num_batches_tracked` may be absent). Raises InputError naming `where` and the first bad key."""
    weights = where
    model = FIDInceptionV3()
    expected = model.net.state_dict()
    # Files saved by old torch lack BatchNorm's num_batches_tracked; load_state_dict fills it in.
    required = {k for k in expected if not k.endswith("num_batches_tracked")}
    if not isinstance(state, dict) or not required <= set(state) or not set(state) <= set(expected):
        extra = sorted(set(state) - set(expected))[:2] if isinstance(state, dict) else type(state).__name__
        missing = sorted(required - set(state))[:2] if isinstance(state, dict) else []
        raise InputError(
            f"{weights}: not an FID Inception v3 state dict (missing {missing}, unexpected {extra}), "
            f"expected {FID_WEIGHTS_FILENAME}"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected[key].shape):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputError(f"{weights}: {key} has shape {got}, expected {tuple(expected[key].shape)}")
    model.net.load_state_dict(state)
    return model.eval()


class InceptionExtractor:
    """`Extractor` of FID Inception features: output "pool" gives pool3 features (B, 2048) for FID, KID,
    PRDC; "logits" gives (B, 1008) for the Inception Score. Weights from a local file only (see
    `load_fid_inception`); images (B, C, H, W) in [-1, 1] on the CPU, computed on `device` in float32."""

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        output: str = "pool",
        device: str | torch.device = "cpu",
        verify: bool = True,
    ):
        if output not in ("pool", "logits"):
            raise InputError(f"InceptionExtractor: output={output!r}, expected 'pool' or 'logits'")
        self.model, digest = load_fid_inception(weights, verify=verify)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.output = output
        self.name = f"fid-inception-v3-{output}-{digest[:16]}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        pool, logits = self.model(images.to(self.device, torch.float32))
        return (pool if self.output == "pool" else logits).cpu()


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, "Improved techniques for training
    GANs") from logits (N, K), computed on `splits` consecutive chunks (no shuffling, as the original code);
    returns (mean, std) over chunks. In [1, K]; use the 1008-way logits of `InceptionExtractor(output=
    "logits")` to compare with published values."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or splits < 1 or len(logits) < splits:
        raise InputError(
            f"inception_score: logits shape {logits.shape} with splits={splits}, expected (N, K), N >= splits"
        )
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))  # log p(y|x), (N, K)
    scores = []
    for chunk in np.array_split(log_p, splits):
        p = np.exp(chunk)
        marginal = p.mean(axis=0, keepdims=True)  # p(y), (1, K)
        with np.errstate(divide="ignore", invalid="ignore"):
            # A class no image predicts contributes 0 * log 0 = 0.
            terms = np.where(p > 0, p * (chunk - np.log(marginal)), 0.0)
        kl = terms.sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
