"""Medical 2D slice synthesis: volumes (NIfTI, DICOM, slice folders) -> slices -> GAN -> synthetic stacks.
config -> io -> data -> nets -> task (training) | pipeline (inference: `Synthesizer`) -> cli."""

from .pipeline import Synthesizer

__all__ = ["Synthesizer"]
