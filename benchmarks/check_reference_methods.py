"""One-off check of CUT, FastCUT and pix2pix against the real reference code in ../shared/anchors (never copied):
contrastive-unpaired-translation `models/cut_model.py` + `patchnce.py` + `networks.py`, pytorch-CycleGAN-and-pix2pix
`models/pix2pix_model.py` + `networks.py`, imported from their files with stub parent packages.

Both sides start from the same weights (ours copied into the reference's nets) and see the same batches and the
same random draws (FastCUT's flip coin and the sampled patches, fed to the reference's numpy calls; pix2pix's
dropout masks, by handing the reference torch's RNG state from before our generator forward). Each step
compares the losses, then the weights after both optimizers stepped. Prints max |diff| per net:
"live" weights (real gradients) and "rounding-only" ones (conv biases in front of an instance norm without
affine, whose exact gradient is 0: Adam turns their float noise into steps of up to lr, in either sign), and
the relative L2 difference of the step's gradients. Adam's first steps move every weight by about lr whatever
its gradient's size, so a weight whose gradient is ~1e-8 of its layer's largest can still differ by up to
2 x lr after a float-rounding sign flip: the gradient difference is the sharper figure.

    python -m benchmarks.check_reference_methods [--anchors DIR] [--steps 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from argparse import Namespace
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

ANCHORS = Path(__file__).resolve().parents[1].parent / "shared" / "anchors"
if not ANCHORS.is_dir():
    ANCHORS = Path("/work/shared/anchors")


def _load_package(alias: str, models_dir: Path, modules: list[str]) -> dict[str, types.ModuleType]:
    """Import `models_dir/<m>.py` as `alias.<m>` (relative imports resolve inside `alias`), without running
    the repo's models/__init__.py."""
    pkg = types.ModuleType(alias)
    pkg.__path__ = [str(models_dir)]
    sys.modules[alias] = pkg
    out = {}
    for name in modules:
        spec = importlib.util.spec_from_file_location(f"{alias}.{name}", models_dir / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"{alias}.{name}"] = mod
        spec.loader.exec_module(mod)
        out[name] = mod
    return out


def load_cut(anchors: Path = ANCHORS) -> dict[str, types.ModuleType]:
    if "util.util" not in sys.modules:  # cut_model imports util.util for str2bool (argument parsing only)
        util = types.ModuleType("util")
        util.__path__ = []
        util.util = types.ModuleType("util.util")
        sys.modules["util"], sys.modules["util.util"] = util, util.util
    return _load_package("cutref", anchors / "contrastive-unpaired-translation" / "models",
                         ["stylegan_networks", "networks", "patchnce", "base_model", "cut_model"])


def load_pix2pix(anchors: Path = ANCHORS) -> dict[str, types.ModuleType]:
    return _load_package("p2pref", anchors / "pytorch-CycleGAN-and-pix2pix" / "models",
                         ["networks", "base_model", "pix2pix_model"])


def _dead_biases(net: nn.Module, tapped=(4, 8)) -> set[str]:
    """Conv biases that feed an InstanceNorm without affine (exact gradient 0), except those of the layers CUT
    reads before the norm (`tapped`, its nce_layers 4 and 8)."""
    names = set()
    for prefix, module in net.named_modules():
        children = list(module.named_children())
        for (name, layer), (_, nxt) in zip(children, children[1:], strict=False):
            if (isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.bias is not None
                    and isinstance(nxt, nn.InstanceNorm2d) and not nxt.affine):
                names.add(f"{prefix}.{name}.bias".lstrip("."))
    return names - {f"model.{i}.bias" for i in tapped}


def _pairs(ours: nn.Module, ref: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(our name, our tensor, the reference's tensor) for every parameter and buffer, matched by order (the
    module trees order them alike; names differ where the reference nests an extra activation module). The
    reference's fixed blur kernels ("filt") have no counterpart."""
    ref_items = [(k, v) for k, v in ref.state_dict(keep_vars=True).items() if not k.endswith(".filt")]
    ours_items = list(ours.state_dict(keep_vars=True).items())
    assert len(ref_items) == len(ours_items), (len(ref_items), len(ours_items))
    out = []
    for (k, v), (rk, rv) in zip(ours_items, ref_items, strict=True):
        assert v.shape == rv.shape, (k, rk, v.shape, rv.shape)
        out.append((k, v, rv))
    return out


def copy_weights(ours: nn.Module, ref: nn.Module) -> None:
    """Our weights (and buffers) into the reference's net."""
    with torch.no_grad():
        for _, v, rv in _pairs(ours, ref):
            rv.copy_(v)


def _diffs(ours: nn.Module, ref: nn.Module, skip=()) -> tuple[float, float, float]:
    """(max |weight diff| over live parameters and buffers, max |diff| over rounding-only biases, relative L2
    difference of this step's gradients over the live parameters)."""
    dead = _dead_biases(ours)
    live = zero = 0.0
    g_ours, g_ref = [], []
    for k, v, rv in _pairs(ours, ref):
        if k in skip or not v.is_floating_point():
            continue
        d = float((v.detach() - rv.detach()).abs().max())
        if k in dead:
            zero = max(zero, d)
        else:
            live = max(live, d)
            if isinstance(v, nn.Parameter) and v.grad is not None and rv.grad is not None:
                g_ours.append(v.grad.flatten())
                g_ref.append(rv.grad.flatten())
    grad = float((torch.cat(g_ours) - torch.cat(g_ref)).norm() / torch.cat(g_ref).norm()) if g_ref else float("nan")
    return live, zero, grad


def _trainer(cfg):
    from ganapps.cyclegan.task import make_task
    from ganapps.engine.trainer import Trainer

    tr = Trainer(make_task(cfg))
    tr._build()
    return tr


def _peek(tr):
    state = tr.stream.state_dict()
    batch = next(tr.stream)
    tr.stream.load_state_dict(state)  # the trainer reads this same batch
    return batch


@contextmanager
def _numpy_draws(flip: bool, patch_ids: list[torch.Tensor]):
    """The reference's numpy draws replaced by ours: np.random.random (FastCUT's coin; < 0.5 flips) and
    np.random.permutation (patch sampling, sliced to num_patches by the reference)."""
    queue = [ids.cpu().numpy() for ids in patch_ids]
    orig_random, orig_perm = np.random.random, np.random.permutation
    np.random.random = lambda *a, **k: 0.0 if flip else 0.9
    np.random.permutation = lambda n: queue.pop(0)
    try:
        yield queue
    finally:
        np.random.random, np.random.permutation = orig_random, orig_perm


def contiguous_feature_grads(net: nn.Module) -> None:
    """Work around a torch CPU bug the reference trips: InstanceNorm2d's backward is wrong for a batch of one
    image when the incoming gradient is channels-last (measured on torch 2.14.1: max error ~3 against finite
    differences; batches of 2+ are right). The reference's PatchSampleF reads G's features through
    permute(0, 2, 3, 1), so their gradients come back channels-last; this hook makes them contiguous (same
    values), which is all that changes."""
    forward = net.forward

    def patched(input, layers=(), encode_only=False):
        out = forward(input, list(layers), encode_only)
        feats = out if encode_only else (out[1] if isinstance(out, tuple) else [])
        for f in feats:
            if f.requires_grad:
                f.register_hook(lambda g: g.contiguous())
        return out

    net.forward = patched


def _cut_reference(cfg, fix_torch_bug: bool):
    """The reference's CUTModel with `cfg`'s options (its own weight init; ours are copied in afterwards)."""
    ref_mods = load_cut()
    opt = Namespace(
        input_nc=3, output_nc=3, ngf=cfg.ngf, ndf=cfg.ndf, netG=cfg.gen, netD="basic", n_layers_D=3,
        normG="instance", normD="instance", init_type=cfg.init, init_gain=cfg.init_gain, no_dropout=True,
        no_antialias=False, no_antialias_up=False, gpu_ids=[], isTrain=True, checkpoints_dir="/tmp",
        name="check-cut", preprocess="crop", gan_mode="lsgan", lr=cfg.lr_g, beta1=cfg.beta1, beta2=cfg.beta2,
        batch_size=cfg.batch_size, CUT_mode=cfg.method, lambda_GAN=1.0, lambda_NCE=cfg.lambda_nce,
        nce_idt=cfg.use_nce_identity, nce_layers=cfg.nce_layers, nce_includes_all_negatives_from_minibatch=False,
        netF="mlp_sample", netF_nc=cfg.nce_mlp_width, nce_T=cfg.nce_temperature, num_patches=cfg.nce_patches,
        flip_equivariance=cfg.use_flip_equivariance, direction="AtoB", pool_size=0, lr_policy="linear")
    ref = ref_mods["cut_model"].CUTModel(opt)
    if fix_torch_bug:
        contiguous_feature_grads(ref.netG)
    return ref


def _cut_diffs(logs: dict, ref, nets: dict, cfg) -> dict:
    """One step's loss differences (ours vs the reference's) and weight differences per net."""
    r = {"loss/d": abs(logs["loss/d"] - float(ref.loss_D)),
         "loss/g_gan": abs(logs["loss/g_gan"] - float(ref.loss_G_GAN)),
         "loss/nce": abs(logs["loss/nce"] - float(ref.loss_NCE)),
         "loss/g": abs(logs["loss/g"] - float(ref.loss_G)),
         "values": {k: logs[k] for k in ("loss/d", "loss/g_gan", "loss/nce", "loss/g")}}
    if cfg.use_nce_identity:
        r["loss/nce_idt"] = abs(logs["loss/nce_idt"] - float(ref.loss_NCE_Y))
    for name, ref_net in (("gen_ab", ref.netG), ("disc_b", ref.netD), ("nce_head", ref.netF)):
        r[name] = _diffs(nets[name], ref_net)
    return r


def check_cut(method: str, *, batch_size: int = 1, steps: int = 3, crop: int = 64, ngf: int = 8,
              gen: str = "resnet_9blocks", data: str = "", out: str = "/tmp/check-cut",
              fix_torch_bug: bool = True) -> list[dict]:
    """`steps` steps of our CUT/FastCUT and the reference's `CUTModel.optimize_parameters` from the same
    weights; returns one dict per step: loss differences and weight max |diff| per net. `fix_torch_bug`:
    apply `contiguous_feature_grads` to the reference's generator."""
    import shutil

    import ganapps.cyclegan.cut as cut
    from ganapps.cyclegan.config import CycleGANConfig

    shutil.rmtree(out, ignore_errors=True)
    cfg = CycleGANConfig(method=method, data=data, out=out, gen=gen, ngf=ngf, ndf=ngf, load_size=crop,
                         crop_size=crop, preprocess="crop", batch_size=batch_size, steps=100, device="cpu",
                         lr_schedule="constant", log_every_steps=1, use_tensorboard=False, write_report=False,
                         quiet=True, use_amp=False)  # float32: compared with the reference's float32 numbers
    tr = _trainer(cfg)
    ref = _cut_reference(cfg, fix_torch_bug)
    nets = tr.nets
    copy_weights(nets["gen_ab"], ref.netG)
    copy_weights(nets["disc_b"], ref.netD)
    first = _peek(tr)  # the reference builds netF on a first forward/backward (gradients zeroed below)
    ref.data_dependent_initialize({"A": first["a"], "B": first["b"], "A_paths": None, "B_paths": None})
    copy_weights(nets["nce_head"], ref.netF)
    for o in ref.optimizers:
        o.zero_grad()

    drawn: list[torch.Tensor] = []
    orig_sample = cut.sample_patches

    def recording(feats, n):
        ids = orig_sample(feats, n)
        drawn.extend(ids)
        return ids

    cut.sample_patches = recording
    results = []
    try:
        for step in range(steps):
            batch = _peek(tr)
            drawn.clear()
            logs, finite = tr._run_step()
            tr.step += 1
            flip = bool(tr.ctx.scratch.get("flip", False))
            ref.set_input({"A": batch["a"], "B": batch["b"], "A_paths": None, "B_paths": None})
            with _numpy_draws(flip, drawn) as left:
                ref.optimize_parameters()
            assert not left, "the reference drew fewer patch sets than we did"
            results.append({"step": step, "flip": flip, "finite": finite, **_cut_diffs(logs, ref, nets, cfg)})
    finally:
        cut.sample_patches = orig_sample
    check_cut.last = (tr, ref)  # for a closer look after the call
    return results


def check_pix2pix(*, batch_size: int = 1, steps: int = 3, crop: int = 256, ngf: int = 8, data: str = "",
                  gen: str = "unet_256", out: str = "/tmp/check-pix2pix") -> list[dict]:
    """`steps` steps of our pix2pix and the reference's `Pix2PixModel.optimize_parameters` from the same
    weights, batches and dropout masks (U-Net 256, batch norm, dropout on: the reference's defaults)."""
    import shutil

    from ganapps.cyclegan.config import CycleGANConfig

    ref_mods = load_pix2pix()
    shutil.rmtree(out, ignore_errors=True)
    cfg = CycleGANConfig(method="pix2pix", data=data, out=out, gen=gen, ngf=ngf, ndf=ngf, load_size=crop, crop_size=crop, batch_size=batch_size, steps=100, device="cpu", lr_schedule="constant",
                         log_every_steps=1, use_tensorboard=False, write_report=False, quiet=True, use_amp=False)
    tr = _trainer(cfg)
    opt = Namespace(input_nc=3, output_nc=3, ngf=ngf, ndf=ngf, netG=cfg.gen, netD="basic", n_layers_D=3,
                    norm="batch", no_dropout=False, init_type="normal", init_gain=0.02, isTrain=True,
                    checkpoints_dir="/tmp", name="check-pix2pix", preprocess="crop", device=torch.device("cpu"),
                    gan_mode="vanilla", lr=cfg.lr_g, beta1=cfg.beta1, lambda_L1=cfg.lambda_l1, direction="AtoB",
                    gpu_ids=[], pool_size=0)
    ref = ref_mods["pix2pix_model"].Pix2PixModel(opt)
    nets = tr.nets
    copy_weights(nets["gen_ab"], ref.netG)
    copy_weights(nets["disc_b"], ref.netD)
    d_stats = {k for k in nets["disc_b"].state_dict() if "running_" in k or "num_batches" in k}
    results = []
    for step in range(steps):
        batch = _peek(tr)
        logs, finite = tr._run_step()
        tr.step += 1
        rng = torch.get_rng_state()
        torch.set_rng_state(tr.ctx.scratch["fwd/rng"])  # the state our generator forward drew its dropout from
        ref.set_input({"A": batch["a"], "B": batch["b"], "A_paths": None, "B_paths": None})
        ref.optimize_parameters()
        torch.set_rng_state(rng)
        loss_d = 0.5 * (float(ref.loss_D_fake) + float(ref.loss_D_real))
        r = {"step": step, "finite": finite, "loss/d": abs(logs["loss/d"] - loss_d),
             "loss/g_gan": abs(logs["loss/g_gan"] - float(ref.loss_G_GAN)),
             "loss/l1": abs(logs["loss/l1"] - float(ref.loss_G_L1)),
             "values": {"loss/d": logs["loss/d"], "loss/g_gan": logs["loss/g_gan"], "loss/l1": logs["loss/l1"]}}
        r["gen_ab"] = _diffs(nets["gen_ab"], ref.netG)
        # D's batch-norm running statistics are never used (D always runs in training mode) and the two sides
        # update them in another order (we judge reals first); its parameters are compared
        r["disc_b"] = _diffs(nets["disc_b"], ref.netD, skip=d_stats)
        results.append(r)
    check_pix2pix.last = (tr, ref)  # for a closer look after the call
    return results


def _write_data(root: Path, n: int, size: int) -> Path:
    """Small random-image domains (pairs share names), so the check needs no dataset."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for d in ("trainA", "trainB"):
        (root / d).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / d / f"{k}.png")
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--data", default="", help="dataset root (default: the built-in set, its paired version "
                                              "for pix2pix)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; anchors {ANCHORS}", flush=True)
    data = a.data
    for method, bs, fix in (("cut", 1, False), ("cut", 1, True), ("fastcut", 1, True), ("cut", 2, False),
                            ("fastcut", 2, False)):
        res = check_cut(method, batch_size=bs, steps=a.steps, data=data, fix_torch_bug=fix)
        print(f"-- {method}, batch {bs}, reference " + ("with contiguous feature gradients (torch bug "
              "worked around)" if fix else "as it is"), flush=True)
        for r in res:
            losses = "  ".join(f"{k} {r[k]:.1e}" for k in ("loss/d", "loss/g_gan", "loss/nce", "loss/nce_idt",
                                                              "loss/g") if k in r)
            nets = "  ".join(f"{n} {r[n][0]:.1e} (rounding-only {r[n][1]:.1e}; grad {r[n][2]:.1e})" for n in
                             ("gen_ab", "disc_b", "nce_head"))
            print(f"{method:8s} batch {bs} step {r['step']} flip {int(r['flip'])}: |loss diff| {losses}; "
                  f"max |weight diff| {nets}", flush=True)
    for bs in (1, 2):
        for r in check_pix2pix(batch_size=bs, steps=a.steps, data=data):
            losses = "  ".join(f"{k} {r[k]:.1e}" for k in ("loss/d", "loss/g_gan", "loss/l1"))
            print(f"pix2pix  batch {bs} step {r['step']}: |loss diff| {losses}; max |weight diff| gen_ab "
                  f"{r['gen_ab'][0]:.1e} (grad {r['gen_ab'][2]:.1e})  disc_b {r['disc_b'][0]:.1e} (grad "
                  f"{r['disc_b'][2]:.1e})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
