"""Benchmarks (`make bench`): speed and memory measured side by side in one run, printed as ratios."""
