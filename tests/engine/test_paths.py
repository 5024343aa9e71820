"""One cache/data path rule: $GANAPPS_CACHE_DIR, else $XDG_CACHE_HOME/ganapps, else ~/.cache/ganapps; data and
stats inside it; $GANAPPS_DATA_DIR still overrides the data folder, with a FutureWarning."""

import warnings

import pytest

from ganapps.engine import paths


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("GANAPPS_CACHE_DIR", "GANAPPS_DATA_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_home_then_xdg_then_explicit_cache(clean_env, tmp_path):
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "ganapps"
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "ganapps"
    clean_env.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "mine"))
    assert paths.cache_dir() == tmp_path / "mine"
    assert paths.data_dir() == tmp_path / "mine" / "data" and paths.stats_dir() == tmp_path / "mine" / "stats"


def test_empty_variables_count_as_unset_and_tilde_expands(clean_env, tmp_path):
    clean_env.setenv("GANAPPS_CACHE_DIR", "")
    clean_env.setenv("XDG_CACHE_HOME", "")
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "ganapps"
    clean_env.setenv("GANAPPS_CACHE_DIR", "~/c")
    assert paths.cache_dir() == tmp_path / "home" / "c"


def test_the_old_data_variable_still_wins_for_data_with_a_warning(clean_env, tmp_path):
    clean_env.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert paths.data_dir() == tmp_path / "cache" / "data"  # no warning without the old variable
    clean_env.setenv("GANAPPS_DATA_DIR", str(tmp_path / "old"))
    with pytest.warns(FutureWarning, match="GANAPPS_DATA_DIR is deprecated"):
        assert paths.data_dir() == tmp_path / "old"
    assert paths.stats_dir() == tmp_path / "cache" / "stats"


def test_every_recipe_builds_under_the_data_folder(clean_env, tmp_path):
    from ganapps.recipes import cyclegan_builtin, medical_mni152, moving_mnist, video_photos

    clean_env.setenv("GANAPPS_CACHE_DIR", str(tmp_path / "cache"))
    for recipe in (cyclegan_builtin, medical_mni152, moving_mnist, video_photos):
        assert recipe.default_dir().parent == tmp_path / "cache" / "data", recipe.__name__
