"""Video prediction: nets, losses, readers and writers, metric conventions, the pipeline and the CLI end to end.
Tiny frames and nets only; nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganapps.cli import main as cli_main
from ganapps.engine.errors import InputError
from ganapps.video.config import PRESETS, VideoConfig
from ganapps.video.data import (
    ClipDataset,
    MovingMNIST,
    NpySequences,
    iter_frames,
    moving_mnist_sequence,
    probe,
    read_frames,
    to_tensor,
)
from ganapps.video.nets import (
    Conv3dPredictor,
    ConvLSTMCell,
    ConvLSTMPredictor,
    FrameDiscriminator,
    VideoDiscriminator,
    gradient_difference_loss,
)
from ganapps.video.pipeline import Predictor, copy_last, flow_extrapolate, horizon_metrics, write_video

torch.set_num_threads(1)


def moving_square(n: int, h: int = 16, w: int = 16, side: int = 4, speed: int = 1, channels: int = 1,
                  x0: int = 0, y0: int = 5) -> np.ndarray:
    """(n, h, w, channels) uint8: a white square moving right `speed` px per frame (wrapping)."""
    out = np.zeros((n, h, w, channels), np.uint8)
    for t in range(n):
        x = (x0 + speed * t) % (w - side)
        out[t, y0:y0 + side, x:x + side] = 255
    return out


def write_mp4(path: Path, frames: np.ndarray, fourcc: str = "mp4v") -> Path:
    h, w = frames.shape[1:3]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(cv2.cvtColor(np.repeat(f, 3, -1) if f.shape[-1] == 1 else f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def tiny_model(folder: Path, **kw) -> Path:
    """A model folder (weights + config) with a tiny untrained warp-head ConvLSTM."""
    cfg = VideoConfig(**{**PRESETS["tiny"], "use_gray": False, **kw})
    torch.manual_seed(0)
    from ganapps.video.nets import build_predictor

    net = build_predictor(cfg.predictor, channels=cfg.channels, context=cfg.context_frames, future=cfg.future_frames,
                          hidden=cfg.hidden, layers=cfg.layers, kernel=cfg.kernel, patch=cfg.patch, head=cfg.head)
    Predictor(net, cfg).export(folder, fp16=False)
    return folder


# --------------------------------------------------------------------------- nets


@pytest.mark.parametrize("head", ["direct", "residual", "warp"])
def test_convlstm_shapes_and_context_outputs(head):
    net = ConvLSTMPredictor(channels=3, hidden=8, layers=2, kernel=3, patch=2, head=head)
    x = torch.rand(2, 4, 3, 8, 12) * 2 - 1  # (B, Tc, C, H, W)
    assert net(x, 3).shape == (2, 3, 3, 8, 12)
    assert net(x, 3, return_context=True).shape == (2, 6, 3, 8, 12)


def test_new_residual_and_warp_heads_start_as_copy_last_frame():
    x = torch.rand(1, 3, 1, 8, 8)
    for head in ("residual", "warp"):
        y = ConvLSTMPredictor(1, 8, 1, 3, 2, head)(x, 4)
        assert torch.allclose(y, x[:, -1:].expand_as(y), atol=1e-6)


def test_fused_gate_convolution_equals_separate_input_and_hidden_convolutions():
    cell = ConvLSTMCell(5, 7, 3)
    conv_x, conv_h = (nn.Conv2d(c, 28, 3, padding=1, bias=False) for c in (5, 7))
    conv_x.weight.data, conv_h.weight.data = cell.gates.weight.data[:, :5].clone(), cell.gates.weight.data[:, 5:].clone()
    x, h, c = torch.randn(2, 5, 6, 6), torch.randn(2, 7, 6, 6), torch.randn(2, 7, 6, 6)
    i, f, g, o = (conv_x(x) + conv_h(h)).split(7, 1)
    c_ref = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
    h_ref = torch.sigmoid(o) * torch.tanh(c_ref)
    h_new, c_new = cell(x, h, c)
    # One conv over [x, h] and two added convs sum the same n = 108 products in other orders: each gate
    # pre-activation differs by at most n eps sum|w x| (the standard summation bound), and sigmoid/tanh are
    # 1/4- and 1-Lipschitz, so c moves by at most (|c| / 4 + 5 / 4) times that and h by 1/4 more.
    n = cell.gates.weight[0].numel()
    mag = (F.conv2d(x.abs(), conv_x.weight.detach().abs(), padding=1)
           + F.conv2d(h.abs(), conv_h.weight.detach().abs(), padding=1))
    pre = n * torch.finfo(torch.float32).eps * float(mag.max())
    c_tol = (float(c.abs().max()) / 4 + 5 / 4) * pre
    c_err, h_err = (float((a - b).detach().abs().max()) for a, b in ((c_new, c_ref), (h_new, h_ref)))
    assert c_err <= c_tol and h_err <= c_tol + pre / 4


def test_rollout_goes_beyond_the_training_length():
    x = torch.rand(1, 3, 1, 8, 8)
    lstm = ConvLSTMPredictor(1, 8, 1, 3, 2, "direct")
    assert lstm(x, 25).shape == (1, 25, 1, 8, 8)
    assert torch.allclose(lstm(x, 25)[:, :4], lstm(x, 4), atol=1e-6)  # a longer roll-out extends, never changes
    c3d = Conv3dPredictor(1, context=3, chunk=2, width=8, blocks=1, patch=2)
    nn.init.normal_(c3d.out.weight, std=0.01)
    y = c3d(x, 7)
    assert y.shape == (1, 7, 1, 8, 8) and torch.allclose(y[:, :2], c3d(x, 2), atol=1e-6)


def test_discriminators_score_patches_of_the_clip():
    clip = torch.rand(2, 6, 3, 16, 16)
    assert VideoDiscriminator(3, 4)(clip).shape[:2] == (2, 1)
    assert FrameDiscriminator(3, 4)(clip).shape[:2] == (12, 1)


def test_gradient_difference_loss_is_zero_for_matching_edges_and_positive_for_blur():
    y = torch.rand(2, 3, 1, 8, 8)
    assert float(gradient_difference_loss(y, y)) == 0.0
    assert float(gradient_difference_loss(y + 0.3, y)) == pytest.approx(0.0, abs=1e-6)  # offsets keep edges
    blurred = torch.nn.functional.avg_pool2d(y.flatten(0, 1), 3, 1, 1).view_as(y)
    assert float(gradient_difference_loss(blurred, y)) > 0.01
    # hand case: a single vertical step of height 2 in the target, a flat prediction: |2 - 0| on 1 of 2 dx cells
    t = torch.tensor([[[0.0, 2.0, 2.0], [0.0, 2.0, 2.0]]])
    assert float(gradient_difference_loss(torch.zeros_like(t), t)) == pytest.approx(1.0)


def test_a_tiny_predictor_overfits_a_moving_square():
    torch.manual_seed(0)
    clip = to_tensor(moving_square(12, 16, 16))  # (12, 1, 16, 16)
    windows = clip.unfold(0, 6, 1).permute(0, 4, 1, 2, 3)  # (7, 6, 1, 16, 16)
    ctx_, target = windows[:, :3], windows[:, 3:]
    net = ConvLSTMPredictor(1, hidden=12, layers=1, kernel=3, patch=2, head="residual")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        loss = (net(ctx_, 3) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        model = horizon_metrics(net(ctx_, 3), target)["mse_mean"]
    base = horizon_metrics(copy_last(ctx_, 3), target)["mse_mean"]
    assert model < 0.05 * base, (model, base)  # copy-last scores 16 (two 4x4 edges of error per frame)


# --------------------------------------------------------------------------- data


def test_reader_handles_odd_sizes_colour_and_resizing(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (7, 23, 37, 3), dtype=np.uint8)
    path = write_video(tmp_path / "odd.gif", frames)  # GIF keeps odd sizes; MJPG/mp4v round them to even
    info = probe(path)
    assert (info.frames, info.height, info.width) == (7, 23, 37)
    x = read_frames(path, start=2, count=3)
    assert x.shape == (3, 3, 23, 37) and x.min() >= -1 and x.max() <= 1
    assert read_frames(path, size=16, gray=True).shape == (7, 1, 16, 16)
    assert next(iter_frames(path, crop=True)).shape == (23, 23, 3)
    avi = write_mp4(tmp_path / "c.avi", frames[:, :22, :30], "MJPG")
    assert (probe(avi).frames, *read_frames(avi, start=6).shape) == (7, 1, 3, 22, 30)


def test_frame_folders_in_gray_are_read_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in (10, 2, 1):  # natural order: 1, 2, 10
        cv2.imwrite(str(folder / f"f{t}.png"), np.full((9, 11), t * 20, np.uint8))
    x = read_frames(folder)
    assert x.shape == (3, 3, 9, 11)
    assert [round(float((v[0, 0, 0] + 1) * 127.5)) for v in x] == [20, 40, 200]


def test_gif_round_trip(tmp_path):
    frames = moving_square(5, 12, 14, channels=3)
    path = write_video(tmp_path / "a.gif", frames)
    back = read_frames(path)
    assert back.shape == (5, 3, 12, 14)
    assert torch.allclose(back, to_tensor(frames), atol=0.02)


def test_truncated_and_corrupt_files_are_skipped_by_name_or_fatal_when_strict(tmp_path):
    good = write_mp4(tmp_path / "good.mp4", moving_square(12, 16, 16))
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.mkv").write_bytes(b"not a video at all" * 10)
    messages: list[str] = []
    ds = ClipDataset([tmp_path], 3, 2, stride=2, size=16, warn=messages.append)
    assert all(p.name == "good.mp4" for p, _ in ds.index) and len(ds) == 4
    assert any("cut.mp4" in m for m in messages) and any("junk.mkv" in m for m in messages)
    assert ds[1].shape == (5, 3, 16, 16)
    with pytest.raises(InputError, match=r"(cut|junk)\.m"):
        ClipDataset([tmp_path], 3, 2, strict=True)


def test_missing_and_unsupported_inputs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="nope.mp4"):
        read_frames(tmp_path / "nope.mp4")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported extension"):
        read_frames(tmp_path / "notes.txt")


def test_moving_mnist_digits_bounce_inside_the_frame():
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[:, 4:24, 10:18] = 200
    seq = moving_mnist_sequence(digits, np.random.default_rng(0), length=40, size=64, num_digits=2)
    assert seq.shape == (40, 64, 64) and seq.dtype == np.uint8
    assert all(f.max() == 200 for f in seq)  # never leaves the canvas
    ds = MovingMNIST(digits, 20, items=5, seed=3)
    assert ds[2].shape == (20, 1, 64, 64) and torch.equal(ds[2], ds[2])


def test_test_sequences_recipe_fetches_by_url_and_checks_the_shape(tmp_path):
    from ganapps.engine.checkpoint import file_digest
    from ganapps.recipes import moving_mnist

    src = tmp_path / "src.npy"
    np.save(src, np.random.default_rng(0).integers(0, 255, (20, 3, 64, 64), dtype=np.uint8))
    got = moving_mnist.fetch_test_seq(tmp_path / "dest", url=src.as_uri(), checksum=file_digest(src, "md5"), shape=None)
    assert NpySequences(got, 20)[1].shape == (20, 1, 64, 64)
    with pytest.raises(InputError, match="shape"):
        moving_mnist.fetch_test_seq(tmp_path / "dest", url=src.as_uri(), checksum=file_digest(src))
    with pytest.raises(InputError, match="checksum"):
        moving_mnist.fetch_test_seq(tmp_path / "other", url=src.as_uri(), checksum="0" * 64, shape=None)
    with pytest.raises(InputError, match="md5"):
        moving_mnist.fetch_test_seq(tmp_path / "third", url=src.as_uri(), checksum="0" * 32, shape=None)
    assert moving_mnist.TEST_SEQ_URL.endswith("/mnist_test_seq.npy") and len(moving_mnist.TEST_SEQ_MD5) == 32


# --------------------------------------------------------------------------- metrics and baselines


def test_metrics_follow_openstl_conventions_on_hand_computed_cases():
    target = -torch.ones(2, 3, 1, 8, 8)
    target[:, :, 0, 0, 0] = 1.0  # one white pixel per frame
    pred = -torch.ones_like(target)  # all black
    m = horizon_metrics(pred, target)
    assert m["mse"] == pytest.approx([1.0, 1.0, 1.0]) and m["mae"] == pytest.approx([1.0, 1.0, 1.0])
    assert m["psnr"][0] == pytest.approx(10 * np.log10(64))  # per-pixel MSE 1/64 on a 0-1 scale
    half = pred.clone()
    half[:, 1, 0, 0, 0] = 0.0  # horizon 2 gets the pixel half right: error 0.5 -> squared 0.25
    m = horizon_metrics(half, target)
    assert m["mse"][1] == pytest.approx(0.25) and m["mae"][1] == pytest.approx(0.5)
    assert m["mse_mean"] == pytest.approx((1 + 0.25 + 1) / 3)
    assert horizon_metrics(target, target)["ssim"] == pytest.approx([1.0, 1.0, 1.0])


def test_baselines_copy_the_last_frame_and_extrapolate_a_pan():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (32, 64), dtype=np.uint8), (5, 5), 1.5)
    frames = np.stack([texture[:, 20 - 2 * t:52 - 2 * t] for t in range(5)])[..., None]  # pans 2 px/frame
    clip = to_tensor(frames).unsqueeze(0)  # (1, 5, 1, 32, 32)
    assert torch.equal(copy_last(clip[:, :3], 2), clip[:, 2:3].expand(-1, 2, -1, -1, -1))
    flow = horizon_metrics(flow_extrapolate(clip[:, :3], 2)[..., 4:-4, 4:-4], clip[:, 3:, :, 4:-4, 4:-4])
    copy = horizon_metrics(copy_last(clip[:, :3], 2)[..., 4:-4, 4:-4], clip[:, 3:, :, 4:-4, 4:-4])
    assert flow["mse"][0] < 0.5 * copy["mse"][0]


# --------------------------------------------------------------------------- pipeline and CLI


def test_predictor_accepts_tensors_arrays_and_files(tmp_path):
    pred = Predictor.from_checkpoint(tiny_model(tmp_path / "m"))
    arr = moving_square(6, 20, 24, channels=3)
    out = pred(arr, 4)
    assert out.shape == (4, 3, 20, 24)
    assert torch.allclose(pred(to_tensor(arr), 4), out)
    path = write_mp4(tmp_path / "c.mp4", arr)
    assert pred(path, 2).shape == (2, 3, 20, 24)
    assert pred(to_tensor(arr[..., :1]), 1).shape == (1, 1, 20, 24)  # a gray clip through an RGB model


def test_adapting_fine_tunes_a_copy_and_needs_earlier_frames(tmp_path):
    pred = Predictor.from_checkpoint(tiny_model(tmp_path / "m"))
    before = {k: v.clone() for k, v in pred.net.state_dict().items()}
    clip = to_tensor(moving_square(10, 16, 16, channels=3))
    adapted = pred.adapted(clip, steps=3, lr=1e-2)
    assert all(torch.equal(before[k], v) for k, v in pred.net.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in adapted.net.state_dict().items())
    with pytest.raises(InputError, match="adapt"):
        pred.adapted(clip[:3], steps=1)


def test_pipeline_module_never_loads_training_code():
    code = ("import sys, ganapps.video.pipeline; "
            "print(any(m in sys.modules for m in ('ganapps.video.task', 'ganapps.engine.trainer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predict_end_to_end_writes_playable_files_of_the_right_size(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    clip = write_mp4(tmp_path / "clip.mp4", moving_square(12, 40, 48, channels=3))
    out = tmp_path / "pred.mp4"
    code = cli_main(["video", "predict", str(clip), "--model", str(model), "--frames", "6", "--out", str(out),
                     "--start", "2", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cap = cv2.VideoCapture(str(out))
    n, size = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, size = n + 1, f.shape[:2]
    assert (n, size) == (6, (40, 48))
    side = probe(result["side_by_side"])
    assert side.frames == 3 + 6 and side.width > 2 * 48
    assert len(result["psnr"]) == 6 and len(result["copy_last_psnr"]) == 6  # the clip continues: scored
    assert len(result["flow_psnr"]) == 6 and len(result["flow_ssim"]) == 6  # beside the flow baseline
    gif = tmp_path / "p.gif"
    assert cli_main(["video", "predict", str(clip), "--model", str(model), "--frames", "14", "--out", str(gif),
                     "--adapt", "2"]) == 0
    assert probe(gif).frames == 14


def test_predict_reports_bad_input_in_one_line_with_exit_code_2(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    assert cli_main(["video", "predict", str(tmp_path / "missing.mp4"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.mp4" in err and len(err.splitlines()) == 1
    short = write_mp4(tmp_path / "short.mp4", moving_square(2, 16, 16))
    assert cli_main(["video", "predict", str(short), "--model", str(model)]) == 2
    assert "short.mp4" in capsys.readouterr().err


def test_train_evaluate_and_resume_on_generated_videos(tmp_path, capsys):
    data = tmp_path / "videos"
    data.mkdir()
    for i in range(2):
        write_mp4(data / f"v{i}.mp4", moving_square(10, 16, 16, channels=3, x0=i, speed=1 + i))
    args = ["video", "train", "--preset", "tiny", "--data", str(data), "--quiet", "--no-write-report", "--json"]
    assert cli_main([*args, "--out", str(tmp_path / "full")]) == 0
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.isfinite(full["mse_mean"]) and "copy_last_mse_mean" in full
    assert cli_main([*args, "--out", str(tmp_path / "half"), "--steps", "2"]) == 0
    assert cli_main([*args, "--out", str(tmp_path / "half"), "--steps", "4", "--resume"]) == 0
    capsys.readouterr()

    def last_loss(run: str) -> float:
        rows = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [r for r in rows if "loss/recon" in r][-1]["loss/recon"]

    assert last_loss("half") == pytest.approx(last_loss("full"), rel=1e-5)
    assert cli_main(["video", "evaluate", "--model", str(tmp_path / "full"), "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(ev["model"]["psnr"]) == 2 and {"copy_last", "flow"} <= set(ev)


def test_config_names_the_bad_option():
    with pytest.raises(InputError, match="size=30"):
        VideoConfig(size=30, patch=4)
    with pytest.raises(InputError, match="adv_weight"):
        VideoConfig(adv_weight=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert VideoConfig(use_gray=True).channels == 1


def _replay_rounding_bound(net: nn.Module, x: torch.Tensor) -> float:
    """The flowprior replay swaps the low-resolution prior for the full-size one, (f - k p) + k p, which at the
    same size equals f only up to rounding: at most 3 roundings of eps (|f| + 2 k |p|) per flow component, and
    a bilinear warp turns a flow error into at most the image's largest step between neighbours per component.
    Which way each rounding falls depends on the CPU's kernels, so the test allows this bound, not 1e-6."""
    parts = [p for _, p in list(net._roll(x, 5))[x.shape[1] - 1:]]
    flow = max(float(p["flow"].abs().max()) for p in parts)
    prior = max(k * float(p["prior"].abs().max()) for k, p in enumerate(parts, 1))
    last = x[:, -1]
    step = max(float((last[..., 1:] - last[..., :-1]).abs().max()), float((last[..., 1:, :] - last[..., :-1, :]).abs().max()))
    return 2 * step * 3 * torch.finfo(torch.float32).eps * (flow + 2 * prior)


def test_high_resolution_replay_equals_the_roll_out_at_the_model_resolution():
    torch.manual_seed(0)
    for head in ("warp", "residual", "flowprior", "direct"):
        net = ConvLSTMPredictor(3, 8, 2, 3, 2, head)
        for p in net.parameters():
            nn.init.normal_(p, std=0.1)
        x = torch.rand(2, 4, 3, 16, 16) * 2 - 1
        with torch.no_grad():
            diff = float((net(x, 5).clamp(-1, 1) - net.predict_hires(x, 5, x)).abs().max())
            assert diff <= (_replay_rounding_bound(net, x) if head == "flowprior" else 1e-6), head  # others: 0 seen
        assert net.predict_hires(x, 3, torch.zeros(2, 2, 3, 40, 24)).shape == (2, 3, 3, 40, 24)


def test_flow_prior_head_starts_as_flow_extrapolation_of_a_pan():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (32, 64), dtype=np.uint8), (5, 5), 1.5)
    clip = to_tensor(np.stack([texture[:, 20 - t:52 - t] for t in range(6)])[..., None]).unsqueeze(0)
    net = ConvLSTMPredictor(1, hidden=8, layers=1, kernel=3, patch=2, head="flowprior")
    with torch.no_grad():
        pred = net(clip[:, :4], 2)
    inner = (..., slice(4, -4), slice(4, -4))
    model = horizon_metrics(pred[inner], clip[:, 4:][inner])["mse"][0]
    copy = horizon_metrics(copy_last(clip[:, :4], 2)[inner], clip[:, 4:][inner])["mse"][0]
    assert model < 0.5 * copy


@pytest.mark.slow
def test_shipped_default_model_beats_copy_last_on_a_pan_of_a_texture(tmp_path):

    rng = np.random.default_rng(1)
    texture = cv2.resize(cv2.GaussianBlur(rng.integers(0, 255, (64, 160, 3), dtype=np.uint8), (5, 5), 2), (320, 128))
    frames = np.stack([texture[:, 100 - 3 * t:228 - 3 * t] for t in range(10)])  # (10, 128, 128, 3), 3 px/frame
    pred = Predictor.from_checkpoint()
    out = pred(frames[:6], 4)
    truth = to_tensor(frames[6:])
    model = horizon_metrics(out.unsqueeze(0)[..., 8:-8, 8:-8], truth.unsqueeze(0)[..., 8:-8, 8:-8])["psnr_mean"]
    copy = horizon_metrics(to_tensor(frames[5:6]).expand(4, -1, -1, -1).unsqueeze(0)[..., 8:-8, 8:-8],
                           truth.unsqueeze(0)[..., 8:-8, 8:-8])["psnr_mean"]
    assert model > copy + 3, (model, copy)


def test_untrained_flow_prior_head_is_exactly_the_flow_extrapolation_baseline():
    """Zero-initialised correction and change: the model's roll-out (at its size and replayed at full size) is
    the Farneback baseline averaged over two frame pairs, so training starts from the baseline and can only learn what it misses."""
    rng = np.random.default_rng(2)
    texture = cv2.resize(cv2.GaussianBlur(rng.integers(0, 255, (48, 96, 3), dtype=np.uint8), (5, 5), 2), (192, 96))
    frames = to_tensor(np.stack([texture[:, 60 - 2 * t:124 - 2 * t] for t in range(6)]))  # (6, 3, 96, 64)
    net = ConvLSTMPredictor(3, hidden=8, layers=1, kernel=3, patch=4, head="flowprior")
    for p in net.cells.parameters():
        nn.init.normal_(p, std=0.1)  # the state does not matter while the heads are zero
    hi = frames.unsqueeze(0)[:, :4]
    lo = torch.nn.functional.interpolate(hi[0], size=(48, 32), mode="area").unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(net(lo, 3), flow_extrapolate(lo, 3, pairs=2), atol=1e-5)
        assert torch.allclose(net.predict_hires(lo, 3, hi), flow_extrapolate(hi, 3, pairs=2).clamp(-1, 1), atol=1e-5)
        assert not torch.allclose(net(lo, 3), flow_extrapolate(lo, 3), atol=1e-3)  # 1 pair is another prior


def test_trustnet_trains_on_video_files_with_each_clips_flows_computed_by_the_data_loader(tmp_path, capsys):
    from ganapps.video.data import WithFlows
    from ganapps.video.task import VideoTask
    from ganapps.video.trust import CONTEXT, context_flows

    data = tmp_path / "videos"
    data.mkdir()
    for i in range(2):
        write_mp4(data / f"v{i}.mp4", moving_square(12, 32, 32, side=8, channels=3, x0=i, speed=1 + i))
    cfg = VideoConfig(predictor="trustnet", data=str(data), context_frames=7, future_frames=2, size=32, hidden=8,
                      layers=1, adv_weight=0, clip_stride=1, out=str(tmp_path / "unused"))
    ds = VideoTask(cfg).dataset()
    assert isinstance(ds, WithFlows) and len(ds) == 2 * (12 - 9 + 1)
    for i in (0, len(ds) - 1):
        frames, flows = ds[i]
        # the flows the net would compute itself from its last 6 context frames (frames 1..6 of this clip)
        assert torch.equal(flows, context_flows(frames[None, 7 - CONTEXT:7])[0]), i
        assert float(flows.abs().max()) > 0.5  # the square moves: the flows are not all zero
    args = ["video", "train", "--predictor", "trustnet", "--data", str(data), "--context-frames", "6",
            "--future-frames", "2", "--size", "32", "--hidden", "8", "--layers", "1", "--adv-weight", "0",
            "--batch-size", "2", "--steps", "2", "--eval-clips", "2", "--quiet", "--no-write-report",
            "--no-use-tensorboard", "--json", "--out", str(tmp_path / "run")]
    assert cli_main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.isfinite(out["mse_mean"]) and "copy_last_mse_mean" in out
