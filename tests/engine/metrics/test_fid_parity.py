"""FID parity with the implementations everybody quotes: the same (seeded, random - never downloaded) weights
in our FID Inception and in pytorch-fid's `InceptionV3` give the same pool3 features and the same FID; in
torch-fidelity's extractor the same features on 299 x 299 inputs (it resizes other sizes like TensorFlow 1.x)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganapps.engine.metrics import FIDInceptionV3, fid_from_features, fid_inception_from_state_dict

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
fid_score = pytest.importorskip("pytorch_fid.fid_score")


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A seeded random FID Inception state dict whose activations neither vanish nor explode: conv weights at
    He scale for the fan-in, BatchNorm with random running statistics and affine terms."""
    g = torch.Generator().manual_seed(0)
    sd = FIDInceptionV3().net.state_dict()
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            out[k] = v
        elif k.endswith("conv.weight"):
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / v[0].numel()) ** 0.5
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith(("running_mean", "bn.bias")):
            out[k] = torch.randn(v.shape, generator=g) * 0.1
        elif k.endswith("bn.weight"):
            out[k] = torch.rand(v.shape, generator=g) * 0.5 + 0.75
        else:  # fc
            out[k] = torch.randn(v.shape, generator=g) * 0.02
    return out


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """Two small sets of smooth images in [0, 1] at a size that needs resizing (pytorch-fid's own path)."""
    g = torch.Generator().manual_seed(1)
    low = torch.rand(2, 6, 3, 8, 10, generator=g)
    sets = torch.nn.functional.interpolate(low.flatten(0, 1), size=(48, 60), mode="bilinear", align_corners=False)
    sets = sets.unflatten(0, (2, 6))
    sets[1] = (sets[1] * 0.7 + 0.2).clamp(0, 1)  # the second set is another distribution
    return sets[0], sets[1]


def _pytorch_fid_net(state, monkeypatch) -> torch.nn.Module:
    # pytorch-fid fetches its weights through load_state_dict_from_url; hand it ours instead of the network.
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
    return pytorch_fid_inception.InceptionV3([pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                             resize_input=True, normalize_input=True).eval()


def _features(state, images, monkeypatch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    theirs_net, ours_net = _pytorch_fid_net(state, monkeypatch), fid_inception_from_state_dict(state)
    with torch.no_grad():
        theirs = [theirs_net(x)[0].flatten(1).double().numpy() for x in images]  # inputs in [0, 1]
        ours = [ours_net(x * 2 - 1)[0].double().numpy() for x in images]  # ours take [-1, 1]
    return theirs, ours


def test_pool3_features_and_fid_agree_with_pytorch_fid(state, images, monkeypatch):
    theirs, ours = _features(state, images, monkeypatch)
    scale = max(float(np.abs(t).max()) for t in theirs)
    assert scale > 0.1 and all(t.std(0).mean() > 1e-3 * scale for t in theirs)  # features carry information
    for t, o in zip(theirs, ours, strict=True):
        assert float(np.abs(t - o).max()) <= 1e-5 * max(scale, 1.0)
    fid_theirs, fid_ours = fid_from_features(*theirs), fid_from_features(*ours)
    assert fid_theirs > 1.0 and fid_ours == pytest.approx(fid_theirs, abs=1e-3)


@pytest.mark.slow  # pytorch-fid's scipy sqrtm of two 2048 x 2048 products: about a minute
def test_fid_equals_pytorch_fids_own_frechet_distance(state, images, monkeypatch):
    theirs, ours = _features(state, images, monkeypatch)
    reference = fid_score.calculate_frechet_distance(*_stats(theirs[0]), *_stats(theirs[1]))
    assert fid_from_features(*ours) == pytest.approx(reference, abs=1e-3)


def _stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def test_pool3_features_agree_with_torch_fidelity_at_299(state, tmp_path):
    extractor_module = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    torch.save(state, tmp_path / "weights.pth")
    theirs_net = extractor_module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                              feature_extractor_weights_path=str(tmp_path / "weights.pth"))
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (2, 3, 299, 299), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        theirs = theirs_net(x)[0].double()
        ours = fid_inception_from_state_dict(state)((x.float() - 128) / 128)[0].double()
    scale = float(theirs.abs().max())
    assert scale > 0.1 and float((theirs - ours).abs().max()) <= 1e-5 * max(scale, 1.0)
