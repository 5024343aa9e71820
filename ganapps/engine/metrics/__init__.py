"""GAN evaluation metrics that work offline: FID/KID/IS, any-feature Frechet and kernel distances, sliced
Wasserstein distance, precision/recall/density/coverage, PSNR/SSIM/MS-SSIM, memorization audit, checkerboard index.
Must not import Typer or any task package; never downloads weights.
"""

from ganapps.engine.metrics.checkerboard import checkerboard_index, lattice_energy_index
from ganapps.engine.metrics.features import (
    Extractor,
    PixelExtractor,
    as_images,
    extract_features,
    feature_statistics,
    iter_image_batches,
    list_image_files,
    load_images,
    open_images,
    source_statistics,
    statistics_cache_key,
)
from ganapps.engine.metrics.frechet import fid_from_features, frechet_distance, small_sample_note
from ganapps.engine.metrics.image_quality import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_diversity, psnr, ssim
from ganapps.engine.metrics.inception import (
    FID_WEIGHTS_FILENAME,
    FID_WEIGHTS_URL,
    FIDInceptionV3,
    InceptionExtractor,
    fid_inception_from_state_dict,
    find_inception_weights,
    inception_score,
    load_fid_inception,
)
from ganapps.engine.metrics.kid import KID, kid_from_features, polynomial_mmd2
from ganapps.engine.metrics.memorization import Memorization, memorization_audit
from ganapps.engine.metrics.prdc import PRDC, prdc
from ganapps.engine.metrics.swd import SWD, laplacian_pyramid, sliced_wasserstein_distance

__all__ = [
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "KID",
    "MS_SSIM_WEIGHTS",
    "PRDC",
    "SWD",
    "Extractor",
    "FIDInceptionV3",
    "InceptionExtractor",
    "Memorization",
    "PixelExtractor",
    "as_images",
    "checkerboard_index",
    "extract_features",
    "feature_statistics",
    "fid_from_features",
    "fid_inception_from_state_dict",
    "find_inception_weights",
    "frechet_distance",
    "small_sample_note",
    "inception_score",
    "iter_image_batches",
    "kid_from_features",
    "laplacian_pyramid",
    "lattice_energy_index",
    "list_image_files",
    "load_fid_inception",
    "load_images",
    "memorization_audit",
    "ms_ssim",
    "ms_ssim_diversity",
    "open_images",
    "polynomial_mmd2",
    "prdc",
    "psnr",
    "sliced_wasserstein_distance",
    "source_statistics",
    "ssim",
    "statistics_cache_key",
]
