"""Command-line plumbing shared by the experiment entry points.

Bad input ends the program with exit code 2 and one line on stderr that names the value and what
was expected (argparse's own errors included); SIGINT/SIGTERM end it with 128 + the signal number
after a checkpoint is saved.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from experiments import optimizers
from experiments.harness.config import PARALLEL_MODES, SCHEDULES, RunConfig
from experiments.harness.errors import CheckpointError, UsageError
from experiments.harness.metrics import format_metric


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def add_run_args(
    parser: argparse.ArgumentParser, *, grid: bool = False, default_out: str = "runs/run"
) -> None:
    """The task-independent flags of one run (model, optimizer, training, output, multi-host).

    A task adds its data flags first (its ``add_data_args``). With ``grid`` the activation and
    optimizer flags are left out (a comparison grid takes lists of them). A task changes a
    default with ``parser.set_defaults`` (e.g. ``batch_size``, ``epochs``).
    """
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
                            "and activation, see experiments/optimizers/registry.py)")
    model.add_argument("--schedule", default="constant",
                       help=f"learning-rate schedule: {', '.join(SCHEDULES)} (default constant)")
    model.add_argument("--final-lr", type=float, default=None,
                       help="learning rate at the end of the decay (default lr/100)")
    model.add_argument("--decay-epochs", type=float, default=None,
                       help="epochs over which the schedule decays (default: --epochs)")
    model.add_argument("--opt-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="extra optimizer option, e.g. bias_correction=reference "
                            "(repeatable); OPTIMIZER.KEY=VALUE applies to one optimizer only; "
                            "checked against the optimizer's parameters and converted to "
                            "their types (none for None) before the run starts")
    run = parser.add_argument_group("training")
    run.add_argument("--epochs", type=int, default=200,
                     help="passes over the training examples (default %(default)s)")
    run.add_argument("--batch-size", type=int, default=None,
                     help="examples per step (default: the task's; all of them for full-batch "
                          "optimizers)")
    run.add_argument("--seed", type=int, default=0, help="initialisation, probes and data order")
    run.add_argument("--parallel", default="none",
                     help=f"{' | '.join(PARALLEL_MODES)}: data parallelism over all devices")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=None,
                     help=f"run directory (default {default_out}/ACTIVATION-OPTIMIZER)")
    out.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its latest checkpoint (also to extend "
                          "it with a larger --epochs)")
    out.add_argument("--checkpoint-every", type=int, default=1000,
                     help="steps between checkpoints (also saved at the end and on "
                          "SIGINT/SIGTERM)")
    out.add_argument("--log-every", type=int, default=None,
                     help="steps between log rows (default: one epoch)")
    out.add_argument("--eval-every", type=int, default=10,
                     help="epochs between full evaluations (0: end only)")
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


def parse_opt_args(items: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``, the values as text: each optimizer converts them to its
    builder's parameter types (:func:`opt_args_for`)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not all(part.isidentifier() for part in key.split(".", 1)):
            raise UsageError(f"--opt-arg {item!r}: expected KEY=VALUE or OPTIMIZER.KEY=VALUE")
        scope, dot, _ = key.partition(".")
        if dot and scope not in optimizers.names():
            raise UsageError(
                f"--opt-arg {item}: {scope!r} is not an optimizer; expected KEY=VALUE, or "
                f"OPTIMIZER.KEY=VALUE with OPTIMIZER one of {', '.join(optimizers.names())}"
            )
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


def opt_args_for(
    optimizer: str, items: Sequence[str], *, learning_rate: float = 1.0
) -> dict[str, Any]:
    """The ``--opt-arg`` ``items`` that apply to ``optimizer``, checked against its builder's
    signature, converted to its parameter types and tried in one build, before any work.

    Raises:
      UsageError: a malformed item, an option the optimizer does not take, a value that does not
        convert, or one the optimizer rejects; the message names it.
    """
    from experiments.optimizers.registry import validate_options

    opt_args = parse_opt_args(items)
    options = options_for(optimizer, opt_args)
    keys = {k: (f"{optimizer}.{k}" if f"{optimizer}.{k}" in opt_args else k) for k in options}
    # A bad --lr is reported by the config's own check, not blamed on the options.
    trial_lr = learning_rate if learning_rate > 0 else 1.0
    return validate_options(optimizer, options, learning_rate=trial_lr, keys=keys)


def run_settings(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None, default_out: str, num_examples: int | None = None,
    default_batch_size: int = 512,
) -> dict[str, Any]:
    """The task-independent :class:`RunConfig` fields from parsed flags, resolved.

    The learning rate defaults to the registry's reference value for the optimizer and
    activation; the batch size to ``default_batch_size``, or ``num_examples`` (when the task
    knows it before loading its data) for full-batch-only optimizers; the run directory to
    ``default_out/ACTIVATION-OPTIMIZER``. A task passes the result, with its data fields, to its
    config class.
    """
    activation = activation or args.activation
    optimizer = optimizer or args.optimizer
    spec = optimizers.get(optimizer)
    if args.lr is not None:
        lr = args.lr
    else:
        try:
            lr = spec.lr_for(activation)
        except KeyError:
            import fields

            raise UsageError(
                f"--activation {activation!r}: expected one of {', '.join(fields.FIELD_NAMES)}"
            ) from None
    batch_size = args.batch_size
    if batch_size is None:
        full = spec.full_batch_only and num_examples is not None
        batch_size = num_examples if full else default_batch_size
    return dict(
        activation=activation, depth=args.depth, width=args.width, optimizer=optimizer,
        opt_args=opt_args_for(optimizer, args.opt_arg, learning_rate=lr), learning_rate=lr,
        schedule=args.schedule, final_lr=args.final_lr, decay_epochs=args.decay_epochs,
        epochs=args.epochs, batch_size=batch_size, seed=args.seed, parallel=args.parallel,
        out=out or args.out or f"{default_out}/{activation}-{optimizer}", resume=args.resume,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        eval_every=args.eval_every, timing_steps=args.timing_steps,
        progress=not args.no_progress, coordinator_address=args.coordinator_address,
        num_processes=args.num_processes, process_id=args.process_id,
    )


def init_distributed(config: RunConfig) -> bool:
    """Join a multi-process run if the config or the environment asks for one."""
    from experiments.harness.distributed import initialize

    return initialize(config.coordinator_address, config.num_processes, config.process_id)


def print_summary(summary: dict[str, Any], config: RunConfig) -> None:
    """A few lines on what the run reached and where its files are."""
    opt_time = summary.get("optimizer_time_s")
    print(
        f"{config.activation}/{config.optimizer}: final {format_metric(summary)} after "
        f"{summary['steps']} steps ({summary['epochs']:g} epochs), "
        f"{summary['time_per_step_s'] * 1e3:.2f} ms/step"
        + (f", optimizer {opt_time:.2f} s" if opt_time is not None else "")
    )
    files = ["summary.json", "metrics.csv", *summary.get("outputs", []), "tensorboard/",
             "checkpoints/"]
    print(f"outputs in {config.out}: {', '.join(dict.fromkeys(files))}")


def run_subcommand(commands: Mapping[str, Callable[[Sequence[str]], int]],
                   argv: Sequence[str] | None, usage: str | None) -> int:
    """Dispatch ``argv[0]`` to its function in ``commands`` under :func:`run_main`; an unknown or
    missing subcommand names the choices and prints ``usage`` (exit code 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in commands:
        sys.stderr.write(f"error: expected a subcommand, one of {', '.join(commands)}\n"
                         f"{usage or ''}")
        return 2
    return run_main(lambda a: commands[argv[0]](a), argv[1:])


def print_command(fn: Callable[[list[pathlib.Path]], list[str]]) -> Callable[[Sequence[str]],
                                                                             int]:
    """A subcommand that prints ``fn``'s lines for the paths it is given (e.g. a table)."""
    def command(argv: Sequence[str]) -> int:
        print("\n".join(fn([pathlib.Path(x) for x in argv])))
        return 0

    return command


def run_main(fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run ``fn(argv)``, turning bad input into one line and exit code 2."""
    from experiments.harness.loop import Interrupted

    try:
        return fn(argv)
    except (UsageError, CheckpointError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except Interrupted as exc:
        sys.stderr.write(f"{exc}; checkpoint saved, continue with --resume\n")
        return 128 + exc.signum
