"""Graph export (engine/export.py): TorchScript and ONNX files that reproduce PyTorch at sizes other than the one
traced, a manifest that says how to feed them, and refusal, with nothing written, of a graph that does not
reproduce PyTorch or a net an exporter cannot take."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ganapps.engine.errors import InputError
from ganapps.engine.export import PARITY_TOLERANCE, ExportRefused, Graph, export_graphs


class Conv(nn.Module):
    """Two 3x3 convolutions: fully convolutional, any batch and size."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.b(torch.relu(self.a(x))))


class WidthBranch(Conv):
    """A net whose Python code looks at the input's width: a tracer keeps the branch of the traced size."""

    def forward(self, x):
        y = super().forward(x)
        return y * 2 if x.shape[-1] > 40 else y


def graph(net: nn.Module, *sizes: tuple[int, int]) -> Graph:
    g = torch.Generator().manual_seed(1)
    return Graph("net", net.eval(), {"image": torch.rand(2, 3, 24, 32, generator=g)}, ["out"],
                 dynamic={"image": {0: "batch", 2: "height", 3: "width"}},
                 checks=[{"image": torch.rand(1, 3, h, w, generator=g)} for h, w in sizes], note="an image")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_reproduces_pytorch_at_untraced_sizes_and_says_how_to_feed_it(tmp_path):
    res = export_graphs([graph(Conv(), (17, 29), (40, 23))], tmp_path / "ts", "torchscript", config_yaml="a: 1\n")
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == ["config.yaml", "export.json", "net.pt"]
    assert res["max_abs_diff"]["net"] <= PARITY_TOLERANCE and res["checks"]["net"] == 3
    manifest = json.loads((tmp_path / "ts" / "export.json").read_text())
    entry = manifest["graphs"]["net"]
    assert entry["inputs"]["image"]["shape"] == ["batch", 3, "height", "width"]
    assert entry["outputs"]["out"]["shape"] == ["batch", 3, "height", "width"]
    assert [c["shapes"]["image"] for c in entry["checks"]] == [[2, 3, 24, 32], [1, 3, 17, 29], [1, 3, 40, 23]]
    loaded = torch.jit.load(str(tmp_path / "ts" / "net.pt"))
    x = torch.rand(3, 3, 11, 50)
    with torch.no_grad():
        assert torch.allclose(loaded(x), Conv().eval()(x), atol=PARITY_TOLERANCE)
    assert [p.name for p in tmp_path.iterdir()] == ["ts"]  # the staging folder is gone


def test_a_trace_that_fixed_a_branch_is_refused_and_the_folder_is_left_as_it_was(tmp_path):
    """Traced at width 32, the graph keeps `y` where PyTorch doubles it beyond 40 pixels: the check at width 47
    sees the difference, and neither the new file nor the manifest is written; a file already there stays."""
    out = tmp_path / "ts"
    out.mkdir()
    (out / "net.pt").write_bytes(b"an older export")
    with pytest.raises(ExportRefused, match=r"ts/net.pt: the exported 'net' differs from PyTorch by up to .* on "
                                            r"inputs \{'image': \[1, 3, 17, 47\]\}; not written"):
        export_graphs([graph(WidthBranch(), (17, 29), (17, 47))], out, "torchscript")
    assert sorted(p.name for p in out.iterdir()) == ["net.pt"] and (out / "net.pt").read_bytes() == b"an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ts"]
    with pytest.raises(ExportRefused):  # a new folder is not even created
        export_graphs([graph(WidthBranch(), (17, 47))], tmp_path / "new", "torchscript")
    assert not (tmp_path / "new").exists()


def test_bad_destinations_and_formats_are_one_line_errors(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile: exists and is not a folder"):
        export_graphs([graph(Conv())], tmp_path / "afile", "torchscript")
    with pytest.raises(InputError, match="afile is a file, not a folder"):
        export_graphs([graph(Conv())], tmp_path / "afile" / "out", "torchscript")
    with pytest.raises(InputError, match="--format tflite: expected one of safetensors, onnx, torchscript"):
        export_graphs([graph(Conv())], tmp_path / "o", "tflite")


def test_missing_onnx_packages_name_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'", name="onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(InputError, match=r"onnxruntime is missing\): pip install 'ganapps\[export\]'"):
        export_graphs([graph(Conv())], tmp_path / "o", "onnx")
    assert not (tmp_path / "o").exists()


def test_onnx_runs_in_onnxruntime_at_untraced_sizes_and_batches(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra")
    res = export_graphs([graph(Conv(), (17, 29), (40, 23))], tmp_path / "onnx", "onnx")
    assert res["max_abs_diff"]["net"] <= PARITY_TOLERANCE
    session = ort.InferenceSession(res["files"][0], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    x = torch.rand(4, 3, 9, 61)
    with torch.no_grad():
        expected = Conv().eval()(x)
    got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    assert got.shape == expected.shape and float((got - expected).abs().max()) <= PARITY_TOLERANCE


@pytest.mark.slow
def test_onnx_of_a_net_that_branches_on_its_width_is_refused(tmp_path):
    """torch's exporter does not fail on the width branch: it keeps the traced branch as TorchScript does. The
    parity check at width 47 is what stops the file."""
    pytest.importorskip("onnxruntime", reason="the export extra")
    with pytest.raises(ExportRefused, match=r"net.onnx: the exported 'net' differs from PyTorch .* \[1, 3, 17, 47\]"):
        export_graphs([graph(WidthBranch(), (17, 29), (17, 47))], tmp_path / "onnx", "onnx")
    assert list(tmp_path.iterdir()) == []
