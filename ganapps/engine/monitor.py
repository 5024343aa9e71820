"""Training health verdicts read from logged records (collapse, D overpowering, vanishing G gradients,
divergence). The per-batch signals they read come from `engine.health` (`batch_health`, re-exported here).

Owns `Verdict`, `diagnose`, `HealthMonitor`, `format_timeline`. Imports torch only: never Typer, a task
package, the trainer or a plotting library.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import re
from collections import deque
from collections.abc import Iterable, Mapping

from .health import batch_health as batch_health  # re-exported: callers read health and verdicts here

# ---------------------------------------------------------------------------------------------------------
# Thresholds. Each was chosen so that a healthy run (D accuracy 0.5-0.9, diversity ~1, recall 0.5-0.9,
# gradient norms within a factor ~10 of their usual size) produces no verdict; every sustained condition
# must hold on *each* of the last `window` records that carry its keys.
# ---------------------------------------------------------------------------------------------------------
D_ACC_OVERPOWER = 0.95
"""d_overpowering: D accuracy on real AND on fake above this on every record of the window."""
D_LOSS_NEAR_ZERO = 0.05
"""d_overpowering confirmation: D loss in [0, 0.05) on every record (saturating / hinge / LS losses;
a negative Wasserstein D loss never counts)."""
DIVERSITY_COLLAPSE = 0.4
"""mode_collapse: mean pairwise distance of fakes below 0.4x that of reals on every record of the window."""
RECALL_COLLAPSE = 0.25
"""mode_collapse: improved k-NN recall below 0.25 on every record of the window."""
EXPLODE_FACTOR = 100.0
"""diverging: |value| at the newest record >= 100 x max(|value| at the oldest record of the window, floor)."""
EXPLODE_FLOOR = 1.0
"""diverging: the floor above, so that a loss or norm must end above 100 to count as exploding; small
quantities (an R1 term going 1e-3 -> 0.5, a norm 1e-2 -> 3 early in training) move 100x in healthy runs."""
VANISH_RELATIVE = 1e-4
"""vanishing_g_grad: every generator gradient norm below 1e-4 x its running median before the window ..."""
VANISH_ABSOLUTE = 1e-6
"""... or below 1e-6 in absolute terms, on every record of the window ..."""
D_CONFIDENT_ACC_FAKE = 0.9
"""... while D is confident: mean fake accuracy over the window above 0.9 (assumed when not logged)."""
WARMUP_RECORDS = 10
"""The first records are a burn-in for the three sustained conditions: a fresh G produces a narrow blob
(diversity and recall near 0) and a fresh D wins easily. Divergence is checked from the first record."""

KINDS = ("diverging", "d_overpowering", "vanishing_g_grad", "mode_collapse")
SEVERITIES = ("warning", "error")

REMEDIES = {
    "d_overpowering": (
        "slow D down: lower the D learning rate (TTUR, e.g. lr_d = lr_g / 4) or train it less often; add an "
        "R1 or gradient penalty; add annealed instance noise; use differentiable/adaptive augmentation "
        "(DiffAugment, ADA) on both real and fake; one-sided label smoothing (real target 0.9)"
    ),
    "mode_collapse": (
        "add a minibatch standard-deviation layer to D; use the non-saturating or hinge loss with R1; lower "
        "the G learning rate; sample from an EMA generator; use a larger batch; try LeCam regularisation or "
        "feature matching (unrolled GANs are not available in ganapps)"
    ),
    "diverging": (
        "lower the learning rates; enable gradient clipping; add spectral norm or a gradient penalty "
        "(WGAN-GP / R1); disable AMP (use_amp false); resume from the last healthy checkpoint"
    ),
    "vanishing_g_grad": (
        "use the non-saturating loss instead of minimax (log(1 - D(G(z))) saturates once D is confident); "
        "lower the D capacity or learning rate; add annealed instance noise"
    ),
}

_GEN_NORM = re.compile(r"^grad/gen[^/]*_norm$")
_GROWTH = re.compile(r"^(loss/.+|reg/.+|grad/.+_norm)$")


# ---------------------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Verdict:
    """One diagnosed problem, reported at the step where it started to hold.

    `kind` is one of "diverging", "d_overpowering", "vanishing_g_grad", "mode_collapse"; `severity` is
    "error" (the run is broken) or "warning" (the run is unhealthy); `remedy` names concrete options.
    """

    step: int
    kind: str
    message: str
    remedy: str
    severity: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Verdict.kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"Verdict.severity: expected one of {', '.join(SEVERITIES)}, got {self.severity!r}")

    def to_dict(self) -> dict[str, object]:
        """Plain dict (JSON-ready) with keys step, kind, message, remedy, severity."""
        return dataclasses.asdict(self)


def _num(record: Mapping, key: str) -> float | None:
    """The finite float under `key`, or None when missing, null, non-numeric, NaN or infinite."""
    v = record.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _sum_if_all_finite(record: Mapping, prefix: str) -> float | None:
    keys = [k for k in record if k.startswith(prefix)]
    vals = [_num(record, k) for k in keys]
    if not vals or any(v is None for v in vals):
        return None
    return sum(vals)


def _slope(values: list[float]) -> float:
    n = len(values)
    xm, ym = (n - 1) / 2, sum(values) / n
    return sum((i - xm) * (y - ym) for i, y in enumerate(values)) / sum((i - xm) ** 2 for i in range(n))


class _RunningMedian:
    """Median of a growing stream in O(log n) per value (two heaps)."""

    def __init__(self) -> None:
        self._low: list[float] = []  # max-heap (negated) of the lower half
        self._high: list[float] = []  # min-heap of the upper half

    def __len__(self) -> int:
        return len(self._low) + len(self._high)

    def add(self, v: float) -> None:
        heapq.heappush(self._low, -v)
        heapq.heappush(self._high, -heapq.heappop(self._low))
        if len(self._high) > len(self._low):
            heapq.heappush(self._low, -heapq.heappop(self._high))

    def median(self) -> float:
        if len(self._low) > len(self._high):
            return -self._low[0]
        return (-self._low[0] + self._high[0]) / 2


class _Onset:
    """Onset detector with hysteresis: reports when the window condition starts to hold, and re-arms only
    after `window` consecutive records that are individually fine (a recovery), so a long bad stretch with
    a few noisy good records inside is reported once."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.active = False
        self.good = 0

    def step(self, holds: bool, record_bad: bool) -> bool:
        self.good = 0 if record_bad else self.good + 1
        if self.active and self.good >= self.window:
            self.active = False
        if holds and not self.active:
            self.active = True
            return True
        return False


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class HealthMonitor:
    """Online diagnosis of a training run from its logged records (the rows of RUN/metrics.jsonl).

    `update(record)` returns the verdicts that start at that record; `verdicts` holds all so far. Feeding
    the records of a run one by one gives exactly `diagnose(records)`. Conditions (thresholds are the module
    constants; "sustained" = on each of the last `window` records that carry the needed keys, after the first
    `warmup` records of the run):

    - diverging (error): a non-finite `loss/*` or `reg/*` value; `health/nonfinite` or `health/rollbacks`
      increasing; or a `loss/*`, `reg/*` or `grad/*_norm` growing >= 100x over the window (ending above 100).
    - d_overpowering (warning): sustained D accuracy > 0.95 on real and on fake, confirmed by a rising
      G loss (sum of `loss/g*`, least-squares slope > 0) or a D loss (sum of `loss/d*`) in [0, 0.05);
      accuracies alone suffice when no loss is logged.
    - vanishing_g_grad (warning): every `grad/gen*_norm` sustained below 1e-4 x its running median earlier
      in the run, or below 1e-6, while D is confident (mean `health/d_acc_fake` > 0.9 when logged).
    - mode_collapse (warning): sustained `health/diversity` < 0.4 or `health/recall` < 0.25.

    A verdict is reported once at its onset, and again only after a recovery (`window` consecutive records
    that individually look fine: no divergence event, accuracies <= 0.95, diversity and recall above their
    thresholds, G norms not vanished) followed by a relapse. A few noisy good records inside a long bad
    stretch do not re-trigger it.
    """

    def __init__(self, window: int = 5, *, warmup: int = WARMUP_RECORDS) -> None:
        if not isinstance(window, int) or window < 2:
            raise ValueError(f"HealthMonitor: window must be an integer >= 2, got {window!r}")
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"HealthMonitor: warmup must be an integer >= 0, got {warmup!r}")
        self.window = window
        self.warmup = warmup
        self._verdicts: list[Verdict] = []
        self._n = 0
        self._onsets = {kind: _Onset(window) for kind in KINDS}
        # diverging
        self._growth: dict[str, deque[float]] = {}
        self._prev_counters: dict[str, float] = {}
        # d_overpowering: (step, acc_real, acc_fake, g_loss, d_loss)
        self._acc: deque[tuple[int, float, float, float | None, float | None]] = deque(maxlen=window)
        # vanishing_g_grad: (step, vanished, {key: norm}, acc_fake)
        self._gen: deque[tuple[int, bool, dict[str, float], float | None]] = deque(maxlen=window)
        self._gen_median: dict[str, _RunningMedian] = {}
        # mode_collapse
        self._div: deque[float] = deque(maxlen=window)
        self._rec: deque[float] = deque(maxlen=window)
        self._div_low = False
        self._rec_low = False

    @property
    def verdicts(self) -> list[Verdict]:
        """All verdicts reported so far, in order of onset."""
        return list(self._verdicts)

    def update(self, record: Mapping) -> list[Verdict]:
        """Take the next logged record (a dict like one line of metrics.jsonl); return the verdicts that start
        here. Missing keys, None, NaN and inf are tolerated (non-finite losses are themselves a verdict)."""
        if not isinstance(record, Mapping):
            raise TypeError(f"HealthMonitor.update: record must be a dict, got {type(record).__name__}")
        step_v = record.get("step")
        step = int(step_v) if isinstance(step_v, (int, float)) and math.isfinite(step_v) else self._n
        self._n += 1
        armed = self._n > self.warmup
        new: list[Verdict] = []
        checks = (
            ("diverging", "error", self._check_diverging(record, step)),
            ("d_overpowering", "warning", self._check_overpowering(record, step, armed)),
            ("vanishing_g_grad", "warning", self._check_vanishing(record, step, armed)),
            ("mode_collapse", "warning", self._check_collapse(record, armed)),
        )
        for kind, severity, result in checks:
            if result is None:
                continue
            record_bad, message = result
            if self._onsets[kind].step(message is not None, record_bad) and message is not None:
                new.append(Verdict(step, kind, message, REMEDIES[kind], severity))
        self._verdicts.extend(new)
        return new

    # Each check returns None when the record lacks the needed keys (the onset state is left untouched), else
    # (record_bad, message): whether this record on its own shows the problem (recovery counts records that
    # do not), and the verdict message when the condition holds over the window (None otherwise).

    def _check_diverging(self, record: Mapping, step: int) -> tuple[bool, str | None] | None:
        events: list[str] = []
        for key, v in record.items():
            if (
                key.startswith(("loss/", "reg/"))
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and not math.isfinite(v)
            ):
                events.append(f"{key} is {v}")
        for key, what in (("health/nonfinite", "non-finite steps"), ("health/rollbacks", "rollbacks")):
            v = _num(record, key)
            if v is None:
                continue
            prev = self._prev_counters.get(key, 0.0)
            if v > prev:
                events.append(f"{what} went {_fmt(prev)} -> {_fmt(v)}")
            self._prev_counters[key] = v
        for key in record:
            if not _GROWTH.match(key):
                continue
            v = _num(record, key)
            if v is None:
                continue
            hist = self._growth.setdefault(key, deque(maxlen=self.window))
            hist.append(v)
            if len(hist) == self.window and abs(hist[-1]) >= EXPLODE_FACTOR * max(abs(hist[0]), EXPLODE_FLOOR):
                events.append(f"{key} exploded {_fmt(hist[0])} -> {_fmt(hist[-1])} over {self.window} records")
        return bool(events), ("; ".join(events) if events else None)

    def _check_overpowering(self, record: Mapping, step: int, armed: bool) -> tuple[bool, str | None] | None:
        acc_r, acc_f = _num(record, "health/d_acc_real"), _num(record, "health/d_acc_fake")
        if acc_r is None or acc_f is None:
            return None
        g_loss, d_loss = _sum_if_all_finite(record, "loss/g"), _sum_if_all_finite(record, "loss/d")
        self._acc.append((step, acc_r, acc_f, g_loss, d_loss))
        bad = min(acc_r, acc_f) > D_ACC_OVERPOWER
        if not armed or len(self._acc) < self.window:
            return bad, None
        if not all(min(r, f) > D_ACC_OVERPOWER for _, r, f, _, _ in self._acc):
            return bad, None
        g = [x[3] for x in self._acc if x[3] is not None]
        d = [x[4] for x in self._acc if x[4] is not None]
        reasons = []
        if len(g) >= 2 and _slope(g) > 0 and g[-1] > g[0]:
            reasons.append(f"G loss rising {_fmt(g[0])} -> {_fmt(g[-1])}")
        if d and all(0 <= v < D_LOSS_NEAR_ZERO for v in d):
            reasons.append(f"D loss near 0 ({_fmt(d[-1])})")
        if not reasons and (g or d):
            return bad, None
        mean_r = sum(x[1] for x in self._acc) / self.window
        mean_f = sum(x[2] for x in self._acc) / self.window
        steps = f"steps {self._acc[0][0]}-{self._acc[-1][0]}"
        return bad, (
            f"D accuracy real {mean_r:.2f} / fake {mean_f:.2f} (> {D_ACC_OVERPOWER}) over {steps}"
            + (f"; {', '.join(reasons)}" if reasons else "")
            + ": D wins every batch and G gets little useful signal"
        )

    def _check_vanishing(self, record: Mapping, step: int, armed: bool) -> tuple[bool, str | None] | None:
        norms = {k: v for k in record if _GEN_NORM.match(k) and (v := _num(record, k)) is not None}
        if not norms:
            return None
        vanished = True
        for key, v in norms.items():
            med = self._gen_median.get(key)
            relative = med is not None and len(med) > 0 and v < VANISH_RELATIVE * med.median()
            if not (v < VANISH_ABSOLUTE or relative):
                vanished = False
        if len(self._gen) == self.window:  # the oldest record leaves the window: it becomes "earlier in the run"
            for key, v in self._gen[0][2].items():
                self._gen_median.setdefault(key, _RunningMedian()).add(v)
        self._gen.append((step, vanished, norms, _num(record, "health/d_acc_fake")))
        if not armed or len(self._gen) < self.window or not all(x[1] for x in self._gen):
            return vanished, None
        accs = [x[3] for x in self._gen if x[3] is not None]
        if accs and sum(accs) / len(accs) <= D_CONFIDENT_ACC_FAKE:
            return vanished, None
        shown = ", ".join(
            f"{k} {_fmt(v)}"
            + (f" (median before {_fmt(self._gen_median[k].median())})" if k in self._gen_median else "")
            for k, v in sorted(norms.items())
        )
        confident = f", D fake accuracy {sum(accs) / len(accs):.2f}" if accs else ""
        return vanished, (
            f"generator gradients vanished over steps {self._gen[0][0]}-{self._gen[-1][0]}: {shown}{confident}"
        )

    def _check_collapse(self, record: Mapping, armed: bool) -> tuple[bool, str | None] | None:
        div, rec = _num(record, "health/diversity"), _num(record, "health/recall")
        if div is None and rec is None:
            return None
        if div is not None:
            self._div.append(div)
            self._div_low = len(self._div) == self.window and max(self._div) < DIVERSITY_COLLAPSE
        if rec is not None:
            self._rec.append(rec)
            self._rec_low = len(self._rec) == self.window and max(self._rec) < RECALL_COLLAPSE
        # judged on the latest known value of each metric, as a record may carry only one of them
        bad = bool(self._div and self._div[-1] < DIVERSITY_COLLAPSE) or bool(
            self._rec and self._rec[-1] < RECALL_COLLAPSE
        )
        if not armed or not (self._div_low or self._rec_low):
            return bad, None
        parts = []
        if self._div_low:
            parts.append(f"diversity {_fmt(self._div[-1])} (< {DIVERSITY_COLLAPSE} x real)")
        if self._rec_low:
            parts.append(f"recall {_fmt(self._rec[-1])} (< {RECALL_COLLAPSE})")
        return bad, (
            f"{' and '.join(parts)} on the last {self.window} records: G covers only part of the data"
        )


def diagnose(records: Iterable[Mapping], *, window: int = 5, warmup: int = WARMUP_RECORDS) -> list[Verdict]:
    """Timeline of problem onsets in a run's logged records (in logging order); see `HealthMonitor` for the
    conditions and thresholds. A healthy run gives []."""
    monitor = HealthMonitor(window, warmup=warmup)
    for record in records:
        monitor.update(record)
    return monitor.verdicts


def format_timeline(verdicts: Iterable[Verdict]) -> str:
    """One line per verdict: `step N  SEVERITY  kind: message | remedy: ...`; "no problems found" if none."""
    lines = [
        f"step {v.step:>8}  {v.severity.upper():<7}  {v.kind}: {v.message} | remedy: {v.remedy}" for v in verdicts
    ]
    return "\n".join(lines) if lines else "no problems found"
