"""The benchmarks' command line (no benchmark is run): `python -m benchmarks NAME -- OPTIONS` hands the options to
the chosen benchmark, `--list` names them, and the method benchmark's CPU-minute marks are validated and never
relabel a run that is already past them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.__main__ as runner
    import benchmarks.bench_methods as methods

    return runner, methods


def test_list_names_every_benchmark_module(bench, capsys):
    runner, _ = bench
    runner.main(["--list"])
    listed = capsys.readouterr().out.split()
    assert "methods" in listed
    assert listed == sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))


def test_options_after_the_separator_reach_the_chosen_benchmark(bench, capsys):
    runner, _ = bench
    with pytest.raises(SystemExit) as e:  # argparse of bench_methods refuses decreasing marks
        runner.main(["methods", "--", "--minutes", "3,2"])
    assert e.value.code == 2 and "expected increasing positive CPU-minutes" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="bench_video: takes no options"):
        runner.main(["video", "--", "--minutes", "1"])
    with pytest.raises(SystemExit, match="no benchmark matches nope"):
        runner.main(["nope"])


@pytest.mark.parametrize("text,marks", [("10,20,30", (10.0, 20.0, 30.0)), ("0.5", (0.5,)), ("20,60", (20.0, 60.0))])
def test_marks_parse(bench, text, marks):
    assert bench[1]._marks(text) == marks


@pytest.mark.parametrize("text", ["", "0,10", "20,10", "10,10", "ten"])
def test_bad_marks_are_refused(bench, text):
    with pytest.raises(argparse.ArgumentTypeError, match="increasing positive"):
        bench[1]._marks(text)


def test_a_mark_below_a_runs_cpu_time_is_refused(bench, tmp_path):
    _, methods = bench
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "bench_state.json").write_text(json.dumps({"evals": [{"cpu_min": 10.0}],
                                                                   "train_cpu_s": 600.0}))
    with pytest.raises(SystemExit, match="past 5 CPU-minutes"):
        methods.main(["--minutes", "5", "--methods", "cut", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        methods.main(["--methods", "cut,unit", "--out", str(tmp_path)])
    assert e.value.code == 2
