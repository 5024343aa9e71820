"""The reference code the benchmarks measure against, imported from its own unmodified files (never copied):
pytorch-CycleGAN-and-pix2pix (its `CycleGANModel`, `train.py`, `test.py`) and OpenSTL's ConvLSTM model file, from
the anchors folder `../shared/anchors` beside the project (or $GANAPPS_ANCHORS). `root()` is None when it is not
there; the benchmarks then fall back to their re-implementations and say so.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

ENV = "GANAPPS_ANCHORS"
CYCLEGAN = "pytorch-CycleGAN-and-pix2pix"
OPENSTL = "OpenSTL"


def root() -> Path | None:
    """The anchors folder: $GANAPPS_ANCHORS, else ../shared/anchors from the project root; None when absent."""
    here = Path(__file__).resolve().parents[1]
    for cand in ([Path(os.environ[ENV])] if os.environ.get(ENV) else []) + [here.parent / "shared" / "anchors"]:
        if (cand / CYCLEGAN / "train.py").is_file() and (cand / OPENSTL / "openstl").is_dir():
            return cand
    return None


def cyclegan_dir() -> Path:
    r = root()
    if r is None:
        raise FileNotFoundError(f"no anchors folder (set ${ENV})")
    return r / CYCLEGAN


def reference_cyclegan(crop: int, args: tuple[str, ...] = ()):
    """The reference's own `CycleGANModel` (resnet_9blocks, basic PatchGAN, instance norm, lsgan, batch 1; its
    option parser's defaults for the rest) on CPU, built by its own `create_model` + `setup` as train.py does.
    Returns (model, set_input_batch(real_a, real_b))."""
    import torch

    ref = str(cyclegan_dir())
    if ref not in sys.path:
        sys.path.insert(0, ref)
    from options.train_options import TrainOptions

    from models import create_model

    argv = sys.argv
    sys.argv = ["train.py", "--dataroot", "unused", "--model", "cycle_gan", "--netG", "resnet_9blocks", "--netD",
                "basic", "--norm", "instance", "--load_size", str(crop), "--crop_size", str(crop), "--batch_size",
                "1", *args]
    try:
        opt = TrainOptions().gather_options()
    finally:
        sys.argv = argv
    opt.isTrain, opt.device = True, torch.device("cpu")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints every net
        model = create_model(opt)
        model.setup(opt)

    def set_input(real_a, real_b):
        model.set_input({"A": real_a, "B": real_b, "A_paths": ["a"], "B_paths": ["b"]})

    return model, set_input


def openstl_convlstm():
    """OpenSTL's `ConvLSTM_Model` class from its own `openstl/models/convlstm_model.py` (and the cell from
    `openstl/modules/convlstm_modules.py`), loaded with stub parent packages: OpenSTL's package `__init__` files
    import timm and lightning, which its model file does not need."""
    r = root()
    if r is None:
        raise FileNotFoundError(f"no anchors folder (set ${ENV})")
    base = r / OPENSTL / "openstl"
    for name in ("openstl", "openstl.modules", "openstl.models", "openstl.utils"):
        if name not in sys.modules or not hasattr(sys.modules[name], "__ganapps_stub__"):
            stub = types.ModuleType(name)
            stub.__path__ = [str(base / name.partition(".")[2])] if "." in name else [str(base)]
            stub.__ganapps_stub__ = True
            sys.modules[name] = stub
    cells = _load("openstl.modules.convlstm_modules", base / "modules" / "convlstm_modules.py")
    sys.modules["openstl.modules"].ConvLSTMCell = cells.ConvLSTMCell
    model = _load("openstl.models.convlstm_model", base / "models" / "convlstm_model.py")
    return model.ConvLSTM_Model


def openstl_patch_utils() -> types.ModuleType:
    """OpenSTL's `openstl/utils/predrnn_utils.py` (reshape_patch, reshape_patch_back), loaded on its own."""
    openstl_convlstm()  # the stub packages
    return _load("openstl.utils.predrnn_utils", root() / OPENSTL / "openstl" / "utils" / "predrnn_utils.py")


def _load(name: str, path: Path) -> types.ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
