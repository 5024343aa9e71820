"""The CLI contract: options, --config, --json, exit codes and one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganapps import __version__
from ganapps.cli import main

FAST = ["--steps", "30", "--batch-size", "32", "--hidden", "16", "--eval-samples", "200", "--quiet",
        "--no-use-tensorboard", "--no-write-report"]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"ganapps {__version__}"


def test_toy_train_json_is_the_last_stdout_line(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "toy", "train", "--out", str(tmp_path / "run"), "--json", *FAST)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result) >= {"modes", "high_quality", "reverse_kl", "run"}
    assert 0 <= result["modes"] <= 8 and 0.0 <= result["high_quality"] <= 1.0
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()


def test_config_file_sets_options_and_flags_win(capsys, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: grid\nseed: 7\nsteps: 999\n")
    code, _, _ = run_cli(capsys, "toy", "train", "--config", str(cfg), "--out", str(tmp_path / "run"), *FAST)
    assert code == 0
    import yaml

    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["dataset"] == "grid" and saved["seed"] == 7 and saved["steps"] == 30


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "spiral"], "dataset='spiral': expected one of ring, grid"),
    (["--gan-loss", "fancy"], "unknown GAN loss 'fancy'"),
    (["--steps", "0"], "steps=0: expected a positive integer"),
    (["--lr-g", "-1"], "lr_g=-1.0: expected > 0"),
    (["--preset", "nope"], "--preset nope: expected one of default, plain"),
])
def test_bad_options_are_one_line_errors_with_exit_2(capsys, tmp_path, args, needle):
    code, out, err = run_cli(capsys, "toy", "train", "--out", str(tmp_path / "run"), *FAST, *args)
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_unreadable_or_unknown_config_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    code, _, err = run_cli(capsys, "toy", "train", "--config", str(bad), "--out", str(tmp_path / "r"))
    assert code == 2 and str(bad) in err and "not valid YAML" in err
    bad.write_text("stepz: 3\n")
    code, _, err = run_cli(capsys, "toy", "train", "--config", str(bad), "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown option 'stepz'" in err
    code, _, err = run_cli(capsys, "toy", "train", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: cannot read config file" in err
    bad.write_text("steps: many\n")
    code, _, err = run_cli(capsys, "toy", "train", "--config", str(bad), "--out", str(tmp_path / "r"))
    assert code == 2 and "steps='many': expected int" in err


def test_resume_continues_a_cli_run_and_rejects_a_corrupt_checkpoint(capsys, tmp_path):
    run = str(tmp_path / "run")
    assert run_cli(capsys, "toy", "train", "--out", run, *FAST)[0] == 0
    code, _, err = run_cli(capsys, "toy", "train", "--out", run, *FAST)
    assert code == 2 and "already holds a run" in err
    code, out, _ = run_cli(capsys, "toy", "train", "--out", run, "--resume", "--steps", "40", "--quiet", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["steps"] == 40
    latest = (Path(run) / "checkpoints" / "latest").read_text().strip()
    state = Path(run) / "checkpoints" / latest / "state.pt"
    state.write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "toy", "train", "--out", run, "--resume", "--steps", "50", "--quiet")
    assert code == 2 and "state.pt: corrupt or unreadable" in err
    assert state.read_bytes() == b"garbage"  # nothing rewritten


def test_doctor_prints_a_timeline_and_writes_the_report(capsys, tmp_path):
    run = str(tmp_path / "run")
    assert run_cli(capsys, "toy", "train", "--out", run, *FAST)[0] == 0
    code, out, _ = run_cli(capsys, "doctor", run, "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert Path(result["report"]).is_file() and "<img" in Path(result["report"]).read_text()
    code, _, err = run_cli(capsys, "doctor", str(tmp_path / "nope"))
    assert code == 2 and "nope" in err


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganapps.cli", "toy", "train", "--out", str(run),
                             "--steps", "100000", "--hidden", "16", "--quiet", "--no-use-tensorboard",
                             "--no-write-report", "--checkpoint-every-steps", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "Traceback" not in err
    latest = (run / "checkpoints" / "latest").read_text().strip()
    step = int(latest.split("_")[1])
    assert 0 < step < 100000


def test_previous_option_names_still_work_for_one_release_with_a_warning(capsys, tmp_path):
    import yaml

    old = tmp_path / "old.yaml"
    old.write_text("loss: lsgan\n")
    code, _, err = run_cli(capsys, "toy", "train", "--config", str(old), "--out", str(tmp_path / "a"), *FAST)
    assert code == 0 and f"warning: {old}: option 'loss' is deprecated; use 'gan_loss'" in err
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["gan_loss"] == "lsgan"
    code, _, err = run_cli(capsys, "toy", "train", "--loss", "nonsaturating", "--out", str(tmp_path / "b"), *FAST)
    assert code == 0 and "warning: --loss is deprecated; use --gan-loss" in err
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["gan_loss"] == "nonsaturating"
    code, _, err = run_cli(capsys, "toy", "train", "--loss", "hinge", "--gan-loss", "lsgan", "--out",
                           str(tmp_path / "c"), *FAST)
    assert code == 2 and "--loss (deprecated) and --gan-loss both given" in err


def test_train_help_shows_every_option_with_its_help_in_its_panel(capsys, monkeypatch):
    import dataclasses

    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.engine.config import describe_options
    from ganapps.toy.config import ToyConfig

    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    code, out, _ = run_cli(capsys, "cyclegan", "train", "--help")
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ --")}
    for doc in describe_options(CycleGANConfig):
        line = lines["--" + doc.name.replace("_", "-")]
        assert doc.help in line, doc.name
    panels = [line.strip("╭─ ").split(" ")[0] for line in out.splitlines() if line.startswith("╭─")]
    assert panels == ["Options", "Trainer", "GAN", "Task"]
    assert "--loss " not in out and "--diffaug-policy" not in out  # deprecated names are hidden
    code, out, _ = run_cli(capsys, "toy", "train", "--help")
    assert "--augment-policy" not in out and "--lecam-weight" in out  # options the task cannot use are hidden
    assert set(ToyConfig.unsupported) < {f.name for f in dataclasses.fields(ToyConfig)}
