"""A full disk while training: one-line errors naming the folder and the bytes needed and free, no half-written
checkpoint left, `latest` on the last complete one, and a resume (once space is back) that lands on the
uninterrupted run's weights. The writers are made to fail, and once a real tiny tmpfs fills up."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import SafetensorError

from ganapps.cli import main
from ganapps.engine import checkpoint as ckpt
from ganapps.engine import runlog
from ganapps.engine.errors import DiskFullError, InputError, free_bytes
from ganapps.engine.trainer import Trainer, train

sys.path.insert(0, os.path.dirname(__file__))
from tiny_task import TinyConfig, TinyTask  # noqa: E402

TORCH_SHORT_WRITE = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1216 vs 1114")
FAILURES = {
    "safetensors ENOSPC": ("save_file", OSError(errno.ENOSPC, "No space left on device")),
    "safetensors I/O error": ("save_file", SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)")),
    "torch short write": ("torch.save", TORCH_SHORT_WRITE),
}


def _fail_after(monkeypatch, target: str, error: BaseException, calls_ok: int) -> None:
    """Make checkpoint writer `target` raise `error` from its (calls_ok + 1)-th call on."""
    owner, name = (ckpt.torch, "save") if target == "torch.save" else (ckpt, "save_file")
    real, calls = getattr(owner, name), []

    def writer(*args, **kwargs):
        calls.append(1)
        if len(calls) > calls_ok:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, writer)


def _weights(run) -> dict[str, torch.Tensor]:
    return ckpt.flatten_weights(ckpt.load_weights(ckpt.resolve(run)))


def _needed(message: str) -> int:
    return int(re.search(r"needs at least ([\d,]+) bytes", message).group(1).replace(",", ""))


def _free(message: str) -> int:
    return int(re.search(r"([\d,]+) bytes(?: \([\d.]+ \w+\))? free", message).group(1).replace(",", ""))


def _assert_clean(root, step: int) -> None:
    """`latest` names step_N, no other step folder past it, and nothing temporary is left."""
    assert ckpt.latest_dir(root).name == f"step_{step}"
    assert sorted(p.name for p in root.iterdir()) == sorted(["latest", *(p.name for p in root.glob("step_*"))])
    assert max(int(p.name[5:]) for p in root.glob("step_*")) == step


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_full_disk_mid_run_stops_with_one_line_and_the_run_resumes_exactly(tmp_path, monkeypatch, failure):
    target, error = FAILURES[failure]
    train(TinyTask(TinyConfig(out=str(tmp_path / "straight"), steps=30)))
    run = tmp_path / "run"
    _fail_after(monkeypatch, target, error, calls_ok=1)  # step 10 is written, step 20 is not
    with pytest.raises(DiskFullError) as info:
        train(TinyTask(TinyConfig(out=str(run), steps=30)))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{run / 'checkpoints'}: disk full while writing checkpoint "
                                                      "step_20")
    assert message.endswith("latest still names step_10")
    _assert_clean(run / "checkpoints", 10)
    # the estimate is a lower bound: the payload of the tensors, at most what a whole checkpoint takes on disk
    step_10 = run / "checkpoints" / "step_10"
    payload = ckpt.payload_bytes(ckpt.load_weights(step_10)) + ckpt.payload_bytes(ckpt.load_state(step_10))
    block = os.statvfs(step_10).f_frsize
    on_disk = sum(-(-f.stat().st_size // block) * block for f in step_10.iterdir())
    assert payload <= _needed(message) <= on_disk
    monkeypatch.undo()  # space is back
    train(TinyTask(TinyConfig(out=str(run), steps=30, resume=True)))
    wa, wb = _weights(tmp_path / "straight"), _weights(run)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_full_disk_at_the_final_checkpoint_keeps_the_last_whole_one(tmp_path, monkeypatch):
    _fail_after(monkeypatch, "torch.save", TORCH_SHORT_WRITE, calls_ok=1)
    with pytest.raises(DiskFullError, match="step_20 .*latest still names step_10"):
        train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=20)))
    _assert_clean(tmp_path / "run" / "checkpoints", 10)


def test_a_failed_latest_update_removes_the_new_folder(tmp_path, monkeypatch):
    root = tmp_path / "ckpts"
    ckpt.save(root, 5, {"gen": {"w": torch.ones(2)}}, {"step": 5}, "a: 1\n")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "write_text_atomic", full)
    with pytest.raises(DiskFullError, match="latest still names step_5"):
        ckpt.save(root, 10, {"gen": {"w": torch.zeros(2)}}, {"step": 10}, "a: 1\n")
    _assert_clean(root, 5)
    assert torch.equal(ckpt.load_weights(ckpt.latest_dir(root))["gen"]["w"], torch.ones(2))


def test_other_write_errors_are_input_errors_and_interrupts_stay_interrupts(tmp_path, monkeypatch):
    root = tmp_path / "ckpts"
    ckpt.save(root, 5, {"gen": {"w": torch.ones(2)}}, {"step": 5}, "a: 1\n")
    _fail_after(monkeypatch, "save_file", PermissionError(errno.EACCES, "Permission denied"), calls_ok=0)
    with pytest.raises(InputError, match="cannot write checkpoint step_10 \\(Permission denied\\)") as info:
        ckpt.save(root, 10, {"gen": {"w": torch.zeros(2)}}, {"step": 10}, "a: 1\n")
    assert not isinstance(info.value, DiskFullError)
    _assert_clean(root, 5)
    _fail_after(monkeypatch, "save_file", RuntimeError("a bug"), calls_ok=0)
    with pytest.raises(RuntimeError, match="a bug"):
        ckpt.save(root, 10, {"gen": {"w": torch.zeros(2)}}, {"step": 10}, "a: 1\n")
    _assert_clean(root, 5)


def test_a_full_disk_while_logging_is_a_disk_full_error_and_other_os_errors_pass(tmp_path, monkeypatch):
    real = runlog.RunLog._append

    def append(error):
        def f(self, row):
            if row["step"] >= 10:
                raise error
            return real(self, row)
        return f

    monkeypatch.setattr(runlog.RunLog, "_append", append(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(DiskFullError, match=f"^{re.escape(str(tmp_path / 'a'))}: disk full while writing the run's "):
        train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=20)))
    # an OSError that is no full disk (e.g. reading data) is not disguised as one
    monkeypatch.setattr(runlog.RunLog, "_append", append(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error") as info:
        train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=20)))
    assert not isinstance(info.value, InputError)


def test_cli_reports_a_full_disk_in_one_line_with_exit_2(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _fail_after(monkeypatch, "torch.save", TORCH_SHORT_WRITE, calls_ok=1)
    code = main(["toy", "train", "--out", str(run), "--steps", "30", "--checkpoint-every-steps", "10",
                 "--batch-size", "32", "--hidden", "16", "--eval-samples", "200", "--quiet", "--no-use-tensorboard",
                 "--no-write-report"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {run / 'checkpoints'}: disk full while writing checkpoint step_20")
    _assert_clean(run / "checkpoints", 10)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root and mount permission needed, else the test is skipped with the reason)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _fill(disk, leave_blocks: int) -> int:
    """Fill `disk` with a file, then free `leave_blocks` blocks; returns the bytes left free."""
    block = os.statvfs(disk).f_frsize
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 16, block):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    os.truncate(filler, filler.stat().st_size - leave_blocks * block)
    return free_bytes(disk)


@pytest.mark.parametrize("leave_blocks", [0, 1])  # 0: safetensors fails first; 1: the weights fit, torch.save fails
def test_a_real_full_tmpfs_stops_the_run_cleanly(tmp_path, tiny_disk, leave_blocks):
    opts = {"eval_every_steps": 5, "log_every_steps": 1000}
    train(TinyTask(TinyConfig(out=str(tmp_path / "straight"), steps=20, **opts)))
    run = tiny_disk / "run"
    left = []

    def fill_after_the_first_checkpoint(step, metrics):  # the step-20 checkpoint is the next write
        if step == 15:
            left.append(_fill(tiny_disk, leave_blocks))
        return True

    cfg = TinyConfig(out=str(run), steps=30, **opts)
    with pytest.raises(DiskFullError) as info:
        Trainer(TinyTask(cfg), on_evaluate=fill_after_the_first_checkpoint).train()
    message = str(info.value)
    assert message.startswith(f"{run / 'checkpoints'}: disk full while writing checkpoint step_20")
    assert message.endswith("latest still names step_10") and "\n" not in message
    assert left == [leave_blocks * os.statvfs(tiny_disk).f_frsize]
    assert _free(message) == free_bytes(tiny_disk) < _needed(message)  # cleaned up; the need was not met
    _assert_clean(run / "checkpoints", 10)
    (tiny_disk / "filler").unlink()
    train(TinyTask(TinyConfig(out=str(run), steps=20, resume=True, **opts)))
    wa, wb = _weights(tmp_path / "straight"), _weights(run)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
