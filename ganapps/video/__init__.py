"""Video prediction (`ganapps video`): continue any clip with a ConvLSTM or 3D-conv predictor trained with
reconstruction, gradient-difference and adversarial losses. config -> data -> nets -> task | pipeline -> cli."""

from .pipeline import Predictor

__all__ = ["Predictor"]
