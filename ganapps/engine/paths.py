"""The one rule for where ganapps keeps what it fetches and computes: a cache folder with the data recipes'
datasets under `data/` and the metrics' feature statistics under `stats/`. Imports the standard library only.

    cache: $GANAPPS_CACHE_DIR, else $XDG_CACHE_HOME/ganapps, else ~/.cache/ganapps
    data:  <cache>/data   ($GANAPPS_DATA_DIR still overrides it, deprecated)
    stats: <cache>/stats
    inductor: <cache>/inductor   (torch.compile's kernel cache, with use_compile)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None  # unset and empty both mean "not given"


def cache_dir() -> Path:
    """$GANAPPS_CACHE_DIR, else $XDG_CACHE_HOME/ganapps, else ~/.cache/ganapps."""
    explicit = _env_path("GANAPPS_CACHE_DIR")
    if explicit is not None:
        return explicit
    return (_env_path("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganapps"


def data_dir() -> Path:
    """Where data recipes build datasets: <cache>/data. $GANAPPS_DATA_DIR, the older rule, still wins when set
    (with a FutureWarning: set $GANAPPS_CACHE_DIR instead)."""
    legacy = _env_path("GANAPPS_DATA_DIR")
    if legacy is not None:
        warnings.warn("GANAPPS_DATA_DIR is deprecated: set GANAPPS_CACHE_DIR (datasets go to its data/ folder)",
                      FutureWarning, stacklevel=2)
        return legacy
    return cache_dir() / "data"


def stats_dir() -> Path:
    """Where feature statistics of folders are cached: <cache>/stats."""
    return cache_dir() / "stats"


def inductor_dir() -> Path:
    """Where torch.compile (inductor) keeps compiled kernels for `use_compile` runs: <cache>/inductor."""
    return cache_dir() / "inductor"
