"""`ganapps metrics ...`: compare image sets from the command line. Options are resolved here and each command
calls ganapps.engine.metrics; no metric logic lives in this file. Bad input raises InputError (exit 2).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ganapps.engine.metrics import (
    Extractor,
    InceptionExtractor,
    PixelExtractor,
    extract_features,
    frechet_distance,
    kid_from_features,
    list_image_files,
    memorization_audit,
    ms_ssim_diversity,
    prdc,
    sliced_wasserstein_distance,
    small_sample_note,
    source_statistics,
)

app = typer.Typer(
    help=(
        "Compare two image sets. A is the reference (real or training) set, B the generated one; each is a "
        "folder of images or a .pt/.npy tensor (N, C, H, W) in [-1, 1] (uint8 in [0, 255] also accepted). "
        "FID, KID and PRDC use the FID Inception network, whose weights are read from a local file "
        "(--inception-weights, $GANAPPS_INCEPTION_WEIGHTS or the torch hub cache) and never downloaded; "
        "--features pixels needs no weights. SWD needs no weights."
    ),
    no_args_is_help=True,
)


class Features(str, Enum):
    inception = "inception"
    pixels = "pixels"


class Normalize(str, Enum):
    per_set = "per-set"
    reference = "reference"


SetA = Annotated[
    Path, typer.Argument(help="Reference set: image folder or .pt/.npy file.", show_default=False)
]
SetB = Annotated[
    Path, typer.Argument(help="Generated set: image folder or .pt/.npy file.", show_default=False)
]
FeaturesOpt = Annotated[
    Features, typer.Option("--features", help="Feature space: FID Inception pool3, or downsampled pixels.")
]
PixelSize = Annotated[
    int, typer.Option("--pixel-size", min=1, help="Side of the images for --features pixels.")
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--inception-weights", help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID weights)."
    ),
]
NoVerify = Annotated[
    bool, typer.Option("--no-verify", help="Skip the sha256 check of the Inception weights.")
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per feature-extraction batch.")]
Device = Annotated[
    str, typer.Option("--device", help="Torch device for the Inception network (cpu, cuda, ...).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


def _extractor(
    features: Features, pixel_size: int, weights: Path | None, no_verify: bool, device: str
) -> Extractor:
    if features is Features.pixels:
        return PixelExtractor(pixel_size)
    return InceptionExtractor(weights, output="pool", device=device, verify=not no_verify)


# the feature-space options of fid, kid and prdc, in their command-line order: (parameter, annotation, default)
FEATURE_OPTIONS = (
    ("features", FeaturesOpt, Features.inception),
    ("pixel_size", PixelSize, 16),
    ("inception_weights", WeightsOpt, None),
    ("no_verify", NoVerify, False),
    ("batch_size", BatchSize, 50),
    ("device", Device, "cpu"),
)


def _feature_options(command: Callable) -> Callable:
    """FEATURE_OPTIONS declared once for every command that takes them: `command` takes `extractor: Extractor`
    followed by `batch_size: int`; Typer sees those two replaced by FEATURE_OPTIONS, and `command` gets the
    Extractor they select (and batch_size)."""
    sig = inspect.signature(command, eval_str=True)
    params = list(sig.parameters.values())
    at = [p.name for p in params].index("extractor")
    if params[at + 1].name != "batch_size":
        raise TypeError(f"{command.__name__}: `extractor` must be followed by `batch_size`")
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    options = [inspect.Parameter(name, kind, annotation=hint, default=default) for name, hint, default in FEATURE_OPTIONS]

    @functools.wraps(command)
    def with_extractor(**kw) -> None:
        chosen = [kw.pop(name) for name, _, _ in FEATURE_OPTIONS if name != "batch_size"]
        command(extractor=_extractor(*chosen), **kw)

    with_extractor.__signature__ = sig.replace(parameters=params[:at] + options + params[at + 2:])  # type: ignore[attr-defined]
    return with_extractor


def _features(source: Path, extractor: Extractor, batch_size: int, quiet: bool) -> np.ndarray:
    return extract_features(
        source, extractor, batch_size, progress=not quiet, desc=source.name or str(source)
    )


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, allow_nan=False, default=float))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v:.4f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, list):
            value = json.dumps(value)
        print(f"{key}: {value}")


@app.command()
@_feature_options
def fid(
    a: SetA,
    b: SetB,
    extractor: Extractor,
    batch_size: int,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the folder cache.")
    ] = False,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """Frechet distance between Gaussians fitted to features of A and B (FID with Inception features).
    Folder statistics are cached in ~/.cache/ganapps/stats ($GANAPPS_CACHE_DIR)."""
    stats = [source_statistics(s, extractor, batch_size, not quiet, use_cache=not no_cache, with_count=True)
             for s in (a, b)]
    value = frechet_distance(*stats[0][:2], *stats[1][:2])
    result = {"metric": "fid", "fid": value, "features": extractor.name, "a": str(a), "b": str(b),
              "images_a": stats[0][2], "images_b": stats[1][2]}
    note = small_sample_note(stats[0][2], stats[1][2], dims=len(stats[0][0]))
    if note:
        result["warning"] = note
        if not json_out:
            print(f"warning: {note}", file=sys.stderr)
    _emit(result, json_out)


@app.command()
@_feature_options
def kid(
    a: SetA,
    b: SetB,
    extractor: Extractor,
    batch_size: int,
    subsets: Annotated[int, typer.Option("--subsets", min=1, help="Number of random subsets.")] = 100,
    subset_size: Annotated[
        int, typer.Option("--subset-size", min=2, help="Samples per subset (clamped to N).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the subset draws.")] = 0,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, mean and std over subsets."""
    feats_a = _features(a, extractor, batch_size, quiet)
    feats_b = _features(b, extractor, batch_size, quiet)
    result = kid_from_features(feats_a, feats_b, num_subsets=subsets, subset_size=subset_size, seed=seed)
    _emit(
        {
            "metric": "kid",
            "kid": result.mean,
            "kid_std": result.std,
            "subset_size": min(subset_size, len(feats_a), len(feats_b)),
            "features": extractor.name,
            "n_a": len(feats_a),
            "n_b": len(feats_b),
        },
        json_out,
    )


@app.command()
def swd(
    a: SetA,
    b: SetB,
    batch_size: BatchSize = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed of patch positions and directions.")] = 0,
    normalize: Annotated[
        Normalize,
        typer.Option(
            "--normalize",
            help="per-set: each set by its own patch statistics (ProGAN; blind to global brightness/colour "
            "shifts). reference: both by A's, so such shifts count.",
        ),
    ] = Normalize.per_set,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """Sliced Wasserstein distance x 1e3 on Laplacian-pyramid patches (progressive GAN); no weights needed."""
    result = sliced_wasserstein_distance(
        a,
        b,
        seed=seed,
        batch_size=batch_size,
        progress=not quiet,
        normalize=normalize.value.replace("-", "_"),
    )
    _emit(
        {
            "metric": "swd",
            "swd_x1e3_avg": result.mean,
            "swd_x1e3": {str(res): v for res, v in result.per_level.items()},
            "normalize": normalize.value,
            "a": str(a),
            "b": str(b),
        },
        json_out,
    )


@app.command("prdc")
@_feature_options
def prdc_command(
    a: SetA,
    b: SetB,
    extractor: Extractor,
    batch_size: int,
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest neighbours defining each ball.")] = 5,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """Precision, recall, density, coverage of B (generated) against A (real), k-NN balls in feature space."""
    feats_a = _features(a, extractor, batch_size, quiet)
    feats_b = _features(b, extractor, batch_size, quiet)
    result = prdc(feats_a, feats_b, k=k)
    _emit(
        {
            "metric": "prdc",
            "precision": result.precision,
            "recall": result.recall,
            "density": result.density,
            "coverage": result.coverage,
            "k": k,
            "features": extractor.name,
            "n_a": len(feats_a),
            "n_b": len(feats_b),
        },
        json_out,
    )


@app.command()
def diversity(
    a: SetA,
    b: Annotated[
        Path | None, typer.Argument(help="Optional second set, reported alongside.", show_default=False)
    ] = None,
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="Random pairs of distinct images.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pair draws.")] = 0,
    batch_size: BatchSize = 64,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """MS-SSIM diversity: mean MS-SSIM over random pairs within each set (lower = more diverse; 1 = collapsed)."""
    result: dict = {"metric": "ms_ssim_diversity", "pairs": pairs}
    for key, source in (("a", a), ("b", b)):
        if source is not None:
            result[f"ms_ssim_{key}"] = ms_ssim_diversity(
                source, num_pairs=pairs, seed=seed, batch_size=batch_size
            )
            result[key] = str(source)
    _emit(result, json_out)


def _names(source: Path, n: int) -> list[str]:
    return [p.name for p in list_image_files(source)] if source.is_dir() else [str(i) for i in range(n)]


@app.command()
def memorization(
    a: Annotated[
        Path, typer.Argument(help="Training set: image folder or .pt/.npy file.", show_default=False)
    ],
    b: SetB,
    features: Annotated[
        Features, typer.Option("--features", help="Feature space in which copies are measured.")
    ] = Features.pixels,
    pixel_size: PixelSize = 32,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", min=0.0, help="Near-copy: NN distance < threshold x median train NN gap."
        ),
    ] = 0.5,
    inception_weights: WeightsOpt = None,
    no_verify: NoVerify = False,
    batch_size: BatchSize = 50,
    device: Device = "cpu",
    show: Annotated[
        int, typer.Option("--show", min=0, help="How many closest generated samples to list.")
    ] = 10,
    json_out: JsonOpt = False,
    quiet: Quiet = False,
) -> None:
    """Memorization audit: share of generated samples (B) that are near-copies of a training sample (A)."""
    extractor = _extractor(features, pixel_size, inception_weights, no_verify, device)
    feats_train = _features(a, extractor, batch_size, quiet)
    feats_gen = _features(b, extractor, batch_size, quiet)
    report = memorization_audit(feats_gen, feats_train, threshold=threshold)
    gen_names, train_names = _names(b, len(feats_gen)), _names(a, len(feats_train))
    closest = np.argsort(report.ratios, kind="stable")[:show]
    result = {"metric": "memorization", **report.summary(), "features": extractor.name}
    result["n_flagged"] = int((report.ratios < threshold).sum())
    result["closest"] = [
        {
            "generated": gen_names[i],
            "train": train_names[report.nearest_train[i]],
            "ratio": float(report.ratios[i]),
        }
        for i in closest
    ]
    _emit(result, json_out)


__all__ = ["app"]
