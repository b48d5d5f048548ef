"""The tasks the harness trains, one module each (with its data module beside it).

A task module provides:

- ``NAME`` and ``add_data_args(parser)``: its name and its data flags;
- ``make_config(args, *, activation, optimizer, out)``: a subclass of
  :class:`~experiments.harness.config.RunConfig` holding its data settings;
- ``prepare(config)``: validate and load the data, returning a
  :class:`~experiments.harness.task.Task` (bad input raises ``UsageError`` before any work);
- ``run(config)`` and ``main(argv)`` (``python -m experiments.<task>``), which delegate to
  :mod:`experiments.harness.entry` (the parser, the checks opening ``prepare``, training and
  printing are written there once);
- ``report_settings(config)`` and ``REPORT_NOTES``: what a comparison report says about the data
  and the metric.
- optionally ``finish(task, config, summary)``: the task's own summary keys, added to a finished
  run's ``summary.json`` by its ``run`` and by ``experiments.compare`` alike (NeRF's).

:data:`TASKS` maps each name to its module, imported only when the task is chosen.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from experiments.harness.errors import UsageError

TASKS: dict[str, str] = {
    "audio": "experiments.tasks.audio",
    "image": "experiments.tasks.image",
    "nerf": "experiments.tasks.nerf",
    "occupancy": "experiments.tasks.occupancy",
    "video": "experiments.tasks.video",
}


def get(name: str) -> ModuleType:
    """The module of task ``name``; :class:`UsageError` listing the tasks otherwise."""
    if name not in TASKS:
        raise UsageError(f"--task {name!r}: expected one of {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name])
