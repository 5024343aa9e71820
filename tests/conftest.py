"""Test-wide settings: one torch thread (the fast suite runs tiny nets, where a second thread only adds
synchronisation; it also keeps timings stable on a loaded 2-core machine)."""

import torch

torch.set_num_threads(1)
