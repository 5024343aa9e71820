"""Trainer properties: exact resume, atomic checkpoints, the non-finite guard, phases, AMP, run folder."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from ganapps.engine import checkpoint as ckpt
from ganapps.engine.errors import InputError
from ganapps.engine.trainer import Trainer, train

sys.path.insert(0, os.path.dirname(__file__))
from tiny_task import TinyConfig, TinyTask, tensor_points  # noqa: E402


def _weights(run) -> dict[str, torch.Tensor]:
    return ckpt.flatten_weights(ckpt.load_weights(ckpt.resolve(run)))


def _records(run) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    straight = train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=20)))
    train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=10)))
    task = TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=20, resume=True))
    resumed = train(task)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and "gen_ema.0.weight" in wa
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert straight.evaluation == resumed.evaluation
    # the logged losses after the resume point are the same numbers
    ra = [r for r in _records(tmp_path / "a") if "loss/d" in r]
    rb = [r for r in _records(tmp_path / "b") if "loss/d" in r]
    assert [r["loss/d"] for r in ra] == [r["loss/d"] for r in rb]
    assert float(task.counter) == 20  # task-held state came back with the checkpoint


def test_resume_is_exact_through_the_dataloader_path(tmp_path):
    train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=12, checkpoint_every_steps=6), tensor_points()))
    train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=6, checkpoint_every_steps=6), tensor_points()))
    train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=12, resume=True, checkpoint_every_steps=6),
                   tensor_points()))
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_run_folder_has_the_designed_layout(tmp_path):
    cfg = TinyConfig(out=str(tmp_path / "run"), steps=10, sample_every_steps=5, use_tensorboard=True,
                     write_report=True)
    train(TinyTask(cfg))
    run = tmp_path / "run"
    assert (run / "config.yaml").read_text().startswith("out:")
    assert (run / "samples" / "step_5.png").is_file() and (run / "samples" / "step_10.png").is_file()
    assert any((run / "tb").iterdir())
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_10"
    assert (run / "report.html").is_file()
    rows = _records(run)
    logged = [r for r in rows if "loss/d" in r]
    assert [r["step"] for r in logged] == [5, 10]
    keys = set(logged[0])
    for k in ("loss/g", "grad/gen_norm", "grad/disc_norm", "lr/gen", "health/d_acc_real", "health/diversity",
              "time/step", "images"):
        assert k in keys, k
    assert rows[-1]["eval/mean_x"] == pytest.approx(rows[-1]["eval/mean_x"])


def test_an_existing_run_is_never_overwritten(tmp_path):
    cfg = TinyConfig(out=str(tmp_path / "run"), steps=5)
    train(TinyTask(cfg))
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(InputError, match="already holds a run"):
        train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=5)))
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


def test_resume_without_a_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="no complete checkpoint"):
        train(TinyTask(TinyConfig(out=str(tmp_path / "none"), steps=5, resume=True)))


def test_a_corrupt_checkpoint_is_a_one_line_input_error(tmp_path):
    train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=10)))
    d = ckpt.latest_dir(tmp_path / "run" / "checkpoints")
    (d / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="weights.safetensors: corrupt"):
        train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=20, resume=True)))
    (d / "weights.safetensors").unlink()
    with pytest.raises(InputError):
        train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=20, resume=True)))


def test_a_killed_save_leaves_latest_on_a_whole_checkpoint(tmp_path, monkeypatch):
    root = tmp_path / "ckpts"
    w = {"gen": {"w": torch.ones(2)}}
    ckpt.save(root, 5, w, {"step": 5}, "a: 1\n")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(root, 10, {"gen": {"w": torch.zeros(2)}}, {"step": 10}, "a: 1\n")
    assert ckpt.latest_dir(root).name == "step_5"
    assert not (root / "step_10").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert torch.equal(ckpt.load_weights(ckpt.latest_dir(root))["gen"]["w"], torch.ones(2))


def test_old_checkpoints_are_pruned_to_keep(tmp_path):
    train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=20, checkpoint_every_steps=4, keep_checkpoints=2)))
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*"))
    assert names == ["step_16", "step_20"]


def test_nonfinite_losses_are_skipped_and_counted(tmp_path):
    task = TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=20, nan_steps=(3, 7)))
    result = train(task)
    assert result.nonfinite_steps == 2 and result.rollbacks == 0
    assert _records(tmp_path / "run")[-2]["health/nonfinite"] == 2
    w = _weights(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in w.values())


def test_a_nonfinite_streak_rolls_back_and_lowers_the_lr(tmp_path):
    warnings: list[str] = []
    cfg = TinyConfig(out=str(tmp_path / "run"), steps=20, nan_steps=(12, 13, 14), nonfinite_patience=3,
                     checkpoint_every_steps=10)
    trainer = Trainer(TinyTask(cfg), on_warning=warnings.append)
    result = trainer.train()
    assert result.rollbacks == 1
    assert any("rolled back to step 10" in w for w in warnings)
    assert trainer.optimizers["gen"].param_groups[0]["lr"] == pytest.approx(0.5e-3)
    assert result.step == 20


def test_persistent_nonfinite_losses_end_in_a_clear_error(tmp_path):
    from ganapps.engine.trainer import Diverged

    cfg = TinyConfig(out=str(tmp_path / "run"), steps=20, nan_steps=(12, 13), nan_persistent=True,
                     nonfinite_patience=2, checkpoint_every_steps=10)
    with pytest.raises(Diverged, match="non-finite after 3 rollbacks"):
        Trainer(TinyTask(cfg), on_warning=lambda _: None).train()


def test_rollback_before_any_checkpoint_returns_to_the_start(tmp_path):
    cfg = TinyConfig(out=str(tmp_path / "run"), steps=12, nan_steps=(1, 2), nonfinite_patience=2,
                     checkpoint_every_steps=100)
    warnings: list[str] = []
    result = Trainer(TinyTask(cfg), on_warning=warnings.append).train()
    assert result.rollbacks >= 1 and any("rolled back to step 0" in w for w in warnings)


def test_each_phase_updates_only_its_own_nets(tmp_path):
    task = TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=1))
    trainer = Trainer(task)
    trainer._check_run_dir()
    trainer._build()
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in trainer.nets.items()}
    trainer.phases = trainer.phases[:1]  # D only
    trainer._run_step()
    changed = {n: any(not torch.equal(a, b) for a, b in zip(before[n], net.parameters(), strict=False))
               for n, net in trainer.nets.items()}
    assert changed == {"gen": False, "disc": True}


def test_phase_cadence_and_n_critic(tmp_path):
    from ganapps.engine.task import Phase

    class Cadence(TinyTask):
        def phases(self):
            return [Phase("D", "disc", self.d_loss, repeats=3), Phase("G", "gen", self.g_loss, every=2)]

    task = Cadence(TinyConfig(out=str(tmp_path / "run"), steps=10))
    train(task)
    assert task.calls == {"D": 30, "G": 5}


def test_bf16_autocast_on_cpu_trains_with_finite_losses(tmp_path):
    result = train(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=10, use_amp=True)))
    assert result.nonfinite_steps == 0
    assert all(torch.isfinite(v).all() for v in _weights(tmp_path / "run").values())


def test_lr_schedule_reaches_zero_with_linear_decay(tmp_path):
    trainer = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=10, lr_schedule="linear")))
    trainer.train()
    assert trainer.optimizers["gen"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_explicit_absent_device_is_an_input_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(InputError, match="--device cuda"):
        Trainer(TinyTask(TinyConfig(out=str(tmp_path / "run"), device="cuda")))


def test_periodic_evaluation_logs_and_can_stop_early(tmp_path):
    seen = []

    def on_evaluate(step, metrics):
        seen.append((step, set(metrics)))
        return step < 10  # stop at the second evaluation

    cfg = TinyConfig(out=str(tmp_path / "run"), steps=20, eval_every_steps=5)
    result = Trainer(TinyTask(cfg), on_evaluate=on_evaluate).train()
    assert [s for s, _ in seen] == [5, 10] and seen[0][1] == {"eval/mean_x"}
    assert result.stopped_early and result.step == 10 and "eval/mean_x" in result.evaluation
    rows = _records(tmp_path / "run")
    assert [r["step"] for r in rows if "eval/mean_x" in r] == [5, 10]


@pytest.mark.parametrize("max_rollbacks", [0, 1])
def test_max_rollbacks_sets_how_many_rollbacks_come_before_the_error(tmp_path, max_rollbacks):
    from ganapps.engine.trainer import Diverged

    warnings: list[str] = []
    cfg = TinyConfig(out=str(tmp_path / "run"), steps=20, nan_steps=(12, 13), nan_persistent=True,
                     nonfinite_patience=2, checkpoint_every_steps=10, max_rollbacks=max_rollbacks)
    with pytest.raises(Diverged, match=f"non-finite after {max_rollbacks} rollbacks"):
        Trainer(TinyTask(cfg), on_warning=warnings.append).train()
    assert sum("rolled back to step 10" in w for w in warnings) == max_rollbacks


def test_max_rollbacks_must_not_be_negative():
    with pytest.raises(InputError, match="max_rollbacks=-1: expected >= 0"):
        TinyConfig(max_rollbacks=-1)


def test_gradient_clipping_is_clip_grad_norm_bit_for_bit(tmp_path):
    import copy

    from ganapps.engine.losses import get_loss

    clip = 1e-3  # far below the D gradient norm of a fresh net: every update is clipped
    # float32 like the reference below (use_amp "auto" is bf16 autocast on a CPU with native bf16)
    trainer = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "run"), steps=3, grad_clip_norm=clip, use_amp=False)))
    trainer._build()
    trainer.phases = trainer.phases[:1]  # D only
    disc, gen = copy.deepcopy(trainer.nets["disc"]), trainer.nets["gen"]
    # the trainer's Adam kernel (fused where torch has one): fused and foreach Adam differ in the last bits on some
    # CPUs (AVX-512), which is not what this test is about
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999),
                           fused=trainer.optimizers["disc"].defaults["fused"])
    for _ in range(3):
        state = trainer.stream.state_dict()
        real = next(trainer.stream)
        trainer.stream.load_state_dict(state)  # the trainer reads this same batch
        rng = torch.get_rng_state()
        trainer._run_step()
        trainer.step += 1
        torch.set_rng_state(rng)  # the reference draws the same noise
        fake = gen(torch.randn(len(real), 4)).detach()
        loss = get_loss("nonsaturating").d(disc(real), disc(fake))
        opt.zero_grad()
        loss.backward()
        assert torch.nn.utils.clip_grad_norm_(disc.parameters(), clip) > 10 * clip
        opt.step()
        for a, b in zip(disc.parameters(), trainer.nets["disc"].parameters(), strict=True):
            assert torch.equal(a, b)


def test_stopping_right_after_a_checkpoint_does_not_write_it_twice(tmp_path):
    written = {}

    def on_evaluate(step, metrics):
        state = tmp_path / "run" / "checkpoints" / f"step_{step}" / "state.pt"
        written[step] = state.stat().st_ino, state.stat().st_mtime_ns
        return False

    cfg = TinyConfig(out=str(tmp_path / "run"), steps=20, eval_every_steps=10, checkpoint_every_steps=10)
    result = Trainer(TinyTask(cfg), on_evaluate=on_evaluate).train()
    state = tmp_path / "run" / "checkpoints" / "step_10" / "state.pt"
    assert result.stopped_early and result.step == 10
    assert written == {10: (state.stat().st_ino, state.stat().st_mtime_ns)}
    assert ckpt.latest_dir(tmp_path / "run" / "checkpoints") == state.parent


def _net_weights(trainer: Trainer, name: str) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.nets[name].state_dict().items()}


def test_init_starts_each_net_from_another_runs_ema_weights_and_trains_on(tmp_path):
    train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=10)))
    saved = ckpt.load_weights(ckpt.resolve(tmp_path / "a"))
    fresh = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "f"), steps=5)))
    fresh._build()
    started = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=5, init_from=str(tmp_path / "a"))))
    started._build()
    for name, key in (("gen", "gen_ema"), ("disc", "disc")):  # the EMA copy where the run kept one
        got, want = _net_weights(started, name), saved[key]
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k].float()) for k in want), name
        assert not all(torch.equal(got[k], v) for k, v in _net_weights(fresh, name).items()), name
    assert all(torch.equal(a, b) for a, b in zip(started.ema["gen"].module.state_dict().values(),
                                                  _net_weights(started, "gen").values(), strict=True))
    result = train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=5, init_from=str(tmp_path / "a"))))
    assert result.step == 5 and not all(torch.equal(_weights(tmp_path / "b")[f"gen.{k}"], v.float())
                                        for k, v in saved["gen_ema"].items())


def test_init_from_a_model_folder_loads_the_nets_it_has_and_leaves_the_others_fresh(tmp_path):
    from safetensors.torch import save_file

    train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=10)))
    saved = ckpt.load_weights(ckpt.resolve(tmp_path / "a"))
    model = tmp_path / "model"
    model.mkdir()
    save_file({f"gen.{k}": v.half() for k, v in saved["gen_ema"].items()}, str(model / ckpt.WEIGHTS))
    fresh = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "f"), steps=5)))
    fresh._build()
    started = Trainer(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=5, init_from=str(model))))
    started._build()
    gen = _net_weights(started, "gen")
    assert all(torch.equal(gen[k], v.half().float()) for k, v in saved["gen_ema"].items())
    assert all(torch.equal(v, _net_weights(fresh, "disc")[k]) for k, v in _net_weights(started, "disc").items())


def test_bad_init_folders_are_one_line_input_errors_before_anything_is_written(tmp_path):
    from safetensors.torch import save_file

    train(TinyTask(TinyConfig(out=str(tmp_path / "a"), steps=10)))
    saved = ckpt.load_weights(ckpt.resolve(tmp_path / "a"))
    odd = tmp_path / "odd"
    odd.mkdir()
    save_file({"gen.0.weight": torch.zeros(3, 3), "gen.0.bias": torch.zeros(3)}, str(odd / ckpt.WEIGHTS))
    other = tmp_path / "other"
    other.mkdir()
    save_file({f"critic.{k}": v for k, v in saved["disc"].items()}, str(other / ckpt.WEIGHTS))
    for init, needle in ((tmp_path / "missing", "no such run"), (odd, "--init-from weights of 'gen' do not fit"),
                         (other, "--init-from holds no weights for this run's nets (gen, disc; found: critic)")):
        with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
            train(TinyTask(TinyConfig(out=str(tmp_path / "b"), steps=5, init_from=str(init))))
        assert "\n" not in str(e.value)
        assert not (tmp_path / "b").exists()
