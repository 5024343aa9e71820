"""Where shipped default models are found: env override, the checkout, then a wheel install's share/ folder."""

import sys

from ganapps.engine import checkpoint as ckpt


def _model(folder):
    folder.mkdir(parents=True)
    (folder / ckpt.WEIGHTS).write_bytes(b"x")
    return folder


def test_checkout_models_are_found_by_default(monkeypatch):
    monkeypatch.delenv("GANAPPS_MODELS_DIR", raising=False)
    found = ckpt.shipped_model("video-default")
    assert found.parts[-2:] == ("models", "video-default") and (found / ckpt.WEIGHTS).is_file()


def test_env_override_wins_and_wheel_prefix_is_the_fallback(tmp_path, monkeypatch):
    env = _model(tmp_path / "env" / "some-model")
    monkeypatch.setenv("GANAPPS_MODELS_DIR", str(tmp_path / "env"))
    assert ckpt.shipped_model("some-model") == env
    monkeypatch.delenv("GANAPPS_MODELS_DIR")
    wheel = _model(tmp_path / "prefix" / "share" / "ganapps" / "models" / "some-model")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert ckpt.shipped_model("some-model") == wheel
    missing = ckpt.shipped_model("no-such-model")
    assert missing.parts[-2:] == ("models", "no-such-model") and not missing.exists()
