"""Image-to-image translation (`ganapps cyclegan`) on the engine: CycleGAN (Zhu et al. 2017), CUT and FastCUT
(Park et al. 2020, `cut.py`), pix2pix (Isola et al. 2017, paired data, `pix2pix.py`), picked by `--method`.
config -> data -> nets -> task (training; `make_task` picks the method's) -> pipeline (inference: `Translator`)
-> cli, top to bottom; SPEC registers the task (ganapps.tasks)."""

from ..engine.spec import TaskSpec
from .config import PRESETS, CycleGANConfig
from .pipeline import Translator

SPEC = TaskSpec(
    name="cyclegan", help="Image-to-image translation (CycleGAN, CUT, FastCUT, pix2pix): photo <-> painting, "
                          "horse <-> zebra...",
    train_help="Train a translation model on two image domains: --method cyclegan (default; the `default` "
               "preset's recipe unless --preset reference), cut, fastcut or pix2pix (paired data), the last three "
               "with their reference's recipe.",
    config=CycleGANConfig, task="ganapps.cyclegan.task:make_task", presets=PRESETS, inference=Translator,
    cli="ganapps.cyclegan.cli:app",
)

__all__ = ["SPEC", "Translator"]
