"""Run a grid of optimizers x activations on one task and write a comparison report.

``python -m experiments.compare --task image --optimizers esgd adam --activations wavelet
gaussian --seeds 0 1 2 3 4`` trains every (activation, optimizer, seed) (each a full run
directory, ``OUT/ACTIVATION-OPTIMIZER/seedS``; ``OUT/ACTIVATION-OPTIMIZER`` with the single
``--seed``) and writes ``OUT/report.md``: per (activation, optimizer) the median final metric
and its min-max over seeds, how many seeds beat ``--baseline`` (default adam) on the same seed,
epochs and seconds to a target value, time per step, optimizer time per step and optimizer-state
memory, and plots of the loss against iterations and against time with a band over seeds (the
paper's Fig. 5 and supplement Figs. 8-9). Every setting is
checked, and every run directory, before the first run trains. With ``--resume`` finished runs
are reused and interrupted ones continued. The task's own flags (``--image``, ...) apply to
every run; ``--help`` with ``--task NAME`` lists them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from experiments import tasks
from experiments.harness import cli
from experiments.harness.config import RunConfig
from experiments.harness.grid import run_grid
from experiments.harness.report import RunResult, markdown_table, table

DEFAULT_OUT = "runs/compare"


def parser(prog: str = "python -m experiments.compare", task: str = "image") -> cli.OneLineParser:
    """The parser of ``python -m experiments.compare`` with the data flags of ``task``."""
    p = cli.OneLineParser(prog=prog, description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=task, help=f"task of the grid: {', '.join(tasks.TASKS)} "
                                                f"(default {task})")
    p.add_argument("--optimizers", nargs="+", default=["esgd", "adam"], metavar="NAME",
                   help="optimizers to compare (default: esgd adam)")
    p.add_argument("--activations", nargs="+", default=["gaussian"], metavar="NAME",
                   help="field activations (default: gaussian)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, metavar="S",
                   help="run every cell with each of these seeds, in OUT/ACT-OPT/seedS "
                        "(default: the single --seed, in OUT/ACT-OPT)")
    p.add_argument("--baseline", default="adam",
                   help="optimizer whose runs every cell is compared with, seed by seed "
                        "(default adam; 'none' for no comparison)")
    p.add_argument("--target", "--target-psnr", dest="target", type=float, default=25.0,
                   help="value of the task's metric whose epochs and seconds to reach are "
                        "reported (default 25, in dB for the image task's PSNR)")
    module = tasks.get(task)
    module.add_data_args(p)
    cli.add_run_args(p, grid=True)
    p.set_defaults(out=DEFAULT_OUT)
    return p


def task_of(argv: Sequence[str] | None) -> str:
    """The ``--task`` named in ``argv`` (default ``image``), read before the full parse."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default="image")
    known, _ = pre.parse_known_args(argv)
    return known.task


def grid_configs(args: Any) -> list[RunConfig]:
    """One config per (activation, optimizer, seed), each in its own directory under ``--out``:
    ``ACT-OPT/seedS`` with ``--seeds``, ``ACT-OPT`` with the single ``--seed``."""
    module = tasks.get(args.task)
    out = pathlib.Path(args.out)
    seeds = getattr(args, "seeds", None)
    configs = []
    for a in dict.fromkeys(args.activations):
        for o in dict.fromkeys(args.optimizers):
            if not seeds:
                configs.append(module.make_config(args, activation=a, optimizer=o,
                                                  out=str(out / f"{a}-{o}")))
                continue
            for seed in dict.fromkeys(seeds):
                config = module.make_config(args, activation=a, optimizer=o,
                                            out=str(out / f"{a}-{o}" / f"seed{seed}"))
                configs.append(config.replace(seed=seed))
    return configs


def baseline_of(args: Any) -> str | None:
    """The ``--baseline`` optimizer, or ``None`` for 'none'."""
    name = getattr(args, "baseline", "adam")
    return None if name in (None, "none") else name


def run(
    args: Any, configs: Sequence[RunConfig], *, title: str
) -> tuple[list[RunResult], pathlib.Path | None]:
    """Train the grid of ``configs`` (from :func:`grid_configs`) and write its report."""
    module: ModuleType = tasks.get(args.task)
    return run_grid(
        configs, pathlib.Path(args.out), prepare=module.prepare, target=args.target,
        title=title, settings=module.report_settings(configs[0]),
        notes=getattr(module, "REPORT_NOTES", ()), baseline=baseline_of(args),
        finish=getattr(module, "finish", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.compare``."""
    return cli.run_main(lambda a: drive(a), argv)


def drive(
    argv: Sequence[str] | None, *, prog: str = "python -m experiments.compare",
    title: str | None = None, setup: Any = None, **defaults: Any,
) -> int:
    """Parse ``argv`` with the compare parser (``defaults`` replacing its defaults, e.g. a paper
    driver's activations, optimizers, image and epochs), train the grid, print the table and
    where the report is. ``setup()`` runs first (e.g. to register an optimizer variant).

    Paper drivers are ``cli.run_main(lambda a: compare.drive(a, prog=..., title=..., ...), argv)``.
    """
    if setup is not None:
        setup()
    task = task_of(argv) if "task" not in defaults else defaults["task"]
    p = parser(prog=prog, task=tasks.get(task).NAME)
    p.set_defaults(**defaults)
    args = p.parse_args(argv)
    configs = grid_configs(args)
    cli.init_distributed(configs[0])
    results, report = run(args, configs, title=title or f"{args.task}: optimizer comparison")
    if report is not None:
        print(markdown_table(table(results, args.target, baseline=baseline_of(args))))
        plots = sorted(str(p) for p in pathlib.Path(args.out).glob("*.png"))
        print(f"report: {report}; plots: {', '.join(plots)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
