"""The speed work's pieces keep the maths: the instance norm's fast paths, fused Adam, `use_amp: auto`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganapps.engine import runtime
from ganapps.engine.config import TrainConfig, resolve
from ganapps.engine.errors import InputError
from ganapps.engine.layers import InstanceNorm2d
from ganapps.engine.task import OptimizerSpec, fast_adam_options

EPS32 = torch.finfo(torch.float32).eps
EPS_BF16 = 2.0**-8  # bf16 keeps 8 significant bits: rounding moves a value by at most |y| 2^-8


def _x(b: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(b)
    return (torch.randn(b, 16, 9, 11, generator=g, dtype=dtype) * 3 + 1)


def test_instance_norm_takes_torchs_kernel_for_contiguous_float32():
    x = _x(2, torch.float32)
    assert torch.equal(InstanceNorm2d(16)(x), nn.InstanceNorm2d(16)(x))
    assert list(InstanceNorm2d(16).state_dict()) == []  # the same (empty) state as torch's layer


@pytest.mark.parametrize("batch", [1, 3])
def test_instance_norm_channels_last_forward_and_backward_at_any_batch(batch):
    """Against float64 (where torch 2.14's CPU instance-norm backward is wrong at batch 1 with channels-last
    gradients). y = (x - mean) rstd with |y| <= sqrt(H W): float32 forward error within a few ulps of that scale,
    the gradient's within a few ulps of rstd sum|dy|."""
    x64, dy64 = _x(batch), torch.randn(batch, 16, 9, 11, dtype=torch.float64)
    x = x64.float().contiguous(memory_format=torch.channels_last).requires_grad_()
    y = InstanceNorm2d(16)(x)
    y.backward(dy64.float().contiguous(memory_format=torch.channels_last))
    xr = x64.clone().requires_grad_()
    yr = F.instance_norm(xr, eps=1e-5)
    yr.backward(dy64)
    n = 9 * 11
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert float((y.double() - yr).detach().abs().max()) <= 8 * n * EPS32 * n**0.5
    rstd = 1 / (x64.var(dim=(2, 3), unbiased=False) + 1e-5).sqrt()
    bound = 8 * n * EPS32 * float((rstd[..., None, None] * dy64.abs().sum(dim=(2, 3), keepdim=True)).max())
    assert float((x.grad.double() - xr.grad).abs().max()) <= bound


def test_instance_norm_keeps_bf16_bf16_with_float32_statistics():
    """A bf16 input (bf16 autocast, from a conv) gives a bf16 output equal to the float32 norm of the same values
    up to bf16 rounding of the output."""
    xb = _x(2, torch.float32).bfloat16()
    y = InstanceNorm2d(16)(xb)
    ref = F.instance_norm(xb.float())
    assert y.dtype == torch.bfloat16
    assert bool(((y.float() - ref).abs() <= EPS_BF16 * ref.abs() + 1e-4).all())


def _adam_pair(kind: str):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 2, 3))
    twin = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 2, 3))
    twin.load_state_dict(net.state_dict())
    spec = OptimizerSpec(("net",), 2e-4, (0.5, 0.999), kind=kind)
    fused = spec.build(list(net.parameters()))
    loop = (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)(twin.parameters(), lr=2e-4, betas=(0.5, 0.999),
                                                                         weight_decay=0.0, foreach=False)
    return net, twin, fused, loop


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_is_fused_on_cpu_and_makes_the_per_parameter_loops_update(kind):
    """Adam's step is lr m_hat / (sqrt(v_hat) + eps), at most lr (1 - b1) / sqrt(1 - b2) (about 15.8 lr here) per
    step; the two kernels round differently, so each step may differ by a few ulps of that and of the weight."""
    net, twin, fused, loop = _adam_pair(kind)
    assert fused.defaults["fused"] is True
    steps, lr = 5, 2e-4
    for _ in range(steps):
        x = torch.randn(4, 3, 8, 8)
        for m, o in ((net, fused), (twin, loop)):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        p, q = p.detach(), q.detach()
        bound = steps * (4 * EPS32 * float(q.abs().max()) + 16 * EPS32 * 15.8 * lr)
        assert float((p - q).abs().max()) <= bound
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(net.parameters(), _adam_pair(kind)[1].parameters(),
                                                            strict=True))
    assert moved > 100 * bound  # the weights did move: the comparison is not vacuous


def test_fused_adam_only_where_torch_has_it():
    assert fast_adam_options([nn.Parameter(torch.zeros(2))]) == {"fused": True}
    assert fast_adam_options([{"params": [nn.Parameter(torch.zeros(2))]}]) == {"fused": True}
    assert fast_adam_options([]) == {}
    assert fast_adam_options([nn.Parameter(torch.zeros(2, dtype=torch.complex64))]) == {}


def test_use_amp_auto_is_bf16_on_native_bf16_cpus_only(monkeypatch):
    cpu = torch.device("cpu")
    assert runtime.amp_dtype(False, cpu) is None
    assert runtime.amp_dtype(True, cpu) == torch.bfloat16
    assert runtime.amp_dtype(True, torch.device("cuda")) == torch.float16
    monkeypatch.setenv(runtime.AUTO_AMP_ENV, "0")  # the suite's setting: auto means float32
    assert not runtime.native_bf16(cpu) and runtime.amp_dtype("auto", cpu) is None
    monkeypatch.setenv(runtime.AUTO_AMP_ENV, "1")
    assert not runtime.native_bf16(torch.device("cuda"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert runtime.amp_dtype("auto", cpu) is None
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert runtime.amp_dtype("auto", cpu) == torch.bfloat16


def test_use_amp_option_takes_true_false_or_auto(tmp_path):
    assert TrainConfig().use_amp == "auto"
    f = tmp_path / "c.yaml"
    for text, value in (("auto", "auto"), ("true", True), ("false", False)):
        f.write_text(f"use_amp: {text}\n")
        assert resolve(TrainConfig, config_file=str(f)).use_amp == value
    f.write_text("use_amp: sometimes\n")
    with pytest.raises(InputError, match="use_amp"):
        resolve(TrainConfig, config_file=str(f))
    with pytest.raises(InputError, match="use_amp='sometimes': expected true, false or auto"):
        TrainConfig(use_amp="sometimes")


def _tiny_run(tmp_path, name: str, **options):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from tiny_task import TinyConfig, TinyTask

    from ganapps.engine.trainer import Trainer

    warnings: list[str] = []
    trainer = Trainer(TinyTask(TinyConfig(out=str(tmp_path / name), steps=6, use_amp=False, **options)),
                      on_warning=warnings.append)
    trainer.train()
    return trainer, warnings


def test_use_compile_falls_back_to_eager_with_one_line_where_torch_compile_fails(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    compiled, warnings = _tiny_run(tmp_path, "compiled", use_compile=True)
    eager, _ = _tiny_run(tmp_path, "eager")
    assert warnings == ["use_compile: torch.compile does not work here (RuntimeError: no C++ compiler found); "
                        "training eagerly"]
    for name, net in compiled.nets.items():
        assert getattr(net, "_compiled_call_impl", None) is None
        for p, q in zip(net.parameters(), eager.nets[name].parameters(), strict=True):
            assert torch.equal(p, q)  # the same run as without the option


@pytest.mark.slow
def test_use_compile_trains_like_eager(tmp_path, monkeypatch):
    """Inductor's fused kernels sum in other orders: after 6 Adam steps (each moving a weight by at most about
    15.8 lr, see the fused-Adam test) weights agree to a small fraction of the distance they travelled."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    compiled, warnings = _tiny_run(tmp_path, "compiled", use_compile=True)
    eager, _ = _tiny_run(tmp_path, "eager")
    assert warnings == []
    assert all(getattr(n, "_compiled_call_impl", None) is not None for n in compiled.nets.values())
    for name, net in compiled.nets.items():
        travel = 6 * 15.8 * compiled.optimizers["gen" if name == "gen" else "disc"].param_groups[0]["lr"]
        for p, q in zip(net.parameters(), eager.nets[name].parameters(), strict=True):
            assert float((p - q).detach().abs().max()) <= 0.05 * travel
