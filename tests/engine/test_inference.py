"""The inference base: the device rule, from_checkpoint (explicit and shipped-default), export's one key layout
and its float16/float32 round trip, and one-line errors that leave nothing half-written."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from ganapps.engine import checkpoint as ckpt
from ganapps.engine.config import TrainConfig, to_yaml
from ganapps.engine.errors import InputError
from ganapps.engine.inference import InferenceModel, pick_device

FP16_RELATIVE_ROUNDING = 2.0**-11  # round-to-nearest float16: |x - fp16(x)| <= |x| 2^-11 for normal numbers
FP16_SUBNORMAL_HALF_STEP = 2.0**-25  # ... and <= 2^-25 below the normal range


@dataclasses.dataclass
class TinyConfig(TrainConfig):
    width: int = 3


class TinyNet(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(2, width)
        self.register_buffer("scale", torch.tensor([0.7, 1e-3]))  # not a parameter: kept at its own precision

    def forward(self, x):
        return self.lin(x) * self.scale[0]


class Tiny(InferenceModel):
    config_class = TinyConfig
    default_model = "tiny-default"

    def __init__(self, net, config, device="cpu"):
        super().__init__({"net": net}, config, device)

    @classmethod
    def build_nets(cls, config):
        return {"net": TinyNet(config.width)}

    @classmethod
    def from_nets(cls, nets, config, device):
        return cls(nets["net"], config, device)


def _checkpoint(folder, cfg, weights):
    folder.mkdir(parents=True)
    save_file(ckpt.flatten_weights(weights), str(folder / ckpt.WEIGHTS))
    (folder / ckpt.CONFIG).write_text(to_yaml(cfg))
    return folder


def _net_state(width=3, seed=0):
    torch.manual_seed(seed)
    return TinyNet(width).state_dict()


# --------------------------------------------------------------------------- device rule


def test_auto_is_cuda_when_available_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name, needle", [("gpu", "expected auto"), ("cuda:x", "expected auto"),
                                          ("meta", "expected auto")])
def test_malformed_devices_are_one_line_input_errors(name, needle):
    with pytest.raises(InputError) as e:
        pick_device(name)
    assert f"--device {name}" in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_absent_devices_are_input_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="--device cuda: no CUDA device"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match="--device cuda:1: only 1 CUDA device"):
        pick_device("cuda:1")


# --------------------------------------------------------------------------- loading


def test_from_checkpoint_prefers_the_ema_copy_and_none_loads_the_shipped_default(tmp_path, monkeypatch):
    raw, ema = _net_state(seed=0), _net_state(seed=1)
    _checkpoint(tmp_path / "models" / "tiny-default", TinyConfig(), {"net": raw, "net_ema": ema})
    monkeypatch.setenv("GANAPPS_MODELS_DIR", str(tmp_path / "models"))
    model = Tiny.from_checkpoint()
    assert model.source == tmp_path / "models" / "tiny-default" and model.device == pick_device("auto")
    torch.testing.assert_close(model.nets["net"].state_dict(), ema, rtol=0, atol=0)
    plain = Tiny.from_checkpoint(tmp_path / "models" / "tiny-default", use_ema=False, device="cpu")
    torch.testing.assert_close(plain.nets["net"].state_dict(), raw, rtol=0, atol=0)
    assert not plain.nets["net"].training


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path):
    folder = _checkpoint(tmp_path / "m", TinyConfig(width=4), {"net": _net_state(width=3)})
    with pytest.raises(InputError) as e:
        Tiny.from_checkpoint(folder)
    assert "weights of 'net' do not fit" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="no weights for 'net'"):
        Tiny.from_checkpoint(_checkpoint(tmp_path / "other", TinyConfig(), {"gen": _net_state()}))


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("fp16", [True, False])
def test_export_writes_one_key_per_net_parameter_and_round_trips(tmp_path, fp16):
    src = _checkpoint(tmp_path / "run", TinyConfig(width=5), {"net": _net_state(5, 0), "net_ema": _net_state(5, 1),
                                                              "disc": {"w": torch.ones(2)}})
    model = Tiny.from_checkpoint(src, device="cpu")
    res = model.export(tmp_path / "model", fp16=fp16)
    stored = load_file(res["weights"])
    # one layout: <net>.<state_dict key>, only the nets inference uses, EMA values under the plain name
    assert set(stored) == {f"net.{k}" for k in model.nets["net"].state_dict()}
    assert res["nets"] == ["net"] and res["dtype"] == ("float16" if fp16 else "float32")
    assert res["sha256"] == ckpt.file_digest(res["weights"])
    assert stored["net.lin.weight"].dtype == (torch.float16 if fp16 else torch.float32)
    assert stored["net.scale"].dtype == torch.float32  # buffers keep their precision
    assert yaml.safe_load(open(res["config"]))["width"] == 5
    back = Tiny.from_checkpoint(tmp_path / "model", device="cpu")
    assert back.config == model.config
    for k, v in model.nets["net"].state_dict().items():
        got = back.nets["net"].state_dict()[k]
        assert got.dtype == torch.float32
        bound = v.abs() * FP16_RELATIVE_ROUNDING + FP16_SUBNORMAL_HALF_STEP if fp16 and k != "scale" else 0.0
        assert bool(((got - v).abs() <= bound).all()), k
    assert not list((tmp_path / "model").glob(".*tmp*"))


def test_export_errors_are_one_line_and_leave_nothing_half_written(tmp_path, monkeypatch):
    model = Tiny(TinyNet(3), TinyConfig())
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile: exists and is not a folder"):
        model.export(tmp_path / "afile")
    first = model.export(tmp_path / "model")
    before = (tmp_path / "model" / ckpt.WEIGHTS).read_bytes()

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(InputError) as e:
        Tiny(TinyNet(3), TinyConfig()).export(tmp_path / "model")
    assert "cannot write the model folder (No space left on device)" in str(e.value)
    assert (tmp_path / "model" / ckpt.WEIGHTS).read_bytes() == before  # the previous export is intact
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [ckpt.CONFIG, ckpt.WEIGHTS]
    assert first["sha256"] == ckpt.file_digest(tmp_path / "model" / ckpt.WEIGHTS)


# --------------------------------------------------------------------------- the three task classes


def test_each_task_class_loads_its_shipped_model_with_no_argument(monkeypatch):
    from ganapps.cyclegan import Translator
    from ganapps.medical import Synthesizer
    from ganapps.video import Predictor

    monkeypatch.delenv("GANAPPS_MODELS_DIR", raising=False)
    for cls, nets in ((Translator, {"gen_ab", "gen_ba"}), (Predictor, {"gen"}), (Synthesizer, {"gen"})):
        model = cls.from_checkpoint()
        assert isinstance(model, InferenceModel) and set(model.nets) == nets
        assert model.source == ckpt.shipped_model(cls.default_model)
        assert model.device == pick_device("auto")
        assert all(not net.training for net in model.nets.values())
