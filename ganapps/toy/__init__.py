"""The 2D Gaussian-mixture task (`ganapps toy`): the mode-collapse benchmark that proves the engine's
task protocol. config -> data -> nets -> task, top to bottom."""
