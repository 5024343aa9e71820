"""Presets and methods together: what `ganapps cyclegan train` resolves for each method under each preset (the
colour recipe is CycleGAN's; cut, fastcut and pix2pix keep their reference's and take only a preset's sizes),
through the CLI's own option resolution; the colour recipe's options are errors for the other methods."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from ganapps._cli import train_command
from ganapps.cyclegan.config import CPU_SIZE, HYBRID, METHOD_PRESETS, PRESETS, RECIPE, TINY, CycleGANConfig
from ganapps.engine.errors import InputError


def _resolved(args: list[str]) -> CycleGANConfig:
    """The config `cyclegan train ARGS` would train (the CLI's resolution; the run itself replaced)."""
    seen = []
    app = typer.Typer()
    train_command(app, "train", CycleGANConfig, lambda cfg, json_out: seen.append(cfg) or {}, help="",
                  presets=PRESETS)
    app.command("noop")(lambda: None)  # two commands keep `train` a subcommand
    res = CliRunner().invoke(app, ["train", *args])
    if res.exception is not None:
        raise res.exception
    return seen[0]


def _same(a: CycleGANConfig, b: CycleGANConfig) -> None:
    assert dataclasses.asdict(a) == dataclasses.asdict(b)


def test_without_a_preset_cyclegan_gets_the_default_recipe_and_the_others_their_reference():
    _same(_resolved([]), CycleGANConfig(**PRESETS["default"]))
    for method in ("cut", "fastcut", "pix2pix"):
        _same(_resolved(["--method", method]), CycleGANConfig(method=method))
    _same(_resolved(["--preset", "reference"]), CycleGANConfig())


def test_size_presets_give_the_other_methods_sizes_only():
    cut = _resolved(["--method", "cut", "--preset", "fast"])
    _same(cut, CycleGANConfig(method="cut", **METHOD_PRESETS["fast"]))
    assert cut.crop_size == CPU_SIZE["crop_size"] and cut.gen == "resnet_6blocks" and cut.lambda_colour == 0
    assert cut.use_antialias and cut.init == "xavier"  # CUT's own recipe kept
    fast = _resolved(["--preset", "fast"])
    recipe = {k: v for k, v in HYBRID.items() if k != "identity_decay_steps"}
    assert {k: getattr(fast, k) for k in recipe} == recipe and fast.crop_size == CPU_SIZE["crop_size"]
    colour = _resolved(["--preset", "colour_fast"])
    assert {k: getattr(colour, k) for k in RECIPE} == RECIPE and colour.crop_size == CPU_SIZE["crop_size"]
    p2p = _resolved(["--method", "pix2pix", "--preset", "tiny", "--gen", "unet_128"])
    assert p2p.gen == "unet_128" and p2p.crop_size == TINY["crop_size"] and p2p.norm == "batch"


def test_every_preset_is_valid_for_every_method():
    for name in PRESETS:
        for method in ("cyclegan", "cut", "fastcut", "pix2pix"):
            CycleGANConfig(method=method, **CycleGANConfig.preset_options(name, {"method": method}))


def test_the_method_in_a_config_file_scopes_the_preset_too(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("method: fastcut\n")
    _same(_resolved(["--config", str(f)]), CycleGANConfig(method="fastcut"))


@pytest.mark.parametrize("opts,field", [
    (dict(method="cut", lambda_colour=1.0), "lambda_colour"),
    (dict(method="pix2pix", identity_decay_steps=10), "identity_decay_steps"),
    (dict(method="fastcut", gen="resnet_6blocks", use_colour_branch=True), "use_colour_branch"),
    (dict(method="pix2pix", gen="colourtone"), "gen"),
    (dict(method="cut", disc="dual"), "disc"),
    (dict(method="cut", upsample="resize"), "upsample"),  # anti-aliased nets upsample bilinearly already
])
def test_the_colour_recipe_is_an_error_for_the_other_methods(opts, field):
    with pytest.raises(InputError, match=f"option {field}="):
        CycleGANConfig(**opts)


def test_cut_taps_the_right_layers_with_resize_upsampling():
    from ganapps.cyclegan.nets import ResnetGenerator, resnet_layer_count

    cfg = CycleGANConfig(method="cut", use_antialias=False, upsample="resize", gen="resnet_6blocks")
    for aa, up in ((False, "transpose"), (False, "resize"), (True, "transpose")):
        net = ResnetGenerator(3, 3, 8, n_blocks=6, upsample=up, use_antialias=aa)
        assert len(net.model) == resnet_layer_count(6, aa, up)
    assert cfg.upsample == "resize"
