"""Training metrics: PSNR, and a writer to ``metrics.csv`` and TensorBoard event files."""

from __future__ import annotations

import csv
import math
import pathlib
from collections.abc import Mapping
from typing import Any

CSV_FIELDS = (
    "step",
    "epoch",
    "time_s",
    "loss",
    "train_psnr",
    "eval_psnr",
    "learning_rate",
    "skipped",
    "steps_per_s",
)


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio of signals in [0, 1]: ``-10 log10(mse)`` (inf when exact)."""
    mse = float(mse)
    if not math.isfinite(mse) or mse < 0:
        return float("nan")
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


class MetricsWriter:
    """Appends rows to ``metrics.csv`` and scalars to TensorBoard under ``tensorboard/``.

    On resume (``resume_step`` given) rows logged after the checkpoint's step are dropped from the
    CSV and TensorBoard purges its events after that step, so a resumed run's logs read like an
    uninterrupted one. A disabled writer (non-primary processes) does nothing.
    """

    def __init__(self, out_dir: pathlib.Path, *, enabled: bool = True,
                 resume_step: int | None = None):
        self.enabled = enabled
        self.path = out_dir / "metrics.csv"
        self._tb = None
        if not enabled:
            return
        rows = read_metrics(self.path) if resume_step is not None else []
        rows = [r for r in rows if resume_step is not None and r["step"] <= resume_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(
            logdir=str(out_dir / "tensorboard"), purge_step=resume_step or None, flush_secs=30
        )

    def write(self, row: Mapping[str, Any]) -> None:
        """Log one row (keys from :data:`CSV_FIELDS`; missing ones are left blank)."""
        if not self.enabled:
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow(
                {k: _fmt(row.get(k)) for k in CSV_FIELDS}
            )
        step = int(row["step"])
        for key, tag in (("loss", "train/loss"), ("train_psnr", "train/psnr"),
                         ("eval_psnr", "eval/psnr"), ("learning_rate", "train/learning_rate"),
                         ("steps_per_s", "perf/steps_per_s")):
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
            for key in CSV_FIELDS:
                text = raw.get(key) or ""
                row[key] = float(text) if text else None
            if row["step"] is not None:
                row["step"] = int(row["step"])
                rows.append(row)
        return rows
