"""What every task's entry point does, written once: its parser, the checks that open its
``prepare``, its ``run`` and its ``main``.

A task module (see :mod:`experiments.tasks`) keeps only what is its own (its data flags, its
config, how it loads and trains) and delegates the rest here::

    def parser(prog="python -m experiments.image", description=None):
        return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT)

    def run(config, **kwargs):
        return entry.run_task(prepare, config, **kwargs)

    def main(argv=None):
        return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config,
                               run=run)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from experiments.harness import cli
from experiments.harness.config import RunConfig, validate
from experiments.harness.errors import UsageError


def task_parser(
    add_data_args: Callable[[argparse.ArgumentParser], None], prog: str,
    description: str | None, *, default_out: str,
    extra_args: Callable[[argparse.ArgumentParser], None] | None = None, **defaults: Any,
) -> cli.OneLineParser:
    """The parser of ``python -m experiments.<task>``: the task's data flags, then
    ``extra_args`` (flags of its own outside the data group), then the harness's run flags;
    ``defaults`` replace the run flags' defaults (e.g. ``eval_every=1``)."""
    p = cli.OneLineParser(prog=prog, description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p)
    if extra_args is not None:
        extra_args(p)
    cli.add_run_args(p, default_out=default_out)
    if defaults:
        p.set_defaults(**defaults)
    return p


def check_config(config: RunConfig, name: str) -> None:
    """The checks every ``prepare`` makes before loading data: the config's own
    :func:`~experiments.harness.config.validate`, its task is ``name`` and its optimizer is
    registered; :class:`UsageError` naming the bad value otherwise."""
    validate(config)
    if config.task != name:
        raise UsageError(f"--task {config.task!r}: expected {name!r}")
    from experiments import optimizers

    optimizers.get(config.optimizer)


def run_task(
    prepare: Callable[[Any], Any], config: RunConfig, *,
    finish: Callable[[Any, Any, dict[str, Any]], dict[str, Any]] | None = None, **kwargs: Any,
) -> dict[str, Any]:
    """Prepare the task of ``config`` and train it (``kwargs`` go to
    :func:`experiments.harness.train.train`); ``finish(task, config, summary)`` adds the task's
    own summary keys to a run that finished. Returns the summary (empty for a process that
    does not write one)."""
    from experiments.harness.train import train

    task = prepare(config)
    summary = train(task, config, **kwargs)
    return finish(task, config, summary) if summary and finish is not None else summary


def task_main(
    argv: Sequence[str] | None, *, parser: Callable[..., argparse.ArgumentParser], doc: str | None,
    make_config: Callable[[argparse.Namespace], RunConfig],
    run: Callable[[RunConfig], dict[str, Any]],
    report: Callable[[dict[str, Any], RunConfig], None] | None = None,
) -> int:
    """``python -m experiments.<task>``: parse ``argv``, join a multi-process run if asked,
    train, print the summary (and ``report(summary, config)``, the task's own lines). Bad
    input is one line on stderr and exit code 2 (:func:`cli.run_main`)."""

    def _main(argv: Sequence[str] | None) -> int:
        args = parser(description=doc).parse_args(argv)
        config = make_config(args)
        cli.init_distributed(config)
        summary = run(config)
        if summary:
            cli.print_summary(summary, config)
            if report is not None:
                report(summary, config)
        return 0

    return cli.run_main(_main, argv)
