"""One build step pyproject.toml cannot declare: the top-level models/ folder (the one source of truth for the
shipped default models) is copied into the built package as ganapps/models/, where
`ganapps.engine.checkpoint.shipped_model` finds it with importlib.resources. An editable install reads models/
in the checkout instead, so nothing is copied for it."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).resolve().parent / "models"


class build_py_with_models(build_py):  # noqa: N801 - setuptools command classes are named like commands
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "ganapps" / "models"
        for f in sorted(MODELS.glob("*/*")):
            if f.is_file():
                (dest / f.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest / f.parent.name / f.name)


setup(cmdclass={"build_py": build_py_with_models})
