"""One script per dataset: each builds or fetches its data, caches it, and verifies counts and checksums.

Shared helpers live in `_fetch.py` (package-registry wheels, URLs with checksums, the cache folder).
"""
