"""Run a grid of optimizers x activations and write a comparison report.

``python -m experiments.compare --task image --optimizers esgd adam --activations wavelet
gaussian`` trains every pair (each in ``OUT/ACTIVATION-OPTIMIZER``, a full run directory) and
writes ``OUT/report.md``: a table of final PSNR, epochs and seconds to a target PSNR, time per
step, optimizer time per step and optimizer-state memory, and plots of the loss against
iterations and against time (the paper's Fig. 5 and supplement Figs. 8-9). Every setting is
checked, and every run directory, before the first run trains. With ``--resume`` finished runs
are reused and interrupted ones continued.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from experiments import cli
from experiments.config import RunConfig
from experiments.errors import UsageError
from experiments.report import RunResult, markdown_table, table, write_report

DEFAULT_OUT = "runs/compare"


def parser(prog: str = "python -m experiments.compare") -> cli.OneLineParser:
    """The parser of ``python -m experiments.compare``."""
    p = cli.OneLineParser(prog=prog, description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="image", help="task of the grid (image)")
    p.add_argument("--optimizers", nargs="+", default=["esgd", "adam"], metavar="NAME",
                   help="optimizers to compare (default: esgd adam)")
    p.add_argument("--activations", nargs="+", default=["gaussian"], metavar="NAME",
                   help="field activations (default: gaussian)")
    p.add_argument("--target-psnr", type=float, default=25.0,
                   help="PSNR (dB) whose epochs and seconds to reach are reported (default 25)")
    cli.add_run_args(p, grid=True)
    p.set_defaults(out=DEFAULT_OUT)
    return p


def grid_configs(args: Any) -> list[RunConfig]:
    """One config per (activation, optimizer), each in its own directory under ``--out``."""
    if args.task != "image":
        raise UsageError(f"--task {args.task!r}: expected 'image'")
    out = pathlib.Path(args.out)
    return [
        cli.image_config(args, activation=a, optimizer=o, out=str(out / f"{a}-{o}"))
        for a in dict.fromkeys(args.activations)
        for o in dict.fromkeys(args.optimizers)
    ]


def run_grid(
    configs: Sequence[RunConfig], out: pathlib.Path, *, target_psnr: float, title: str
) -> tuple[list[RunResult], pathlib.Path | None]:
    """Check every config, train each, and write the report (process 0); returns the results
    and the report's path."""
    from experiments.distributed import is_primary
    from experiments.image import prepare
    from experiments.train import check_out_dir, train

    tasks = [prepare(c) for c in configs]
    if is_primary():
        for task, config in zip(tasks, configs, strict=True):
            check_out_dir(task, config)
    results = []
    for task, config in zip(tasks, configs, strict=True):
        summary = train(task, config)
        results.append(RunResult(config.activation, config.optimizer, pathlib.Path(config.out),
                                 summary))
    if not is_primary():
        return results, None
    first = configs[0]
    settings = {
        "image": first.image or "scikit-image astronaut (bundled)",
        "size": f"{first.size}x{first.size}",
        "field": f"depth {first.depth or 5}, width {first.width or 256}",
        "epochs": first.epochs,
        "batch size": first.batch_size,
        "steps per epoch": results[0].summary.get("steps_per_epoch"),
        "seed": first.seed,
        "parallel": first.parallel,
        "device": results[0].summary.get("device"),
    }
    report = write_report(out, results, target_psnr=target_psnr, title=title, settings=settings)
    return results, report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.compare``."""
    return cli.run_main(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    configs = grid_configs(args)
    cli.init_distributed(configs[0])
    out = pathlib.Path(args.out)
    results, report = run_grid(configs, out, target_psnr=args.target_psnr,
                               title="Image fitting: optimizer comparison")
    if report is not None:
        print(markdown_table(table(results, args.target_psnr)))
        print(f"report: {report}; plots: {out / 'loss_vs_steps.png'}, "
              f"{out / 'loss_vs_time.png'}, {out / 'psnr_vs_epoch.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
