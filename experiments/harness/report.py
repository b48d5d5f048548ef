"""Comparison reports over seeds: the results table and ``report.md`` with its plots.

A grid's runs are grouped into *cells* (activation, optimizer); each cell holds one run per seed.
A cell's row gives the median of the final metric and its min-max over seeds, how many seeds beat
the baseline optimizer on the same activation and seed (e.g. ``4/5 > adam``), and medians of the
epochs and seconds to a target value over the seeds that reached it. One seed proves nothing
about an ordering: verdicts read the median and the win count, never a single run.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics
from collections.abc import Sequence
from typing import Any

from experiments.harness.metrics import format_target, metric_info, read_metrics
from experiments.harness.plots import comparison_plots


@dataclasses.dataclass
class RunResult:
    """One finished run of a comparison grid."""

    activation: str
    optimizer: str
    out: pathlib.Path
    summary: dict[str, Any]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return read_metrics(self.out / "metrics.csv")

    @property
    def seed(self) -> int:
        return int(self.summary.get("config", {}).get("seed", 0))

    @property
    def final(self) -> float | None:
        """The run's final metric (``final_<metric>`` of its summary)."""
        value = self.summary.get(f"final_{metric_info(self.summary)[0]}")
        return None if value is None else float(value)


Cell = tuple[str, str]


def cells(results: Sequence[RunResult]) -> dict[Cell, list[RunResult]]:
    """Results grouped by (activation, optimizer), in first-seen order, each sorted by seed."""
    out: dict[Cell, list[RunResult]] = {}
    for r in results:
        out.setdefault((r.activation, r.optimizer), []).append(r)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in out.items()}


def read_results(root: pathlib.Path) -> list[RunResult]:
    """The finished runs of a grid directory: ``ACT-OPT/summary.json`` (one seed) or
    ``ACT-OPT/seedS/summary.json`` (several), in sorted order; unfinished runs are left out."""
    import json

    out = []
    for cell in sorted(p for p in root.glob("*-*") if p.is_dir()):
        for run in [cell, *sorted(cell.glob("seed*"), key=lambda p: p.name)]:
            try:
                summary = json.loads((run / "summary.json").read_text())
            except (OSError, ValueError):
                continue
            config = summary.get("config", {})
            activation, _, optimizer = cell.name.partition("-")
            out.append(RunResult(config.get("activation", activation),
                                 config.get("optimizer", optimizer), run, summary))
    return out


def finite(values: Sequence[float | None]) -> list[float]:
    """The finite values (a diverged run's NaN counts as not finite)."""
    return [v for v in values if v is not None and math.isfinite(v)]


def spread(values: Sequence[float | None]) -> tuple[float, float, float] | None:
    """``(median, min, max)`` over seeds; a non-finite value (a diverged run) sets the min to
    NaN-as-worst, i.e. ``-inf``. ``None`` when there is no value."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    clean = [v if math.isfinite(v) else -math.inf for v in vals]
    return statistics.median(clean), min(clean), max(clean)


def wins(cell: Sequence[RunResult], baseline: Sequence[RunResult]) -> tuple[int, int] | None:
    """``(k, n)``: on ``k`` of the ``n`` seeds both cells ran, ``cell`` ends above ``baseline``.

    A run whose final metric is not finite loses to a finite one. ``None`` when no seed is shared.
    """
    base = {r.seed: r.final for r in baseline}
    pairs = [(r.final, base[r.seed]) for r in cell if r.seed in base]
    if not pairs:
        return None

    def score(v: float | None) -> float:
        return v if v is not None and math.isfinite(v) else -math.inf

    return sum(score(a) > score(b) for a, b in pairs), len(pairs)


def time_to_target(
    rows: Sequence[dict[str, Any]], target: float, *, metric: str = "psnr"
) -> tuple[float, float] | None:
    """``(epoch, training seconds)`` of the first logged row whose training metric (column
    ``train_<metric>``) reaches ``target``, or ``None`` if none does."""
    for row in rows:
        value = row.get(f"train_{metric}")
        if value is not None and math.isfinite(value) and value >= target:
            return row["epoch"], row["time_s"]
    return None


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, fmt)


def _median(values: Sequence[float | None]) -> float | None:
    vals = finite(values)
    return statistics.median(vals) if vals else None


def table(
    results: Sequence[RunResult], target: float, *, baseline: str | None = "adam"
) -> list[dict[str, str]]:
    """The report's rows, one per cell (activation, optimizer), as strings.

    Columns: learning rate, number of seeds, median final metric and its min-max over seeds,
    seeds beating ``baseline`` on the same activation and seed, median epochs and seconds to
    ``target`` over the seeds that reached it (with how many did), median step time, optimizer
    time per step and optimizer-state size.
    """
    grouped = cells(results)
    # One column name for every row, even when a cell has finished fewer seeds than the others.
    multi = any(len(runs) > 1 for runs in grouped.values())
    out = []
    for (activation, optimizer), runs in grouped.items():
        s = runs[0].summary
        metric, label, unit = metric_info(s)
        fmt = ".2f" if unit else ".4f"
        finals = spread([r.final for r in runs])
        reached = [t for t in (time_to_target(r.rows, target, metric=metric) for r in runs) if t]
        goal = format_target(s, target)
        n = len(runs)
        count = f" ({len(reached)}/{n})" if n > 1 else ""
        base = grouped.get((activation, baseline)) if baseline else None
        won = wins(runs, base) if base and optimizer != baseline else None
        opt_steps = [r.summary.get("optimizer_time_per_step_s") for r in runs]
        med_opt = _median(opt_steps)
        out.append({
            "activation": activation,
            "optimizer": optimizer,
            "lr": _num(s.get("learning_rate"), "g"),
            "seeds": str(n),
            f"final {label}" + (f" ({unit})" if unit else "") + (" median" if multi else ""):
                _num(finals[0], fmt) if finals else "—",
            "min to max": (f"{_num(finals[1], fmt)} to {_num(finals[2], fmt)}"
                        if finals and n > 1 else "—"),
            f"vs {baseline}" if baseline else "vs baseline":
                f"{won[0]}/{won[1]} > {baseline}" if won else "—",
            f"epochs to {goal}": (_num(statistics.median(t[0] for t in reached), "g") + count
                                  if reached else "not reached"),
            f"seconds to {goal}": (_num(statistics.median(t[1] for t in reached), ".2f") + count
                                   if reached else "not reached"),
            "ms / step": _num(
                (_median([r.summary.get("time_per_step_s") for r in runs]) or 0) * 1e3, ".2f"),
            "optimizer ms / step": _num(med_opt * 1e3 if med_opt is not None else None, ".2f"),
            "optimizer state (KiB)": _num(s.get("optimizer_state_bytes", 0) / 1024, ".1f"),
        })
    return out


def finals_by_activation(results: Sequence[RunResult]) -> dict[str, dict[str, list[float]]]:
    """activation -> optimizer -> the finite final metrics of its seeds (cells with none are
    left out)."""
    out: dict[str, dict[str, list[float]]] = {}
    for (act, opt), runs in cells(results).items():
        vals = finite([r.final for r in runs])
        if vals:
            out.setdefault(act, {})[opt] = vals
    return out


def clear_wins(finals: dict[str, list[float]], baseline: str = "adam") -> list[str]:
    """The optimizers of one activation's ``finals`` whose worst seed beats ``baseline``'s best
    (none without a baseline), best median first."""
    if baseline not in finals:
        return []
    best = max(finals[baseline])
    ranked = sorted(finals, key=lambda o: statistics.median(finals[o]), reverse=True)
    return [o for o in ranked if o != baseline and min(finals[o]) > best]


def ranking(results: Sequence[RunResult], label: str, spec: str, *, baseline: str = "adam",
            context: str = "") -> str:
    """Markdown lines, one per activation: the optimizers ranked by median final metric, each
    with its min-max over seeds, and those whose worst seed beats ``baseline``'s best seed.

    Args:
      results: finished runs of a grid.
      label: the metric as the heading names it (``"PSNR in dB"``).
      spec: format of the values (``".1f"``).
      baseline: the optimizer a clear win is measured against.
      context: said after the heading (the seeds and the scale, say).
    """
    lines = [f"Ranking by median final {label} (min to max over seeds)"
             + (f", {context}" if context else "") + ":"]
    for act, finals in finals_by_activation(results).items():
        ranked = " > ".join(
            f"{o} {statistics.median(v):{spec}} ({min(v):{spec}} to {max(v):{spec}})"
            for o, v in sorted(finals.items(), key=lambda x: statistics.median(x[1]),
                               reverse=True))
        clear = clear_wins(finals, baseline)
        lines.append(f"- {act}: {ranked}; worst seed above {baseline}'s best: "
                     f"{', '.join(clear) if clear else 'none'}.")
    return "\n".join(lines)


def grid_plots(results: Sequence[RunResult], out_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """The grid's comparison plots (loss against iterations and time, the task metric against
    epochs; median over seeds with a min-max band) drawn into ``out_dir`` from the runs'
    ``metrics.csv``, so a report can be drawn from an archive that holds no plots."""
    metric, label, unit = metric_info(results[0].summary if results else {})
    return comparison_plots(
        out_dir, [(a, o, [r.rows for r in runs]) for (a, o), runs in cells(results).items()],
        metric=metric, label=f"{label} ({unit})" if unit else label,
    )


def markdown_table(rows: Sequence[dict[str, str]]) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts with the same keys)."""
    if not rows:
        return "(no runs)\n"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}

    def line(cells: Sequence[str]) -> str:
        padded = (c.ljust(widths[k]) for k, c in zip(keys, cells, strict=True))
        return "| " + " | ".join(padded) + " |"

    out = [line(keys), "|" + "|".join("-" * (widths[k] + 2) for k in keys) + "|"]
    out += [line([r[k] for k in keys]) for r in rows]
    return "\n".join(out) + "\n"


def write_report(
    out_dir: pathlib.Path,
    results: Sequence[RunResult],
    *,
    target: float,
    title: str,
    settings: dict[str, Any],
    notes: Sequence[str] = (),
    baseline: str | None = "adam",
) -> pathlib.Path:
    """Write ``report.md`` and its plots in ``out_dir``; return the report's path.

    ``notes`` are the task's lines on how its final metric is measured; ``baseline`` the optimizer
    each cell's seeds are compared with."""
    first = results[0].summary if results else {}
    label = metric_info(first)[1]
    grouped = cells(results)
    plots = grid_plots(results, out_dir)
    rows = table(results, target, baseline=baseline)
    goal = format_target(first, target)
    n_seeds = max((len(v) for v in grouped.values()), default=0)
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()]
    lines += ["", markdown_table(rows), ""]
    if n_seeds > 1:
        lines += [
            f"Each cell ran {n_seeds} seeds (initialisation, probes and data order); the final "
            f"{label} is their median with the min-max over seeds, and 'vs {baseline}' counts the "
            f"seeds on which the cell ends above {baseline} on the same activation and seed. "
            "Plots show the median over seeds as a line and the min-max as a band.",
            "",
        ]
    else:
        lines += ["One seed per cell: an ordering between optimizers needs several seeds "
                  "(`--seeds 0 1 2 3 4`).", ""]
    lines += [
        *notes,
        f"Epochs and seconds to {goal} are read from the training log: the {label} of the",
        "mean mini-batch loss over each logged window (one epoch unless --log-every says",
        "otherwise), and training time excludes compilation, evaluation and checkpointing; with",
        "several seeds they are medians over the seeds that reached it (how many did is in",
        "brackets). Optimizer time per step is the compiled step minus the loss and gradient",
        "alone (summary.json gives the method); optimizer state is the size of one replica of",
        "the optimizer's state.",
        "",
    ]
    for name, path in plots.items():
        lines += [f"## {name.replace('_', ' ')}", "", f"![{name}]({path.name})", ""]
    lines += ["## Runs", ""]
    lines += [f"- {r.activation}/{r.optimizer} seed {r.seed}: `{r.out}`" for r in results]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


@dataclasses.dataclass(frozen=True)
class BarCheck:
    """Issue 11's bar for one (activation) of a grid: ``candidate`` against ``baseline``.

    Attributes:
      median: the candidate's median final metric is above the baseline's.
      worst: no candidate seed ends more than ``margin`` below the baseline's worst seed.
      spread: the candidate's max-min spread over seeds is at most ``factor`` times the baseline's.
      seeds: seeds of each cell, ``(candidate, baseline)``.
    """

    activation: str
    candidate: tuple[float, float, float]
    baseline: tuple[float, float, float]
    median: bool
    worst: bool
    spread: bool
    seeds: tuple[int, int]

    @property
    def passed(self) -> bool:
        return self.median and self.worst and self.spread


def bar_check(
    results: Sequence[RunResult], candidate: str, baseline: str = "adam", *,
    margin: float = 1.0, factor: float = 2.0,
) -> list[BarCheck]:
    """Per activation holding both cells: does ``candidate`` meet the bar against ``baseline``?

    A diverged seed (non-finite metric) counts as ``-inf``: it fails the worst-seed test and
    makes the spread infinite.
    """
    grouped = cells(results)
    out = []
    for activation in dict.fromkeys(a for a, _ in grouped):
        if (activation, candidate) not in grouped or (activation, baseline) not in grouped:
            continue
        c_runs, b_runs = grouped[activation, candidate], grouped[activation, baseline]
        c, b = spread([r.final for r in c_runs]), spread([r.final for r in b_runs])
        if c is None or b is None:
            continue
        c_width, b_width = c[2] - c[1], b[2] - b[1]
        out.append(BarCheck(
            activation, c, b, median=c[0] > b[0], worst=c[1] >= b[1] - margin,
            spread=math.isfinite(c_width) and c_width <= factor * b_width,
            seeds=(len(c_runs), len(b_runs)),
        ))
    return out
