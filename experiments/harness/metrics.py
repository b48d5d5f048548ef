"""Training metrics: PSNR, and a writer to ``metrics.csv`` and TensorBoard event files.

The columns of ``metrics.csv`` are :func:`csv_fields` of the task's metric (``train_psnr`` and
``eval_psnr`` for the image task), followed by any extra columns the run logs (e.g. the curvature
optimizers' diagnostics).
"""

from __future__ import annotations

import csv
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any


def csv_fields(metric: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Columns of ``metrics.csv`` for a task whose metric is ``metric``, plus ``extra``."""
    base = ("step", "epoch", "time_s", "loss", f"train_{metric}", f"eval_{metric}",
            "learning_rate", "skipped", "steps_per_s")
    return base + tuple(k for k in extra if k not in base)


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio of signals in [0, 1]: ``-10 log10(mse)`` (inf when exact)."""
    mse = float(mse)
    if not math.isfinite(mse) or mse < 0:
        return float("nan")
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def metric_info(summary: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(name, label, unit)`` of a run's metric from its summary (``summary.json`` of runs
    written before these keys existed are image runs: PSNR in dB)."""
    return (summary.get("metric", "psnr"), summary.get("metric_label", "PSNR"),
            summary.get("metric_unit", "dB"))


def format_metric(summary: Mapping[str, Any], value: float | None = None) -> str:
    """``'PSNR 27.31 dB'`` or ``'IoU 0.9712'``: the run's final metric (or ``value``),
    labelled as its task says."""
    name, label, unit = metric_info(summary)
    value = summary.get(f"final_{name}") if value is None else value
    if value is None:
        return f"{label} n/a"
    return f"{label} {value:.2f} {unit}" if unit else f"{label} {value:.4f}"


def format_target(summary: Mapping[str, Any], target: float) -> str:
    """``'25 dB'`` or ``'IoU 0.9'``: a target value of the run's metric."""
    _, label, unit = metric_info(summary)
    return f"{target:g} {unit}" if unit else f"{label} {target:g}"


class MetricsWriter:
    """Appends rows to ``metrics.csv`` and scalars to TensorBoard under ``tensorboard/``.

    On resume (``resume_step`` given) rows logged after the checkpoint's step are dropped from the
    CSV and TensorBoard purges its events after that step, so a resumed run's logs read like an
    uninterrupted one. A disabled writer (non-primary processes) does nothing.
    """

    def __init__(self, out_dir: pathlib.Path, *, metric: str = "psnr", extra: Sequence[str] = (),
                 enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.metric = metric
        self.fields = csv_fields(metric, extra)
        self.path = out_dir / "metrics.csv"
        self._tb = None
        if not enabled:
            return
        rows = read_metrics(self.path) if resume_step is not None else []
        rows = [r for r in rows if resume_step is not None and r["step"] <= resume_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row.get(k)) for k in self.fields})
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(
            logdir=str(out_dir / "tensorboard"), purge_step=resume_step or None, flush_secs=30
        )

    def write(self, row: Mapping[str, Any]) -> None:
        """Log one row (keys from :attr:`fields`; missing ones are left blank).

        Extra columns go to TensorBoard under ``curvature/`` (or their ``group/name`` prefix)."""
        if not self.enabled:
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(
                {k: _fmt(row.get(k)) for k in self.fields}
            )
        step = int(row["step"])
        m = self.metric
        tags = {"loss": "train/loss", f"train_{m}": f"train/{m}", f"eval_{m}": f"eval/{m}",
                "learning_rate": "train/learning_rate", "steps_per_s": "perf/steps_per_s"}
        for key in self.fields[len(csv_fields(m)):]:
            tags[key] = key if "/" in key else f"curvature/{key}"
        for key, tag in tags.items():
            value = row.get(key)
            if value is not None and math.isfinite(float(value)):
                self._tb.add_scalar(tag, float(value), step)

    def flush(self) -> None:
        """Push pending TensorBoard events to disk."""
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_metrics(path: pathlib.Path) -> list[dict[str, float | None]]:
    """Rows of a ``metrics.csv`` as dicts of floats (``None`` for blanks); [] if absent."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = []
        for raw in csv.DictReader(f):
            row: dict[str, float | None] = {}
            for key in raw:
                text = raw.get(key) or ""
                row[key] = float(text) if text else None
            for key in csv_fields("")[:4] + csv_fields("")[6:]:
                row.setdefault(key, None)
            if row["step"] is not None:
                row["step"] = int(row["step"])
                rows.append(row)
        return rows
