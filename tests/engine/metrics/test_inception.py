import numpy as np
import pytest
import torch
import torchvision

from ganapps.engine.errors import InputError
from ganapps.engine.metrics import (
    FID_WEIGHTS_FILENAME,
    FID_WEIGHTS_URL,
    FIDInceptionV3,
    InceptionExtractor,
    fid_inception_from_state_dict,
    find_inception_weights,
    inception_score,
    load_fid_inception,
)
from ganapps.engine.metrics.inception import FIDInceptionA, FIDInceptionE2


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for m in model.modules():  # random but well-scaled, so features are not degenerate
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.05)
    return model


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("GANAPPS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


def test_fid_inception_has_the_pytorch_fid_parameter_layout(net):
    state = net.net.state_dict()
    # torchvision inception_v3 has 27,161,264 parameters; minus its aux head (3,326,696) plus
    # 8 more classes in fc (8 x 2049) gives the 1008-class FID network.
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 + 8 * 2049
    assert not any(k.startswith("AuxLogits") for k in state)
    assert state["fc.weight"].shape == (1008, 2048)
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)


def test_fid_inception_maps_any_size_and_grayscale_to_pool3_and_bias_free_logits(net):
    with torch.no_grad():
        pool, logits = net(torch.rand(1, 1, 40, 56) * 2 - 1)  # grayscale, not 299 x 299
    assert pool.shape == (1, 2048) and logits.shape == (1, 1008)
    assert pool.std() > 0
    torch.testing.assert_close(logits, pool @ net.net.fc.weight.T)


def test_fid_inception_a_block_differs_from_torchvision_only_at_borders():
    tv = torchvision.models.inception.InceptionA(16, pool_features=8).eval()
    fid = FIDInceptionA(16, pool_features=8).eval()
    fid.load_state_dict(tv.state_dict())
    x = torch.rand(1, 16, 9, 9)
    with torch.no_grad():
        diff = (tv(x) - fid(x)).abs().amax(dim=(0, 1))  # (9, 9)
    # TF's average pool excludes padded zeros: only the outer ring of pixels can change.
    assert diff[1:-1, 1:-1].max() < 1e-6 and diff.max() > 1e-4


def test_last_fid_block_max_pools_where_torchvision_average_pools():
    tv = torchvision.models.inception.InceptionE(8).eval()
    fid = FIDInceptionE2(8).eval()
    fid.load_state_dict(tv.state_dict())
    x = torch.rand(1, 8, 5, 5)
    with torch.no_grad():
        assert not torch.allclose(tv(x), fid(x))
        # Only the pool branch (last 192 channels) differs.
        torch.testing.assert_close(tv(x)[:, :-192], fid(x)[:, :-192])


def test_missing_weights_error_says_where_to_put_them_and_how_to_get_them(no_weights_anywhere):
    with pytest.raises(InputError) as err:
        find_inception_weights()
    message = str(err.value)
    assert FID_WEIGHTS_FILENAME in message and FID_WEIGHTS_URL in message
    assert "--inception-weights" in message and "GANAPPS_INCEPTION_WEIGHTS" in message
    assert str(no_weights_anywhere / "torch_home" / "hub" / "checkpoints") in message
    assert "\n" not in message


def test_weights_are_found_in_the_torch_hub_cache_and_env_wins(no_weights_anywhere, monkeypatch):
    hub_file = no_weights_anywhere / "torch_home" / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"x")
    assert find_inception_weights() == hub_file
    env_file = no_weights_anywhere / "mine.pth"
    env_file.write_bytes(b"y")
    monkeypatch.setenv("GANAPPS_INCEPTION_WEIGHTS", str(env_file))
    assert find_inception_weights() == env_file
    assert find_inception_weights(hub_file) == hub_file  # an explicit path wins over both
    with pytest.raises(InputError, match="nope.pth: Inception weights file not found"):
        find_inception_weights(no_weights_anywhere / "nope.pth")


def test_weights_with_the_wrong_hash_are_rejected_naming_the_file(tmp_path):
    fake = tmp_path / FID_WEIGHTS_FILENAME
    torch.save({"fc.weight": torch.zeros(2, 2)}, fake)
    with pytest.raises(
        InputError, match=r"pt_inception.*sha256 .* does not start with 6726825d.*--no-verify"
    ):
        load_fid_inception(fake)


def test_unverified_weights_must_still_be_an_fid_inception_state_dict(tmp_path):
    fake = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, fake)
    with pytest.raises(InputError, match="other.pth: not an FID Inception v3 state dict"):
        load_fid_inception(fake, verify=False)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="garbage.pth: cannot load"):
        load_fid_inception(garbage, verify=False)


def test_state_dict_loads_without_batchnorm_counters_and_rejects_wrong_shapes(net):
    state = {k: v for k, v in net.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    loaded = fid_inception_from_state_dict(state)
    torch.testing.assert_close(loaded.net.fc.weight, net.net.fc.weight)
    assert not loaded.training
    state["fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(InputError, match=r"fc.weight has shape \(1000, 2048\), expected \(1008, 2048\)"):
        fid_inception_from_state_dict(state, "w.pth")


def test_inception_extractor_refuses_to_run_without_weights(no_weights_anywhere):
    with pytest.raises(InputError, match="not found"):
        InceptionExtractor()


def test_inception_score_is_one_for_a_single_class_and_k_for_k_balanced_classes():
    confident = np.full((40, 10), -50.0)
    confident[:, 3] = 50.0
    assert inception_score(confident, splits=4)[0] == pytest.approx(1.0, abs=1e-9)
    balanced = np.full((32, 10), -50.0)
    balanced[np.arange(32), np.arange(32) % 8] = 50.0  # each split of 8 sees 8 classes once
    mean, std = inception_score(balanced, splits=4)
    assert mean == pytest.approx(8.0, rel=1e-9) and std < 1e-9
    assert inception_score(np.zeros((40, 10)), splits=4)[0] == pytest.approx(1.0)  # uninformative


@pytest.mark.slow
def test_inception_extractor_loads_a_full_saved_state_dict(net, tmp_path):
    path = tmp_path / "random_inception.pth"
    torch.save(net.net.state_dict(), path)  # about 95 MB
    extractor = InceptionExtractor(path, verify=False)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(extractor(images), net(images)[0])
    assert extractor.name.startswith("fid-inception-v3-pool-")
