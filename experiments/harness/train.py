"""Train any :class:`~experiments.harness.task.Task` with any registered optimizer: output directory
checks, optimizer and train-step construction, checkpoint restore, the loop, and the summary."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax

from experiments import optimizers
from experiments.harness.batches import ShuffledBatches
from experiments.harness.checkpoint import Checkpointer
from experiments.harness.config import (
    RunConfig,
    incompatibilities,
    read_saved_config,
    validate,
)
from experiments.harness.distributed import is_primary, local_copy, tree_nbytes
from experiments.harness.errors import UsageError
from experiments.harness.loop import LoopSpec, run_loop
from experiments.harness.metrics import MetricsWriter, read_metrics
from experiments.harness.plots import convergence_plot
from experiments.harness.task import Task
from jaxprecond import curvature_diagnostics

AXIS = "batch"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
# Keys every summary has; the task adds ``final_<metric_name>`` (e.g. ``final_psnr``).
SUMMARY_KEYS = (
    "metric", "steps", "epochs", "wall_time_s", "train_time_s", "optimizer_time_s",
    "time_per_step_s", "optimizer_time_per_step_s", "compile_time_s", "optimizer_state_bytes",
    "num_params", "final_loss", "skipped_steps", "n_devices", "process_count", "device",
    "resumed_from_step", "config",
)


def check_batch(task: Task, config: RunConfig, n_devices: int, n_processes: int) -> None:
    """The batch fits the data and splits evenly over devices and processes."""
    if config.batch_size > task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: larger than the {task.num_examples} examples; "
            f"expected at most {task.num_examples}"
        )
    if config.parallel != "none" and config.batch_size % n_devices:
        raise UsageError(
            f"--batch-size {config.batch_size}: expected a multiple of the {n_devices} devices "
            f"of --parallel {config.parallel}"
        )
    if config.batch_size % n_processes:
        raise UsageError(
            f"--batch-size {config.batch_size}: expected a multiple of the {n_processes} processes"
        )


def check_out_dir(task: Task, config: RunConfig) -> bool:
    """Check ``config.out`` before training; return whether it holds a run to resume.

    A directory holding a run is accepted only with ``--resume`` and the same settings; any other
    directory content is left alone.
    """
    out = pathlib.Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a directory")
    config_file, ckpt_dir = out / CONFIG_FILE, out / "checkpoints"
    holds_run = config_file.exists() or (ckpt_dir.is_dir() and any(ckpt_dir.iterdir()))
    if not holds_run:
        return False
    if not config.resume:
        raise UsageError(
            f"--out {out}: already holds a run; expected a new directory, or --resume to "
            "continue it"
        )
    if not config_file.exists():
        raise UsageError(f"--out {out}: holds checkpoints but no {CONFIG_FILE}; expected a run "
                         "directory written by this harness")
    saved = read_saved_config(config_file)
    diffs = incompatibilities(saved.get("config", {}), config)
    for key, value in task.fingerprint().items():
        old = saved.get("data", {}).get(key)
        if old is not None and old != value:
            diffs.append(f"data {key}: the run has {old!r}, got {value!r}")
    if diffs:
        raise UsageError(
            f"--out {out}: holds a different run ({'; '.join(diffs)}); expected the same "
            "settings with --resume, or a new --out"
        )
    return True


def _agree(error: UsageError | None, what: str) -> None:
    """Share process 0's verdict with every process so none trains alone."""
    ok = _all_agree(error is None)
    if error is not None:
        raise error
    if not ok:
        raise UsageError(f"{what}: rejected by process 0 (see its message)")


def _all_agree(flag: bool) -> bool:
    """Process 0's ``flag``, the same on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return bool(int(multihost_utils.broadcast_one_to_all(np.int32(flag))))
    return flag


def finished_summary(out: pathlib.Path, total_steps: int) -> dict[str, Any] | None:
    """The summary of the finished run in ``out`` if it trained all ``total_steps``, else
    ``None`` (no summary, an unreadable one, or a run resumed to train longer)."""
    try:
        summary = json.loads((pathlib.Path(out) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("steps") != total_steps:
        return None
    return summary


def _lr_fn(lr: Any) -> Callable[[int], float]:
    return (lambda step: float(lr(step))) if callable(lr) else (lambda step: float(lr))


@dataclasses.dataclass
class Built:
    """The pieces :func:`build` makes for a run."""

    batcher: ShuffledBatches
    steps_per_epoch: int
    total_steps: int
    learning_rate: float | optax.Schedule
    tx: optax.GradientTransformationExtraArgs
    step_fn: Any
    parallel: str | None


def build_tx(
    task: Task, config: RunConfig, learning_rate: Any, *, axis_name: str | None
) -> optax.GradientTransformationExtraArgs:
    """The run's optimizer: registry builder + options from the task + ``--opt-arg``s."""
    options = {**optimizers.task_options(config.optimizer, task), **config.opt_args}
    return optimizers.build(config.optimizer, learning_rate, seed=config.seed,
                            axis_name=axis_name, **options)


def build(task: Task, config: RunConfig, *, devices: Sequence[Any] | None = None) -> Built:
    """Data order, learning rate (or schedule), optimizer and compiled train step of a run.

    Under ``pmap`` the optimizer gets the mapped axis name so its curvature estimate is
    averaged across replicas like the gradient; under sharded ``jit`` the compiler does it.
    """
    parallel = None if config.parallel == "none" else config.parallel
    batcher = ShuffledBatches(task.num_examples, config.batch_size, config.seed)
    spe = batcher.steps_per_epoch
    total_steps = config.steps or config.epochs * spe
    lr = optimizers.learning_rate_schedule(
        config.learning_rate, config.schedule, steps_per_epoch=spe,
        decay_epochs=config.decay_epochs or total_steps / spe, final_lr=config.final_lr,
    )
    tx = build_tx(task, config, lr, axis_name=AXIS if parallel == "pmap" else None)
    make_step = optimizers.make_step_fn(config.optimizer)
    step_fn = make_step(task.loss_fn, tx, parallel=parallel, axis_name=AXIS, devices=devices)
    return Built(batcher, spe, total_steps, lr, tx, step_fn, parallel)


def train(
    task: Task, config: RunConfig, *, on_log: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Train ``task`` as ``config`` says, writing everything under ``config.out``.

    Writes ``config.json``, ``metrics.csv``, ``tensorboard/``, ``checkpoints/``,
    ``summary.json``, the task's outputs and ``convergence.png`` (process 0 only, except
    checkpoints, which every process writes together).

    With ``--resume`` on a run that has already trained all its steps, nothing is trained or
    rewritten: its ``summary.json`` is returned as it is.

    Returns:
      The summary (also in ``summary.json``).

    Raises:
      UsageError: bad settings or output directory (before any training).
      CheckpointError: the checkpoint to resume cannot be restored.
      loop.Interrupted: SIGINT/SIGTERM; a checkpoint of the current step was saved.
    """
    session_start = time.perf_counter()
    validate(config)
    spec = optimizers.get(config.optimizer)
    if spec.full_batch_only and config.batch_size < task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: optimizer {config.optimizer!r} needs the full "
            f"batch; expected {task.num_examples}"
        )
    parallel = None if config.parallel == "none" else config.parallel
    n_processes = jax.process_count()
    if n_processes > 1 and parallel != "sharded":
        raise UsageError(
            f"--parallel {config.parallel}: a {n_processes}-process run expects sharded"
        )
    devices = jax.local_devices()[:1] if parallel is None else jax.devices()
    check_batch(task, config, len(jax.devices()) if parallel else 1, n_processes)

    out = pathlib.Path(config.out)
    error, resumable = None, False
    if is_primary():
        try:
            resumable = check_out_dir(task, config)
        except UsageError as exc:
            error = exc
    _agree(error, f"--out {out}")
    out.mkdir(parents=True, exist_ok=True)

    built = build(task, config, devices=devices)
    batcher, spe, total_steps = built.batcher, built.steps_per_epoch, built.total_steps
    done = finished_summary(out, total_steps) if resumable and is_primary() else None
    if _all_agree(done is not None):
        # A finished run is reused as it is: training zero steps would rewrite its summary
        # without the first segment's compile time and re-time the optimizer on a machine that
        # may be busy now.
        return done or {}
    lr, tx, step_fn, parallel = built.learning_rate, built.tx, built.step_fn, built.parallel

    params0 = task.init_params(jax.random.PRNGKey(config.seed))
    opt0 = tx.init(params0)
    placed = (step_fn.place(params0), step_fn.place(opt0))
    pmap = parallel == "pmap"
    checkpointer = Checkpointer(out / "checkpoints")
    meta: dict[str, Any] = {}
    start_step = 0
    params, opt_state = placed
    latest = checkpointer.latest_step() if config.resume else None
    if latest is not None:
        template = {"params": params0, "opt_state": opt0} if pmap else {
            "params": placed[0], "opt_state": placed[1]}
        state, meta = checkpointer.restore(template, latest)
        if latest > total_steps and config.steps:
            raise UsageError(
                f"--steps {config.steps}: the run in {out} is already at step {latest}; "
                f"expected at least {latest}"
            )
        if latest > total_steps:
            epochs_done = latest // spe
            raise UsageError(
                f"--epochs {config.epochs}: the run in {out} is already at epoch {epochs_done}; "
                f"expected at least {epochs_done}"
            )
        batcher.load_state_dict(meta["data_order"])
        start_step = latest
        params, opt_state = state["params"], state["opt_state"]
        if pmap:
            params = step_fn.place(params)
            opt_state = step_fn.place(opt_state)
    elif config.resume and is_primary() and resumable:
        print(f"note: no checkpoint in {checkpointer.directory}; starting from step 0")

    data_info = task.fingerprint()
    if is_primary():
        (out / CONFIG_FILE).write_text(
            json.dumps({"config": config.to_dict(), "data": data_info}, indent=2) + "\n"
        )
    # Curvature optimizers also log, per window, the worst loss jump and the extremes of their
    # diagnostics (largest preconditioned update, fraction of tiny curvatures): a collapse
    # warning. The step returns the diagnostics with its metrics; the loop takes their max.
    extra_columns = ()
    if spec.uses_curvature:
        extra_columns = ("loss_jump", *curvature_diagnostics(opt0))
    writer = MetricsWriter(out, metric=task.metric_name, extra=extra_columns, enabled=is_primary(),
                           resume_step=start_step if latest is not None else None)
    prior_wall = float(meta.get("wall_time_s", 0.0))
    # The compile time of the run's first segment: a resumed segment compiles again, but the
    # run's cost with compilation is its first compile (the checkpoints carry it on).
    prior_compile = meta.get("compile_time_s")

    def save(step: int, params: Any, opt_state: Any, progress: dict[str, Any]) -> None:
        state = {"params": params, "opt_state": opt_state}
        if pmap:
            state = local_copy(state, pmap=True)
        compile_s = progress.get("compile_time_s")
        checkpointer.save(step, state, {
            **progress, "compile_time_s": prior_compile if prior_compile is not None else compile_s,
            "data_order": batcher.state_dict(), "config": config.to_dict(),
            "wall_time_s": prior_wall + time.perf_counter() - session_start,
        })

    def evaluate(params: Any) -> dict[str, float]:
        if not is_primary():
            return {}
        return task.evaluate(local_copy(params, pmap=pmap))

    per_process = config.batch_size // n_processes
    pid = jax.process_index()
    try:
        result = run_loop(LoopSpec(
            task=task, step_fn=step_fn, batcher=batcher, params=params, opt_state=opt_state,
            start_step=start_step, total_steps=total_steps,
            log_every=config.log_every or spe, eval_every_epochs=config.eval_every,
            checkpoint_every=config.checkpoint_every, writer=writer, save=save,
            evaluate=evaluate, learning_rate=_lr_fn(lr),
            local=slice(pid * per_process, (pid + 1) * per_process),
            train_time_s=float(meta.get("train_time_s", 0.0)),
            skipped=int(meta.get("skipped", 0)),
            progress=config.progress and is_primary(),
            description=f"{task.name} {config.activation}/{config.optimizer}",
            on_log=on_log, loss_jump=spec.uses_curvature,
        ))
        save(result.step, result.params, result.opt_state,
             {"train_time_s": result.train_time_s, "skipped": result.skipped,
              "compile_time_s": result.compile_time_s})
        checkpointer.wait()
    finally:
        writer.close()
        checkpointer.close()

    if not is_primary():
        return {}
    final_params = local_copy(result.params, pmap=pmap)
    final_eval = result.last_eval or task.evaluate(final_params)
    outputs = task.write_outputs(final_params, out)
    rows = read_metrics(out / "metrics.csv")
    convergence_plot(out / "convergence.png", rows,
                     f"{task.name}: {config.activation} field, {config.optimizer}",
                     metric=task.metric_name, label=_metric_label(task))
    outputs.append("convergence.png")

    optimizer_time = None
    if config.timing_steps > 0 and result.step > 0:
        from experiments.harness.timing import optimizer_time as measure

        tx_local = build_tx(task, config, lr, axis_name=None)
        optimizer_time = measure(
            task.loss_fn, tx_local, initial=(params0, opt0),
            final=(final_params, local_copy(result.opt_state, pmap=pmap)),
            batch=task.batch(np.arange(config.batch_size)), steps=result.step,
            window=config.timing_steps, step=step_fn,
            make_step=optimizers.make_step_fn(config.optimizer),
        )
    final_loss = None
    for row in reversed(rows):
        if row.get("loss") is not None:
            final_loss = row["loss"]
            break
    steps = result.step
    summary = {
        "metric": task.metric_name,
        "metric_label": task.metric_label,
        "metric_unit": task.metric_unit,
        f"final_{task.metric_name}": final_eval.get(task.metric_name),
        **{f"final_eval_{k}": v for k, v in final_eval.items() if k != task.metric_name},
        # A task may name evaluation keys to also report as ``final_<key>`` (e.g. occupancy's
        # ``iou_surface``) with its optional ``final_keys`` attribute.
        **{f"final_{k}": final_eval.get(k) for k in getattr(task, "final_keys", ())},
        "final_loss": final_loss,
        "steps": steps,
        "epochs": steps / spe,
        "steps_per_epoch": spe,
        "wall_time_s": prior_wall + time.perf_counter() - session_start,
        "train_time_s": result.train_time_s,
        "time_per_step_s": result.train_time_s / max(1, steps - 1),
        "compile_time_s": prior_compile if prior_compile is not None else result.compile_time_s,
        "optimizer_time_s": optimizer_time,
        "optimizer_time_per_step_s": optimizer_time / steps if optimizer_time else None,
        "optimizer_time_method": "compiled step minus loss-and-gradient, replayed on one "
                                 f"device over windows of {config.timing_steps} steps",
        "optimizer_state_bytes": tree_nbytes(opt0),
        "num_params": int(sum(np.size(x) for x in jax.tree.leaves(params0))),
        "skipped_steps": result.skipped,
        "learning_rate": config.learning_rate,
        "n_devices": step_fn.n_devices,
        "process_count": n_processes,
        "parallel": config.parallel,
        "device": jax.devices()[0].device_kind,
        "platform": platform.platform(),
        "jax_version": jax.__version__,
        "resumed_from_step": start_step if latest is not None else None,
        "outputs": outputs,
        "data": data_info,
        "config": config.to_dict(),
    }
    write_summary(out, summary)
    return summary


def write_summary(out: pathlib.Path, summary: dict[str, Any]) -> None:
    """Write ``out/summary.json`` whole or not at all (a temporary file, then a rename), so an
    interrupted write never leaves a truncated summary that marks a run finished."""
    path = pathlib.Path(out) / SUMMARY_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _metric_label(task: Task) -> str:
    return f"{task.metric_label} ({task.metric_unit})" if task.metric_unit else task.metric_label


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
