"""Config: validation names the bad field; preset -> YAML -> flags precedence; YAML round trip."""

from __future__ import annotations

import dataclasses

import pytest

from ganapps.engine.config import TrainConfig, from_yaml, resolve, to_yaml
from ganapps.engine.errors import InputError


def test_validation_names_the_bad_field():
    with pytest.raises(InputError, match="batch_size=0"):
        TrainConfig(batch_size=0)
    with pytest.raises(InputError, match="lr_schedule='zigzag': expected one of constant, linear, cosine"):
        TrainConfig(lr_schedule="zigzag")
    with pytest.raises(InputError, match="nonfinite_lr_factor"):
        TrainConfig(nonfinite_lr_factor=2.0)


def test_precedence_preset_then_file_then_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 20\nbatch_size: 8\nseed: 3\n")
    cfg = resolve(TrainConfig, {"steps": 10, "seed": 1, "batch_size": 4}, str(f), {"seed": 9, "batch_size": None})
    assert (cfg.steps, cfg.batch_size, cfg.seed) == (20, 8, 9)


def test_yaml_ints_widen_to_float_but_strings_do_not_pass_as_numbers(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("grad_clip_norm: 1\n")
    assert resolve(TrainConfig, config_file=str(f)).grad_clip_norm == 1.0
    f.write_text("grad_clip_norm: '1'\n")
    with pytest.raises(InputError, match="grad_clip_norm='1': expected float"):
        resolve(TrainConfig, config_file=str(f))
    f.write_text("use_amp: 1\n")
    with pytest.raises(InputError, match="expected true or false"):
        resolve(TrainConfig, config_file=str(f))


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(steps=7, lr_schedule="cosine", use_amp=True)
    (tmp_path / "c.yaml").write_text(to_yaml(cfg))
    assert dataclasses.asdict(from_yaml(TrainConfig, tmp_path / "c.yaml")) == dataclasses.asdict(cfg)


def test_a_non_mapping_file_is_rejected(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="expected a mapping"):
        resolve(TrainConfig, config_file=str(f))


def test_deprecated_yaml_names_map_to_todays_with_a_warning(tmp_path):
    from ganapps.engine.adversarial import AdversarialConfig
    from ganapps.engine.config import DeprecatedOption

    f = tmp_path / "old.yaml"
    f.write_text("loss: lsgan\ndiffaug_policy: color\nsteps: 7\n")
    for read in (lambda: resolve(AdversarialConfig, config_file=str(f)), lambda: from_yaml(AdversarialConfig, f)):
        with pytest.warns(DeprecatedOption) as caught:
            cfg = read()
        assert (cfg.gan_loss, cfg.augment_policy, cfg.steps) == ("lsgan", "color", 7)
        assert sorted(str(w.message).split(": ", 1)[1] for w in caught) == [
            "option 'diffaug_policy' is deprecated; use 'augment_policy' (the old name is accepted until the next "
            "release)",
            "option 'loss' is deprecated; use 'gan_loss' (the old name is accepted until the next release)"]
    f.write_text("loss: lsgan\ngan_loss: hinge\n")
    with pytest.raises(InputError, match="'loss' \\(deprecated\\) and 'gan_loss' both given"):
        resolve(AdversarialConfig, config_file=str(f))


def test_every_option_of_every_task_has_help_and_a_panel_by_its_declaring_class():
    from ganapps.cyclegan.config import CycleGANConfig
    from ganapps.engine.adversarial import AdversarialConfig
    from ganapps.engine.config import describe_options
    from ganapps.medical.config import MedicalConfig
    from ganapps.toy.config import ToyConfig
    from ganapps.video.config import VideoConfig

    trainer = {f.name for f in dataclasses.fields(TrainConfig)}
    gan = {f.name for f in dataclasses.fields(AdversarialConfig)} - trainer
    for cls in (ToyConfig, CycleGANConfig, MedicalConfig, VideoConfig):
        docs = describe_options(cls)
        assert [d.name for d in docs] == [f.name for f in dataclasses.fields(cls)]
        for d in docs:
            assert d.help.strip(), (cls.__name__, d.name)
            assert d.panel == ("Trainer" if d.name in trainer else "GAN" if d.name in gan else "Task"), d.name
            assert d.default == getattr(cls(), d.name)  # a task's own default is the one shown
