"""Where shipped default models are found: $GANAPPS_MODELS_DIR, the checkout's models/, then the installed
package's ganapps/models/ (read with importlib.resources); a missing one is a one-line InputError."""

import importlib.resources
from pathlib import Path

import pytest

from ganapps.engine import checkpoint as ckpt
from ganapps.engine.errors import InputError

SHIPPED = ("cyclegan-default", "video-default", "video-mnist", "medical-default", "medical-label")


def _model(folder):
    folder.mkdir(parents=True)
    (folder / ckpt.WEIGHTS).write_bytes(b"x")
    return folder


@pytest.mark.parametrize("name", SHIPPED)
def test_checkout_models_are_found_by_default(monkeypatch, name):
    monkeypatch.delenv("GANAPPS_MODELS_DIR", raising=False)
    found = ckpt.shipped_model(name)
    assert found.parts[-2:] == ("models", name) and (found / ckpt.WEIGHTS).is_file()
    assert found.parent == Path(ckpt.__file__).resolve().parents[2] / "models"


def test_env_override_wins_then_checkout_then_package_resource(tmp_path, monkeypatch):
    env = _model(tmp_path / "env" / "video-default")
    monkeypatch.setenv("GANAPPS_MODELS_DIR", str(tmp_path / "env"))
    assert ckpt.shipped_model("video-default") == env  # before the checkout's copy
    monkeypatch.delenv("GANAPPS_MODELS_DIR")
    package = tmp_path / "site" / "ganapps"
    wheel = _model(package / "models" / "some-model")
    monkeypatch.setattr(importlib.resources, "files", lambda name: package if name == "ganapps" else None)
    assert ckpt.model_dirs()[-1] == package / "models"
    assert ckpt.shipped_model("some-model") == wheel
    assert ckpt.shipped_model("video-default").parent.parent.name != "site"  # the checkout still comes first


def test_a_missing_model_is_one_line_naming_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("GANAPPS_MODELS_DIR", str(tmp_path / "env"))
    with pytest.raises(InputError) as e:
        ckpt.shipped_model("no-such-model")
    msg = str(e.value)
    assert "no-such-model" in msg and str(tmp_path / "env") in msg and "\n" not in msg


def test_a_bare_name_of_a_shipped_model_resolves_to_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    monkeypatch.delenv("GANAPPS_MODELS_DIR", raising=False)
    assert ckpt.resolve("medical-label") == ckpt.shipped_model("medical-label")
    with pytest.raises(InputError, match="no such run"):
        ckpt.resolve("no-such-model")
