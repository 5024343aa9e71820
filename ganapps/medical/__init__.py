"""Medical 2D slice synthesis: volumes (NIfTI, DICOM, slice folders) -> slices -> GAN -> synthetic stacks.
config -> io -> data -> nets -> task (training) | pipeline (inference: `Synthesizer`) -> cli;
SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, MedicalConfig
from .pipeline import Synthesizer

SPEC = TaskSpec(
    name="medical", help="Medical 2D slice synthesis from NIfTI/DICOM volumes (MNI152 by default).",
    train_help="Train a slice GAN on volumes (MNI152 T1 by default).",
    config=MedicalConfig, task="ganapps.medical.task:MedicalTask", presets=PRESETS, inference=Synthesizer,
    cli="ganapps.medical.cli:app",
)

__all__ = ["SPEC", "Synthesizer"]
