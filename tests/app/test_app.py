"""The app's parts without a browser: its limits, the catalog that decides what may be loaded (crafted values
refused), the per-model FIFO lock and model pool, bounded uploads, and the jobs giving the same results as the
CLI commands they stand for."""

from __future__ import annotations

import ast
import json
import os
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from app_helpers import export_label_model, write_clip, write_corrupt_image, write_label_map, write_truncated
from PIL import Image

import ganapps
from ganapps.app.catalog import CONFIGS, Catalog, classify
from ganapps.app.settings import AppConfig, exposure_warning, is_loopback
from ganapps.app.work import (
    FifoLock,
    ModelPool,
    Workspace,
    check_upload,
    count_frames,
    horizon_table,
    parse_positions,
    predict_upload,
    run_report,
    safe_stem,
    slice_grid,
    synthesize,
    translate_upload,
    user_names,
)
from ganapps.cli import main
from ganapps.cyclegan.config import CycleGANConfig
from ganapps.cyclegan.pipeline import Translator
from ganapps.engine import checkpoint as ckpt
from ganapps.engine.config import to_yaml
from ganapps.engine.errors import InputError
from ganapps.medical import Synthesizer
from ganapps.medical.config import PRESETS, MedicalConfig
from ganapps.video import Predictor

ROOT = Path(ganapps.__file__).parent


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("field, value, needle", [("max_frames", 0, "option max_frames=0"),
                                                  ("max_upload_mb", 0.0, "option max_upload_mb=0.0"),
                                                  ("workers", 0, "option workers=0"),
                                                  ("port", 70000, "--port 70000")])
def test_app_config_names_the_bad_field(field, value, needle):
    with pytest.raises(InputError, match=needle):
        AppConfig(**{field: value})


def test_app_config_refuses_a_runs_root_that_is_no_folder(tmp_path):
    with pytest.raises(InputError, match="--runs .*missing: not a folder"):
        AppConfig(runs=(tmp_path / "missing",))
    assert AppConfig(max_upload_mb=1.5).max_upload_bytes == int(1.5 * 2**20)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("::", False), ("example.org", False)])
def test_only_loopback_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
    warning = exposure_warning(AppConfig(host=host, port=8000))
    assert (warning is None) is loopback
    assert loopback or warning.startswith(f"warning: --host {host} serves this app to every machine that can reach "
                                          f"port 8000; it has no login")


# --------------------------------------------------------------------------- catalog


def _tiny_translator_cfg(**kw) -> CycleGANConfig:
    return CycleGANConfig(gen="resnet_6blocks", ngf=4, ndf=4, load_size=36, crop_size=32, device="cpu", **kw)


def _model_folder(folder: Path) -> Path:
    cfg = _tiny_translator_cfg()
    Translator.from_nets(Translator.build_nets(cfg), cfg, torch.device("cpu")).export(folder, fp16=False)
    return folder


def _run_folder(folder: Path, step: int = 2) -> Path:
    cfg = _tiny_translator_cfg(out=str(folder))
    weights = {name: net.state_dict() for name, net in Translator.build_nets(cfg).items()}
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(to_yaml(cfg))
    ckpt.save(folder / "checkpoints", step, weights, {"step": step}, to_yaml(cfg))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss/d": 0.5, "loss/g": 1.0}) + "\n")
    return folder


@pytest.fixture
def roots(tmp_path):
    """runs/{model, group/run, group/deeper/too-deep, .hidden, escape -> outside}, and a second root."""
    runs, other, outside = tmp_path / "runs", tmp_path / "other", tmp_path / "outside"
    _model_folder(runs / "model")
    _run_folder(runs / "group" / "run")
    _model_folder(runs / "group" / "deeper" / "too-deep")
    _model_folder(runs / ".hidden")
    _model_folder(outside / "model")
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    (runs / "inside-link").symlink_to(runs / "model", target_is_directory=True)
    export_label_model(other / "label-model")
    return runs, other, outside


def test_classify_recognises_each_tasks_config_and_the_shipped_models(tmp_path):
    for name, cls in CONFIGS.items():
        (tmp_path / f"{name}.yaml").write_text(to_yaml(cls()))
        assert classify(tmp_path / f"{name}.yaml") == (None if name == "toy" else name)  # toy: offered to no job
    shipped = {e.value for job in ("translate", "predict", "synthesize") for e in Catalog().models(job)}
    assert {"shipped:cyclegan-default", "shipped:video-default", "shipped:medical-default"} <= shipped
    (tmp_path / "bad.yaml").write_text("[not: a mapping")
    assert classify(tmp_path / "bad.yaml") is None


def test_the_pickers_offer_shipped_models_and_folders_under_the_roots_only(roots):
    runs, other, _ = roots
    catalog = Catalog([runs, other])
    translate = catalog.models("translate")
    assert translate[0].value == "shipped:cyclegan-default"  # the job's default model first
    assert [(e.value, e.label) for e in translate if e.value.startswith("run:")] == [
        ("run:0:group/run", "runs/group/run (run)"), ("run:0:inside-link", "runs/inside-link (model folder)"),
        ("run:0:model", "runs/model (model folder)")]  # not too deep, hidden, out of the root, or in a run
    assert [e.value for e in catalog.models("synthesize") if e.value.startswith("run:")] == ["run:1:label-model"]
    assert [e.value for e in catalog.runs()] == ["run:0:group/run"]
    assert catalog.resolve_model("translate", "run:0:group/run") == (runs / "group" / "run").resolve()
    assert catalog.resolve_run("run:0:group/run") == (runs / "group" / "run").resolve()
    card = yaml.safe_load((ckpt.shipped_model("cyclegan-default") / "card.yaml").read_text())
    what = catalog.describe("translate", "shipped:cyclegan-default")  # the start of the card's `what`, one line
    assert what.split()[:6] == card["what"].split()[:6] and "\n" not in what
    assert catalog.describe("translate", "run:0:group/run") == "weights: checkpoints/step_2/weights.safetensors"
    with pytest.raises(InputError, match="not one of the choices"):
        catalog.describe("translate", "run:0:../outside/model")


@pytest.mark.parametrize("value", ["run:0:../outside/model", "run:0:escape/model", "run:0:escape", "run:0:/etc",
                                   "run:0:group/deeper/too-deep", "run:0:.hidden", "run:0:group/run/checkpoints/step_2",
                                   "run:2:model", "run:-1:model", "shipped:../models/cyclegan-default",
                                   "shipped:video-default", "run:1:label-model", "/etc/passwd", "", None, 0,
                                   ["run:0:model"]])
def test_crafted_model_values_are_refused(roots, value):
    runs, other, outside = roots
    catalog = Catalog([runs, other])
    with pytest.raises(InputError) as info:
        catalog.resolve_model("translate", value)
    msg = str(info.value)
    assert "not one of the choices this app offers" in msg and "\n" not in msg
    with pytest.raises(InputError):
        catalog.resolve_run(value)


def test_a_listed_folder_swapped_for_a_link_out_of_the_root_is_refused(roots):
    runs, _, outside = roots
    catalog = Catalog([runs])
    assert catalog.resolve_model("translate", "run:0:model")
    import shutil

    shutil.rmtree(runs / "model")
    (runs / "model").symlink_to(outside / "model", target_is_directory=True)
    with pytest.raises(InputError, match="not one of the choices"):
        catalog.resolve_model("translate", "run:0:model")


# --------------------------------------------------------------------------- FIFO lock and model pool


def test_the_fifo_lock_serves_in_the_order_asked():
    lock, order = FifoLock(), []
    lock.__enter__()
    threads = []
    for i in range(4):
        t = threading.Thread(target=lambda i=i: (lock.__enter__(), order.append(i), lock.__exit__()))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 10
        while lock.waiting < i + 1 and time.monotonic() < deadline:  # each asks before the next starts
            time.sleep(0.001)
    assert lock.waiting == 4 and lock.busy
    lock.__exit__()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3] and not lock.busy


def test_the_pool_runs_one_job_per_model_at_a_time_and_loads_each_model_once(tmp_path):
    a, b = _model_folder(tmp_path / "a"), _model_folder(tmp_path / "b")
    loads = []
    pool = ModelPool(lambda cls, folder: loads.append(folder) or object(), capacity=4)
    inside, overlap = {"a": 0, "b": 0}, []
    barrier = threading.Barrier(2, timeout=10)

    def job(folder: Path, name: str, meet: bool) -> None:
        with pool.use(Translator, folder):
            inside[name] += 1
            overlap.append(inside[name])
            if meet:
                barrier.wait()  # a job on the other model runs at the same time, or this times out
            time.sleep(0.05)
            inside[name] -= 1

    threads = [threading.Thread(target=job, args=(a, "a", i == 0)) for i in range(3)]
    threads.append(threading.Thread(target=job, args=(b, "b", True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert max(overlap) == 1  # never two jobs inside one model
    assert not barrier.broken and loads.count(a) == 1 and loads.count(b) == 1
    os.utime(a / ckpt.WEIGHTS, ns=(time.time_ns(), time.time_ns() + 10**9))  # new weights: loaded again
    with pool.use(Translator, a):
        pass
    assert loads.count(a) == 2


def test_the_workspace_drops_old_job_folders_and_everything_on_close(tmp_path):
    ws = Workspace(keep_s=60, parent=tmp_path)
    old = ws.job_dir()
    (old / "x.png").write_bytes(b"x")
    os.utime(old, (time.time() - 120, time.time() - 120))
    new = ws.job_dir()
    assert not old.exists() and new.is_dir() and ws.uploads.is_dir()
    ws.close()
    assert not ws.root.exists()


# --------------------------------------------------------------------------- bounded uploads


def test_uploads_are_bounded_and_the_limit_is_named(tmp_path):
    cfg = AppConfig(max_upload_mb=0.001, max_frames=10, max_pixels=32 * 32)
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 2000)
    with pytest.raises(InputError, match=r"big.png: 0.00191 MB; uploads are limited to 0.001 MB \(--max-upload-mb\)"):
        check_upload(big, cfg, (".png",), "image")
    with pytest.raises(InputError, match=r"big.png: not a clip \(expected .mp4"):
        check_upload(big, AppConfig(), (".mp4", ".gif"), "clip")
    with pytest.raises(InputError, match="clip: no file uploaded"):
        check_upload(None, cfg, (".mp4",), "clip")
    clip = write_clip(tmp_path / "clip.gif", 12, size=32)
    with pytest.raises(InputError, match=r"clip.gif: more than 10 frames; .*at most 10 frames \(--max-frames\)"):
        count_frames(clip, cfg)
    with pytest.raises(InputError, match=r"wide.gif: 64x64 pixels; .*at most 1,024 pixels .*\(--max-pixels\)"):
        count_frames(write_clip(tmp_path / "wide.gif", 2, size=64), cfg)
    assert count_frames(clip, AppConfig(max_frames=12)) == (12, 32, 32)


def test_errors_name_the_upload_not_the_servers_temporary_path(tmp_path):
    p = tmp_path / "uploads" / "0123abcdef" / "photo.png"
    with pytest.raises(InputError) as info, user_names(p):
        raise InputError(f"{p}: unreadable or corrupt image (cannot identify image file '{str(p)[:-12]})")
    assert str(info.value) == "photo.png: unreadable or corrupt image (cannot identify image file 'photo.png)"
    assert safe_stem("../../my photo (1).nii.gz") == "my_photo__1" and safe_stem("...png") == "upload"


# --------------------------------------------------------------------------- the jobs give the CLI's results


def test_translate_gives_the_cli_translate_output(tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(image)
    assert main(["cyclegan", "translate", str(image), "--out", str(tmp_path / "cli"), "--direction", "b2a",
                 "--device", "cpu", "--quiet"]) == 0
    res = translate_upload(Translator.from_checkpoint(device="cpu"), image, "b2a", AppConfig(), tmp_path)
    assert res.summary == "in.png: 44x36 translated b2a"
    np.testing.assert_array_equal(np.asarray(Image.open(res.files[0])), np.asarray(Image.open(tmp_path / "cli" / "in.png")))
    assert Image.open(res.image).size == (44 + 4 + 44, 36)
    with pytest.raises(InputError, match=r"bad.png: unreadable or corrupt image"):
        translate_upload(Translator.from_checkpoint(device="cpu"), write_corrupt_image(tmp_path / "bad.png"), "a2b",
                         AppConfig(), tmp_path)
    with pytest.raises(InputError, match=r"in.png: 44x36 pixels; .*\(--max-pixels\)"):
        translate_upload(Translator.from_checkpoint(device="cpu"), image, "a2b", AppConfig(max_pixels=100), tmp_path)


def test_translate_a_clip_frame_by_frame(tmp_path):
    import cv2

    clip = write_clip(tmp_path / "clip.mp4", 5, size=32)
    res = translate_upload(Translator.from_checkpoint(device="cpu"), clip, "a2b", AppConfig(), tmp_path)
    assert res.summary == "clip.mp4: 5 frames translated a2b"
    for path, width in ((res.files[0], 32), (res.files[1], 32 + 4 + 32)):
        cap = cv2.VideoCapture(str(path))
        frames = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames += 1
            assert img.shape == (32, width, 3)
        assert frames == 5, path


def test_predict_scores_as_the_cli_does(tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4", 16)  # the shipped model: 6 context frames, 5 predicted
    assert main(["video", "predict", str(clip), "--start", "5", "--out", str(tmp_path / "cli.mp4"), "--device",
                 "cpu", "--json", "--quiet"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    res = predict_upload(Predictor.from_checkpoint(device="cpu"), clip, 0, 0, True, AppConfig(), tmp_path)
    rows = [r.split("|")[1:-1] for r in res.table.splitlines()[2:]]
    assert len(rows) == 5 == cli["frames"]
    for h, row in enumerate(rows):
        assert [c.strip() for c in row[:4]] == [f"+{h + 1}", f"{cli['psnr'][h]:.2f}", f"{cli['copy_last_psnr'][h]:.2f}",
                                                f"{cli['flow_psnr'][h]:.2f}"]
    assert res.summary == "clip.mp4: 5 frames predicted (64x64) from frames 5..10 of 16; scored against the 5 frame(s) that follow"
    unscored = predict_upload(Predictor.from_checkpoint(device="cpu"), clip, 2, 0, False, AppConfig(), tmp_path)
    assert unscored.table is None and "from frames 10..15 of 16" in unscored.summary
    with pytest.raises(InputError, match=r"frames 40: expected 0..32 \(--max-predict-frames\)"):
        predict_upload(Predictor.from_checkpoint(device="cpu"), clip, 40, 0, True, AppConfig(), tmp_path)
    with pytest.raises(InputError, match=r"adapt steps 2.5: expected a whole number"):
        predict_upload(Predictor.from_checkpoint(device="cpu"), clip, 0, 2.5, True, AppConfig(), tmp_path)
    with pytest.raises(InputError, match="short.gif: 3 decodable frames; the model needs 6 context frames"):
        predict_upload(Predictor.from_checkpoint(device="cpu"), write_clip(tmp_path / "short.gif", 3), 0, 0, True,
                       AppConfig(), tmp_path)


def test_synthesize_writes_the_cli_sample_stack(tmp_path, capsys):
    out = tmp_path / "cli.nii.gz"
    assert main(["medical", "sample", "--n", "5", "--seed", "3", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    res = synthesize(Synthesizer.from_checkpoint(device="cpu"), 5, 3, "", None, AppConfig(), tmp_path)
    np.testing.assert_array_equal(nib.load(res.files[0]).get_fdata(), nib.load(out).get_fdata())
    np.testing.assert_array_equal(nib.load(res.files[0]).affine, nib.load(out).affine)
    assert Image.open(res.image).size == (3 * 128 + 2 * 2, 2 * 128 + 2)  # 5 slices: 3 per row, 64 px shown at 128
    with pytest.raises(InputError, match=r"n 300: expected 1..256 \(--max-slices\)"):
        synthesize(Synthesizer.from_checkpoint(device="cpu"), 300, 0, "", None, AppConfig(), tmp_path)
    cfg = MedicalConfig(**dict(PRESETS["tiny"], condition="none", device="cpu"))
    unconditional = Synthesizer.from_nets(Synthesizer.build_nets(cfg), cfg, torch.device("cpu"))
    with pytest.raises(InputError, match="positions '0,1': this model is not conditioned on slice position"):
        synthesize(unconditional, 2, 0, "0,1", None, AppConfig(), tmp_path)


def test_synthesize_from_an_uploaded_label_map(tmp_path):
    synth = Synthesizer.from_checkpoint(export_label_model(tmp_path / "model"), device="cpu")
    labels = write_label_map(tmp_path / "labels.nii.gz")
    res = synthesize(synth, 16, 0, "", labels, AppConfig(), tmp_path)
    torch.testing.assert_close(torch.from_numpy(nib.load(res.files[0]).get_fdata()).float(),
                               torch.from_numpy(nib.load(synth.save(synth.from_label_volume(labels), tmp_path / "d.nii.gz"))
                                                .get_fdata()).float())
    with pytest.raises(InputError, match=r"^truncated.nii.gz: not a readable NIfTI file"):
        synthesize(synth, 16, 0, "", write_truncated(tmp_path / "truncated.nii.gz", labels), AppConfig(), tmp_path)
    with pytest.raises(InputError, match=r"labels.nii.gz: 20x24x16 voxels; .*at most 1,000 voxels \(--max-voxels\)"):
        synthesize(synth, 16, 0, "", labels, AppConfig(max_voxels=1000), tmp_path)
    with pytest.raises(InputError, match="label map: this model synthesizes from label maps; upload one"):
        synthesize(synth, 4, 0, "", None, AppConfig(), tmp_path)


def test_synthesize_paints_a_lesion_into_the_uploaded_map_first(tmp_path):
    """The Synthesize tab's lesion painter: the CLI's paint-lesion on the upload (world mm), then sampling from the
    painted map; the painted map is offered for download, on the upload's grid."""
    synth = Synthesizer.from_checkpoint(export_label_model(tmp_path / "model"), device="cpu")
    labels = write_label_map(tmp_path / "labels.nii.gz")  # affine diag(1.5, 1.5, 2): voxel (10, 12, 8) = (15, 18, 16) mm
    before = np.asarray(nib.load(labels).dataobj)
    res = synthesize(synth, 16, 0, "", labels, AppConfig(), tmp_path / "job", lesion="15,18,16", radius=4.5,
                     lesion_class="1")
    painted = [f for f in res.files if Path(f).name == "lesioned_labels.nii.gz"]
    assert len(painted) == 1
    img = nib.load(painted[0])
    after = np.asarray(img.dataobj)
    np.testing.assert_array_equal(img.affine, nib.load(labels).affine)
    changed = after != before
    assert changed.any() and set(np.unique(after[changed])) == {1}  # only class-2 voxels inside the sphere became 1
    i, j, k = np.nonzero(changed)
    assert ((((i - 10) * 1.5) ** 2 + ((j - 12) * 1.5) ** 2 + ((k - 8) * 2.0) ** 2) <= 4.5**2 + 1e-9).all()
    assert f"a lesion of {int(changed.sum())} voxels painted at 15,18,16 mm" in res.summary
    torch.testing.assert_close(torch.from_numpy(nib.load(res.files[0]).get_fdata()).float(),
                               torch.from_numpy(nib.load(synth.save(synth.from_label_volume(painted[0]),
                                                                    tmp_path / "d.nii.gz")).get_fdata()).float())
    with pytest.raises(InputError, match="lesion centre: a lesion is painted into a label map; upload one"):
        synthesize(synth, 4, 0, "", None, AppConfig(), tmp_path, lesion="1,2,3")
    with pytest.raises(InputError, match=r"lesion radius 'x': expected a number of mm in \(0, 100\]"):
        synthesize(synth, 4, 0, "", labels, AppConfig(), tmp_path, lesion="15,18,16", radius="x")
    with pytest.raises(InputError, match="lesion centre '15,18': expected three numbers X,Y,Z"):
        synthesize(synth, 4, 0, "", labels, AppConfig(), tmp_path, lesion="15,18")


def test_positions_must_be_two_numbers_in_the_training_range():
    class Gen:
        position_range = torch.tensor([-1.0, 1.0])

    class Cfg:
        condition = "position"

    synth = type("S", (), {"gen": Gen(), "config": Cfg()})()
    torch.testing.assert_close(parse_positions("-0.5, 0.5", 3, synth), torch.tensor([-0.5, 0.0, 0.5]))
    assert parse_positions("  ", 3, synth) is None
    for bad in ("0", "a,b", "0,2"):
        with pytest.raises(InputError, match=f"positions '{bad}': expected FROM,TO"):
            parse_positions(bad, 3, synth)


def test_slice_grid_and_horizon_table_shapes():
    assert slice_grid(torch.zeros(1, 1, 32, 32)).size == (128, 128)
    assert slice_grid(torch.zeros(10, 1, 200, 200)).size == (4 * 200 + 3 * 2, 3 * 200 + 2 * 2)
    scores = {k: [1.0, 2.0, 3.0] for k in ("psnr", "copy_last_psnr", "ssim", "copy_last_ssim")}
    table = horizon_table(scores).splitlines()
    assert len(table) == 2 + 3 and table[0].count("|") == 6 and table[-1].startswith("| +3 | 3.00 | 3.00 | 3.000")


def test_the_run_report_is_rendered_without_writing_into_the_run(tmp_path):
    run = _run_folder(tmp_path / "run")
    (run / "samples").mkdir()
    Image.new("RGB", (8, 8)).save(run / "samples" / "step_2.png")
    summary, page = run_report(run)
    assert "ganapps run report: run" in page and "samples/step_2.png" in page and "Losses and regularisers" in page
    assert summary == "no problems found" and not (run / "report.html").exists()
    with open(run / "metrics.jsonl", "a") as f:  # a non-finite loss: the divergence verdict
        f.write('{"step": 2, "loss/d": NaN, "loss/g": 1.0}\n{"step": 3, "loss/d": 0.5, "loss/g": 1.0}\n')
    summary, page = run_report(run)
    assert summary == "1 problem(s) found: diverging at step 2 (the report below gives the remedies)", summary
    assert "\n" not in summary and "loss/d is nan" in page
    with pytest.raises(InputError, match="metrics.jsonl: not found"):
        run_report(tmp_path)


# --------------------------------------------------------------------------- the command and the page's guard


def _run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


def test_the_command_refuses_bad_options_in_one_line(capsys, tmp_path, monkeypatch):
    code, err = _run_cli(capsys, "app", "--runs", str(tmp_path / "nope"))
    assert code == 2 and err == f"error: --runs {tmp_path / 'nope'}: not a folder; expected a folder of run folders"
    code, err = _run_cli(capsys, "app", "--max-frames", "0")
    assert code == 2 and err == "error: option max_frames=0: expected a positive integer"
    code, err = _run_cli(capsys, "app", "--device", "tpu")
    assert code == 2 and err.startswith("error: --device tpu: expected auto")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    code, err = _run_cli(capsys, "app")
    assert code == 2 and err == "error: ganapps app needs Gradio, which is in the optional extra: pip install 'ganapps[app]'"


def test_the_page_shows_input_errors_and_internal_errors_in_one_line():
    from ganapps.app.status import guarded

    def bad_input():
        raise InputError("x.png: unreadable or corrupt image (truncated)")

    def bug():
        raise RuntimeError("boom\nsecond line")

    status, value = guarded(bad_input)
    assert value is None and status == "<div class='ga-status ga-error'>error: x.png: unreadable or corrupt image " \
                                       "(truncated)</div>"
    status, value = guarded(bug)
    assert value is None and "internal error: RuntimeError: boom (the server log" in status and "second line" not in status


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT.parent).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            names.add(".".join(base + ([node.module] if node.module else [])))
    return names


def test_gradio_stays_inside_the_app_and_nothing_below_imports_the_app():
    for path in ROOT.rglob("*.py"):
        rel, names = path.relative_to(ROOT).as_posix(), _imports(path)
        if any(n == "gradio" or n.startswith("gradio.") for n in names):
            assert rel == "app/ui.py", rel
        if rel.startswith(("engine/", "cyclegan/", "video/", "medical/", "toy/", "recipes/")):
            assert not any(n.startswith("ganapps.app") for n in names), rel
    assert "ganapps.app.settings" in _imports(ROOT / "app" / "cli.py")  # relative imports are resolved


def test_the_bad_uploads_of_the_browser_test_are_what_they_say(tmp_path):
    """A corrupt image Pillow cannot open, a NIfTI cut in half whose voxels nibabel cannot read."""
    from PIL import UnidentifiedImageError

    with pytest.raises(UnidentifiedImageError):
        Image.open(write_corrupt_image(tmp_path / "c.png"))
    labels = write_label_map(tmp_path / "l.nii.gz")
    with pytest.raises((OSError, EOFError, ValueError)):
        np.asarray(nib.load(write_truncated(tmp_path / "t.nii.gz", labels)).dataobj)


def test_an_interruption_while_the_workspace_is_made_still_deletes_it(tmp_path, monkeypatch):
    """SIGTERM arriving right after the app's temporary folder exists but before `run` holds it (the race that
    left a folder behind on a loaded machine): it is held back until the folder is owned, then stops the app, and
    the folder is deleted."""
    import signal

    from ganapps.app import cli as app_cli
    from ganapps.app import work

    made = []
    real_init = work.Workspace.__init__

    def init_then_sigterm(self, *a, **k):
        real_init(self, *a, parent=tmp_path, **k)
        made.append(self.root)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered here, inside the constructor, unless held back

    monkeypatch.setattr(work.Workspace, "__init__", init_then_sigterm)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        app_cli.run(AppConfig())
    assert len(made) == 1 and not made[0].exists()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
