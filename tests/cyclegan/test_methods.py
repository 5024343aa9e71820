"""CUT, FastCUT and pix2pix: each engine step equals the paper's step written out here independently (Park et al.
2020 eq. 2-5 with contrastive-unpaired-translation's update order; Isola et al. 2017 eq. 1-4 with
pytorch-CycleGAN-and-pix2pix's), from the same weights, optimizer state, batch and random draws; then the
method options, PatchNCE's properties, resume, and the one-generator model at inference."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from cyclegan_helpers import before_affine_free_norm, tiny, write_images
from torch import nn

import ganapps.cyclegan.cut as cut
from ganapps.cli import main
from ganapps.cyclegan.config import CycleGANConfig, method_defaults
from ganapps.cyclegan.cut import patch_nce_loss
from ganapps.cyclegan.task import forward_for_d, forward_for_g, make_task
from ganapps.engine import checkpoint as ckpt
from ganapps.engine.errors import InputError
from ganapps.engine.trainer import Trainer


# -- the equations, written out
def encoder_features(gen: nn.Module, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """The outputs of the generator's layers `layers` (CUT's l in L: indices into the ResNet's layer list)."""
    out = []
    for i, layer in enumerate(gen.model):
        x = layer(x)
        if i in layers:
            out.append(x)
    return out


def mlp_head(head: nn.Module, layer: int, feat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """H_l: the sampled feature vectors (B * P, C) through Linear-ReLU-Linear, then v / (||v|| + 1e-7)."""
    w1, b1, w2, b2 = (p for p in head.mlps[layer].parameters())
    width = feat.shape[3]
    v = torch.stack([feat[:, :, int(i) // width, int(i) % width] for i in ids], 1)  # (B, P, C): place i = (y, x)
    v = F.linear(F.relu(F.linear(v, w1, b1)), w2, b2).reshape(-1, w2.shape[0])
    return v / (v.pow(2).sum(1, keepdim=True).sqrt() + 1e-7)


def infonce(q: torch.Tensor, k: torch.Tensor, batch: int, tau: float) -> torch.Tensor:
    """Mean over patches of l(v, v+, v-) = -log exp(v.v+/tau) / (exp(v.v+/tau) + sum_n exp(v.v-_n/tau)), the
    negatives being the other sampled patches of the same image (CUT eq. 2), keys constant."""
    q, k = q.view(batch, -1, q.shape[1]), k.detach().view(batch, -1, k.shape[1])
    losses = []
    for b in range(batch):
        sim = q[b] @ k[b].T / tau  # (P, P): row i holds v_i . v_j
        losses.append(torch.logsumexp(sim, dim=1) - sim.diagonal())
    return torch.cat(losses).mean()


def patchnce(gen, head, src, out, ids, flipped, cfg):
    """CUT eq. 5: lambda_NCE x the mean over layers of PatchNCE between the output's features (flipped back
    under FastCUT's flip) and the input's."""
    layers = cfg.nce_layer_list
    q = encoder_features(gen, out, layers)
    if flipped:
        q = [f.flip(3) for f in q]
    k = encoder_features(gen, src, layers)
    terms = [infonce(mlp_head(head, j, fq, ids[j]), mlp_head(head, j, fk, ids[j]), len(src), cfg.nce_temperature)
             for j, (fq, fk) in enumerate(zip(q, k, strict=True))]
    return cfg.lambda_nce * sum(terms) / len(terms)


def cut_step(G, D, H, opt_g, opt_d, x, y, flipped, ids, cfg):
    """One CUT/FastCUT step as contrastive-unpaired-translation orders it: G's forward once (on x and, for the
    identity NCE, y; flipped under FastCUT), D step on LSGAN x 0.5, then G + H step on LSGAN + PatchNCE."""
    inp = torch.cat([x, y]) if cfg.use_nce_identity else x
    out = G(inp.flip(3) if flipped else inp)
    fake = out[: len(x)]
    loss_d = 0.5 * ((D(y) - 1).pow(2).mean() + D(fake.detach()).pow(2).mean())
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    D.requires_grad_(False)
    loss_gan = (D(fake) - 1).pow(2).mean()
    nce = patchnce(G, H, x, fake, ids[: len(cfg.nce_layer_list)], flipped, cfg)
    logs = {"loss/d": loss_d, "loss/g_gan": loss_gan, "loss/nce": nce}
    if cfg.use_nce_identity:
        nce_y = patchnce(G, H, y, out[len(x):], ids[len(cfg.nce_layer_list):], flipped, cfg)
        logs["loss/nce_idt"] = nce_y
        nce = (nce + nce_y) / 2
    loss_g = loss_gan + nce
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    logs["loss/g"] = loss_g
    return {k: float(v.detach()) for k, v in logs.items()}


def pix2pix_step(G, D, opt_g, opt_d, x, y, lambda_l1):
    """One pix2pix step (Isola et al. eq. 4; the reference's order): G(x) once; D step on the BCE of the
    conditional D on (x, y) vs (x, G(x)), x 0.5; then G step on BCE(D(x, G(x)), real) + lambda x L1."""
    bce = nn.BCEWithLogitsLoss()
    fake = G(x)
    pred_fake, pred_real = D(torch.cat([x, fake.detach()], 1)), D(torch.cat([x, y], 1))
    loss_d = 0.5 * (bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    D.requires_grad_(False)
    pred = D(torch.cat([x, fake], 1))
    loss_gan = bce(pred, torch.ones_like(pred))
    loss_l1 = (fake - y).abs().mean() * lambda_l1
    opt_g.zero_grad()
    (loss_gan + loss_l1).backward()
    opt_g.step()
    D.requires_grad_(True)
    return {"loss/d": float(loss_d.detach()), "loss/g_gan": float(loss_gan.detach()),
            "loss/l1": float(loss_l1.detach())}


# -- comparing one step from the same state
def _snapshot(tr):
    """Copies of the nets and of each optimizer over the copies, with the same state."""
    nets = {k: copy.deepcopy(v) for k, v in tr.nets.items()}
    opts = {}
    for name, opt in tr.optimizers.items():
        params = [p for n in tr.opt_nets[name] for p in nets[n].parameters()]
        opts[name] = torch.optim.Adam(params, lr=opt.param_groups[0]["lr"], betas=opt.param_groups[0]["betas"])
        opts[name].load_state_dict(copy.deepcopy(opt.state_dict()))
    return nets, opts


def _peek(tr):
    state = tr.stream.state_dict()
    batch = next(tr.stream)
    tr.stream.load_state_dict(state)
    return batch


def _compare_step(tr, ref_nets, lr, tapped=()):
    """Gradients equal up to float32 rounding (relative L2 per net, as tests/cyclegan/test_task.py; conv biases in
    front of an instance norm without affine have an exact gradient of 0 and only rounding noise); weights whose
    gradient is not rounding-sized take the same Adam step (<= 5% of lr apart). A weight whose gradient is below
    1e-4 of its tensor's largest may have it dominated by rounding, which Adam's normalised steps scale up to
    about lr in either sign: those stay within 2 lr. `tapped`: generator layers CUT reads before their norm
    (their biases reach the loss)."""
    for name, net in tr.nets.items():
        dead = before_affine_free_norm(net) - {f"model.{i}.bias" for i in tapped}
        ours = dict(net.named_parameters())
        live, live_ref, noise = [], [], []
        for pname, p_ref in ref_nets[name].named_parameters():
            p = ours[pname]
            (noise if pname in dead else live).append(p.grad.flatten())
            if pname in dead:
                noise.append(p_ref.grad.flatten())
            else:
                live_ref.append(p_ref.grad.flatten())
            if pname not in dead:
                solid = p_ref.grad.abs() >= 1e-4 * p_ref.grad.abs().max()
                diff = (p.detach() - p_ref.detach()).abs()
                if solid.any():
                    assert float(diff[solid].max()) <= 0.05 * lr, (name, pname)
            assert float((p.detach() - p_ref.detach()).abs().max()) <= 2 * lr * (1 + 1e-6), (name, pname)
        g, g_ref = torch.cat(live), torch.cat(live_ref)
        # same maths, other summation orders: float32 rounding, measured <= 1e-5 of the norm
        assert float((g - g_ref).norm()) <= 1e-4 * float(g_ref.norm()), name
        if noise:
            assert float(torch.cat(noise).abs().max()) <= 1e-3 * float(g_ref.abs().max()), name


@pytest.mark.parametrize("method,batch_size", [("cut", 1), ("fastcut", 2), ("cut", 2)])
def test_cut_steps_match_the_papers_equations(dataset, tmp_path, method, batch_size):
    cfg = CycleGANConfig(**tiny(method=method, data=str(dataset), out=str(tmp_path / "run"), batch_size=batch_size,
                                nce_patches=16, steps=100, lr_schedule="constant"))
    assert cfg.use_antialias and cfg.init == "xavier" and cfg.lambda_nce == (1.0 if method == "cut" else 10.0)
    tr = Trainer(make_task(cfg))
    tr._build()
    drawn: list[torch.Tensor] = []
    sample = cut.sample_patches

    def recording(feats, n):
        ids = sample(feats, n)
        drawn.extend(ids)
        return ids

    flips = set()
    try:
        cut.sample_patches = recording
        for _ in range(3):
            nets, opts = _snapshot(tr)
            batch = _peek(tr)
            drawn.clear()
            ours, finite = tr._run_step()
            tr.step += 1
            assert finite
            flipped = tr.ctx.scratch["flip"]
            flips.add(flipped)
            assert all(len(ids) == min(16, n) for ids, n in zip(drawn, [38**2, 32**2, 16**2, 8**2, 8**2] * 2,
                                                                 strict=False))
            ref = cut_step(nets["gen_ab"], nets["disc_b"], nets["nce_head"], opts["gen"], opts["disc"], batch["a"],
                           batch["b"], flipped, drawn, cfg)
            for k, v in ref.items():
                assert ours[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
            _compare_step(tr, nets, cfg.lr_g, tapped=cfg.nce_layer_list)
    finally:
        cut.sample_patches = sample
    if method == "fastcut":
        assert cfg.use_flip_equivariance and not cfg.use_nce_identity
        assert flips == {False, True}  # both branches were compared
    else:
        assert flips == {False}


@pytest.fixture
def paired(tmp_path):
    """trainA/ trainB/ testA/ testB/ of 128x128 pairs with matching names (B: A's colours shifted)."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "paired"
    for split, n, seed in (("train", 4, 1), ("test", 2, 2)):
        for f in write_images(root / f"{split}A", n, size=(130, 130), seed=seed):
            arr = np.asarray(Image.open(f))
            (root / f"{split}B").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.roll(arr, 1, axis=2)).save(root / f"{split}B" / f.name)
    return root


@pytest.mark.parametrize("batch_size", [1, 2])
def test_pix2pix_steps_match_the_papers_equations(paired, tmp_path, batch_size):
    cfg = CycleGANConfig(**tiny(method="pix2pix", data=str(paired), out=str(tmp_path / "run"), gen="unet_128",
                                load_size=130, crop_size=128, batch_size=batch_size, steps=100,
                                lr_schedule="constant"))
    assert (cfg.norm, cfg.use_dropout, cfg.gan_loss, cfg.lambda_l1) == ("batch", True, "nonsaturating", 100.0)
    tr = Trainer(make_task(cfg))
    tr._build()
    for _ in range(3):
        nets, opts = _snapshot(tr)
        batch = _peek(tr)
        ours, finite = tr._run_step()
        tr.step += 1
        assert finite
        rng = torch.get_rng_state()
        torch.set_rng_state(tr.ctx.scratch["fwd/rng"])  # the dropout masks our generator forward drew
        ref = pix2pix_step(nets["gen_ab"], nets["disc_b"], opts["gen"], opts["disc"], batch["a"], batch["b"],
                           cfg.lambda_l1)
        torch.set_rng_state(rng)
        for k, v in ref.items():
            assert ours[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
        _compare_step(tr, nets, cfg.lr_g)
        # one update of G's batch-norm statistics per step, as the reference's single forward
        for (k, b), b_ref in zip(tr.nets["gen_ab"].named_buffers(), nets["gen_ab"].buffers(), strict=True):
            assert torch.allclose(b.float(), b_ref.float(), rtol=1e-4, atol=1e-6), k


def test_forward_for_g_reuses_the_d_phase_forward():
    """One forward per step, as the reference's: random draws and batch-norm statistics updates once, the D phase
    (G's weights frozen by the engine) gets the output detached, the G phase the same output with G's graph."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Dropout(0.5), nn.Conv2d(8, 3, 1))
    net.requires_grad_(False)  # as the engine leaves G in the D phase
    x = torch.randn(2, 3, 8, 8)
    scratch: dict = {}
    a = forward_for_d(net, x, scratch, "fwd")
    assert not a.requires_grad and not any(p.requires_grad for p in net.parameters())
    assert int(net[1].num_batches_tracked) == 1
    net.requires_grad_(True)  # the G phase
    state = torch.get_rng_state()
    b = forward_for_g(net, x.clone(), scratch, "fwd")
    assert torch.equal(a, b.detach()) and b.requires_grad  # the same output, same dropout masks
    b.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert int(net[1].num_batches_tracked) == 1 and torch.equal(torch.get_rng_state(), state)  # no second pass
    assert "fwd" not in scratch
    c = forward_for_g(net, x, scratch, "fwd")  # nothing kept: a fresh forward, fresh masks
    assert not torch.equal(c.detach(), a) and int(net[1].num_batches_tracked) == 2


def test_forward_and_encode_is_forward_and_encode_in_one_pass():
    from ganapps.cyclegan.nets import build_generator

    torch.manual_seed(0)
    gen = build_generator("resnet_6blocks", 3, 3, 8, "instance", False)
    x = torch.randn(2, 3, 32, 32)
    y, feats = gen.forward_and_encode(x, [0, 4, 8, 12])
    assert torch.equal(y, gen(x))
    assert all(torch.equal(f, g) for f, g in zip(feats, gen.encode(x, [0, 4, 8, 12]), strict=True))


# -- PatchNCE
def test_patchnce_is_the_infonce_of_the_paper():
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(2 * 5, 8), dim=1), F.normalize(torch.randn(2 * 5, 8), dim=1)
    out = patch_nce_loss(q, k, 2, 0.07)
    assert out.shape == (10,)
    assert float(out.mean()) == pytest.approx(float(infonce(q, k, 2, 0.07)), rel=1e-5)
    # negatives come from the same image only: another image's keys do not change this image's losses
    k2 = k.clone()
    k2[5:] = F.normalize(torch.randn(5, 8), dim=1)
    assert torch.allclose(patch_nce_loss(q, k2, 2, 0.07)[:5], out[:5])
    # a query equal to its own key and orthogonal to the others: loss log(1 + (P - 1) e^(-1/tau))
    e = torch.eye(4)
    assert float(patch_nce_loss(e, e, 1, 0.5)[0]) == pytest.approx(float(torch.log(1 + 3 * torch.exp(
        torch.tensor(-2.0)))), rel=1e-6)
    # keys carry no gradient (the reference detaches them)
    qg, kg = q.clone().requires_grad_(), k.clone().requires_grad_()
    patch_nce_loss(qg, kg, 2, 0.07).sum().backward()
    assert kg.grad is None and qg.grad.abs().sum() > 0


def test_sampled_patches_are_distinct_places_shared_by_the_batch():
    feats = [torch.zeros(3, 4, 5, 5), torch.zeros(3, 4, 2, 3)]
    ids = cut.sample_patches(feats, 10)
    assert len(ids[0]) == 10 and len(set(ids[0].tolist())) == 10 and int(ids[0].max()) < 25
    assert sorted(ids[1].tolist()) == list(range(6))  # fewer places than asked: all of them


# -- options
def test_each_method_takes_its_references_defaults_and_explicit_options_win():
    assert method_defaults("cyclegan") == {}
    c = CycleGANConfig(method="cut")
    assert (c.init, c.use_antialias, c.pool_size, c.lambda_nce, c.use_nce_identity, c.use_flip_equivariance,
            c.gen, c.gan_loss) == ("xavier", True, 0, 1.0, True, False, "resnet_9blocks", "lsgan")
    f = CycleGANConfig(method="fastcut", steps=400)
    assert (f.lambda_nce, f.use_nce_identity, f.use_flip_equivariance, f.lr_decay_start_steps) == (10.0, False, True,
                                                                                                   300)
    assert CycleGANConfig(method="fastcut", lr_schedule="constant").lr_decay_start_steps == -1
    p = CycleGANConfig(method="pix2pix")
    assert (p.gen, p.norm, p.use_dropout, p.gan_loss, p.pool_size, p.lambda_l1) == ("unet_256", "batch", True,
                                                                                   "nonsaturating", 0, 100.0)
    assert CycleGANConfig(method="pix2pix", norm="instance", use_dropout=False).norm == "instance"
    assert CycleGANConfig().init == "normal" and not CycleGANConfig().use_antialias  # CycleGAN unchanged


@pytest.mark.parametrize("opts,match", [
    (dict(method="cut", lambda_a=5.0), "lambda_a=5.0: not used by method cut"),
    (dict(method="pix2pix", lambda_nce=3.0), "lambda_nce"),
    (dict(lambda_l1=10.0), "lambda_l1"),
    (dict(direction="b2a"), "direction"),
    (dict(method="cut", use_channels_last=True), "use_channels_last"),
    (dict(method="gan"), "method='gan'"),
    (dict(method="cut", gen="unet_128"), "gen='unet_128'"),
    (dict(method="cut", nce_layers="0,8,4"), "nce_layers"),
    (dict(method="cut", nce_layers="0,x"), "nce_layers"),
    (dict(method="cut", gen="resnet_6blocks", use_antialias=False, nce_layers="0,25"), "layers 0-24"),
    (dict(method="fastcut", nce_temperature=0.0), "nce_temperature"),
])
def test_bad_method_options_name_the_field(opts, match):
    with pytest.raises(InputError, match=match):
        CycleGANConfig(**opts)


# -- runs, resume, inference
def test_fastcut_resume_reproduces_the_run(dataset, tmp_path, capsys):
    full = tmp_path / "full"
    args = ["cyclegan", "train", "--method", "fastcut", "--preset", "tiny", "--data", str(dataset), "--steps", "4",
            "--nce-patches", "16", "--checkpoint-every-steps", "2", "--quiet"]
    assert main([*args, "--out", str(full), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == 4 and out["a2b/swd"] > 0 and "b2a/swd" not in out
    assert set(ckpt.load_weights(ckpt.resolve(full))) == {"gen_ab", "disc_b", "nce_head"}
    import shutil

    half = tmp_path / "half"
    shutil.copytree(full / "checkpoints" / "step_2", half / "checkpoints" / "step_2")
    (half / "checkpoints" / "latest").write_text("step_2\n")
    shutil.copy(full / "config.yaml", half / "config.yaml")
    assert main(["cyclegan", "train", "--out", str(half), "--resume", "--quiet"]) == 0
    a, b = ckpt.load_weights(ckpt.resolve(full)), ckpt.load_weights(ckpt.resolve(half))
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


@pytest.mark.parametrize("method,extra", [("cyclegan", ["--use-antialias"]), ("cut", []),
                                          ("pix2pix", ["--gen", "unet_128", "--unet-full-res"])])
def test_training_and_inference_build_the_same_generators(method, extra, dataset, paired, tmp_path):
    """Every method's task and `Translator` build the generator from one function of the config: a run with the
    net options a method takes loads for inference (CycleGAN with --use-antialias trained
    a plain ResNet while inference built the anti-aliased one, so its runs did not load)."""
    from ganapps.cyclegan.nets import BlurDownsample
    from ganapps.cyclegan.pipeline import Translator

    run = tmp_path / method
    data = paired if method == "pix2pix" else dataset
    size = ["--load-size", "130", "--crop-size", "128"] if method == "pix2pix" else []
    assert main(["cyclegan", "train", "--method", method, "--preset", "tiny", "--data", str(data), *size, *extra,
                 "--steps", "1", "--out", str(run), "--quiet"]) == 0
    t = Translator.from_checkpoint(run, device="cpu")  # loads the weights strictly: the nets must match
    assert t.nets
    for net in t.nets.values():
        if method != "pix2pix":  # the ResNets are anti-aliased (CUT's default, CycleGAN's by option)
            assert any(isinstance(m, BlurDownsample) for m in net.modules())
        else:
            assert any(getattr(m, "full_res", False) for m in net.modules())


def test_one_generator_models_translate_their_direction_only(dataset, paired, tmp_path, capsys):
    from ganapps.cyclegan.pipeline import Translator

    run = tmp_path / "cut"
    assert main(["cyclegan", "train", "--method", "cut", "--direction", "b2a", "--preset", "tiny", "--data",
                 str(dataset), "--steps", "2", "--out", str(run), "--quiet"]) == 0
    t = Translator.from_checkpoint(run)
    assert t.directions == ("b2a",) and set(t.nets) == {"gen_ba"}
    assert t(torch.zeros(3, 20, 20), "b2a").shape == (3, 20, 20)
    with pytest.raises(InputError, match="translates b2a only"):
        t(torch.zeros(3, 20, 20), "a2b")
    capsys.readouterr()
    assert main(["cyclegan", "translate", str(dataset / "testA"), "--model", str(run), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    assert "translates b2a only" in capsys.readouterr().err
    exported = t.export(tmp_path / "model")
    assert exported["nets"] == ["gen_ba"]
    assert Translator.from_checkpoint(tmp_path / "model").directions == ("b2a",)
    # pix2pix: evaluate scores its one direction, with PSNR/SSIM against the paired targets
    p2p = tmp_path / "p2p"
    assert main(["cyclegan", "train", "--method", "pix2pix", "--preset", "tiny", "--gen", "unet_128",
                 "--load-size", "130", "--crop-size", "128", "--data", str(paired), "--steps", "2", "--out", str(p2p),
                 "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"a2b/psnr_db", "a2b/ssim", "a2b/psnr_identity_db", "a2b/swd"} <= set(out) and "b2a/swd" not in out
    assert main(["cyclegan", "evaluate", "--model", str(p2p), "--data-a", str(paired / "testA"), "--data-b",
                 str(paired / "testB"), "--ground-truth", str(paired / "testB"), "--quiet", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["a2b/psnr_db"] > 0 and "b2a/swd" not in ev


def test_two_one_direction_models_join_into_one_of_both_directions(dataset, paired, tmp_path, capsys):
    """pix2pix a2b + pix2pix b2a (resize-conv, full-resolution U-Nets as shipped) -> `export --add` -> one model
    translating both ways, each exactly as its own run; joining what does not fit (another method, the same
    direction, other nets), or training `--direction both`, is a one-line error."""
    from ganapps.cyclegan.pipeline import Translator

    runs = {}
    for d, full in (("a2b", True), ("b2a", True), ("plain", False)):
        runs[d] = tmp_path / d
        assert main(["cyclegan", "train", "--method", "pix2pix", "--direction", "b2a" if d == "plain" else d,
                     "--preset", "tiny", "--gen", "unet_128", "--upsample", "resize",
                     "--unet-full-res" if full else "--no-unet-full-res", "--load-size", "130", "--crop-size",
                     "128", "--data", str(paired), "--steps", "2", "--out", str(runs[d]), "--quiet"]) == 0
    model = tmp_path / "both"
    assert main(["cyclegan", "export", str(runs["a2b"]), "--add", str(runs["b2a"]), "--out", str(model), "--fp32",
                 "--quiet"]) == 0
    t = Translator.from_checkpoint(model)
    assert t.directions == ("a2b", "b2a") and t.config.direction == "both"
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    for d in ("a2b", "b2a"):
        assert torch.equal(t(x, d), Translator.from_checkpoint(runs[d])(x, d))
    capsys.readouterr()
    cut_run = tmp_path / "cut"
    assert main(["cyclegan", "train", "--method", "cut", "--direction", "b2a", "--preset", "tiny", "--data",
                 str(dataset), "--steps", "1", "--out", str(cut_run), "--quiet"]) == 0
    for add, match in ((runs["a2b"], "needs the other direction"), (cut_run, "of one method"),
                       (runs["plain"], "differ from the first model's (unet_full_res)")):
        assert main(["cyclegan", "export", str(runs["a2b"]), "--add", str(add), "--out", str(tmp_path / "x"),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert match in err and str(add) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    assert main(["cyclegan", "train", "--method", "pix2pix", "--direction", "both", "--preset", "tiny", "--data",
                 str(paired), "--steps", "1", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "direction='both'" in capsys.readouterr().err


def test_previews_and_evaluations_leave_batch_norm_statistics_alone(paired, tmp_path):
    """pix2pix's batch-norm U-Net: the trainer's preview and evaluation hooks run the nets in eval mode, so the
    test images they show do not move the running statistics (they did: 8 previews on test images changed them
    by up to 6.5), and the nets are back in train mode afterwards."""
    cfg = CycleGANConfig(**tiny(method="pix2pix", gen="unet_128", load_size=130, crop_size=128, data=str(paired),
                                out=str(tmp_path / "r")))
    tr = Trainer(make_task(cfg))
    tr._build()
    gen = tr.nets["gen_ab"]
    assert any(isinstance(m, nn.BatchNorm2d) for m in gen.modules())
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    modes = [m.training for net in tr.nets.values() for m in net.modules()]
    assert tr._hook("preview", 1) is not None and tr._hook("evaluate", 2)
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())
    assert [m.training for net in tr.nets.values() for m in net.modules()] == modes and gen.training


def test_pix2pix_with_instance_norm_judges_real_and_fake_pairs_in_one_call(paired, tmp_path, capsys):
    """Instance norm lets the critic judge the real and the fake pair in one batched call; each half is stacked
    with its own input first (it stacked the 2B images with B inputs and failed), and the one call gives the
    two calls' losses."""
    logs = {}
    for batched in (True, False):
        out = tmp_path / str(batched)
        assert main(["cyclegan", "train", "--method", "pix2pix", "--preset", "tiny", "--gen", "unet_128",
                     "--norm", "instance", "--load-size", "130", "--crop-size", "128", "--data", str(paired),
                     "--steps", "2", "--log-every-steps", "1", "--out", str(out), "--quiet",
                     "--use-batched-calls" if batched else "--no-use-batched-calls"]) == 0
        logs[batched] = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss/d" in r]
    assert len(logs[True]) == len(logs[False]) == 2
    for a, b in zip(logs[True], logs[False], strict=True):
        assert a["loss/d"] == pytest.approx(b["loss/d"], rel=1e-4, abs=1e-6)
