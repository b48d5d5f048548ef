"""Command-line plumbing shared by the experiment entry points.

Bad input ends the program with exit code 2 and one line on stderr that names the value and what
was expected (argparse's own errors included); SIGINT/SIGTERM end it with 128 + the signal number
after a checkpoint is saved.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from experiments import optimizers
from experiments.config import PARALLEL_MODES, SCHEDULES, RunConfig
from experiments.errors import CheckpointError, UsageError

DEFAULT_OUT = "runs/image"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def add_run_args(parser: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """Flags of one image run; with ``grid`` the activation/optimizer flags are left out."""
    data = parser.add_argument_group("data")
    data.add_argument("--image", default=None,
                      help="PNG or JPEG to fit (default: scikit-image's bundled astronaut)")
    data.add_argument("--size", type=int, default=256,
                      help="side of the square the image is bilinearly resized to (default 256)")
    model = parser.add_argument_group("model and optimizer")
    if not grid:
        model.add_argument("--activation", default="gaussian",
                           help="gaussian, sine, wavelet, sinc, relu or relu_pe (default gaussian)")
        model.add_argument("--optimizer", default="esgd",
                           help=f"one of {', '.join(optimizers.names())} (default esgd)")
    model.add_argument("--depth", type=int, default=None,
                       help="field depth (default: the paper's 5 layers)")
    model.add_argument("--width", type=int, default=None,
                       help="field width (default: the paper's 256)")
    model.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the reference value for the optimizer "
                            "and activation, see experiments/optimizers.py)")
    model.add_argument("--schedule", default="constant",
                       help=f"learning-rate schedule: {', '.join(SCHEDULES)} (default constant)")
    model.add_argument("--final-lr", type=float, default=None,
                       help="learning rate at the end of the decay (default lr/100)")
    model.add_argument("--decay-epochs", type=float, default=None,
                       help="epochs over which the schedule decays (default: --epochs)")
    model.add_argument("--opt-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="extra optimizer option, e.g. bias_correction=reference "
                            "(repeatable); OPTIMIZER.KEY=VALUE applies to one optimizer only")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=int, default=200, help="passes over the image (default 200)")
    run.add_argument("--batch-size", type=int, default=None,
                     help="pixels per step (default 512; the full image for full-batch "
                          "optimizers)")
    run.add_argument("--seed", type=int, default=0, help="initialisation, probes and data order")
    run.add_argument("--parallel", default="none",
                     help=f"{' | '.join(PARALLEL_MODES)}: data parallelism over all devices")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=None,
                     help=f"run directory (default {DEFAULT_OUT}/ACTIVATION-OPTIMIZER)")
    out.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its latest checkpoint (also to extend "
                          "it with a larger --epochs)")
    out.add_argument("--checkpoint-every", type=int, default=1000,
                     help="steps between checkpoints (also saved at the end and on "
                          "SIGINT/SIGTERM)")
    out.add_argument("--log-every", type=int, default=None,
                     help="steps between log rows (default: one epoch)")
    out.add_argument("--eval-every", type=int, default=10,
                     help="epochs between full-resolution PSNR evaluations (0: end only)")
    out.add_argument("--timing-steps", type=int, default=200,
                     help="steps replayed to time the optimizer after training (0: off)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    dist = parser.add_argument_group("multi-host (jax.distributed)")
    dist.add_argument("--coordinator-address", default=None,
                      help="host:port of process 0 (default: $JAX_COORDINATOR_ADDRESS)")
    dist.add_argument("--num-processes", type=int, default=None,
                      help="number of processes (default: $JAX_NUM_PROCESSES)")
    dist.add_argument("--process-id", type=int, default=None,
                      help="this process's id (default: $JAX_PROCESS_ID)")


def image_parser(prog: str, description: str | None) -> OneLineParser:
    """The parser of ``python -m experiments.image``."""
    parser = OneLineParser(prog=prog, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(parser)
    return parser


def parse_opt_args(items: Sequence[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values read as JSON when they parse (numbers, true, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not all(part.isidentifier() for part in key.split(".", 1)):
            raise UsageError(f"--opt-arg {item!r}: expected KEY=VALUE or OPTIMIZER.KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def options_for(optimizer: str, opt_args: dict[str, Any]) -> dict[str, Any]:
    """The ``--opt-arg`` options that apply to ``optimizer`` (unscoped ones and its own)."""
    out = {k: v for k, v in opt_args.items() if "." not in k}
    for key, value in opt_args.items():
        scope, _, name = key.partition(".")
        if name and scope == optimizer:
            out[name] = value
    return out


def image_config(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None,
) -> RunConfig:
    """Resolve parsed flags into a :class:`RunConfig` (learning rate, batch size, out dir)."""
    activation = activation or args.activation
    optimizer = optimizer or args.optimizer
    spec = optimizers.get(optimizer)
    if args.lr is not None:
        lr = args.lr
    else:
        try:
            lr = spec.lr_for(activation)
        except KeyError:
            from experiments.image import ACTIVATIONS

            raise UsageError(
                f"--activation {activation!r}: expected one of {', '.join(ACTIVATIONS)}"
            ) from None
    batch_size = args.batch_size
    if batch_size is None:
        batch_size = args.size * args.size if spec.full_batch_only else 512
    return RunConfig(
        task="image", image=args.image, size=args.size, activation=activation,
        depth=args.depth, width=args.width, optimizer=optimizer,
        opt_args=options_for(optimizer, parse_opt_args(args.opt_arg)), learning_rate=lr,
        schedule=args.schedule,
        final_lr=args.final_lr, decay_epochs=args.decay_epochs, epochs=args.epochs,
        batch_size=batch_size, seed=args.seed, parallel=args.parallel,
        out=out or args.out or f"{DEFAULT_OUT}/{activation}-{optimizer}", resume=args.resume,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        eval_every=args.eval_every, timing_steps=args.timing_steps,
        progress=not args.no_progress, coordinator_address=args.coordinator_address,
        num_processes=args.num_processes, process_id=args.process_id,
    )


def init_distributed(config: RunConfig) -> bool:
    """Join a multi-process run if the config or the environment asks for one."""
    from experiments.distributed import initialize

    return initialize(config.coordinator_address, config.num_processes, config.process_id)


def print_summary(summary: dict[str, Any], config: RunConfig) -> None:
    """A few lines on what the run reached and where its files are."""
    opt_time = summary.get("optimizer_time_s")
    print(
        f"{config.activation}/{config.optimizer}: final PSNR {summary['final_psnr']:.2f} dB after "
        f"{summary['steps']} steps ({summary['epochs']:g} epochs), "
        f"{summary['time_per_step_s'] * 1e3:.2f} ms/step"
        + (f", optimizer {opt_time:.2f} s" if opt_time is not None else "")
    )
    print(f"outputs in {config.out}: summary.json, metrics.csv, reconstruction.png, error.png, "
          "convergence.png, tensorboard/, checkpoints/")


def run_main(fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run ``fn(argv)``, turning bad input into one line and exit code 2."""
    from experiments.loop import Interrupted

    try:
        return fn(argv)
    except (UsageError, CheckpointError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except Interrupted as exc:
        sys.stderr.write(f"{exc}; checkpoint saved, continue with --resume\n")
        return 128 + exc.signum
