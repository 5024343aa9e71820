"""GAN objectives behind one signature: `loss.d(real_logits, fake_logits)` and `loss.g(fake_logits, real_logits)`.
Pure tensor maths on raw discriminator outputs; imports only torch (never a task package, Typer or a data format).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganapps.engine.errors import InputError

LOSSES: tuple[str, ...] = ("vanilla", "nonsaturating", "lsgan", "wasserstein", "hinge", "relativistic")

ALIASES: dict[str, str] = {
    "ns": "nonsaturating",
    "ls": "lsgan",
    "least_squares": "lsgan",
    "wgan": "wasserstein",
    "ragan": "relativistic",
}

# Kinds whose D target for real samples can be smoothed (Salimans et al. 2016).
_SMOOTHABLE = ("vanilla", "nonsaturating", "lsgan", "relativistic")


def _resolve(name: str) -> str:
    if not isinstance(name, str) or (name not in LOSSES and name not in ALIASES):
        aliases = ", ".join(f"{k}->{v}" for k, v in ALIASES.items())
        raise InputError(
            f"unknown GAN loss {name!r}: expected one of {', '.join(LOSSES)} (aliases: {aliases})"
        )
    return ALIASES.get(name, name)


def _bce(logits: Tensor, target: float) -> Tensor:
    """Mean binary cross-entropy of raw logits against a constant target in [0, 1]."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class GANLoss:
    """One GAN objective, selected by name; every kind has the same two methods.

    `d(real_logits, fake_logits)` is the discriminator's (critic's) loss and `g(fake_logits, real_logits=None)`
    the generator's; both take raw outputs of any shape (`(B,)`, `(B, 1)`, PatchGAN `(B, 1, H, W)`, ...), average
    over all elements and return a scalar to minimise. Logits are unbounded reals (no sigmoid applied).

    Kinds (`LOSSES`; aliases in `ALIASES`):
      - "vanilla": the minimax game of Goodfellow et al. 2014. D: BCE(real, 1) + BCE(fake, 0);
        G minimises E[log(1 - D(G(z)))] = -mean(softplus(fake)), which saturates when D is confident.
      - "nonsaturating": same D; G minimises -E[log D(G(z))] = mean(softplus(-fake)) (Goodfellow et al. 2014).
      - "lsgan": least squares, Mao et al. 2017. D: mean((real - b)^2) + mean((fake - a)^2);
        G: mean((fake - c)^2); defaults a=0, b=1, c=1. No 0.5 factor (as pytorch-CycleGAN-and-pix2pix's
        `GANLoss`); a task that wants the paper's 1/2 applies it.
      - "wasserstein": WGAN, Arjovsky et al. 2017. D: mean(fake) - mean(real); G: -mean(fake). Needs a Lipschitz
        constraint from elsewhere (gradient penalty, spectral norm).
      - "hinge": Lim & Ye 2017 / Miyato et al. 2018. D: mean(relu(1 - real)) + mean(relu(1 + fake));
        G: -mean(fake).
      - "relativistic": relativistic average standard GAN (RaSGAN), Jolicoeur-Martineau 2018.
        D: BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0); G: BCE(fake - mean(real), 1) +
        BCE(real - mean(fake), 0), so G needs `real_logits`. Here mean(.) is over all elements of the other batch.

    Args:
        name: a kind or an alias.
        real_label: D's target for real samples; < 1 is one-sided label smoothing (Salimans et al. 2016,
            "Improved Techniques for Training GANs"), e.g. 0.9. Only the real target is smoothed, never the fake one
            nor G's. Must be in (0, 1] for vanilla/nonsaturating/relativistic; for lsgan it sets `b`;
            hinge and wasserstein have no target, so anything but 1.0 is an error.
        a, b, c: lsgan targets for fake (D), real (D) and fake (G); an error for other kinds.

    Example:
        >>> loss = GANLoss("hinge")
        >>> float(loss.d(torch.full((4, 1), 2.0), torch.full((4, 1), -2.0)))
        0.0
    """

    def __init__(
        self,
        name: str,
        *,
        real_label: float = 1.0,
        a: float | None = None,
        b: float | None = None,
        c: float | None = None,
    ) -> None:
        self.name = _resolve(name)
        real_label = float(real_label)
        if real_label != 1.0 and self.name not in _SMOOTHABLE:
            raise InputError(
                f"real_label={real_label} given for GAN loss {self.name!r}: label smoothing applies only to "
                f"{', '.join(_SMOOTHABLE)}; expected 1.0"
            )
        if self.name in ("vanilla", "nonsaturating", "relativistic") and not 0.0 < real_label <= 1.0:
            raise InputError(
                f"real_label={real_label} for GAN loss {self.name!r}: expected a value in (0, 1]"
            )
        if self.name != "lsgan" and (a is not None or b is not None or c is not None):
            raise InputError(f"targets a, b, c given for GAN loss {self.name!r}: they belong to 'lsgan' only")
        if self.name == "lsgan" and b is not None and real_label != 1.0:
            raise InputError("both b and real_label given for GAN loss 'lsgan': real_label sets b; give one")
        self.real_label = real_label
        # lsgan targets; unused by the other kinds.
        self.a = 0.0 if a is None else float(a)
        self.b = (real_label if b is None else float(b)) if self.name == "lsgan" else 1.0
        self.c = 1.0 if c is None else float(c)

    @property
    def threshold(self) -> float:
        """The D output that separates "real" from "fake" calls: the midpoint of the lsgan targets,
        0 for every loss on logits or critic values (used by the health monitor's D accuracy)."""
        return (self.a + self.b) / 2 if self.name == "lsgan" else 0.0

    def __repr__(self) -> str:
        extra = f", a={self.a}, b={self.b}, c={self.c}" if self.name == "lsgan" else ""
        return f"GANLoss({self.name!r}, real_label={self.real_label}{extra})"

    def d(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator (critic) loss, a scalar to minimise. Logits of any shape; fakes should be detached
        by the caller when only D is updated."""
        kind = self.name
        if kind in ("vanilla", "nonsaturating"):
            return _bce(real_logits, self.real_label) + _bce(fake_logits, 0.0)
        if kind == "lsgan":
            return (real_logits - self.b).square().mean() + (fake_logits - self.a).square().mean()
        if kind == "wasserstein":
            return fake_logits.mean() - real_logits.mean()
        if kind == "hinge":
            return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        # relativistic
        return _bce(real_logits - fake_logits.mean(), self.real_label) + _bce(
            fake_logits - real_logits.mean(), 0.0
        )

    def g(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """Generator loss, a scalar to minimise. `real_logits` is required by "relativistic" and ignored
        by every other kind."""
        kind = self.name
        if kind == "vanilla":
            # log(1 - sigmoid(f)) = -softplus(f), stable for any f.
            return -F.softplus(fake_logits).mean()
        if kind == "nonsaturating":
            return F.softplus(-fake_logits).mean()
        if kind == "lsgan":
            return (fake_logits - self.c).square().mean()
        if kind in ("wasserstein", "hinge"):
            return -fake_logits.mean()
        if real_logits is None:
            raise ValueError("GAN loss 'relativistic': g() needs real_logits (D's outputs on a real batch)")
        return _bce(fake_logits - real_logits.mean(), 1.0) + _bce(real_logits - fake_logits.mean(), 0.0)


def get_loss(name: str, **kwargs: float) -> GANLoss:
    """The GAN loss called `name` (a kind in `LOSSES` or an alias in `ALIASES`); kwargs go to `GANLoss`.

    Raises InputError (a ValueError) naming the choices for an unknown name."""
    return GANLoss(name, **kwargs)
