"""TrustNet: at step 0 copy-last and both flow extrapolations are inside what it represents (exactly, roll-out
included), the temporal means leave a blink out, the roll-out extends, and adapting keeps the held-out best.
Tiny frames and nets; Farneback runs on 32-64 px frames."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganapps.engine.errors import InputError
from ganapps.video.pipeline import copy_last, flow_extrapolate
from ganapps.video.task import baseline_predictions, regret_loss
from ganapps.video.trust import (
    AGREE_TOL,
    CANDIDATES,
    CONTEXT,
    PRIOR_SCALE,
    Anchor,
    TrustNet,
    context_flows,
    convert_research_state,
)

torch.set_num_threads(1)


def pan(frames: int = 8, size: int = 64, speed: float = 1.5, seed: int = 0) -> torch.Tensor:
    """(1, frames, 3, size, size): a smooth random texture panning right `speed` px per frame."""
    g = torch.Generator().manual_seed(seed)
    base = nn.functional.avg_pool2d(torch.rand(1, 3, size + 32, size + 32, generator=g) * 2 - 1, 5, 1, 2)
    return torch.stack([base[..., 8:8 + size, 8 + int(speed * t):8 + size + int(speed * t)] for t in range(frames)], 1)


@pytest.mark.parametrize("variant", [{}, {"flow_correction": True, "guard_means": False}])
def test_untrained_net_is_copy_last_and_each_flow_extrapolation_exactly_roll_out_included(variant):
    ctx = pan()[:, :CONTEXT]
    net = TrustNet(3, 8, horizons=5, **variant).eval()
    refs = [("copy_last", copy_last(ctx, 7)), ("flow1", flow_extrapolate(ctx, 7, 1)),
            ("flow2", flow_extrapolate(ctx, 7, 2))]
    if variant:  # the learned flow starts with a zero correction: the 2-pair extrapolation
        refs.append(("flow_learned", refs[2][1]))
    with torch.no_grad():
        for name, ref in refs:
            net.set_choice(name)
            out = net(ctx, 7)  # 7 > 5 horizons: the roll-out too
            # the other gates weigh softmax(-40) ~ 4e-18 each: far below float32 rounding of values <= 1
            assert float((out - ref).abs().max()) <= 1e-6, name


def test_plain_means_are_the_last_four_frames_and_the_last_three_motion_compensated():
    torch.manual_seed(3)
    ctx = torch.rand(1, CONTEXT, 3, 16, 16) * 2 - 1
    zero = torch.zeros(1, 2, 16, 16)
    cand = Anchor(ctx, 5, zero, zero, guard=False).candidates(2)[0]  # no motion: every warp is the identity
    assert torch.allclose(cand[CANDIDATES.index("mean")], ctx[0, 2:].mean(0), atol=1e-6)
    assert torch.allclose(cand[CANDIDATES.index("mc_mean")], ctx[0, 3:].mean(0), atol=1e-6)


def test_research_state_dict_converts_to_the_same_net():
    net = TrustNet(3, 8, flow_correction=True, guard_means=False)
    nn.init.normal_(net.head.weight, std=0.1)
    state = {k: v.clone() for k, v in net.state_dict().items() if k != "prior"}
    state.update(prior_pix=torch.tensor(2.5), prior_glob=torch.tensor(1.25))  # the research keeps two scalars
    other = TrustNet(3, 8, flow_correction=True, guard_means=False)
    other.load_state_dict(convert_research_state(state))
    assert torch.allclose(other.prior * PRIOR_SCALE, torch.tensor([2.5, 1.25]))
    assert torch.equal(other.head.weight, net.head.weight)


def test_head_starts_at_zero_synthesis_and_uniform_gates_without_the_prior():
    x = pan()[:, :CONTEXT]
    net = TrustNet(3, 8, prior_pix=0, prior_glob=0).eval()
    with torch.no_grad():
        w, synth, dv = net.gates(x, context_flows(x))
    assert torch.equal(w, torch.full_like(w, 1 / len(CANDIDATES))) and float(synth.abs().max()) == 0 and dv is None
    net = TrustNet(3, 8, prior_pix=0, prior_glob=0, flow_correction=True).eval()
    with torch.no_grad():
        w, synth, dv = net.gates(x, context_flows(x))
    assert w.shape[2] == len(CANDIDATES) + 1 and float(dv.abs().max()) == 0 == float(synth.abs().max())


def test_temporal_means_leave_out_frames_that_disagree_locally_a_blink():
    torch.manual_seed(0)
    still = torch.rand(1, 1, 3, 32, 32).expand(1, CONTEXT, 3, 32, 32).clone()  # a static shot
    ctx = still.clone()
    ctx[:, 2:4, :, 10:20, 10:20] -= 1.0  # an eye closed in frames 2 and 3, open again in 4 and 5
    now = Anchor(ctx, 5, torch.zeros(1, 2, 32, 32), torch.zeros(1, 2, 32, 32))
    cand = now.candidates(1)[0]  # (N_CAND, C, H, W)
    inner = (slice(None), slice(12, 18), slice(12, 18))  # the 5x5 box around these pixels lies inside the change
    # there a closed frame differs by 1.0 = 10 AGREE_TOL: weight exp(-100), so the means are the open eye's
    # value up to float32 rounding of (x + ~0) / (1 + ~0)
    for name in ("mean", "mc_mean"):
        diff = float((cand[CANDIDATES.index(name)][inner] - ctx[0, 5][inner]).abs().max())
        assert diff <= 1e-6, (name, diff)
    plain = ctx[0].mean(0)  # what a plain temporal mean would give: a third of the closed eye
    assert float((plain[inner] - ctx[0, 5][inner]).abs().min()) >= 1 / 3 - 1e-6
    # away from the change every frame agrees exactly: the mean is the (identical) frame itself
    assert float((cand[CANDIDATES.index("mean")][:, :4, :4] - ctx[0, 5, :, :4, :4]).abs().max()) <= 1e-6
    assert AGREE_TOL == pytest.approx(0.1)


def test_roll_out_beyond_the_horizons_extends_and_never_changes_the_first_frames():
    torch.manual_seed(1)
    ctx = pan(size=32)[:, :CONTEXT]
    net = TrustNet(3, 8, horizons=3).eval()
    nn.init.normal_(net.head.weight, std=0.5)  # a "trained" head: gates and synthesis vary per pixel
    with torch.no_grad():
        short, long = net(ctx, 3), net(ctx, 6)
    assert long.shape == (1, 6, 3, 32, 32) and torch.allclose(long[:, :3], short, atol=1e-6)
    assert not torch.allclose(long[:, 3], long[:, 2], atol=1e-3)  # later horizons move on


def test_adapting_returns_the_held_out_best_and_leaves_the_net_alone():
    frames = pan(frames=9, size=32, speed=2)[0]  # (9, 3, 32, 32)
    net = TrustNet(3, 8).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    work, rec = net.adapted(frames, steps=12, lr=1e-2, patience=100)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert rec["held_out"][rec["best_step"]] == min(rec["held_out"]) <= rec["held_out"][0]
    # the returned weights reproduce the recorded best held-out error through forward(): every prediction of the
    # last known frame (frame 8: window 2 at horizon 1, window 1 at 2, window 0 at 3)
    ctx = torch.stack([frames[s:s + CONTEXT] for s in range(3)])
    with torch.no_grad():
        pred = work(ctx, 3)
    errs = [float((pred[s, 2 - s] - frames[8]).pow(2).mean()) for s in range(3)]
    best = rec["held_out"][rec["best_step"]]
    assert abs(sum(errs) / 3 - best) <= 1e-4 * best
    with pytest.raises(ValueError, match="8 known frames"):
        net.adapted(frames[:7], steps=1)


def test_high_resolution_replay_matches_the_model_size_when_they_are_equal():
    torch.manual_seed(2)
    x = pan(size=32)[:, :CONTEXT]
    net = TrustNet(3, 8).eval()
    nn.init.normal_(net.head.weight, std=0.5)
    with torch.no_grad():
        assert torch.allclose(net.predict_hires(x, 4, x), net(x, 4).clamp(-1, 1), atol=1e-6)
        assert net.predict_hires(x, 2, pan(size=64)[:, :CONTEXT]).shape == (1, 2, 3, 64, 64)


def _held_out_error(pred, frames: torch.Tensor) -> float:
    """Mean squared error of every prediction of the last known frame, one per window whose horizons reach it,
    computed through the predictor's public call (independently of the adapting code's own bookkeeping)."""
    t, tc, k = frames.shape[0], pred.context, pred.config.future_frames
    errs = []
    for s in range(max(0, t - 1 - tc - k + 1), t - tc):
        h = t - 1 - (s + tc) + 1  # the horizon at which window s predicts frame t-1
        out = pred(frames[s:s + tc], h)
        errs.append(float((out[h - 1] - frames[t - 1]).pow(2).mean()))
    return sum(errs) / len(errs)


@pytest.mark.parametrize("kind", ["convlstm", "trustnet", "trustnet-research"])
def test_adapting_with_many_steps_never_ends_worse_on_the_held_out_last_frame(kind):
    from ganapps.video.config import PRESETS, VideoConfig
    from ganapps.video.nets import build_predictor
    from ganapps.video.pipeline import Predictor

    torch.manual_seed(4)
    extra = {"predictor": "trustnet", "context_frames": CONTEXT, "future_frames": 3, "hidden": 8,
             "use_flow_correction": kind == "trustnet-research", "use_guarded_means": kind == "trustnet"} \
        if kind.startswith("trustnet") else {}
    cfg = VideoConfig(**{**PRESETS["tiny"], "use_gray": False, "size": 32, **extra})
    net = build_predictor(cfg.predictor, channels=3, context=cfg.context_frames, future=cfg.future_frames,
                          hidden=cfg.hidden, layers=cfg.layers, kernel=cfg.kernel, patch=cfg.patch, head=cfg.head,
                          flow_correction=cfg.use_flow_correction, guard_means=cfg.use_guarded_means)
    if kind.startswith("trustnet"):
        nn.init.normal_(net.head.weight, std=0.3)  # a "trained" head for the adapting to move away from
        flow_rows = net.head.weight[-2:].clone() if cfg.use_flow_correction else None
    pred = Predictor(net, cfg)
    frames = pan(frames=cfg.context_frames + 4, size=32, speed=2, seed=5)[0]  # (T, 3, 32, 32)
    # a step size far too large for a few windows: left alone, the held-out error would climb
    adapted = pred.adapted(frames, steps=60, lr=0.05, patience=60)
    rec = adapted.adapt_record
    assert rec["steps_run"] == 60 and max(rec["held_out"][1:]) > rec["held_out"][0]
    before, after = _held_out_error(pred, frames), _held_out_error(adapted, frames)
    # the copy holds the held-out best of steps 0..60; both figures go through float32 convolutions in different
    # batch shapes, whence the relative 1e-4
    assert after <= before * (1 + 1e-4), (before, after)
    assert after == pytest.approx(rec["held_out"][rec["best_step"]], rel=1e-4)
    if kind == "trustnet-research":  # the flow correction's head rows stay as trained, and no hook is left behind
        assert torch.equal(adapted.net.head.weight[-2:], flow_rows) and not adapted.net.head.weight._backward_hooks


def test_the_shipped_default_model_matches_its_card_and_is_a_trustnet_that_rolls_out():
    import hashlib

    import yaml

    from ganapps.engine.checkpoint import shipped_model
    from ganapps.video.pipeline import Predictor

    folder = shipped_model(Predictor.default_model)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest() == card["weights"]["sha256"]
    pred = Predictor.from_checkpoint(device="cpu")
    assert isinstance(pred.net, TrustNet) and pred.context == CONTEXT
    clip = pan(frames=CONTEXT, size=48)[0]  # (6, 3, 48, 48): not the model's 128 px
    out = pred(clip, 7)  # beyond the 5 trained horizons
    assert out.shape == (7, 3, 48, 48) and torch.isfinite(out).all() and float(out.abs().max()) <= 1


def test_footage_windows_cache_the_flows_the_net_would_compute_and_mirror_them_with_the_frames(tmp_path):
    import numpy as np

    from ganapps.video.data import FootageWindows
    from ganapps.video.nets import farneback_prior
    from ganapps.video.trust import FLOW_PAIRS

    clips = torch.cat([pan(frames=9, size=32, speed=s, seed=s) for s in (1, 2)])  # (2, 9, 3, 32, 32)
    path = tmp_path / "clips.npy"
    np.save(path, ((clips + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 1, 3, 4, 2).numpy())
    ds = FootageWindows(path, CONTEXT + 2, flow_pairs=FLOW_PAIRS, flow_fn=farneback_prior)
    assert len(ds) == 2 * 2 and len(list(tmp_path.glob("clips.flows-*.npy"))) == 1
    for i in range(len(ds)):
        frames, flows = ds[i]
        ref = context_flows(frames[None, :CONTEXT])[0]  # (6, 2, H, W) as the net computes them
        # the cache holds float16: relative rounding 2^-11 of flows of a few pixels
        assert torch.allclose(flows, ref, atol=2e-3 * (1 + float(ref.abs().max()))), i

    def no_flows(*_):
        raise AssertionError("the cache should have been reused")

    flipped = FootageWindows(path, CONTEXT + 2, flip=True, flow_pairs=FLOW_PAIRS, flow_fn=no_flows)
    torch.manual_seed(0)
    seen, plain_frames, plain_flows = set(), *ds[3]
    for _ in range(16):
        frames, flows = flipped[3]
        is_flipped = not torch.equal(frames, plain_frames)
        seen.add(is_flipped)
        if is_flipped:
            assert torch.equal(frames, plain_frames.flip(-1))
            mirrored = plain_flows.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
            assert torch.equal(flows, mirrored)
    assert seen == {True, False}
    with pytest.raises(InputError, match="windows of 20"):
        FootageWindows(path, 20)


def write_pans(folder) -> None:
    """Two 10-frame 32 px mp4 clips of textures panning 1 and 2 px per frame into `folder`."""
    import cv2
    import numpy as np

    folder.mkdir()
    for i in range(2):
        frames = ((pan(frames=10, size=32, speed=1 + i, seed=i)[0] + 1) * 127.5).byte().permute(0, 2, 3, 1).numpy()
        wr = cv2.VideoWriter(str(folder / f"v{i}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
        for f in frames:
            wr.write(np.ascontiguousarray(f[..., ::-1]))
        wr.release()


def test_regret_is_zero_at_or_above_the_best_baseline_and_the_log_mse_gap_below_it():
    target = torch.rand(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # errors constant over pixels: clip log MSE = log(e^2 + 1e-5); baselines off by 0.1 (the best), 0.2 and 0.4
    base = torch.stack([target + 0.1, target - 0.2, target + 0.4], 1).requires_grad_(True)
    pred = torch.stack([target[0] + 0.3, target[1] - 0.05]).requires_grad_(True)  # clip 0 below, clip 1 above
    loss = regret_loss(pred, target, base)
    gap = math.log(0.09 + 1e-5) - math.log(0.01 + 1e-5)  # ~ log 9 on clip 0, 0 on clip 1
    assert float(loss.detach()) == pytest.approx(gap / 2, rel=1e-5)
    loss.backward()
    assert base.grad is None and float(pred.grad[1].abs().max()) == 0 and float(pred.grad[0].abs().max()) > 0
    assert float(regret_loss(base[:, 0].detach(), target, base)) == pytest.approx(0, abs=1e-6)  # = the best: 0


def test_baselines_from_the_anchor_are_copy_last_and_both_flow_extrapolations():
    ctx = pan(frames=7, speed=2.0)[:, :CONTEXT].expand(2, -1, -1, -1, -1)
    ref = baseline_predictions(ctx, 4)  # computed from the frames (pipeline.copy_last, flow_extrapolate)
    assert float((ref[:, 1] - ref[:, 0]).abs().mean()) > 0.05  # the flows move the frame: not a trivial check
    assert float((baseline_predictions(ctx, 4, context_flows(ctx)) - ref).abs().max()) <= 1e-5


@pytest.mark.parametrize("predictor", ["trustnet", "convlstm"])
def test_training_with_the_regret_term_logs_it_and_it_moves_the_weights(tmp_path, predictor):
    import json

    from ganapps.cli import main as cli_main

    write_pans(tmp_path / "videos")
    runs = {}
    for weight in ("0", "1"):
        assert cli_main(["video", "train", "--preset", "tiny", "--data", str(tmp_path / "videos"), "--predictor",
                         predictor, "--context-frames", "6", "--future-frames", "2", "--size", "32", "--steps", "3",
                         "--log-every-steps", "1", "--regret-weight", weight, "--adv-weight", "0", "--quiet",
                         "--no-write-report", "--out", str(tmp_path / weight)]) == 0
        runs[weight] = [json.loads(x) for x in (tmp_path / weight / "metrics.jsonl").read_text().splitlines()]
    regret = [r["loss/regret"] for r in runs["1"] if "loss/regret" in r]
    assert regret and all(math.isfinite(v) and v >= 0 for v in regret) and max(regret) > 0
    assert not any("loss/regret" in r for r in runs["0"])
    # same seed and batches: the reconstruction loss after two updates differs only through the regret's gradient
    recon = {w: [r["loss/recon"] for r in rows if "loss/recon" in r][-1] for w, rows in runs.items()}
    assert recon["0"] != recon["1"]


def test_trustnet_trains_resumes_exports_and_evaluates_per_clip(tmp_path, capsys):
    import json

    import numpy as np

    from ganapps.cli import main as cli_main

    data = tmp_path / "videos"
    write_pans(data)
    args = ["video", "train", "--preset", "tiny", "--data", str(data), "--predictor", "trustnet", "--context-frames",
            "6", "--future-frames", "2", "--size", "32", "--recon-loss", "logmse", "--gdl-weight", "0",
            "--context-loss-weight", "0", "--adv-weight", "0", "--quiet", "--no-write-report", "--json"]
    assert cli_main([*args, "--out", str(tmp_path / "full")]) == 0
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.isfinite(full["psnr_mean"]) and "psnr_gain_mean" in full and 0 <= full["clips_below"] <= 2
    assert cli_main([*args, "--out", str(tmp_path / "half"), "--steps", "2"]) == 0
    assert cli_main([*args, "--out", str(tmp_path / "half"), "--steps", "4", "--resume"]) == 0
    capsys.readouterr()

    def last_loss(run: str) -> float:
        rows = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [r for r in rows if "loss/recon" in r][-1]["loss/recon"]

    assert last_loss("half") == pytest.approx(last_loss("full"), rel=1e-5)
    assert cli_main(["video", "evaluate", "--model", str(tmp_path / "full"), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = ev["per_clip"]
    assert len(rows) == ev["clips"] and len(ev["per_clip_horizon"]["model"][0]) == 2
    for r in rows:  # the better baseline is the best of the three, the gain the model's distance to it
        assert r["best_baseline"] == max(r["copy_last"], r["flow"], r["flow2"])
        assert r["gain"] == pytest.approx(r["model"] - r["best_baseline"], abs=2e-3)
    assert ev["clips_below"] == sum(r["gain"] < 0 for r in rows)
