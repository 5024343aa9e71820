"""Video prediction (`ganapps video`): continue any clip with a ConvLSTM or 3D-conv predictor trained with
reconstruction, gradient-difference and adversarial losses. config -> data -> nets -> task | pipeline -> cli;
SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, VideoConfig
from .pipeline import Predictor

SPEC = TaskSpec(
    name="video", help="Video prediction: continue any clip (TrustNet, ConvLSTM / 3D-conv; optional adversarial term).",
    train_help="Train a video predictor (default: TrustNet on footage-like clips; --preset convlstm: the previous "
               "ConvLSTM on camera motion over photos with --dataset photos; --preset mnist: Moving MNIST).",
    config=VideoConfig, task="ganapps.video.task:VideoTask", presets=PRESETS, inference=Predictor,
    cli="ganapps.video.cli:app",
)

__all__ = ["SPEC", "Predictor"]
