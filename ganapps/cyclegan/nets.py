"""The translation nets: generators (ResNet 6/9 blocks, U-Net 128/256) and discriminators (PatchGAN n-layer,
pixel) layer for layer as pytorch-CycleGAN-and-pix2pix's `networks.py`, with resize-conv upsampling as an option
(Odena et al. 2016), the anti-aliased variants CUT uses (contrastive-unpaired-translation's defaults), the
ResNet's encoder feature taps and the PatchNCE MLP head, plus the colour/tone generator and the dual (PatchGAN +
colour statistics) critic of `colour.py`. Constructors take plain values. No training code and no engine
imports beyond stabilizers and layers here."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..engine.layers import InstanceNorm2d

NORMS = ("instance", "batch", "none")
GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256", "colourtone")
DISCRIMINATORS = ("basic", "n_layers", "pixel", "dual")
UPSAMPLINGS = ("transpose", "resize", "bilinear")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The reference's `get_norm_layer`: instance (no affine, no running stats), batch (affine, running
    stats) or none."""
    if kind == "instance":
        return InstanceNorm2d(channels)  # nn.InstanceNorm2d's maths; bf16 stays bf16 under autocast
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected one of {', '.join(NORMS)}")


def _use_bias(norm: str) -> bool:
    # The reference gives convs a bias only with instance norm (batch norm has its own shift). With "none" it
    # also drops the bias (its `norm_layer == InstanceNorm2d` test fails); we keep it, as a net without any
    # normalisation needs one.
    return norm != "batch"


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim),
                                   nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)  # (B, dim, H, W)


def upsample_layer(kind: str, c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    """x2 upsampling. "transpose": the reference's ConvTranspose2d(3, stride 2, padding 1, output_padding 1),
    whose uneven kernel overlap paints a period-2 checkerboard; "resize": nearest x2, reflect pad, 3x3 conv
    (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"): same receptive field growth, every output
    pixel sees the same number of taps, so no checkerboard by construction. Same parameter count."""
    if kind == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    if kind in ("resize", "bilinear"):  # "bilinear": the same with bilinear x2 (no 2x2 blocks for the conv to see)
        up = nn.Upsample(scale_factor=2, mode="nearest") if kind == "resize" else nn.Upsample(
            scale_factor=2, mode="bilinear", align_corners=False)
        return [up, nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, bias=bias)]
    raise ValueError(f"unknown upsampling {kind!r}: expected one of {', '.join(UPSAMPLINGS)}")


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"): a fixed
    [1, 2, 1] x [1, 2, 1] / 16 blur per channel on the reflect-padded input, sampled at stride 2.
    (B, C, H, W) -> (B, C, ceil(H / 2), ceil(W / 2)). No parameters (the kernel is a non-saved buffer)."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        return nn.functional.conv2d(x, self.kernel.to(x.dtype), stride=2, groups=x.shape[1])


def bilinear_upsample() -> nn.Module:
    """x2 bilinear upsampling (half-pixel centres, edges replicated). CUT's "anti-aliased" upsampling, a
    transposed conv with the fixed [1, 3, 3, 1] kernel, is exactly this (measured equal to float rounding)."""
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)


def resnet_layer_count(n_blocks: int, use_antialias: bool = False, upsample: str = "transpose") -> int:
    """Length of `ResnetGenerator.model` (the layers `encode` can tap): 4 stem layers, 2 x 3 (4 anti-aliased)
    down layers, the blocks, 2 x 3 (4 anti-aliased, 5 resize-conv) up layers, 3 head layers."""
    down = 4 if use_antialias else 3
    up = 4 if use_antialias else 2 + len(upsample_layer(upsample, 1, 1, False))
    return 4 + 2 * down + n_blocks + 2 * up + 3


class ResnetGenerator(nn.Module):
    """Johnson et al. 2016's transformer net as CycleGAN uses it: c7s1-ngf, two stride-2 downsamplings,
    `n_blocks` residual blocks at ngf*4, two x2 upsamplings (`upsample`: the reference's transposed convs or
    resize-conv), c7s1 + tanh. (B, in_ch, H, W) -> (B, out_ch, H, W) in [-1, 1]; H and W multiples of 4.
    With `use_antialias` (CUT's default): each downsampling is a stride-1 conv, norm, ReLU, then
    `BlurDownsample`; each upsampling is `bilinear_upsample` then a 3x3 conv, norm, ReLU (no transposed conv;
    `upsample` must stay "transpose", the plain nets' default). The layers sit in one `nn.Sequential` in the
    reference's order, so `encode` taps them by the reference's indices (CUT's nce_layers).
    `residual=True`: no tanh and a zero last conv, an unbounded correction that starts at 0 (the detail branch
    of `ColourToneGenerator`)."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, norm: str = "instance",
                 use_dropout: bool = False, n_blocks: int = 9, upsample: str = "transpose", residual: bool = False,
                 use_antialias: bool = False):
        super().__init__()
        if use_antialias and upsample != "transpose":
            raise ValueError(f"upsample={upsample!r} with use_antialias: the anti-aliased upsampling is bilinear + "
                             f"conv already")
        bias = _use_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), norm_layer(norm, ngf),
                                   nn.ReLU(True)]
        for i in range(2):
            c_in, c_out = ngf * 2**i, ngf * 2 ** (i + 1)
            if use_antialias:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), norm_layer(norm, c_out), nn.ReLU(True),
                           BlurDownsample(c_out)]
            else:
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=bias), norm_layer(norm, c_out),
                           nn.ReLU(True)]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, use_dropout, bias))
        for i in range(2):
            c_in, c_out = ngf * 2 ** (2 - i), ngf * 2 ** (1 - i)
            if use_antialias:
                layers += [bilinear_upsample(), nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias),
                           norm_layer(norm, c_out), nn.ReLU(True)]
            else:
                layers += [*upsample_layer(upsample, c_in, c_out, bias), norm_layer(norm, c_out), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7)]
        if not residual:
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)
        self.residual = residual
        self.size_multiple = 4
        self.reset_identity()

    def reset_identity(self) -> None:
        """With `residual`: zero the last conv, so the net outputs 0 (its sum with the input is the identity)."""
        if self.residual:
            last = self.model[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, in_ch, H, W) -> (B, out_ch, H, W)

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of `model[i]` for each i in `layers` (increasing), running the net only up to the last
        one (CUT's encoder features; index 0 is the padded input itself). Each (B, C_i, H_i, W_i)."""
        return self._run(x, layers, max(layers))[1]

    def forward_and_encode(self, x: torch.Tensor, layers: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(forward(x), encode(x, layers)) from one pass."""
        return self._run(x, layers, len(self.model) - 1)

    def _run(self, x: torch.Tensor, layers: Sequence[int], last: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats, wanted = [], set(layers)
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                feats.append(x)
            if i == last:
                break
        return x, feats

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of `encode`'s outputs, read from the layer structure (no forward pass)."""
        channels, out = self.model[1].in_channels, []
        for i, layer in enumerate(self.model):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                channels = layer.out_channels
            if i in layers:
                out.append(channels)
        return out


class PatchMLPHead(nn.Module):
    """CUT's projection head H_l (Park et al. 2020, "Contrastive Learning for Unpaired Image-to-Image
    Translation", sec. 3.1): per tapped encoder layer, a two-layer MLP (Linear, ReLU, Linear; `width` units)
    applied to sampled feature vectors, then L2-normalised (x / (||x|| + 1e-7)).

    `forward(feats, patch_ids)`: feats[l] (B, C_l, H_l, W_l); patch_ids[l] (P_l,) flat positions in H_l x W_l,
    the same for every image of the batch -> a list of (B * P_l, width), image-major."""

    def __init__(self, in_channels: Sequence[int], width: int = 256):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width))
                                  for c in in_channels)

    def forward(self, feats: Sequence[torch.Tensor], patch_ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for mlp, f, ids in zip(self.mlps, feats, patch_ids, strict=True):
            x = f.flatten(2)[:, :, ids].transpose(1, 2).flatten(0, 1)  # (B, C, HW) -> (B * P, C)
            x = mlp(x)  # (B * P, width)
            out.append(x / (x.norm(dim=1, keepdim=True) + 1e-7))
        return out


class UnetSkipBlock(nn.Module):
    """One U-Net level: down (LeakyReLU, conv 4x4/2, norm) -> submodule -> up (ReLU, convT 4x4/2, norm),
    with the block's input concatenated to its output (except at the outermost level). `upsample` "resize":
    the up conv is nearest x2 + 3x3 conv (`upsample_layer`), no checkerboard. `full_res` (outermost level
    only): the up conv ends at `inner` channels (norm), and the last layer is ReLU, 3x3 conv, tanh over those
    concatenated with `stem(x)` (3x3 conv of the input to `inner` channels, LeakyReLU 0.2): full-resolution
    features of the input, so fine detail need not come through the x2 upsampling alone."""

    def __init__(self, outer: int, inner: int, in_ch: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "instance",
                 use_dropout: bool = False, upsample: str = "transpose", full_res: bool = False):
        super().__init__()
        self.outermost = outermost
        self.full_res = full_res
        if full_res and not outermost:
            raise ValueError("full_res is for the outermost U-Net level")
        bias = _use_bias(norm)
        in_ch = outer if in_ch is None else in_ch
        downconv = nn.Conv2d(in_ch, inner, 4, stride=2, padding=1, bias=bias)

        def upconv(c_in: int, use_bias: bool, c_out: int = outer) -> list[nn.Module]:
            if upsample == "transpose":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=use_bias)]
            return upsample_layer(upsample, c_in, c_out, use_bias)

        if full_res:
            down: list[nn.Module] = [downconv]
            up: list[nn.Module] = [nn.ReLU(True), *upconv(inner * 2, bias, inner), norm_layer(norm, inner)]
            self.stem = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, inner, 3), nn.LeakyReLU(0.2))
            self.head = nn.Sequential(nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(2 * inner, outer, 3), nn.Tanh())
        elif outermost:
            down = [downconv]
            up = [nn.ReLU(True), *upconv(inner * 2, True), nn.Tanh()]
        elif innermost:
            down = [downconv]
            up = [nn.ReLU(True), *upconv(inner, bias), norm_layer(norm, outer)]
        else:
            down = [downconv, norm_layer(norm, inner)]
            up = [nn.ReLU(True), *upconv(inner * 2, bias), norm_layer(norm, outer)]
            if use_dropout:
                up.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*down, *([sub] if sub is not None else []), *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.full_res:  # (B, in_ch, H, W) -> (B, outer, H, W)
            return self.head(torch.cat([self.stem(x), self.model(x)], 1))
        if self.outermost:
            return self.model(x)
        # The reference's in-place LeakyReLU(x) rewrites x before the concatenation, so its skip connection
        # carries leaky_relu(x); written out here without the in-place trick.
        h = nn.functional.leaky_relu(x, 0.2)
        return torch.cat([h, self.model(h)], 1)  # (B, outer, H, W) -> (B, 2 * outer, H, W)


class UnetGenerator(nn.Module):
    """Ronneberger et al.'s U-Net as pix2pix/CycleGAN build it: `num_downs` halvings (7 for unet_128, 8 for
    unet_256), so H and W must be multiples of 2^num_downs. (B, in_ch, H, W) -> (B, out_ch, H, W) in [-1, 1].
    `full_res`: the last layer also sees full-resolution features of the input (`UnetSkipBlock`); the reference's
    U-Net makes every output pixel from the half-resolution level's x2 upsampling, so the finest detail it paints
    is locked to that lattice (docs/cyclegan.md, "The full-resolution U-Net layer")."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, num_downs: int = 8, ngf: int = 64, norm: str = "instance",
                 use_dropout: bool = False, upsample: str = "transpose", full_res: bool = False):
        super().__init__()
        kw = {"norm": norm, "upsample": upsample}
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, sub=block, use_dropout=use_dropout, **kw)
        block = UnetSkipBlock(ngf * 4, ngf * 8, sub=block, **kw)
        block = UnetSkipBlock(ngf * 2, ngf * 4, sub=block, **kw)
        block = UnetSkipBlock(ngf, ngf * 2, sub=block, **kw)
        self.model = UnetSkipBlock(out_ch, ngf, in_ch=in_ch, sub=block, outermost=True, full_res=full_res, **kw)
        self.size_multiple = 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, in_ch, H, W) -> (B, out_ch, H, W)


class NLayerDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): `n_layers` stride-2 4x4 convs, one stride-1, then a 1-channel map of raw
    scores, one per 70x70 patch for n_layers=3. `use_antialias` (CUT's default): each stride-2 conv becomes a
    stride-1 conv followed by `BlurDownsample`. (B, in_ch, H, W) -> (B, 1, H', W')."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 use_minibatch_std: bool = False, use_antialias: bool = False):
        super().__init__()
        bias = _use_bias(norm)
        stride = 1 if use_antialias else 2  # anti-aliased (CUT): stride-1 conv, then BlurDownsample
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=stride, padding=1), nn.LeakyReLU(0.2, True)]
        if use_antialias:
            layers.append(BlurDownsample(ndf))
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
            if use_antialias:
                layers.append(BlurDownsample(ndf * mult))
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
                   norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        if use_minibatch_std:  # Karras et al. 2018; an option, not in the reference
            from ..engine.stabilizers import MinibatchStdDev

            layers.append(MinibatchStdDev(group_size=4))
        layers.append(nn.Conv2d(ndf * mult + (1 if use_minibatch_std else 0), 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, in_ch, H, W) -> (B, 1, H', W')


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("pixelGAN"): judges each pixel's colour alone. (B, in_ch, H, W) -> (B, 1, H, W)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, norm: str = "instance"):
        super().__init__()
        bias = _use_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(norm, ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, in_ch, H, W) -> (B, 1, H, W)


def build_generator(kind: str, in_ch: int, out_ch: int, ngf: int, norm: str, use_dropout: bool, *,
                    upsample: str = "transpose", use_colour_branch: bool = False,
                    use_antialias: bool = False, curve_gain: float = 1.0, unet_full_res: bool = False) -> nn.Module:
    """The reference's `define_G` names: resnet_9blocks, resnet_6blocks, unet_128, unet_256 (`upsample` and
    `use_antialias`, CUT's blur-pool down / bilinear up, apply to the ResNets); "colourtone" is the global
    colour/tone branch alone (`ColourToneGenerator`). With `use_colour_branch` a ResNet becomes the
    zero-initialised detail residual of a `ColourToneGenerator` (colour branch + local edits; identity at init);
    `curve_gain` is the branch's (`ColourToneGenerator`); `unet_full_res` the U-Nets' full-resolution last layer
    (`UnetGenerator`). Weight init: `init_generator`."""
    from .colour import ColourToneGenerator

    if kind == "colourtone":
        return ColourToneGenerator(curve_gain=curve_gain)
    if kind in ("resnet_9blocks", "resnet_6blocks"):
        blocks = 9 if kind == "resnet_9blocks" else 6
        net = ResnetGenerator(in_ch, out_ch, ngf, norm, use_dropout, blocks, upsample, residual=use_colour_branch,
                              use_antialias=use_antialias)
        return ColourToneGenerator(detail=net, curve_gain=curve_gain) if use_colour_branch else net
    if use_colour_branch:
        raise ValueError(f"generator {kind!r}: the colour branch is for the ResNets")
    if kind == "unet_128":
        return UnetGenerator(in_ch, out_ch, 7, ngf, norm, use_dropout, upsample, unet_full_res)
    if kind == "unet_256":
        return UnetGenerator(in_ch, out_ch, 8, ngf, norm, use_dropout, upsample, unet_full_res)
    raise ValueError(f"unknown generator {kind!r}: expected one of {', '.join(GENERATORS)}")


def init_generator(net: nn.Module, kind: str, gain: float) -> nn.Module:
    """`init_weights` for a generator from `build_generator`. A `ColourToneGenerator` keeps PyTorch's default
    init for its colour branch (0.02-scale weights would starve the parameter head of signal); its detail net
    gets `kind`, and both come back to the exact identity (zero last layers)."""
    from ..engine.stabilizers import init_weights
    from .colour import ColourToneGenerator

    if isinstance(net, ColourToneGenerator):
        if net.detail is not None:
            init_weights(net.detail, kind, gain)
        net.reset_identity()
        return net
    return init_weights(net, kind, gain)


# The config fields `generator_for` reads: the options two joined models must share
NET_OPTIONS = ("gen", "channels", "ngf", "norm", "use_dropout", "upsample", "use_colour_branch", "use_antialias",
               "curve_gain", "unet_full_res")


def generator_for(c) -> nn.Module:
    """The generator a config (CycleGANConfig) describes, before weight init: one place for training (every method)
    and inference (`Translator`), so the two always build the same net from the fields in NET_OPTIONS."""
    return build_generator(c.gen, c.channels, c.channels, c.ngf, c.norm, c.use_dropout, upsample=c.upsample,
                           use_colour_branch=c.use_colour_branch, use_antialias=c.use_antialias,
                           curve_gain=c.curve_gain, unet_full_res=c.unet_full_res)


def build_discriminator(kind: str, in_ch: int, ndf: int, n_layers: int, norm: str,
                        use_minibatch_std: bool = False, *, use_antialias: bool = False) -> nn.Module:
    """The reference's `define_D` names: basic (PatchGAN, 3 layers), n_layers, pixel; "dual" is the n_layers
    PatchGAN beside a colour-statistics critic (`colour.DualDiscriminator`). `use_antialias` applies to the
    PatchGANs (CUT's blur-pool); the pixel critic has no downsampling."""
    if kind == "basic":
        return NLayerDiscriminator(in_ch, ndf, 3, norm, use_minibatch_std, use_antialias)
    if kind == "n_layers":
        return NLayerDiscriminator(in_ch, ndf, n_layers, norm, use_minibatch_std, use_antialias)
    if kind == "pixel":
        return PixelDiscriminator(in_ch, ndf, norm)
    if kind == "dual":
        from .colour import ColourStatsDiscriminator, DualDiscriminator

        return DualDiscriminator(NLayerDiscriminator(in_ch, ndf, n_layers, norm, use_minibatch_std, use_antialias),
                                 ColourStatsDiscriminator())
    raise ValueError(f"unknown discriminator {kind!r}: expected one of {', '.join(DISCRIMINATORS)}")
