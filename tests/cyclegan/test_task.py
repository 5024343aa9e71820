"""Training: one step through the engine equals the reference's step written out here independently
(pytorch-CycleGAN-and-pix2pix `cycle_gan_model.py`: forward, backward_G with D frozen, then backward_D_A /
backward_D_B with ImagePool fakes and a 0.5 factor), pool behaviour, presets, smoke runs, resume."""

from __future__ import annotations

import copy
import json
import random
import shutil

import pytest
import torch
from cyclegan_helpers import before_affine_free_norm, tiny
from torch import nn

from ganapps.cli import main
from ganapps.cyclegan.config import PRESETS, CycleGANConfig
from ganapps.cyclegan.task import CycleGANTask
from ganapps.engine import checkpoint as ckpt
from ganapps.engine.errors import InputError
from ganapps.engine.trainer import Trainer


class RefPool:
    """The reference's ImagePool.query, transcribed (draws: torch.rand then torch.randint, per image)."""

    def __init__(self, size):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()).item())
                tmp = self.images[idx].clone()
                self.images[idx] = image
                out.append(tmp)
            else:
                out.append(image)
        return torch.cat(out, 0)


def reference_step(G_A, G_B, D_A, D_B, opt_G, opt_D, real_A, real_B, pool_A, pool_B, lam_A=10.0, lam_B=10.0,
                   lam_idt=0.5):
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def gan(pred, is_real):
        return mse(pred, torch.ones_like(pred) if is_real else torch.zeros_like(pred))

    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    rec_B = G_A(fake_A)
    for net in (D_A, D_B):
        net.requires_grad_(False)
    opt_G.zero_grad()
    idt_A = G_A(real_B)
    loss_idt_A = l1(idt_A, real_B) * lam_B * lam_idt
    idt_B = G_B(real_A)
    loss_idt_B = l1(idt_B, real_A) * lam_A * lam_idt
    loss_G_A = gan(D_A(fake_B), True)
    loss_G_B = gan(D_B(fake_A), True)
    loss_cycle_A = l1(rec_A, real_A) * lam_A
    loss_cycle_B = l1(rec_B, real_B) * lam_B
    loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    opt_G.step()
    for net in (D_A, D_B):
        net.requires_grad_(True)
    opt_D.zero_grad()

    def backward_D_basic(netD, real, fake):
        loss_D = (gan(netD(real), True) + gan(netD(fake.detach()), False)) * 0.5
        loss_D.backward()
        return loss_D

    loss_D_A = backward_D_basic(D_A, real_B, pool_B.query(fake_B))
    loss_D_B = backward_D_basic(D_B, real_A, pool_A.query(fake_A))
    opt_D.step()
    losses = {"loss/g": loss_G, "loss/g_ab": loss_G_A, "loss/cycle_a": loss_cycle_A, "loss/idt_b": loss_idt_A,
              "loss/d_b": loss_D_A, "loss/d_a": loss_D_B}
    return {k: float(v.detach()) for k, v in losses.items()}


def adam_travel_bound(lr: float, beta1: float, beta2: float, steps: int) -> float:
    """How far `steps` Adam steps can move one weight, whatever its gradients: step t moves it by
    lr * |m_hat| / (sqrt(v_hat) + eps) <= lr * sqrt(sum_i a_i^2 / c_i) (Cauchy-Schwarz), with a_i and c_i the
    bias-corrected weights of gradient i in m_hat and v_hat. Not 1 x lr: about 1.13 lr at step 3 for (0.5, 0.999)."""
    total = 0.0
    for t in range(1, steps + 1):
        a = [(1 - beta1) * beta1 ** (t - i) / (1 - beta1**t) for i in range(1, t + 1)]
        c = [(1 - beta2) * beta2 ** (t - i) / (1 - beta2**t) for i in range(1, t + 1)]
        total += lr * sum(ai * ai / ci for ai, ci in zip(a, c, strict=True)) ** 0.5
    return total


def _split(net: nn.Module, dead: set[str]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    live, zero = [], []
    for n, p in net.named_parameters():
        (zero if n in dead else live).append(p)
    return live, zero


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().float().flatten() for t in tensors])


@pytest.mark.parametrize("batched,norm,batch_size", [(True, "instance", 1), (False, "instance", 2),
                                                     (True, "batch", 2)])
def test_three_steps_match_the_reference_update(dataset, tmp_path, batched, norm, batch_size):
    # `--preset reference`: the reference's recipe (tiny only changes sizes and the run's bookkeeping)
    cfg = CycleGANConfig(**{**PRESETS["reference"], **tiny(
        data=str(dataset), out=str(tmp_path / "run"), use_batched_calls=batched, norm=norm, batch_size=batch_size,
        pool_size=3, steps=100, lr_schedule="constant")})
    tr = Trainer(CycleGANTask(cfg))
    tr._build()
    nets = {k: copy.deepcopy(v) for k, v in tr.nets.items()}
    start = {k: copy.deepcopy(v.state_dict()) for k, v in nets.items()}
    dead = {k: before_affine_free_norm(v) for k, v in nets.items()}
    assert all(dead.values()) == (norm == "instance")  # the split below is not vacuous
    G_A, G_B, D_A, D_B = nets["gen_ab"], nets["gen_ba"], nets["disc_b"], nets["disc_a"]
    opt_G = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_A, pool_B = RefPool(3), RefPool(3)
    for step in range(3):
        state = tr.stream.state_dict()
        batch = next(tr.stream)
        tr.stream.load_state_dict(state)  # the trainer will read this same batch
        rng = torch.get_rng_state()
        ours, finite = tr._run_step()
        tr.step += 1
        torch.set_rng_state(rng)  # the pools draw the same numbers in both
        ref = reference_step(G_A, G_B, D_A, D_B, opt_G, opt_D, batch["a"], batch["b"], pool_A, pool_B)
        assert finite
        for k, v in ref.items():
            assert ours[k] == pytest.approx(v, rel=1e-4, abs=1e-6), (step, k)
        for k in nets:  # both keep this step's gradients until the next zero_grad
            (ours_live, ours_zero), (ref_live, ref_zero) = _split(tr.nets[k], dead[k]), _split(nets[k], dead[k])
            g_ours, g_ref = _flat(p.grad for p in ours_live), _flat(p.grad for p in ref_live)
            # same maths, other summation orders: float32 rounding, measured <= 1e-5 of the norm
            assert float((g_ours - g_ref).norm()) <= 1e-4 * float(g_ref.norm()), (step, k)
            for params in (ours_zero, ref_zero):
                if params:  # rounding noise only, far below the real gradients' size
                    assert float(_flat(p.grad for p in params).abs().max()) <= 1e-3 * float(g_ref.abs().max()), k
    assert len(tr.task.pool_a) == len(pool_A.images) == 3
    bound = adam_travel_bound(2e-4, 0.5, 0.999, steps=3)
    for k in ("gen_ab", "gen_ba", "disc_a", "disc_b"):
        (ours_live, ours_zero), (ref_live, ref_zero) = _split(tr.nets[k], dead[k]), _split(nets[k], dead[k])
        # Weights with real gradients take the same Adam steps up to rounding (measured <= 1.2e-7, lr 2e-4);
        # a wrong term or update would move them by a good part of lr.
        assert float((_flat(ours_live) - _flat(ref_live)).abs().max()) <= 0.05 * 2e-4, k
        if ours_zero:  # biases before instance norm: each side stays within Adam's travel bound of the start
            init = _split_state(start[k], dead[k])
            for side in (ours_zero, ref_zero):
                assert float((_flat(side) - init).abs().max()) <= bound * (1 + 1e-6), k


def _split_state(state: dict[str, torch.Tensor], dead: set[str]) -> torch.Tensor:
    return _flat(v for n, v in state.items() if n in dead)


def test_pool_mixes_history_once_full():
    from ganapps.engine.stabilizers import ImagePool

    torch.manual_seed(0)
    pool = ImagePool(2)
    first = [torch.full((1, 1, 2, 2), float(i)) for i in range(2)]
    assert all(torch.equal(pool.query(x), x) for x in first)  # filling: returned as they are
    seen = {float(pool.query(torch.full((1, 1, 2, 2), 9.0)).flatten()[0]) for _ in range(40)}
    assert 9.0 in seen and seen & {0.0, 1.0}  # half the time an older fake comes back


def test_reference_defaults():
    c = CycleGANConfig()
    assert (c.gan_loss, c.lambda_a, c.lambda_b, c.lambda_identity, c.pool_size) == ("lsgan", 10.0, 10.0, 0.5, 50)
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2, c.batch_size) == (2e-4, 2e-4, 0.5, 0.999, 1)
    assert (c.lr_schedule, c.lr_decay_start_steps) == ("linear", -1)  # constant for half, then linear to 0
    assert (c.gen, c.disc, c.norm, c.init, c.init_gain) == ("resnet_9blocks", "basic", "instance", "normal", 0.02)
    assert (c.load_size, c.crop_size, c.preprocess, c.use_flip) == (286, 256, "resize_and_crop", True)


def test_bad_options_name_the_field():
    with pytest.raises(InputError, match="crop_size"):
        CycleGANConfig(load_size=64, crop_size=128)
    with pytest.raises(InputError, match="channels"):
        CycleGANConfig(channels=2)
    with pytest.raises(InputError, match="data_a"):
        CycleGANConfig(data_a="x")
    with pytest.raises(InputError, match="use_ada"):
        CycleGANConfig(use_ada=True)


@pytest.mark.parametrize("opts", [
    dict(gan_loss="hinge", gp_weight=1.0, use_spectral_norm=True),
    dict(gan_loss="relativistic", real_label=0.9, instance_noise_std=0.1, lecam_weight=0.1),
    dict(gan_loss="nonsaturating", r1_gamma=1.0, r1_interval=2, augment_policy="color,translation", use_ada=True,
         n_critic=2, use_minibatch_std=True, batch_size=2, ema_halflife_images=10.0),
    dict(gan_loss="wasserstein", gp_weight=10.0, disc="pixel", norm="none", gen="unet_128", crop_size=128,
         load_size=128, lambda_identity=0.0, pool_size=0, use_channels_last=True, use_amp=True),
])
def test_every_loss_and_stabilizer_trains(dataset, tmp_path, opts):
    cfg = CycleGANConfig(**tiny(data=str(dataset), out=str(tmp_path / "run"), steps=2, **opts))
    if cfg.gen == "unet_128":
        from cyclegan_helpers import write_images

        for d in ("trainA", "trainB"):
            write_images(dataset / d, 2, size=(130, 130), seed=9)
        cfg.eval_images = 1
    tr = Trainer(CycleGANTask(cfg))
    result = tr.train()
    assert result.step == 2 and result.nonfinite_steps == 0
    assert all(torch.isfinite(p).all() for net in tr.nets.values() for p in net.parameters())


def test_cli_train_smoke_then_resume_reproduces(dataset, tmp_path, capsys):
    full = tmp_path / "full"
    assert main(["cyclegan", "train", "--preset", "tiny", "--data", str(dataset), "--out", str(full), "--steps", "4",
                 "--checkpoint-every-steps", "2", "--log-every-steps", "1", "--no-use-tensorboard", "--quiet",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4 and out["a2b/swd"] > 0 and out["a2b/swd_identity"] > 0
    assert (full / "samples" / "step_4.png").is_file()
    # a run killed after its step-2 checkpoint: continue it and land on the same weights
    half = tmp_path / "half"
    shutil.copytree(full / "checkpoints" / "step_2", half / "checkpoints" / "step_2")
    (half / "checkpoints" / "latest").write_text("step_2\n")
    shutil.copy(full / "config.yaml", half / "config.yaml")
    assert main(["cyclegan", "train", "--out", str(half), "--resume", "--quiet"]) == 0
    a = ckpt.load_weights(ckpt.resolve(full))
    b = ckpt.load_weights(ckpt.resolve(half))
    for net in ("gen_ab", "gen_ba", "disc_a", "disc_b"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_presets_are_valid():
    for name, preset in PRESETS.items():
        CycleGANConfig(**preset), name  # noqa: B018
    random.seed(0)
