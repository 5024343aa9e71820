"""Fixtures of the medical tests; plain helpers live in medical_helpers.py (a unique module name, since every
test folder's conftest would otherwise be imported as the same `conftest`)."""

from medical_helpers import head_nifti  # noqa: F401
