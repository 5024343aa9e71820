"""The real app (`ganapps app` in its own process, on a free loopback port) driven by headless Debian Chromium
through Playwright: a photo, a clip, slices and a run report appear; a corrupt image, a 3-frame clip and a
truncated NIfTI show one-line errors and the next good upload works; an oversized upload is refused with its
limit named; crafted model paths are refused; stopping the app deletes every upload and result.

Needs the `app` extra (Gradio, Playwright) and /usr/bin/chromium (`.ci/run` installs both); without them the
module is skipped, except under CI=true, where that is a failure. GANAPPS_SCREENSHOTS=DIR saves one PNG per tab.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from app_helpers import (
    builtin_photo,
    export_label_model,
    train_tiny_cyclegan,
    write_clip,
    write_corrupt_image,
    write_label_map,
    write_truncated,
)

CHROMIUM = os.environ.get("GANAPPS_CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium as root, on a machine without a network (the flags .ci/run's note explains)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
MAX_UPLOAD_MB = 1
STARTUP_S = 240  # importing torch and Gradio on a busy 2-core machine
JOB_S = 120


def _missing() -> str | None:
    import importlib.util

    for module in ("gradio", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[app,dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install chromium chromium-driver)"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run: {_why}", pytrace=False)
    pytest.skip(f"browser test: {_why}", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m ganapps.cli app ...` in a child process; its stdout is collected by a thread."""

    def __init__(self, runs: Path, cwd: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ganapps.cli", "app", "--port", str(self.port), "--runs", str(runs),
             "--device", "cpu", "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-frames", "40"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + STARTUP_S
        while not any(line.startswith("uploads and results:") for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("the app did not start:\n" + "".join(self.lines[-30:]), pytrace=False)
            time.sleep(0.2)
        line = next(x for x in self.lines if x.startswith("uploads and results:"))
        self.workspace = Path(line.split(":", 1)[1].split("(")[0].strip())

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The runs root (a tiny CycleGAN run, a label-map model folder, a model folder to be swapped for a symlink)
    and the uploads."""
    d = tmp_path_factory.mktemp("app")
    runs = d / "runs"
    runs.mkdir()
    train_tiny_cyclegan(d / "data", runs / "tiny-cyclegan")
    export_label_model(runs / "label-model")
    outside = d / "outside"
    export_label_model(outside / "model", seed=1)
    shutil.copytree(runs / "label-model", runs / "swap-me")
    (runs / "escape").symlink_to(outside, target_is_directory=True)  # listed nowhere: it leads out of the root
    big = d / "big.png"
    big.write_bytes(os.urandom(int(1.5 * 2**20)))
    labels = write_label_map(d / "labels.nii.gz")
    return {"runs": runs, "outside": outside, "photo": builtin_photo(),
            "clip": write_clip(d / "clip.mp4", 12), "long": write_clip(d / "long.mp4", 16),
            "short": write_clip(d / "short.gif", 3),
            "corrupt": write_corrupt_image(d / "corrupt.png"), "big": big, "labels": labels,
            "truncated": write_truncated(d / "truncated.nii.gz", labels), "cwd": d}


@pytest.fixture(scope="module")
def server(files):
    s = Server(files["runs"], files["cwd"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="ganapps-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=FLAGS, headless=True,
                                                       viewport={"width": 1200, "height": 900})
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.url)
    page.wait_for_selector("#tr-run")
    yield page
    page.close()


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GANAPPS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"app-{name}.png"), full_page=True)


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload(page, elem: str, path: Path) -> None:
    """Replace the file of upload `elem` and wait until the page lists it."""
    clear = page.locator(f"#{elem} button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.set_input_files(f"#{elem} input[type=file]", str(path))
    page.locator(f"#{elem} [aria-label='{path.name}']").wait_for()


def _pick(page, elem: str, label: str) -> None:
    page.click(f"#{elem} input")
    page.get_by_role("option", name=label).click()


def _run(page, prefix: str, expect: str) -> str:
    """Click the tab's run button and wait for a status containing `expect`; returns the status text."""
    page.click(f"#{prefix}-run")
    status = f"#{prefix}-status .ga-status"
    page.wait_for_function(f"document.querySelector('{status}')?.innerText.includes({json.dumps(expect)})",
                           timeout=JOB_S * 1000)
    return page.inner_text(status).strip()


def _one_line_error(text: str, *needles: str) -> None:
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def _image_size(page, elem: str) -> tuple[int, int]:
    img = page.locator(f"#{elem} img").first
    img.wait_for()
    page.wait_for_function(f"document.querySelector('#{elem} img').naturalWidth > 0")
    return tuple(img.evaluate("e => [e.naturalWidth, e.naturalHeight]"))


def _video_size(page, elem: str) -> tuple[int, int]:
    page.wait_for_function(f"(() => {{ const v = document.querySelector('#{elem} video'); "
                           f"return v && v.readyState >= 1 && v.videoWidth > 0; }})()")
    return tuple(page.locator(f"#{elem} video").evaluate("v => [v.videoWidth, v.videoHeight]"))


def _download(page, elem: str, name: str) -> bytes:
    response = page.request.get(page.locator(f"#{elem} a[download='{name}']").get_attribute("href"))
    assert response.ok, response.status
    return response.body()


# --------------------------------------------------------------------------- the four tabs


def test_translate_a_photo_then_a_corrupt_image_then_the_photo_again(page, files, server):
    _upload(page, "tr-upload", files["photo"])
    status = _run(page, "tr", "translated")
    assert status == "grace_hopper.jpg: 512x600 translated a2b"
    assert _image_size(page, "tr-image") == (512 + 4 + 512, 600)  # input | 4 px | output, as the CLI's
    from io import BytesIO

    from PIL import Image

    translated = Image.open(BytesIO(_download(page, "tr-files", "grace_hopper_a2b.png")))
    assert translated.size == (512, 600)
    _screenshot(page, "translate")

    _upload(page, "tr-upload", files["corrupt"])
    error = _run(page, "tr", "error")
    _one_line_error(error, "corrupt.png: unreadable or corrupt image")
    assert str(server.workspace) not in error  # the upload is named as the user named it
    assert not page.locator("#tr-image img").count()  # the old result is gone with the error
    _upload(page, "tr-upload", files["photo"])
    assert _run(page, "tr", "translated").endswith("translated a2b")
    assert _image_size(page, "tr-image") == (1028, 600)


def test_translate_a_clip_with_a_run_folder_model(page, files):
    _pick(page, "tr-model", "runs/tiny-cyclegan (run)")
    page.locator("#tr-about").get_by_text("weights: checkpoints/step_4/weights.safetensors").wait_for()
    page.get_by_text("B -> A").click()
    _upload(page, "tr-upload", files["clip"])
    assert _run(page, "tr", "translated") == "clip.mp4: 12 frames translated b2a"
    assert _video_size(page, "tr-video") == (64 + 4 + 64, 64)


def test_predict_a_clip_then_a_three_frame_clip_then_the_clip_again(page, files):
    _tab(page, "Predict")
    _upload(page, "pr-upload", files["long"])  # the shipped model: 6 context frames, 5 predicted
    page.fill("#pr-adapt input", "2")
    status = _run(page, "pr", "predicted")
    assert status.startswith("long.mp4: 5 frames predicted (64x64) from frames 5..10 of 16 after 2 adapt steps")
    assert status.endswith("scored against the 5 frame(s) that follow")
    assert _video_size(page, "pr-video") == (64 + 2 + 64, 64)  # real | 2 px | model, as the CLI's side-by-side
    rows = page.locator("#pr-table tbody tr")
    assert rows.count() == 5
    cells = rows.nth(0).locator("td").all_inner_texts()
    assert cells[0] == "+1" and all(float(c) == float(c) for c in cells[1:])  # numbers, no NaN
    assert float(cells[1]) > 5 and float(cells[2]) > 5  # PSNR in dB of a prediction of a slow pan
    _screenshot(page, "predict")

    _upload(page, "pr-upload", files["short"])
    _one_line_error(_run(page, "pr", "error"), "short.gif: 3 decodable frames; the model needs 6 context frames")
    _upload(page, "pr-upload", files["long"])
    page.fill("#pr-adapt input", "0")
    assert _run(page, "pr", "predicted").startswith("long.mp4: 5 frames predicted")


def test_synthesize_slices_then_a_truncated_label_map_then_a_good_one(page, files):
    _tab(page, "Synthesize")
    page.fill("#sy-n input", "4")
    status = _run(page, "sy", "slices")
    assert status.startswith("4 slices, seed 0: 64x64")
    assert _image_size(page, "sy-image") == (2 * 128 + 2, 2 * 128 + 2)  # 2 x 2 slices shown at 128 px
    import gzip

    import nibabel as nib

    nifti = nib.Nifti1Image.from_bytes(gzip.decompress(_download(page, "sy-files", "synthetic.nii.gz")))
    assert nifti.shape == (64, 64, 4)
    _screenshot(page, "synthesize")

    _upload(page, "sy-labels", files["truncated"])
    _one_line_error(_run(page, "sy", "error"), "truncated.nii.gz: not a readable NIfTI file")
    _pick(page, "sy-model", "runs/label-model (model folder)")
    _upload(page, "sy-labels", files["labels"])
    status = _run(page, "sy", "label map")
    slices = nib.load(files["labels"]).shape[2]  # one per axial slice of the map (unlabelled ones: background)
    assert status.startswith(f"{slices} slices from the label map labels.nii.gz: 32x32"), status
    side = math.ceil(math.sqrt(slices))  # slices per row, each shown at 128 px (32 px x 4)
    assert _image_size(page, "sy-image") == (side * 128 + (side - 1) * 2, math.ceil(slices / side) * 128
                                              + (math.ceil(slices / side) - 1) * 2)


def test_runs_tab_shows_the_report_of_a_run(page, files):
    _tab(page, "Runs")
    _pick(page, "ru-run", "runs/tiny-cyclegan")
    page.wait_for_selector("#ru-status .ga-status")
    assert "error" not in page.inner_text("#ru-status .ga-status")
    report = page.frame_locator("#ru-report iframe")
    report.get_by_text("ganapps run report: tiny-cyclegan").wait_for()
    assert report.get_by_text("Health verdicts").count() == 1
    assert report.get_by_text("samples/step_4.png").count() == 1  # the latest samples
    assert report.locator("img[alt='Losses and regularisers']").count() == 1
    _screenshot(page, "runs")


# --------------------------------------------------------------------------- what makes it safe to leave running


def test_an_oversized_upload_is_refused_with_its_limit_named(page, files, server):
    page.set_input_files("#tr-upload input[type=file]", str(files["big"]))
    toast = page.get_by_text("exceed the maximum allowed size")
    toast.wait_for()
    assert f"{MAX_UPLOAD_MB:.1f} mb" in toast.inner_text().lower()  # Gradio's wording: "... size of 1.0 Mb"
    # a request that skips the page's check is refused by the server, which names the limit in bytes
    import httpx

    with open(files["big"], "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=60)
    assert r.status_code == 413 and str(MAX_UPLOAD_MB * 2**20) in r.text


def _call(server, api: str, data: list) -> tuple[str, object]:
    """(event, data) of one API call, as a crafted request sends it (no page)."""
    import httpx

    r = httpx.post(f"{server.url}gradio_api/call/{api}", json={"data": data}, timeout=60)
    r.raise_for_status()
    event, payload = "", None
    with httpx.stream("GET", f"{server.url}gradio_api/call/{api}/{r.json()['event_id']}", timeout=JOB_S) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                break
    return event, payload


def test_crafted_model_paths_are_refused(server, files):
    for value in ("run:0:../outside/model", str(files["outside"] / "model"), "run:0:escape/model",
                  "shipped:../../outside"):
        event, payload = _call(server, "synthesize", [value, 2, 0, "", None, "", 6, "hypo"])
        assert event == "error" or "error: model" in str(payload), (value, event, payload)
    # a folder offered at start-up that now leads out of the root: only the server's own listing catches it
    shutil.rmtree(files["runs"] / "swap-me")
    (files["runs"] / "swap-me").symlink_to(files["outside"] / "model", target_is_directory=True)
    event, payload = _call(server, "synthesize", ["run:0:swap-me", 2, 0, "", None, "", 6, "hypo"])
    assert event == "complete"
    assert payload[0].count("error: model &#x27;run:0:swap-me&#x27;: not one of the choices this app offers") == 1
    assert payload[1]["value"] is None  # no slices came back
    # files under the roots are not served either
    import httpx

    r = httpx.get(f"{server.url}gradio_api/file={files['runs'] / 'tiny-cyclegan' / 'config.yaml'}", timeout=30)
    assert r.status_code in (403, 404)


def test_a_second_app_on_a_taken_port_is_a_one_line_error(server, files, tmp_path):
    temp = tmp_path / "tmp"  # the app's own TMPDIR: other processes' folders in the system's cannot interfere
    temp.mkdir()
    before = set(temp.glob("ganapps-app-*"))
    out = subprocess.run([sys.executable, "-m", "ganapps.cli", "app", "--port", str(server.port), "--runs",
                          str(files["runs"])], cwd=files["cwd"], capture_output=True, text=True, timeout=STARTUP_S,
                         env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(temp)))
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip()
    assert err.startswith(f"error: --port {server.port}: cannot listen on 127.0.0.1:{server.port} (Cannot find "
                          f"empty port") and err.endswith("pick another --port") and "\n" not in err, err
    assert "uploads and results" not in out.stdout  # it never served
    assert set(temp.glob("ganapps-app-*")) <= before  # and its temporary folder is gone


def test_sigterm_during_start_up_leaves_no_temporary_folder(files, tmp_path):
    temp = tmp_path / "tmp"  # the app's own TMPDIR: other processes' folders in the system's cannot interfere
    temp.mkdir()
    before = set(temp.glob("ganapps-app-*"))
    proc = subprocess.Popen([sys.executable, "-m", "ganapps.cli", "app", "--port", str(_free_port())],
                            cwd=files["cwd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(temp)))
    deadline = time.monotonic() + STARTUP_S
    while not set(temp.glob("ganapps-app-*")) - before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(temp.glob("ganapps-app-*")) - before, "the app made no temporary folder"
    proc.send_signal(signal.SIGTERM)  # while it imports Gradio and builds the page, or soon after
    out, err = proc.communicate(timeout=STARTUP_S)
    assert proc.returncode in (0, 130), err[-2000:]
    assert set(temp.glob("ganapps-app-*")) <= before


def test_stopping_the_app_deletes_uploads_and_results(server):
    assert server.workspace.is_dir() and any(server.workspace.rglob("*.png"))  # uploads and results of the tests
    assert server.stop() == 0
    assert not server.workspace.exists()
