"""Comparison reports: the results table and ``report.md`` with its plots."""

from __future__ import annotations

import dataclasses
import math
import pathlib
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


def table(results: Sequence[RunResult], target: float) -> list[dict[str, str]]:
    """The report's rows, as strings, in the order of ``results``."""
    out = []
    for r in results:
        s = r.summary
        metric, label, unit = metric_info(s)
        reached = time_to_target(r.rows, target, metric=metric)
        opt_step = s.get("optimizer_time_per_step_s")
        goal = format_target(s, target)
        out.append({
            "activation": r.activation,
            "optimizer": r.optimizer,
            "lr": _num(s.get("learning_rate"), "g"),
            f"final {label}" + (f" ({unit})" if unit else ""):
                _num(s.get(f"final_{metric}"), ".2f" if unit else ".4f"),
            f"epochs to {goal}": _num(reached[0], "g") if reached else "not reached",
            f"seconds to {goal}": _num(reached[1], ".2f") if reached else "not reached",
            "ms / step": _num(s.get("time_per_step_s", 0) * 1e3, ".2f"),
            "optimizer ms / step": _num(opt_step * 1e3 if opt_step is not None else None, ".2f"),
            "optimizer state (KiB)": _num(s.get("optimizer_state_bytes", 0) / 1024, ".1f"),
        })
    return out


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
) -> pathlib.Path:
    """Write ``report.md`` and its plots in ``out_dir``; return the report's path.

    ``notes`` are the task's lines on how its final metric is measured."""
    first = results[0].summary if results else {}
    metric, label, unit = metric_info(first)
    plots = comparison_plots(
        out_dir, [(r.activation, r.optimizer, r.rows) for r in results], metric=metric,
        label=f"{label} ({unit})" if unit else label,
    )
    rows = table(results, target)
    goal = format_target(first, target)
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()]
    lines += ["", markdown_table(rows), ""]
    lines += [
        *notes,
        f"Epochs and seconds to {goal} are read from the training log: the {label} of the",
        "mean mini-batch loss over each logged window (one epoch unless --log-every says",
        "otherwise), and training time excludes compilation, evaluation and checkpointing.",
        "Optimizer time per step is the compiled step minus the loss and gradient alone",
        "(summary.json gives the method); optimizer state is the size of one replica of the",
        "optimizer's state.",
        "",
    ]
    for name, path in plots.items():
        lines += [f"## {name.replace('_', ' ')}", "", f"![{name}]({path.name})", ""]
    lines += ["## Runs", ""]
    lines += [f"- {r.activation}/{r.optimizer}: `{r.out}`" for r in results]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
