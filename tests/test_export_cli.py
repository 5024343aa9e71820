"""`ganapps cyclegan|video|medical export RUN --format onnx|torchscript`: the exported files reproduce the
pipelines' own outputs outside them (ONNX Runtime, torch.jit.load) at sizes and batches not traced, and what a
net or an option cannot take is one line with exit 2 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganapps.cli import main
from ganapps.engine.export import PARITY_TOLERANCE

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def _cyclegan_model(folder, **kw):
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.pipeline import Translator

    cfg = CycleGANConfig(**{"gen": "resnet_6blocks", "ngf": 4, "device": "cpu", **kw})
    torch.manual_seed(0)
    Translator.from_nets(Translator.build_nets(cfg), cfg, torch.device("cpu")).export(folder, fp16=False)
    return folder


def _video_model(folder, **kw):
    from ganapps.video.config import PRESETS, VideoConfig
    from ganapps.video.pipeline import Predictor

    cfg = VideoConfig(**{**PRESETS["tiny"], "use_gray": False, "head": "flowprior", **kw})
    torch.manual_seed(0)
    net = Predictor.build_nets(cfg)["gen"]
    for p in net.parameters():  # an untrained flowprior head is the Farneback baseline; move it off that
        p.data.add_(0.05 * torch.randn_like(p))
    Predictor(net, cfg).export(folder, fp16=False)
    return folder


def _medical_model(folder, **kw):
    from ganapps.medical.config import PRESETS, MedicalConfig
    from ganapps.medical.pipeline import Synthesizer

    cfg = MedicalConfig(**{**PRESETS["tiny"], **kw})
    torch.manual_seed(0)
    Synthesizer(Synthesizer.build_nets(cfg)["gen"], cfg).export(folder, fp16=False)
    return folder


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cyclegan_onnx_translates_like_the_translator_at_any_size(tmp_path, capsys):
    """Both generators as ONNX with any batch, height and width: ONNX Runtime on an odd size never traced or
    checked gives the Translator's output (padding to the net's multiple happens inside the graph)."""
    ort = pytest.importorskip("onnxruntime", reason="the export extra")
    from ganapps.cyclegan.pipeline import Translator

    model = _cyclegan_model(tmp_path / "model")
    out = tmp_path / "onnx"
    assert main(["cyclegan", "export", str(model), "--out", str(out), "--format", "onnx", "--check-sizes",
                 "40,37x53", "--json", "--quiet"]) == 0
    res = _last_json(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "export.json", "gen_ab.onnx", "gen_ba.onnx"]
    assert max(res["max_abs_diff"].values()) <= PARITY_TOLERANCE and res["checks"] == {"gen_ab": 3, "gen_ba": 3}
    translator = Translator.from_checkpoint(model, device="cpu")
    x = torch.rand(2, 3, 45, 70) * 2 - 1
    for direction, name in (("a2b", "gen_ab"), ("b2a", "gen_ba")):
        session = ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
        assert float((got - translator.translate_tensor(x, direction)).abs().max()) <= PARITY_TOLERANCE
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["graphs"]["gen_ab"]["smallest"] == {"batch": 1, "height": 4, "width": 4}


def test_video_predictor_exports_with_its_motion_priors_as_an_input(tmp_path, capsys):
    """The flowprior predictor's roll-out as one graph: context + the Farneback priors (computed outside, as
    `Predictor.motion_priors` does) -> the training horizon, any batch, in TorchScript and ONNX."""
    ort = pytest.importorskip("onnxruntime", reason="the export extra")
    from ganapps.video.pipeline import Predictor

    model = _video_model(tmp_path / "model")
    pred = Predictor.from_checkpoint(model, device="cpu")
    g = torch.Generator().manual_seed(3)
    context = (torch.rand(4, 3, 3, 16, 16, generator=g) * 2 - 1)  # (B, Tc, C, S, S)
    priors = Predictor.motion_priors(context)
    with torch.no_grad():
        expected = pred.net(context, 2)  # (B, K, C, S, S)
    assert main(["video", "export", str(model), "--out", str(tmp_path / "ts"), "--format", "torchscript",
                 "--quiet"]) == 0
    traced = torch.jit.load(str(tmp_path / "ts" / "gen.pt"))
    with torch.no_grad():
        assert float((traced(context, priors) - expected).abs().max()) <= PARITY_TOLERANCE
    assert main(["video", "export", str(model), "--out", str(tmp_path / "onnx"), "--format", "onnx", "--json",
                 "--quiet"]) == 0
    assert _last_json(capsys)["max_abs_diff"]["gen"] <= PARITY_TOLERANCE
    session = ort.InferenceSession(str(tmp_path / "onnx" / "gen.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"context": context.numpy(), "priors": priors.numpy()})[0]
    assert np.abs(got - expected.numpy()).max() <= PARITY_TOLERANCE
    note = json.loads((tmp_path / "onnx" / "export.json").read_text())["graphs"]["gen"]["note"]
    assert "Farneback" in note and "priors (batch, 3, 2, 16, 16)" in note


@pytest.mark.parametrize("predictor, head", [("convlstm", "direct"), ("convlstm", "warp"), ("conv3d", "direct")])
def test_every_predictor_kind_exports_its_roll_out(tmp_path, predictor, head, capsys):
    from ganapps.video.pipeline import Predictor

    model = _video_model(tmp_path / "model", predictor=predictor, head=head)
    assert main(["video", "export", str(model), "--out", str(tmp_path / "ts"), "--format", "torchscript",
                 "--json", "--quiet"]) == 0
    assert _last_json(capsys)["checks"] == {"gen": 3}
    manifest = json.loads((tmp_path / "ts" / "export.json").read_text())["graphs"]["gen"]
    assert list(manifest["inputs"]) == ["context"]  # no priors without the flowprior head
    pred = Predictor.from_checkpoint(model, device="cpu")
    context = torch.rand(2, 3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        got = torch.jit.load(str(tmp_path / "ts" / "gen.pt"))(context)
        assert float((got - pred.net(context, 2)).abs().max()) <= PARITY_TOLERANCE


@pytest.mark.parametrize("condition", ["none", "position", "label"])
def test_medical_generator_exports_one_slice_per_call(tmp_path, condition, capsys):
    from ganapps.medical.nets import position_features
    from ganapps.medical.pipeline import Synthesizer

    kw = {"condition": condition, **({"num_classes": 3} if condition == "label" else {})}
    model = _medical_model(tmp_path / "model", **kw)
    assert main(["medical", "export", str(model), "--out", str(tmp_path / "ts"), "--format", "torchscript",
                 "--json", "--quiet"]) == 0
    assert _last_json(capsys)["checks"] == {"gen": 3}
    synth = Synthesizer.from_checkpoint(model, device="cpu")
    traced = torch.jit.load(str(tmp_path / "ts" / "gen.pt"))
    z = torch.randn(1, synth.config.z_dim)
    with torch.no_grad():
        if condition == "none":
            got, expected = traced(z), synth.gen(z)
        elif condition == "position":
            pos = torch.tensor([0.3])
            got, expected = traced(z, pos), synth.gen(z, position_features(pos))
        else:
            seg = torch.nn.functional.one_hot(torch.randint(0, 3, (1, 32, 32)), 3).permute(0, 3, 1, 2).float()
            got, expected = traced(z, seg), synth.gen(z, seg)
    assert got.shape == (1, 1, 32, 32) and float((got - expected).abs().max()) <= PARITY_TOLERANCE


def test_a_format_the_net_cannot_take_is_refused_with_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys):
    """The slice generator reshapes with len(z): asked for a dynamic batch, its traced graph keeps the traced
    batch, fails at another, and the file is refused (which is why the medical export fixes the batch at 1)."""
    from ganapps.engine.export import Graph
    from ganapps.medical.pipeline import Synthesizer

    original = Synthesizer.export_graphs

    def dynamic_batch(self, sizes=None):
        g = original(self, sizes)[0]
        z = g.inputs["z"]
        return [Graph(g.name, g.module, {"z": torch.cat([z, z])}, g.outputs, dynamic={"z": {0: "batch"}},
                      checks=[{"z": torch.randn(5, z.shape[1])}])]

    monkeypatch.setattr(Synthesizer, "export_graphs", dynamic_batch)
    model = _medical_model(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["medical", "export", str(model), "--out", str(out), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out / 'gen.pt'}: the exported 'gen' fails on inputs {{'z': [5, 16]}}" in err
    assert "torchscript cannot take this net; not written" in err and len(err.splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("args, needle", [
    (["--format", "tflite"], "--format tflite: expected one of safetensors, onnx, torchscript"),
    (["--format", "torchscript", "--fp16"], "--fp16: torchscript exports are float32"),
    (["--format", "torchscript", "--check-sizes", "2"], "--check-sizes 2x2: this generator takes sides of at least 4"),
    (["--format", "torchscript", "--check-sizes", "64,x9"], "--check-sizes 64,x9: expected sizes like 128 or 257x301"),
    (["--check-sizes", "64"], "--check-sizes: only graph exports (onnx, torchscript) run parity checks"),
])
def test_export_options_a_net_cannot_take_are_one_line_errors(tmp_path, args, needle, capsys):
    model = _cyclegan_model(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["cyclegan", "export", str(model), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not out.exists()


def test_video_and_medical_have_no_sizes_to_check(tmp_path, capsys):
    assert main(["video", "export", str(_video_model(tmp_path / "v")), "--out", str(tmp_path / "o"), "--format",
                 "torchscript", "--check-sizes", "32"]) == 2
    assert "the video predictor runs at its own size (16x16)" in capsys.readouterr().err
    assert main(["medical", "export", str(_medical_model(tmp_path / "m")), "--out", str(tmp_path / "o"),
                 "--format", "torchscript", "--check-sizes", "32"]) == 2
    assert "the slice generator makes 32x32 images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_the_shipped_translation_model_in_onnx_at_128_257x301_and_720x1280(tmp_path, capsys):
    """The acceptance sizes, one pass each (720x1280 directly, no tiles)."""
    pytest.importorskip("onnxruntime", reason="the export extra")
    from ganapps.engine.checkpoint import shipped_model

    assert main(["cyclegan", "export", str(shipped_model("cyclegan-default")), "--out", str(tmp_path / "onnx"),
                 "--format", "onnx", "--check-sizes", "128,257x301,720x1280", "--json", "--quiet"]) == 0
    res = _last_json(capsys)
    assert max(res["max_abs_diff"].values()) <= PARITY_TOLERANCE
    checks = json.loads((tmp_path / "onnx" / "export.json").read_text())["graphs"]["gen_ab"]["checks"]
    sizes = [c["shapes"]["image"][2:] for c in checks]  # the traced example (a square of >= 64 px), then those asked
    assert sizes[1:] == [[128, 128], [257, 301], [720, 1280]] and sizes[0][0] == sizes[0][1] >= 64


@pytest.mark.parametrize("fmt", ["safetensors", "torchscript"])
def test_an_unwritable_output_is_one_line_naming_it_with_exit_2_and_nothing_written(tmp_path, fmt, capsys):
    """--out inside a file: the error names the output and the file in the way; nothing new appears."""
    model = _cyclegan_model(tmp_path / "model")
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "out"
    assert main(["cyclegan", "export", str(model), "--out", str(out), "--format", fmt]) == 2
    err = capsys.readouterr().err.strip()
    assert str(out) in err and "afile" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "model"]
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_a_safetensors_write_that_fails_midway_leaves_no_folder_behind(tmp_path, monkeypatch, capsys):
    """A full disk while the weights are written: one line naming the folder, exit 2, and the folders the
    export made (out/ and its missing parents) are gone again; the model folder is untouched."""
    import errno

    import safetensors.torch

    model = _cyclegan_model(tmp_path / "model")

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    out = tmp_path / "new" / "out"
    assert main(["cyclegan", "export", str(model), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out}: cannot write the model folder (No space left on device)" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("options, fmt, nets", [
    pytest.param({"gen": "colourtone"}, "onnx", ["gen_ab", "gen_ba"], marks=pytest.mark.slow),  # ~19 s of export
    ({"gen": "colourtone"}, "torchscript", ["gen_ab", "gen_ba"]),
    ({"use_colour_branch": True}, "torchscript", ["gen_ab", "gen_ba"]),
    ({"upsample": "resize"}, "torchscript", ["gen_ab", "gen_ba"]),
    ({"use_antialias": True}, "torchscript", ["gen_ab", "gen_ba"]),
    ({"method": "cut"}, "torchscript", ["gen_ab"]),
    ({"method": "pix2pix", "direction": "b2a", "gen": "unet_128"}, "torchscript", ["gen_ba"]),
])
def test_every_generator_kind_exports_the_directions_it_learned(tmp_path, options, fmt, nets, capsys):
    """The colour/tone branch (per-image parameters from an area-resized copy: exported as matrix products, since
    the exporters fix pooling windows and size branches to the traced input), resize and anti-aliased
    upsampling, and one-generator methods (one graph, the direction learned), each with weights moved off their
    identity init so the parity check sees them work, at sizes other than the traced 64x64."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="the export extra")
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.cyclegan.pipeline import Translator

    cfg = CycleGANConfig(**{"gen": "resnet_6blocks", "ngf": 4, "device": "cpu", **options})
    torch.manual_seed(0)
    built = Translator.build_nets(cfg)
    for net in built.values():
        for p in net.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    Translator.from_nets(built, cfg, torch.device("cpu")).export(tmp_path / "model", fp16=False)
    out = tmp_path / "out"
    size = "300x520" if options.get("gen") == "unet_128" else "67x93,130x257"
    assert main(["cyclegan", "export", str(tmp_path / "model"), "--out", str(out), "--format", fmt,
                 "--check-sizes", size, "--json", "--quiet"]) == 0
    res = _last_json(capsys)
    assert sorted(res["max_abs_diff"]) == nets and max(res["max_abs_diff"].values()) <= PARITY_TOLERANCE
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.{'onnx' if fmt == 'onnx' else 'pt'}" for n in nets]
                                                          + ["config.yaml", "export.json"])


def test_area_resize_is_the_area_interpolation_the_colour_branch_runs_in_pytorch():
    import torch.nn.functional as F

    from ganapps.cyclegan.colour import area_resize

    g = torch.Generator().manual_seed(0)
    for h, w in [(64, 64), (67, 93), (100, 64), (257, 301), (720, 1280)]:
        x = torch.rand(2, 3, h, w, generator=g)
        expected = F.interpolate(x, size=(64, 64), mode="area")
        # values in [0, 1], windows of at most kh x kw pixels: pooling sums kh kw terms, the two products kh and
        # kw (and rounded weights), each float32 addition off by at most 2^-24 of a partial sum <= 1
        kh, kw = -(-h // 64) + 1, -(-w // 64) + 1
        assert float((area_resize(x, 64) - expected).abs().max()) <= (kh * kw + kh + kw + 2) * 2**-24


@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=pytest.mark.slow)])  # onnx: ~27 s
def test_the_trustnet_predictor_exports_with_its_context_flows_as_an_input(tmp_path, fmt, capsys):
    """TrustNet (the shipped video model's kind) computes six Farneback flows of its context with OpenCV; the
    exported graph takes them as the input `flows` (`trust.context_flows`) and reproduces the net on a moving
    texture, whose flows are far from zero."""
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime", reason="the export extra")
    from ganapps.video.pipeline import Predictor
    from ganapps.video.trust import context_flows

    model = _video_model(tmp_path / "model", predictor="trustnet", context_frames=6, future_frames=2, head="direct")
    pred = Predictor.from_checkpoint(model, device="cpu")
    g = torch.Generator().manual_seed(5)
    base = torch.rand(2, 1, 3, 24, 32, generator=g) * 2 - 1
    context = torch.cat([base[..., t:t + 16, 2 * t:2 * t + 16] for t in range(6)], 1)  # (2, 6, 3, 16, 16)
    flows = context_flows(context)  # (2, 6, 2, 16, 16)
    assert float(flows.abs().mean()) > 0.5
    with torch.no_grad():
        expected = pred.net(context, 2)
    out = tmp_path / fmt
    assert main(["video", "export", str(model), "--out", str(out), "--format", fmt, "--quiet"]) == 0
    manifest = json.loads((out / "export.json").read_text())["graphs"]["gen"]
    assert list(manifest["inputs"]) == ["context", "flows"] and "context_flows" in manifest["note"]
    if fmt == "onnx":
        session = ort.InferenceSession(str(out / "gen.onnx"), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"context": context.numpy(), "flows": flows.numpy()})[0])
    else:
        with torch.no_grad():
            got = torch.jit.load(str(out / "gen.pt"))(context, flows)
    assert got.shape == (2, 2, 3, 16, 16) and float((got - expected).abs().max()) <= PARITY_TOLERANCE
