"""A local package index for the recipe tests: a hand-built wheel in a folder that `pip download` reads through
$PIP_FIND_LINKS with $PIP_NO_INDEX, so fetching "from the registry" runs for real with no network."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> Path:
    """Write `name`-`version`-py3-none-any.whl holding `members` (path inside the wheel -> bytes) plus the
    METADATA, WHEEL and RECORD files pip checks; returns the wheel."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = dict(members)
    files[f"{dist}.dist-info/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist}.dist-info/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: ganapps-tests\nRoot-Is-Purelib: true\n"
                                       b"Tag: py3-none-any\n")
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record + [f"{dist}.dist-info/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


def use_local_index(monkeypatch, folder: Path) -> None:
    """Make `pip download` (run by the recipes in a subprocess) see only the wheels in `folder`."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
