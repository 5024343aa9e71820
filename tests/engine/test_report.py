"""Tests for ganapps.engine.report: robust metrics.jsonl loading and the self-contained report.html."""

import base64
import json
import math
import random

import numpy as np
import pytest
from PIL import Image

from ganapps.engine.monitor import Verdict
from ganapps.engine.report import doctor, load_records, write_report


def record(step: int, rng: random.Random) -> dict:
    return {
        "step": step,
        "images": step * 32,
        "loss/d": rng.uniform(0.4, 0.9),
        "loss/g": rng.uniform(0.8, 2.0),
        "reg/r1": rng.uniform(0.01, 0.05),
        "grad/gen_norm": rng.uniform(0.3, 2.0),
        "grad/disc_norm": rng.uniform(0.5, 4.0),
        "lr/gen": 1e-4,
        "health/d_acc_real": rng.uniform(0.55, 0.9),
        "health/d_acc_fake": rng.uniform(0.55, 0.9),
        "health/d_real_mean": 0.4,
        "health/d_fake_mean": -0.3,
        "health/diversity": rng.uniform(0.8, 1.0),
        "health/recall": rng.uniform(0.5, 0.9),
        "health/nonfinite": 0,
        "health/rollbacks": 0,
        "time/step": 0.01,
    }


def write_png(path, value: int) -> bytes:
    Image.fromarray(np.full((8, 16, 3), value, dtype=np.uint8)).save(path)
    return path.read_bytes()


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with a NaN loss at step 1200, gaps, nulls, an eval metric, two sample previews, a config."""
    rng = random.Random(0)
    records = [record(100 * i, rng) for i in range(1, 31)]
    records[11]["loss/g"] = math.nan
    records[3]["grad/gen_norm"] = None
    for r in records[::4]:
        del r["health/diversity"], r["health/recall"]
    records[29]["eval/fid"] = 42.5
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "config.yaml").write_text("task: toy\nloss: hinge  # <resolved>\nsteps: 3000\n")
    (tmp_path / "samples").mkdir()
    write_png(tmp_path / "samples" / "step_900.png", 10)
    write_png(tmp_path / "samples" / "step_3000.png", 200)
    return tmp_path


def test_records_round_trip_with_nan_and_null(run_dir):
    records = load_records(run_dir)
    assert len(records) == 30
    assert math.isnan(records[11]["loss/g"])
    assert records[3]["grad/gen_norm"] is None
    assert records[-1]["eval/fid"] == 42.5


def test_truncated_last_line_is_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss/d": 0.5}\n{"step": 2, "loss/d": 0.4}\n{"step": 3, "lo')
    assert [r["step"] for r in load_records(tmp_path)] == [1, 2]


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n\n{"step": 2,,}\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:3: corrupt line"):
        load_records(tmp_path)


def test_non_object_line_is_rejected(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n[1, 2]\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: expected a JSON object"):
        load_records(tmp_path)


def test_missing_metrics_names_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"metrics\.jsonl: not found; is .* a ganapps run folder\?"):
        load_records(tmp_path / "nope")


def test_doctor_writes_self_contained_report_with_verdicts(run_dir):
    verdicts, path = doctor(run_dir)
    assert [v.kind for v in verdicts] == ["diverging"]
    assert verdicts[0].step == 1200
    assert path == run_dir / "report.html"
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 8  # 1 sample + losses, accuracy, means, diversity, ...
    assert "src='http" not in page and "src=\"http" not in page
    assert "loss/g is nan" in page and "gradient clipping" in page
    assert "eval/fid" in page or "Evaluation metrics" in page
    assert "loss: hinge  # &lt;resolved&gt;" in page  # config shown, escaped
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".report.html.*"))


def test_report_embeds_only_the_latest_samples(run_dir):
    path = write_report(run_dir)
    page = path.read_text()
    newest = base64.b64encode((run_dir / "samples" / "step_3000.png").read_bytes()).decode()
    older = base64.b64encode((run_dir / "samples" / "step_900.png").read_bytes()).decode()
    assert newest in page
    assert older not in page


def test_report_shows_given_verdicts_and_healthy_message(run_dir):
    mine = [Verdict(700, "mode_collapse", "recall <0.1> on the last 5 records", "add minibatch std", "warning")]
    page = write_report(run_dir, mine).read_text()
    assert "recall &lt;0.1&gt; on the last 5 records" in page and "add minibatch std" in page
    assert "loss/g is nan" not in page  # the given verdicts replace diagnose()
    page = write_report(run_dir, []).read_text()
    assert "no problems found" in page


def test_report_handles_bare_run_folder(tmp_path):
    # one record, no samples, no config, a key that is always null, an infinite grad norm
    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "loss/d": Infinity, "grad/gen_norm": null, "lr/gen": 0}\n')
    old = tmp_path / "report.html"
    old.write_text("stale")
    page = write_report(tmp_path).read_text()
    assert "stale" not in page
    assert "no samples" in page and "config.yaml not found" in page
    assert "diverging" in page  # the infinite loss is still diagnosed


def test_empty_metrics_file_gives_report_without_curves(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    verdicts, path = doctor(tmp_path)
    assert verdicts == []
    assert "no records logged yet" in path.read_text()


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(run_dir, monkeypatch):
    import errno

    from ganapps.engine import report
    from ganapps.engine.errors import DiskFullError

    before = sorted(p.name for p in run_dir.iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report.os, "replace", full)
    with pytest.raises(DiskFullError, match=r"disk full while writing report.html \(needs at least [\d,]+ bytes"):
        write_report(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == before
