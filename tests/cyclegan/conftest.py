"""Fixtures of the CycleGAN tests; plain helpers live in cyclegan_helpers.py (a unique module name, since
every test folder's conftest would otherwise be imported as the same `conftest`)."""

from cyclegan_helpers import _few_threads, dataset  # noqa: F401
