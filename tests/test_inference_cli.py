"""Every command that runs a model takes --model (default: the task's shipped model), --device (default auto),
--json and --quiet, defined once; a bad or absent device is a one-line error with exit 2; --quiet prints no
status line and --json ends stdout with one JSON object."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer.main
from PIL import Image

from ganapps.cli import app, main
from ganapps.engine.inference import DEVICE_HELP

COMMANDS = [("cyclegan", "translate"), ("cyclegan", "evaluate"), ("video", "predict"), ("video", "evaluate"),
            ("medical", "sample"), ("medical", "evaluate")]


def _params(group: str, name: str) -> dict:
    command = typer.main.get_command(app).commands[group].commands[name]
    return {p.name: p for p in command.params}


@pytest.mark.parametrize("group, name", COMMANDS + [("cyclegan", "export"), ("video", "export"),
                                                    ("medical", "export")])
def test_the_shared_options_are_the_same_everywhere(group, name):
    params = _params(group, name)
    reference = _params("cyclegan", "translate")
    for option in ("json_out", "quiet") + (("device",) if name != "export" else ()):
        p, ref = params[option], reference[option]
        assert (p.opts, p.default, p.help, p.is_flag) == (ref.opts, ref.default, ref.help, ref.is_flag), option
    if name != "export":
        assert params["device"].default == "auto" and params["device"].help == DEVICE_HELP
        shipped = {"cyclegan": "cyclegan-default", "video": "video-default", "medical": "medical-default"}[group]
        assert params["model"].opts == ["--model"] and params["model"].default is None
        assert params["model"].help.endswith(f"default: the shipped {shipped} model")


def _args(group: str, name: str, tmp_path) -> list[str]:
    """The least each command needs to reach the model loader."""
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    return {("cyclegan", "translate"): [str(image), "--out", str(tmp_path / "o")],
            ("cyclegan", "evaluate"): ["--data-a", str(tmp_path), "--data-b", str(tmp_path)],
            ("video", "predict"): [str(tmp_path / "clip.mp4")],
            ("video", "evaluate"): ["--data", str(tmp_path)],
            ("medical", "sample"): ["--out", str(tmp_path / "s.nii.gz")],
            ("medical", "evaluate"): []}[(group, name)]


@pytest.mark.parametrize("group, name", COMMANDS)
@pytest.mark.parametrize("device, needle", [("cuda", "--device cuda: no CUDA device is available here"),
                                            ("tpu", "--device tpu: expected auto")])
def test_a_bad_or_absent_device_is_one_line_with_exit_2(group, name, device, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([group, name, *_args(group, name, tmp_path), "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def _clip(path, frames=6, size=32):
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)) for _ in range(frames)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return path


@pytest.mark.parametrize("group, name", [("cyclegan", "translate"), ("video", "predict"), ("medical", "sample")])
def test_quiet_prints_no_status_line_and_json_ends_stdout(group, name, tmp_path, capsys):
    """With the shipped default models (no --model)."""
    args = {"translate": lambda o: [str(_args(group, name, tmp_path)[0]), "--out", str(o)],
            "predict": lambda o: [str(_clip(tmp_path / "clip.gif")), "--out", str(o) + ".gif"],
            "sample": lambda o: ["--n", "2", "--out", str(o) + ".nii.gz"]}[name]
    assert main([group, name, *args(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.strip()  # a status line without --quiet
    assert main([group, name, *args(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main([group, name, *args(tmp_path / "c"), "--json", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and isinstance(json.loads(lines[0]), dict)
