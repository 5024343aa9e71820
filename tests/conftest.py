"""Test-wide settings: one torch thread (the fast suite runs tiny nets, where a second thread only adds
synchronisation; it also keeps timings stable on a loaded 2-core machine), and `use_amp: auto` resolved to
float32 (auto means bf16 on CPUs with native bf16; the suite's reference comparisons and tolerances are float32),
also in the CLI processes tests start, unless a test sets GANAPPS_AUTO_AMP itself."""

import os

import torch

torch.set_num_threads(1)
os.environ["GANAPPS_AUTO_AMP"] = "0"
