"""`ganapps tune`: a small study runs, persists in SQLite, resumes, and writes a config train accepts."""

from __future__ import annotations

import json

import yaml

from ganapps.cli import main

TINY = ["--steps", "20", "--quiet"]


def test_study_resumes_and_best_config_trains(capsys, tmp_path):
    study = tmp_path / "study"
    cfg = tmp_path / "fixed.yaml"
    cfg.write_text("hidden: 16\nbatch_size: 32\neval_samples: 200\n")
    code = main(["tune", "toy", "--trials", "2", "--study-dir", str(study), "--config", str(cfg), "--json", *TINY])
    out = capsys.readouterr().out
    assert code == 0
    first = json.loads(out.strip().splitlines()[-1])
    assert first["trials"] == 2 and (study / "study.db").is_file() and (study / "history.png").is_file()
    # a second call with more trials continues the same study instead of starting over
    code = main(["tune", "toy", "--trials", "3", "--study-dir", str(study), "--config", str(cfg), "--json", *TINY])
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and second["trials"] == 3
    best = yaml.safe_load((study / "best.yaml").read_text())
    assert best["hidden"] == 16 and best["gan_loss"] == second["best_params"]["gan_loss"]
    code = main(["toy", "train", "--config", str(study / "best.yaml"), "--out", str(tmp_path / "run"), "--steps", "5",
                 "--quiet", "--no-write-report", "--no-use-tensorboard"])
    assert code == 0


def test_unknown_metric_is_an_input_error(capsys, tmp_path):
    code = main(["tune", "toy", "--metric", "beauty", "--study-dir", str(tmp_path / "s"), *TINY])
    assert code == 2 and "--metric beauty" in capsys.readouterr().err
