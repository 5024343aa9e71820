"""`ganapps app`: resolves the options into an `AppConfig`, serves the page until Ctrl-C or SIGTERM, and deletes
every upload and result on the way out. Gradio is imported only once the command runs (the optional extra)."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from .._inference_cli import DeviceOpt, inference_threads
from ..engine.errors import InputError
from .settings import DEFAULT_PORT, AppConfig, exposure_warning

app = typer.Typer(help="A local web app: translate, predict, synthesize, and read run reports in a browser.",
                  invoke_without_command=True)

EXTRA = "pip install 'ganapps[app]'"


@app.callback(invoke_without_command=True)
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on; anything but loopback serves the app "
                                                     "to other machines, without any login")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = DEFAULT_PORT,
    runs: Annotated[list[Path] | None, typer.Option(
        "--runs", help="folder of run folders whose runs and model folders the pickers offer (repeatable; "
                       "default: ./runs when it exists)")] = None,
    device: DeviceOpt = "auto",
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="largest uploaded file")] = 50.0,
    max_frames: Annotated[int, typer.Option("--max-frames", help="most frames of an uploaded clip")] = 300,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="most pixels of an uploaded image or "
                                                                 "frame")] = 2048 * 2048,
    max_voxels: Annotated[int, typer.Option("--max-voxels", help="most voxels of an uploaded label map")] = 256 ** 3,
    max_slices: Annotated[int, typer.Option("--max-slices", help="most slices one request samples")] = 256,
    max_predict_frames: Annotated[int, typer.Option("--max-predict-frames",
                                                    help="most frames one request predicts")] = 32,
    max_adapt_steps: Annotated[int, typer.Option("--max-adapt-steps",
                                                 help="most fine-tuning steps one request runs")] = 200,
    queue_size: Annotated[int, typer.Option("--queue-size", help="requests that may wait; more are "
                                                                 "refused")] = 32,
    workers: Annotated[int, typer.Option("--workers", help="requests run at once (one at a time per model "
                                                           "whatever this is)")] = 2,
) -> None:
    """Serve the web app (Translate, Predict, Synthesize, Runs) on http://HOST:PORT until Ctrl-C."""
    if runs is None:
        runs = [Path("runs")] if Path("runs").is_dir() else []
    cfg = AppConfig(host=host, port=port, runs=tuple(runs), device=device, max_upload_mb=max_upload_mb,
                    max_frames=max_frames, max_pixels=max_pixels, max_voxels=max_voxels, max_slices=max_slices,
                    max_predict_frames=max_predict_frames, max_adapt_steps=max_adapt_steps,
                    queue_size=queue_size, workers=workers)
    if importlib.util.find_spec("gradio") is None:
        raise InputError(f"ganapps app needs Gradio, which is in the optional extra: {EXTRA}")
    from ..engine.inference import pick_device

    pick_device(cfg.device)  # a bad --device is refused before anything starts
    run(cfg)


def run(cfg: AppConfig) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); the workspace is deleted whatever happens, also when the
    interruption comes during start-up."""
    from .work import ModelPool, Workspace

    # Ctrl-C and SIGTERM are held back while the workspace is made: an interruption between the folder's creation
    # and `workspace` naming it would leave the folder behind (seen on a loaded machine); they act right after.
    held: list[int] = []
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
    old_int = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    workspace = None
    try:
        workspace = Workspace(keep_s=cfg.keep_outputs_minutes * 60)
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, old_int)
        if held:
            raise KeyboardInterrupt
        # Gradio reads these at import: uploads go into the workspace, and nothing calls home.
        os.environ["GRADIO_TEMP_DIR"] = str(workspace.uploads)
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from . import ui
        from .catalog import JOBS, Catalog

        inference_threads()
        catalog = Catalog(cfg.runs)
        pool = ModelPool(lambda cls, folder: cls.from_checkpoint(folder, device=cfg.device))
        demo = ui.build(cfg, catalog, pool, workspace)
        warning = exposure_warning(cfg)
        if warning:
            print(warning, file=sys.stderr)
        try:
            demo.launch(server_name=cfg.host, server_port=cfg.port, max_file_size=cfg.max_upload_bytes,
                        prevent_thread_lock=True, quiet=True, show_error=False, footer_links=[], ssr_mode=False,
                        mcp_server=False, enable_monitoring=False, theme=ui.theme(), css=ui.CSS)
        except OSError as e:
            raise InputError(f"--port {cfg.port}: cannot listen on {cfg.host}:{cfg.port} "
                             f"({str(e).splitlines()[0][:120]}); pick another --port") from None
        counts = ", ".join(f"{job} {len(catalog.models(job))}" for job in JOBS)
        roots = ", ".join(str(r) for r in cfg.runs) or "none (--runs)"
        url_host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        print(f"ganapps app on http://{url_host}:{cfg.port}  (Ctrl-C stops it)\n"
              f"models: {counts}; runs under: {roots}; {len(catalog.runs())} run report(s)\n"
              f"uploads and results: {workspace.root} (deleted on exit)", flush=True)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            demo.close()
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        if workspace is not None:
            workspace.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
