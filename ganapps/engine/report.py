"""Run reports: reads RUN/metrics.jsonl and writes the self-contained RUN/report.html (plots, samples, verdicts).

Owns `load_records`, `write_report`, `doctor`. Uses matplotlib's Agg canvas (never pyplot's global state);
must not import Typer or a task package.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .checkpoint import write_text_atomic
from .errors import InputError, write_error
from .monitor import (
    D_ACC_OVERPOWER,
    DIVERSITY_COLLAPSE,
    RECALL_COLLAPSE,
    Verdict,
    diagnose,
    format_timeline,
)

_SAMPLE = re.compile(r"^step_(\d+)(.*)\.png$")
_MAX_SAMPLES = 8


def load_records(run_dir: str | os.PathLike) -> list[dict]:
    """The logged records of a run: one dict per line of `RUN/metrics.jsonl`, in file order.

    NaN / Infinity / null values are kept as they are (float nan, inf, None). A truncated last line (a
    trainer killed mid-write) is skipped. Raises `InputError` (a ValueError) naming the file when it is
    missing, and naming the file and line when a line before the last is not a JSON object.
    """
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: not found; is {run_dir} a ganapps run folder?")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records: list[dict] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            if i == last:
                break  # truncated by a write in progress or a killed process
            raise InputError(
                f"{path}:{i + 1}: corrupt line ({err.msg}, column {err.colno}); expected one JSON object per line"
            ) from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{i + 1}: expected a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return records


def _value(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    return float(v)


def _steps(records: Sequence[Mapping]) -> list[float]:
    xs = []
    for i, r in enumerate(records):
        s = _value(r.get("step"))
        xs.append(s if math.isfinite(s) else float(i))
    return xs


def _keys(records: Sequence[Mapping], pred) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for k in r:
            if pred(k):
                seen.setdefault(k, None)
    return sorted(seen)


def _plot(
    records: Sequence[Mapping],
    keys: Sequence[str],
    title: str,
    verdicts: Sequence[Verdict],
    *,
    log: bool = False,
    ylim: tuple[float, float] | None = None,
    hlines: Sequence[tuple[float, str]] = (),
) -> str:
    """One line per key against step, as a base64 PNG. Missing / None / non-finite values leave gaps;
    non-positive values are dropped on a log scale; verdict onsets are dashed vertical lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = _steps(records)
    few = len(records) <= 30
    any_positive = False
    for key in keys:
        ys = []
        for r in records:
            y = _value(r.get(key))
            if not math.isfinite(y) or (log and y <= 0):
                y = math.nan
            any_positive = any_positive or y > 0
            ys.append(y)
        ax.plot(xs, ys, label=key, linewidth=1.2, marker="." if few else None)
    for y, label in hlines:
        ax.axhline(y, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (0, y), xycoords=("axes fraction", "data"), fontsize=7, color="grey", va="bottom")
    for v in verdicts:
        ax.axvline(v.step, color="red" if v.severity == "error" else "orange", linestyle="--", linewidth=0.9)
    if log and any_positive:  # a log axis with nothing positive on it cannot be drawn
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if keys:  # outside the axes: never hides a curve, and avoids the slow "best" placement search
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.subplots_adjust(left=0.08, right=0.76, bottom=0.15, top=0.9)  # fixed: tight_layout costs a draw
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plot_specs(records: Sequence[Mapping]) -> list[tuple[str, list[str], dict]]:
    def health(names):
        return _keys(records, lambda k: k in {f"health/{n}" for n in names})

    known = {"d_acc_real", "d_acc_fake", "d_real_mean", "d_fake_mean", "diversity", "recall"}
    specs = [
        ("Losses and regularisers", _keys(records, lambda k: k.startswith(("loss/", "reg/"))), {}),
        (
            "D accuracy",
            health(["d_acc_real", "d_acc_fake"]),
            {"ylim": (-0.02, 1.02), "hlines": [(D_ACC_OVERPOWER, "overpowering")]},
        ),
        ("D mean output", health(["d_real_mean", "d_fake_mean"]), {}),
        (
            "Sample diversity and recall",
            health(["diversity", "recall"]),
            {"hlines": [(DIVERSITY_COLLAPSE, "diversity collapse"), (RECALL_COLLAPSE, "recall collapse")]},
        ),
        (
            "Stability counters",
            _keys(records, lambda k: k.startswith("health/") and k.removeprefix("health/") not in known),
            {},
        ),
        ("Gradient norms (log)", _keys(records, lambda k: k.startswith("grad/")), {"log": True}),
        ("Learning rates (log)", _keys(records, lambda k: k.startswith("lr/")), {"log": True}),
        ("Evaluation metrics", _keys(records, lambda k: k.startswith("eval/")), {}),
        ("Timing", _keys(records, lambda k: k.startswith("time/")), {}),
    ]
    return [s for s in specs if s[1]]


def _latest_samples(run_dir: Path) -> list[Path]:
    folder = run_dir / "samples"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_file() and (m := _SAMPLE.match(p.name))]
    if not found:
        return []
    newest = max(step for step, _ in found)
    return sorted(p for step, p in found if step == newest)[:_MAX_SAMPLES]


def _latest_values(records: Sequence[Mapping]) -> list[tuple[str, str]]:
    latest: dict[str, object] = {}
    for r in records:
        for k, v in r.items():
            if v is not None:
                latest[k] = v
    rows = []
    for k in sorted(latest):
        v = latest[k]
        rows.append((k, f"{v:.4g}" if isinstance(v, float) else str(v)))
    return rows


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top} tr.error td{background:#fde2e2} tr.warning td{background:#fff4d6}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em} img{max-width:100%}
.ok{color:#1a7f37;font-weight:bold}
"""


def _render(run_dir: Path, records: Sequence[Mapping], verdicts: Sequence[Verdict]) -> str:
    e = html.escape
    steps = [s for s in _steps(records)]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>ganapps report: {e(run_dir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>ganapps run report: {e(run_dir.name)}</h1>",
        f"<p>{e(str(run_dir.resolve()))}<br>{len(records)} logged records",
        f", steps {int(steps[0])} to {int(steps[-1])}" if steps else "",
        f"<br>generated {e(_dt.datetime.now().isoformat(timespec='seconds'))}</p>",
        "<h2>Health verdicts</h2>",
    ]
    if verdicts:
        parts.append("<table><tr><th>step</th><th>severity</th><th>problem</th><th>what was seen</th>"
                     "<th>remedy</th></tr>")
        for v in verdicts:
            parts.append(
                f"<tr class='{e(v.severity)}'><td>{v.step}</td><td>{e(v.severity)}</td><td>{e(v.kind)}</td>"
                f"<td>{e(v.message)}</td><td>{e(v.remedy)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(f"<p class='ok'>{e(format_timeline([]))}</p>")

    parts.append("<h2>Latest samples</h2>")
    samples = _latest_samples(run_dir)
    if samples:
        for p in samples:
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{e(p.name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>samples/{e(p.name)}</figcaption></figure>")
    else:
        parts.append("<p>no samples/step_N.png found</p>")

    parts.append("<h2>Curves</h2>")
    if records:
        for title, keys, kwargs in _plot_specs(records):
            png = _plot(records, keys, title, verdicts, **kwargs)
            parts.append(f"<img alt='{e(title)}' src='data:image/png;base64,{png}'>")
    else:
        parts.append("<p>no records logged yet</p>")

    rows = _latest_values(records)
    if rows:
        parts.append("<h2>Latest values</h2><table><tr><th>key</th><th>value</th></tr>")
        parts.extend(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
        parts.append("</table>")

    parts.append("<h2>Config</h2>")
    config = run_dir / "config.yaml"
    if config.is_file():
        parts.append(f"<pre>{e(config.read_text(encoding='utf-8', errors='replace'))}</pre>")
    else:
        parts.append("<p>config.yaml not found</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(
    run_dir: str | os.PathLike,
    verdicts: Sequence[Verdict] | None = None,
    *,
    records: Sequence[Mapping] | None = None,
) -> Path:
    """Write `RUN/report.html` and return its path.

    The page is self-contained: plots are base64 PNGs (losses and regularisers, D accuracy and mean outputs,
    diversity and recall, stability counters, gradient norms and learning rates on log scales, `eval/*` and
    `time/*` when present), the images of the newest `samples/step_N*.png` are embedded, followed by the
    verdict timeline, the latest value of every key and `config.yaml`. `verdicts` defaults to
    `diagnose(records)`; `records` defaults to `load_records(run_dir)`. Written to a temporary file and
    renamed into place, so a reader never sees half a report; a failed write is a one-line `InputError`
    (`DiskFullError` when the disk is full) and leaves no temporary file.
    """
    run_dir = Path(run_dir)
    if records is None:
        records = load_records(run_dir)
    if verdicts is None:
        verdicts = diagnose(records)
    path = run_dir / "report.html"
    html = _render(run_dir, records, verdicts)
    try:
        write_text_atomic(path, html)
    except OSError as e:  # a full disk or a read-only run folder: one line, nothing half-written left
        raise write_error(e, run_dir, path.name, lambda: len(html.encode())) from None
    return path


def doctor(run_dir: str | os.PathLike) -> tuple[list[Verdict], Path]:
    """Diagnose a run folder: load its records, find problem onsets (`diagnose`), write `RUN/report.html`.

    Returns the verdicts (empty for a healthy run) and the report path. Raises `InputError` for a folder
    without a readable metrics.jsonl.
    """
    records = load_records(run_dir)
    verdicts = diagnose(records)
    return verdicts, write_report(run_dir, verdicts, records=records)
