"""The task-agnostic GAN engine: losses, stabilizers, augmentation, trainer, checkpoints, metrics, monitor.

Nothing here imports a task package (ganapps.toy, .cyclegan, .video, .medical), Typer or a dataset format.
"""
