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


def build(cfg: AppConfig, catalog: Catalog, pool: ModelPool, workspace: Workspace) -> gr.Blocks:
    """The page; `pool` loads models on cfg.device, `workspace` holds every file it writes."""

    def progress_of(progress: gr.Progress) -> Callable[[float, str], None]:
        return lambda fraction, desc: progress(fraction, desc=desc)

    def refresh(job: str, current: str | None):
        entries = catalog.models(job)
        values = [e.value for e in entries]
        return gr.update(choices=_choices(entries), value=current if current in values else
                         (values[0] if values else None))

    def refresh_runs(current: str | None):
        entries = catalog.runs()
        values = [e.value for e in entries]
        return gr.update(choices=_choices(entries), value=current if current in values else None)

    def outputs(status: str, res: Result | None) -> tuple:
        """status, image, video, files, table, in the order every job tab lists its outputs."""
        if res is None:
            return (status, gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                    gr.update(value=None), gr.update(value="", visible=False))
        return (status, gr.update(value=str(res.image) if res.image else None, visible=res.image is not None),
                gr.update(value=str(res.video) if res.video else None, visible=res.video is not None),
                gr.update(value=[str(f) for f in res.files]),
                gr.update(value=res.table or "", visible=bool(res.table)))

    def translate(model: str, direction: str, upload: str | None, progress=gr.Progress()):
        def job() -> Result:
            folder = catalog.resolve_model("translate", model)
            with pool.use(JOBS["translate"], folder, progress_of(progress)) as translator:
                return translate_upload(translator, upload, direction, cfg, workspace.job_dir(),
                                        progress_of(progress))
        return outputs(*guarded(job))

    def predict(model: str, upload: str | None, frames: float, adapt: float, score: bool, progress=gr.Progress()):
        def job() -> Result:
            folder = catalog.resolve_model("predict", model)
            with pool.use(JOBS["predict"], folder, progress_of(progress)) as predictor:
                return predict_upload(predictor, upload, frames, adapt, score, cfg, workspace.job_dir(),
                                      progress_of(progress))
        return outputs(*guarded(job))

    def sample(model: str, n: float, seed: float, positions: str, labels: str | None, progress=gr.Progress()):
        def job() -> Result:
            folder = catalog.resolve_model("synthesize", model)
            with pool.use(JOBS["synthesize"], folder, progress_of(progress)) as synth:
                return synthesize(synth, n, seed, positions, labels, cfg, workspace.job_dir(), progress_of(progress))
        return outputs(*guarded(job))

    def show_run(run: str | None):
        if not run:
            return status_html("pick a run folder", True), ""

        def job() -> tuple[str, str]:
            return run_report(catalog.resolve_run(run))
        status, value = guarded(job)
        if value is None:
            return status, ""
        return status, f"<iframe title='run report' srcdoc=\"{html.escape(value[1], quote=True)}\"></iframe>"

    def describe(job: str, value: str | None) -> str:
        if not value:
            return ""
        try:
            return catalog.describe(job, value)
        except InputError as e:
            return f"error: {e}"

    def model_row(job: str, elem: str):
        entries = catalog.models(job)
        first = entries[0].value if entries else None
        with gr.Row():
            dd = gr.Dropdown(choices=_choices(entries), value=first,
                             label="model (shipped, or a run / model folder under --runs)", elem_id=f"{elem}-model",
                             scale=8)
            button = gr.Button("refresh list", elem_id=f"{elem}-refresh", scale=0, min_width=120, size="sm")
        about = gr.Markdown(describe(job, first), elem_id=f"{elem}-about")
        button.click(lambda cur: refresh(job, cur), dd, dd, api_visibility="private")
        dd.change(lambda value: describe(job, value), dd, about, api_visibility="private")
        return dd

    def result_area(elem: str, image_label: str, video_label: str):
        status = gr.HTML(elem_id=f"{elem}-status")
        image = gr.Image(label=image_label, type="filepath", interactive=False, visible=False, elem_id=f"{elem}-image",
                         buttons=["download", "fullscreen"])
        video = gr.Video(label=video_label, interactive=False, visible=False, elem_id=f"{elem}-video",
                         autoplay=True, loop=True)
        table = gr.Markdown(visible=False, elem_id=f"{elem}-table")
        files = gr.File(label="download", file_count="multiple", interactive=False, elem_id=f"{elem}-files")
        return [status, image, video, files, table]

    mb = f"{cfg.max_upload_mb:g} MB"
    with gr.Blocks(title="ganapps", analytics_enabled=False,
                   delete_cache=(600, int(cfg.keep_outputs_minutes * 60))) as demo:
        gr.Markdown("## ganapps: translation, video prediction, slice synthesis, run reports")
        with gr.Tab("Translate", id="translate", elem_id="tab-translate"):
            model = model_row("translate", "tr")
            direction = gr.Radio([("A -> B", "a2b"), ("B -> A", "b2a")], value="a2b", label="direction",
                                 elem_id="tr-direction")
            upload = gr.File(label=f"image or clip (at most {mb}, {cfg.max_frames} frames)", type="filepath",
                             file_types=list(IMAGE_SUFFIXES + VIDEO_SUFFIXES), elem_id="tr-upload")
            go = gr.Button("Translate", variant="primary", elem_id="tr-run")
            outs = result_area("tr", "input | output", "input | output")
            go.click(translate, [model, direction, upload], outs, api_name="translate", concurrency_id="jobs")
        with gr.Tab("Predict", id="predict", elem_id="tab-predict"):
            model = model_row("predict", "pr")
            upload = gr.File(label=f"clip (at most {mb}, {cfg.max_frames} frames)", type="filepath",
                             file_types=list(VIDEO_SUFFIXES), elem_id="pr-upload")
            with gr.Row():
                frames = gr.Number(0, precision=0, minimum=0, maximum=cfg.max_predict_frames,
                                   label="frames to predict (0: the model's horizon)", elem_id="pr-frames")
                adapt = gr.Number(0, precision=0, minimum=0, maximum=cfg.max_adapt_steps,
                                  label="adapt: fine-tune steps on the clip first", elem_id="pr-adapt")
                score = gr.Checkbox(True, label="score: predict the clip's last frames and compare (PSNR/SSIM "
                                                "against copy-last)", elem_id="pr-score")
            go = gr.Button("Predict", variant="primary", elem_id="pr-run")
            outs = result_area("pr", "", "input clip | context then prediction")
            go.click(predict, [model, upload, frames, adapt, score], outs, api_name="predict", concurrency_id="jobs")
        with gr.Tab("Synthesize", id="synthesize", elem_id="tab-synthesize"):
            model = model_row("synthesize", "sy")
            with gr.Row():
                n = gr.Number(16, precision=0, minimum=1, maximum=cfg.max_slices, label="slices", elem_id="sy-n")
                seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="sy-seed")
                positions = gr.Textbox("", label="positions FROM,TO (position models only; empty: the whole range)",
                                       elem_id="sy-positions")
            labels = gr.File(label=f"label map (label models only; NIfTI, at most {mb})", type="filepath",
                             file_types=[".nii", ".gz"], elem_id="sy-labels")
            go = gr.Button("Synthesize", variant="primary", elem_id="sy-run")
            outs = result_area("sy", "slices", "")
            go.click(sample, [model, n, seed, positions, labels], outs, api_name="synthesize", concurrency_id="jobs")
        with gr.Tab("Runs", id="runs", elem_id="tab-runs"):
            entries = catalog.runs()
            with gr.Row():
                run = gr.Dropdown(choices=_choices(entries), value=None, label="run folder (under --runs)",
                                  elem_id="ru-run", scale=8)
                button = gr.Button("refresh list", elem_id="ru-refresh", scale=0, min_width=120, size="sm")
            status = gr.HTML(elem_id="ru-status")
            report = gr.HTML(elem_id="ru-report", elem_classes=["ga-report"])
            button.click(refresh_runs, run, run, api_visibility="private")
            run.change(show_run, run, [status, report], api_name="run_report", concurrency_id="jobs")
    demo.queue(max_size=cfg.queue_size, default_concurrency_limit=cfg.workers)
    return demo



def theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts (the default asks a font CDN, unreachable offline)."""
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
