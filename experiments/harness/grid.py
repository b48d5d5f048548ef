"""A grid of runs of one task (optimizers x activations), trained in turn, and its report."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

from experiments.harness.config import RunConfig
from experiments.harness.report import RunResult, write_report
from experiments.harness.task import Task
from fields.field import DEFAULT_DEPTH, DEFAULT_WIDTH


def field_label(depth: int | None, width: int | None) -> str:
    """``"depth D, width W"`` of a run's field; ``None`` (no ``--depth``/``--width``) is the
    fields' default, the paper's 5x256."""
    return f"depth {depth or DEFAULT_DEPTH}, width {width or DEFAULT_WIDTH}"


def run_grid(
    configs: Sequence[RunConfig],
    out: pathlib.Path,
    *,
    prepare: Callable[[RunConfig], Task],
    target: float,
    title: str,
    settings: dict[str, Any],
    notes: Sequence[str] = (),
    baseline: str | None = "adam",
    finish: Callable[[Task, RunConfig, dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[list[RunResult], pathlib.Path | None]:
    """Check every config and its run directory, train each, and write the report.

    Args:
      configs: one per run, each with its own ``out``.
      out: where ``report.md`` and the comparison plots go.
      prepare: the task's ``prepare`` (validates a config and loads its data).
      target: metric value whose epochs and seconds to reach the report gives.
      title, settings, notes: the report's heading, its settings list and the task's notes.
      baseline: the optimizer each cell is compared with, seed by seed.
      finish: the task's ``finish(task, config, summary)``, if it has one: adds its own keys to
        a finished run's summary (and ``summary.json``), as its ``run`` does (e.g. NeRF's test
        PSNR and iterations to the target).

    Returns:
      The results and the report's path (``None`` on processes other than 0).
    """
    from experiments.harness.distributed import is_primary
    from experiments.harness.train import check_out_dir, train

    tasks = [prepare(c) for c in configs]
    if is_primary():
        for task, config in zip(tasks, configs, strict=True):
            check_out_dir(task, config)
    results = []
    for task, config in zip(tasks, configs, strict=True):
        summary = train(task, config)
        if finish is not None and summary:
            summary = finish(task, config, summary)
        results.append(RunResult(config.activation, config.optimizer, pathlib.Path(config.out),
                                 summary))
    if not is_primary():
        return results, None
    first = configs[0]
    settings = {
        **settings,
        "field": field_label(first.depth, first.width),
        # A run of a fixed number of steps (NeRF's --iterations) has no epoch budget.
        **({"steps": first.steps} if first.steps else {"epochs": first.epochs}),
        "batch size": first.batch_size,
        "steps per epoch": results[0].summary.get("steps_per_epoch"),
        "seeds": " ".join(str(s) for s in sorted({c.seed for c in configs})),
        "parallel": first.parallel,
        "device": results[0].summary.get("device"),
    }
    report = write_report(out, results, target=target, title=title, settings=settings,
                          notes=notes, baseline=baseline)
    return results, report
