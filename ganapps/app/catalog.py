"""What the app may load: the shipped models and the run and model folders under the roots given at start-up,
per job (translate, predict, synthesize), and the run folders whose reports the Runs tab shows.

The page never sends a path: it sends the opaque value of an entry this module listed (`shipped:NAME`,
`run:I:REL`), and `Catalog.resolve_model` / `resolve_run` look that value up in a fresh listing. A value that
is not listed now (a crafted `..`, an absolute path, a symlink leading out of its root, a checkpoint folder
inside a run) is refused. Imports the engine and the task packages' configs and inference classes; no Gradio.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..cyclegan.config import CycleGANConfig
from ..cyclegan.pipeline import Translator
from ..engine import checkpoint as ckpt
from ..engine.config import TrainConfig, load_yaml
from ..engine.errors import InputError
from ..engine.inference import InferenceModel
from ..medical.config import MedicalConfig
from ..medical.pipeline import Synthesizer
from ..toy.config import ToyConfig
from ..video.config import VideoConfig
from ..video.pipeline import Predictor

# job -> the inference class that runs it. A task registry will replace these tables.
JOBS: dict[str, type[InferenceModel]] = {"translate": Translator, "predict": Predictor, "synthesize": Synthesizer}
# every task's config, toy included, so a toy run is recognised as such and offered to no job
CONFIGS: dict[str, type[TrainConfig]] = {"translate": CycleGANConfig, "predict": VideoConfig,
                                         "synthesize": MedicalConfig, "toy": ToyConfig}
MAX_DEPTH = 2  # ROOT/run and ROOT/group/run
MAX_ENTRIES = 1000  # folders looked at per root and listing, so a huge tree cannot stall the page
SKIP = {"checkpoints", "samples", "tb", "__pycache__"}


def classify(config_file: str | os.PathLike) -> str | None:
    """The task whose config a config.yaml was written from ("translate", "predict", "synthesize", "toy"), by the
    options only that task's config has; None when it is unreadable or no task (or more than one) fits best."""
    try:
        keys = set(load_yaml(config_file))
    except InputError:
        return None
    base = {f.name for f in dataclasses.fields(TrainConfig)}
    own = {name: {f.name for f in dataclasses.fields(cls)} - base for name, cls in CONFIGS.items()}
    scores = {name: len(keys & fields - set().union(*(v for k, v in own.items() if k != name)))
              for name, fields in own.items()}
    best = max(scores.values())
    winners = [name for name, s in scores.items() if s == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


@dataclasses.dataclass(frozen=True)
class Entry:
    """One choice of a picker: `value` is what the page sends back, `label` what it shows, `path` the folder."""

    value: str
    label: str
    path: Path


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIP


def _weights_folder(folder: Path) -> Path | None:
    """The folder holding weights + config.yaml of a run or model folder, else None (never raises)."""
    if (folder / ckpt.WEIGHTS).is_file() and (folder / ckpt.CONFIG).is_file():
        return folder
    if (folder / "checkpoints").is_dir():
        latest = ckpt.latest_dir(folder / "checkpoints")
        if latest is not None and (latest / ckpt.CONFIG).is_file():
            return latest
    return None


class Catalog:
    """Shipped models (`ckpt.model_dirs()`) and folders under `roots`, listed afresh on every call, so runs that
    appear while the app is up show after a refresh."""

    def __init__(self, roots: tuple[Path, ...] | list[Path] = ()):
        self.roots = [Path(r) for r in roots]
        self._resolved_roots = [Path(r).resolve() for r in roots]

    # ------------------------------------------------------------------ listing

    def _folders(self, index: int) -> list[tuple[str, Path]]:
        """(relative posix path, folder) of every folder under root `index` down to MAX_DEPTH that stays inside
        the root once resolved; the root itself is ''. A run or model folder is not descended into."""
        root, real_root = self.roots[index], self._resolved_roots[index]
        out: list[tuple[str, Path]] = []
        frontier = [("", root)]
        seen = 0
        while frontier:
            rel, folder = frontier.pop(0)
            try:
                real = folder.resolve()
            except OSError:
                continue
            if not real.is_relative_to(real_root) or not real.is_dir():
                continue  # a symlink leading out of the root, or something that is not a folder
            out.append((rel, folder))
            seen += 1
            if seen >= MAX_ENTRIES or rel.count("/") + (rel != "") >= MAX_DEPTH or _weights_folder(folder):
                continue
            try:
                children = sorted(p for p in folder.iterdir() if not _is_hidden(p.name))
            except OSError:
                continue
            frontier += [(f"{rel}/{c.name}" if rel else c.name, c) for c in children if c.is_dir()]
        return out

    def _label(self, index: int, rel: str) -> str:
        name = self.roots[index].name or str(self.roots[index])
        return f"{name}/{rel}" if rel else name

    def shipped(self, job: str) -> list[Entry]:
        """Shipped models for `job`, the job's default model first; a name found in several model folders is
        the first one's (as `ckpt.shipped_model` picks)."""
        default = JOBS[job].default_model
        found: dict[str, Path] = {}
        for d in ckpt.model_dirs():
            try:
                subs = sorted(p for p in d.iterdir() if p.is_dir() and not _is_hidden(p.name))
            except OSError:
                continue
            for sub in subs:
                if sub.name not in found and _weights_folder(sub) == sub and classify(sub / ckpt.CONFIG) == job:
                    found[sub.name] = sub
        names = sorted(found, key=lambda n: (n != default, n))
        return [Entry(f"shipped:{n}", f"{n} (shipped)", found[n]) for n in names]

    def runs_for(self, job: str) -> list[Entry]:
        """Run and model folders under the roots whose config is `job`'s task's, by label."""
        out = []
        for i in range(len(self.roots)):
            for rel, folder in self._folders(i):
                weights = _weights_folder(folder)
                if weights is not None and classify(weights / ckpt.CONFIG) == job:
                    kind = "run" if weights != folder else "model folder"
                    out.append(Entry(f"run:{i}:{rel}", f"{self._label(i, rel)} ({kind})", folder))
        return sorted(out, key=lambda e: e.label)

    def models(self, job: str) -> list[Entry]:
        """What the model picker of `job` offers: shipped models, then run and model folders."""
        if job not in JOBS:
            raise ValueError(f"job {job!r}: expected one of {', '.join(JOBS)}")
        return self.shipped(job) + self.runs_for(job)

    def runs(self) -> list[Entry]:
        """Run folders (a metrics.jsonl) under the roots, for the Runs tab, by label."""
        return sorted((Entry(f"run:{i}:{rel}", self._label(i, rel), folder)
                       for i in range(len(self.roots)) for rel, folder in self._folders(i)
                       if (folder / "metrics.jsonl").is_file()), key=lambda e: e.label)

    def describe(self, job: str, value: object) -> str:
        """One line about a picker entry: the start of a shipped model's card, or which weights of a run or
        model folder are used."""
        folder = self.resolve_model(job, value)
        card = folder / "card.yaml"
        if card.is_file():
            import yaml

            try:
                what = str((yaml.safe_load(card.read_text()) or {}).get("what", "")).strip()
            except (yaml.YAMLError, OSError, AttributeError):
                what = ""
            what = " ".join(what.split())
            if what:
                return what if len(what) <= 240 else what[:240].rsplit(" ", 1)[0] + " ..."
        weights = _weights_folder(folder)
        return f"weights: {weights.relative_to(folder).as_posix() if weights != folder else '.'}/{ckpt.WEIGHTS}" \
            if weights else ""

    # ------------------------------------------------------------------ resolving what the page sent

    def _refuse(self, what: str, value: object) -> InputError:
        roots = ", ".join(str(r) for r in self.roots) or "none given"
        return InputError(f"{what} {str(value)[:200]!r}: not one of the choices this app offers (shipped models "
                          f"and folders under --runs: {roots})")

    def resolve_model(self, job: str, value: object) -> Path:
        """The folder of the picker entry `value` of `job`, looked up in a fresh listing; refused otherwise."""
        for entry in self.models(job) if isinstance(value, str) else []:
            if entry.value == value:
                return entry.path.resolve()
        raise self._refuse("model", value)

    def resolve_run(self, value: object) -> Path:
        """The run folder of the Runs tab entry `value`, looked up in a fresh listing; refused otherwise."""
        for entry in self.runs() if isinstance(value, str) else []:
            if entry.value == value:
                return entry.path.resolve()
        raise self._refuse("run", value)
