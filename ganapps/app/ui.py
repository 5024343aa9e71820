"""The Gradio page of `ganapps app`: four tabs (Translate, Predict, Synthesize, Runs) wired to `work`'s jobs.

Every handler runs its job through `status.guarded`: an `InputError` becomes a one-line status in the page
(`error: ...`, as the CLI prints it), any other exception a one-line internal error with the traceback in the
server log, and the server keeps serving. The only module of ganapps that imports Gradio; it must be imported
after GRADIO_TEMP_DIR is set (see `cli.run`), since Gradio reads that variable at import.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import gradio as gr

from ..engine.errors import InputError
from ..engine.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .catalog import JOBS, Catalog
from .settings import AppConfig
from .status import guarded, status_html
from .work import ModelPool, Result, Workspace, predict_upload, run_report, synthesize, translate_upload

CSS = """
.ga-status {font-size: 0.95em; padding: 0.2em 0}
.ga-error {color: #b00020; font-weight: 600}
.ga-ok {color: #1a7f37}
.ga-report iframe {width: 100%; height: 1400px; border: 1px solid #ddd}
"""


def _choices(entries) -> list[tuple[str, str]]:
    return [(e.label, e.value) for e in entries]


class _Page:
    """The page's handlers and widgets; `pool` loads models on cfg.device, `workspace` holds every file it
    writes."""

    def __init__(self, cfg: AppConfig, catalog: Catalog, pool: ModelPool, workspace: Workspace):
        self.cfg, self.catalog, self.pool, self.workspace = cfg, catalog, pool, workspace
        self.mb = f"{cfg.max_upload_mb:g} MB"

    # ---------------------------------------------------------------- handlers
    def refresh(self, job: str, current: str | None):
        entries = self.catalog.models(job)
        values = [e.value for e in entries]
        return gr.update(choices=_choices(entries), value=current if current in values else
                         (values[0] if values else None))

    def refresh_runs(self, current: str | None):
        entries = self.catalog.runs()
        values = [e.value for e in entries]
        return gr.update(choices=_choices(entries), value=current if current in values else None)

    def _run(self, job: str, model: str, progress: gr.Progress, work: Callable) -> tuple:
        """Run `work(loaded model, job folder, progress)` on the picked model, guarded, as the tab's outputs."""
        def guarded_job() -> Result:
            folder = self.catalog.resolve_model(job, model)
            with self.pool.use(JOBS[job], folder, _progress_of(progress)) as loaded:
                return work(loaded, self.workspace.job_dir(), _progress_of(progress))
        return _outputs(*guarded(guarded_job))

    def translate(self, model: str, direction: str, upload: str | None, progress=gr.Progress()):
        return self._run("translate", model, progress, lambda t, out, p: translate_upload(
            t, upload, direction, self.cfg, out, p))

    def predict(self, model: str, upload: str | None, frames: float, adapt: float, score: bool,
                progress=gr.Progress()):
        return self._run("predict", model, progress, lambda pr, out, p: predict_upload(
            pr, upload, frames, adapt, score, self.cfg, out, p))

    def sample(self, model: str, n: float, seed: float, positions: str, labels: str | None, lesion: str,
               radius: float, lesion_class: str, progress=gr.Progress()):
        return self._run("synthesize", model, progress, lambda sy, out, p: synthesize(
            sy, n, seed, positions, labels, self.cfg, out, p, lesion=lesion, radius=radius,
            lesion_class=lesion_class))

    def show_run(self, run: str | None):
        if not run:
            return status_html("pick a run folder", True), ""
        status, value = guarded(lambda: run_report(self.catalog.resolve_run(run)))
        if value is None:
            return status, ""
        return status, f"<iframe title='run report' srcdoc=\"{html.escape(value[1], quote=True)}\"></iframe>"

    def describe(self, job: str, value: str | None) -> str:
        if not value:
            return ""
        try:
            return self.catalog.describe(job, value)
        except InputError as e:
            return f"error: {e}"

    # ---------------------------------------------------------------- widgets
    def model_row(self, job: str, elem: str):
        entries = self.catalog.models(job)
        first = entries[0].value if entries else None
        with gr.Row():
            dd = gr.Dropdown(choices=_choices(entries), value=first,
                             label="model (shipped, or a run / model folder under --runs)", elem_id=f"{elem}-model",
                             scale=8)
            button = gr.Button("refresh list", elem_id=f"{elem}-refresh", scale=0, min_width=120, size="sm")
        about = gr.Markdown(self.describe(job, first), elem_id=f"{elem}-about")
        button.click(lambda cur: self.refresh(job, cur), dd, dd, api_visibility="private")
        dd.change(lambda value: self.describe(job, value), dd, about, api_visibility="private")
        return dd

    def translate_tab(self) -> None:
        cfg = self.cfg
        model = self.model_row("translate", "tr")
        direction = gr.Radio([("A -> B", "a2b"), ("B -> A", "b2a")], value="a2b", label="direction",
                             elem_id="tr-direction")
        upload = gr.File(label=f"image or clip (at most {self.mb}, {cfg.max_frames} frames)", type="filepath",
                         file_types=list(IMAGE_SUFFIXES + VIDEO_SUFFIXES), elem_id="tr-upload")
        go = gr.Button("Translate", variant="primary", elem_id="tr-run")
        outs = _result_area("tr", "input | output", "input | output")
        go.click(self.translate, [model, direction, upload], outs, api_name="translate", concurrency_id="jobs")

    def predict_tab(self) -> None:
        cfg = self.cfg
        model = self.model_row("predict", "pr")
        upload = gr.File(label=f"clip (at most {self.mb}, {cfg.max_frames} frames)", type="filepath",
                         file_types=list(VIDEO_SUFFIXES), elem_id="pr-upload")
        with gr.Row():
            frames = gr.Number(0, precision=0, minimum=0, maximum=cfg.max_predict_frames,
                               label="frames to predict (0: the model's horizon)", elem_id="pr-frames")
            adapt = gr.Number(0, precision=0, minimum=0, maximum=cfg.max_adapt_steps,
                              label="adapt: fine-tune steps on the clip first", elem_id="pr-adapt")
            score = gr.Checkbox(True, label="score: predict the clip's last frames and compare (PSNR/SSIM "
                                            "against copy-last)", elem_id="pr-score")
        go = gr.Button("Predict", variant="primary", elem_id="pr-run")
        outs = _result_area("pr", "", "input clip | context then prediction")
        go.click(self.predict, [model, upload, frames, adapt, score], outs, api_name="predict",
                 concurrency_id="jobs")

    def synthesize_tab(self) -> None:
        cfg = self.cfg
        model = self.model_row("synthesize", "sy")
        with gr.Row():
            n = gr.Number(16, precision=0, minimum=1, maximum=cfg.max_slices, label="slices", elem_id="sy-n")
            seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="sy-seed")
            positions = gr.Textbox("", label="positions FROM,TO (position models only; empty: the whole range)",
                                   elem_id="sy-positions")
        labels = gr.File(label=f"label map (label models only; NIfTI, at most {self.mb})", type="filepath",
                         file_types=[".nii", ".gz"], elem_id="sy-labels")
        with gr.Row():  # the lesion painter (`ganapps medical paint-lesion`) on the uploaded map
            lesion = gr.Textbox("", label="paint a lesion first: centre X,Y,Z in mm (empty: none)",
                                elem_id="sy-lesion")
            radius = gr.Number(6.0, minimum=0.5, maximum=100, label="lesion radius (mm)", elem_id="sy-radius")
            lesion_class = gr.Dropdown(["hypo", "hyper", "csf", "gm", "wm"], value="hypo", label="lesion class",
                                       elem_id="sy-class")
        go = gr.Button("Synthesize", variant="primary", elem_id="sy-run")
        outs = _result_area("sy", "slices", "")
        go.click(self.sample, [model, n, seed, positions, labels, lesion, radius, lesion_class], outs,
                 api_name="synthesize", concurrency_id="jobs")

    def runs_tab(self) -> None:
        entries = self.catalog.runs()
        with gr.Row():
            run = gr.Dropdown(choices=_choices(entries), value=None, label="run folder (under --runs)",
                              elem_id="ru-run", scale=8)
            button = gr.Button("refresh list", elem_id="ru-refresh", scale=0, min_width=120, size="sm")
        status = gr.HTML(elem_id="ru-status")
        report = gr.HTML(elem_id="ru-report", elem_classes=["ga-report"])
        button.click(self.refresh_runs, run, run, api_visibility="private")
        run.change(self.show_run, run, [status, report], api_name="run_report", concurrency_id="jobs")


def _progress_of(progress: gr.Progress) -> Callable[[float, str], None]:
    return lambda fraction, desc: progress(fraction, desc=desc)


def _outputs(status: str, res: Result | None) -> tuple:
    """status, image, video, files, table, in the order every job tab lists its outputs."""
    if res is None:
        return (status, gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                gr.update(value=None), gr.update(value="", visible=False))
    return (status, gr.update(value=str(res.image) if res.image else None, visible=res.image is not None),
            gr.update(value=str(res.video) if res.video else None, visible=res.video is not None),
            gr.update(value=[str(f) for f in res.files]),
            gr.update(value=res.table or "", visible=bool(res.table)))


def _result_area(elem: str, image_label: str, video_label: str):
    status = gr.HTML(elem_id=f"{elem}-status")
    image = gr.Image(label=image_label, type="filepath", interactive=False, visible=False, elem_id=f"{elem}-image",
                     buttons=["download", "fullscreen"])
    video = gr.Video(label=video_label, interactive=False, visible=False, elem_id=f"{elem}-video",
                     autoplay=True, loop=True)
    table = gr.Markdown(visible=False, elem_id=f"{elem}-table")
    files = gr.File(label="download", file_count="multiple", interactive=False, elem_id=f"{elem}-files")
    return [status, image, video, files, table]


def build(cfg: AppConfig, catalog: Catalog, pool: ModelPool, workspace: Workspace) -> gr.Blocks:
    """The page; `pool` loads models on cfg.device, `workspace` holds every file it writes."""
    page = _Page(cfg, catalog, pool, workspace)
    with gr.Blocks(title="ganapps", analytics_enabled=False,
                   delete_cache=(600, int(cfg.keep_outputs_minutes * 60))) as demo:
        gr.Markdown("## ganapps: translation, video prediction, slice synthesis, run reports")
        with gr.Tab("Translate", id="translate", elem_id="tab-translate"):
            page.translate_tab()
        with gr.Tab("Predict", id="predict", elem_id="tab-predict"):
            page.predict_tab()
        with gr.Tab("Synthesize", id="synthesize", elem_id="tab-synthesize"):
            page.synthesize_tab()
        with gr.Tab("Runs", id="runs", elem_id="tab-runs"):
            page.runs_tab()
    demo.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.workers)
    return demo


def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts (the default asks a font CDN, unreachable offline)."""
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
