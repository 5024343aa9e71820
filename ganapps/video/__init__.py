"""Video prediction (`ganapps video`): continue any clip with a ConvLSTM or 3D-conv predictor trained with
reconstruction, gradient-difference and adversarial losses. config -> data -> nets -> task | pipeline -> cli;
SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, VideoConfig
from .pipeline import Predictor


def _summary(ev: dict[str, float]) -> str:
    flow = f"  flow psnr {ev['flow_psnr_mean']:.2f} ssim {ev['flow_ssim_mean']:.3f}" if "flow_psnr_mean" in ev else ""
    return (f"held-out mse/frame {ev['mse_mean']:.2f} (copy-last {ev['copy_last_mse_mean']:.2f})  "
            f"psnr {ev['psnr_mean']:.2f} dB (copy-last {ev['copy_last_psnr_mean']:.2f})  "
            f"ssim {ev['ssim_mean']:.3f} (copy-last {ev['copy_last_ssim_mean']:.3f}){flow}")


SPEC = TaskSpec(
    name="video", help="Video prediction: continue any clip (ConvLSTM / 3D-conv, adversarial).",
    train_help="Train a video predictor (default: camera motion over real photos; --preset mnist: Moving MNIST).",
    config=VideoConfig, task="ganapps.video.task:VideoTask", presets=PRESETS, inference=Predictor,
    summary=_summary, cli="ganapps.video.cli:app",
)

__all__ = ["SPEC", "Predictor"]
