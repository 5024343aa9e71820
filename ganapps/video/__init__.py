"""Video prediction (`ganapps video`): continue any clip with a ConvLSTM or 3D-conv predictor trained with
reconstruction, gradient-difference and adversarial losses. config -> data -> nets -> task | pipeline -> cli;
SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, VideoConfig
from .pipeline import Predictor

SPEC = TaskSpec(
    name="video", help="Video prediction: continue any clip (ConvLSTM / 3D-conv, adversarial).",
    train_help="Train a video predictor (default: camera motion over real photos; --preset mnist: Moving MNIST).",
    config=VideoConfig, task="ganapps.video.task:VideoTask", presets=PRESETS, inference=Predictor,
    cli="ganapps.video.cli:app",
)

__all__ = ["SPEC", "Predictor"]
