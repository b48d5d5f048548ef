"""The inner training loop: compiled steps, periodic logging, evaluation and checkpoints.

Nothing waits on the device between steps except at log, evaluation and checkpoint points
(and once after the first step, to time compilation): the per-step metrics stay on the device
until a log point fetches the whole window at once. Shapes never change, so the step compiles
once.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from experiments.harness.batches import ShuffledBatches
from experiments.harness.distributed import to_numpy
from experiments.harness.metrics import MetricsWriter
from experiments.harness.task import Task


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint at ``step``."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}")
        self.signum = signum
        self.step = step


class StopSignals:
    """Turns SIGINT and SIGTERM into a flag the loop polls (a second SIGINT aborts at once)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Clock:
    """Accumulates training time, paused around logging, evaluation and checkpoints."""

    def __init__(self, total: float = 0.0):
        self.total = total
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def pause(self) -> None:
        if self._since is not None:
            self.total += time.perf_counter() - self._since
            self._since = None


@dataclasses.dataclass
class LoopSpec:
    """Inputs of :func:`run_loop`.

    ``save(step, params, opt_state, progress)`` writes a checkpoint (``progress`` holds the
    counters to store); ``evaluate(params)`` returns full-evaluation metrics; ``learning_rate``
    maps a step to the scheduled rate (for logs); ``local`` is this process's slice of a global
    batch; ``on_log(row)`` is called after each logged row (tests, notebooks).
    """

    task: Task
    step_fn: Any
    batcher: ShuffledBatches
    params: Any
    opt_state: Any
    start_step: int
    total_steps: int
    log_every: int
    eval_every_epochs: int
    checkpoint_every: int
    writer: MetricsWriter
    save: Callable[[int, Any, Any, dict[str, Any]], None]
    evaluate: Callable[[Any], dict[str, float]]
    learning_rate: Callable[[int], float]
    local: slice = dataclasses.field(default_factory=lambda: slice(None))
    train_time_s: float = 0.0
    skipped: int = 0
    progress: bool = True
    description: str = ""
    on_log: Callable[[dict[str, Any]], None] | None = None
    loss_jump: bool = False


@dataclasses.dataclass
class LoopResult:
    """Outputs of :func:`run_loop`."""

    params: Any
    opt_state: Any
    step: int
    train_time_s: float
    compile_time_s: float | None
    skipped: int
    last_row: dict[str, Any] | None
    last_eval: dict[str, float] | None


def run_loop(spec: LoopSpec) -> LoopResult:
    """Train from ``spec.start_step`` to ``spec.total_steps``.

    Raises:
      Interrupted: after SIGINT/SIGTERM, once a checkpoint of the current step is saved.
    """
    from tqdm.auto import tqdm

    task, step_fn, batcher = spec.task, spec.step_fn, spec.batcher
    metric = task.metric_name
    params, opt_state = spec.params, spec.opt_state
    spe = batcher.steps_per_epoch
    multiprocess = jax.process_count() > 1
    clock = Clock(spec.train_time_s)
    skipped = spec.skipped
    compile_time: float | None = None
    pending: list[dict[str, Any]] = []
    window_start, timed_in_window = clock.total, 0
    last_row: dict[str, Any] | None = None
    last_eval: dict[str, float] | None = None
    previous_loss: float | None = None
    bar = tqdm(
        total=spec.total_steps, initial=spec.start_step, desc=spec.description, unit="step",
        disable=not spec.progress, dynamic_ncols=True, leave=True,
    )
    try:
        with StopSignals() as stop:
            for step in range(spec.start_step, spec.total_steps):
                indices = batcher.indices(step)[spec.local]
                batch = step_fn.shard(task.batch(indices))
                first = step == spec.start_step
                if first:
                    started = time.perf_counter()
                params, opt_state, metrics = step_fn(params, opt_state, batch)
                pending.append(metrics)
                done = step + 1
                if first:
                    jax.block_until_ready(metrics)
                    compile_time = time.perf_counter() - started
                    window_start = clock.total
                    clock.start()
                else:
                    timed_in_window += 1
                last = done == spec.total_steps
                is_eval = last or (
                    spec.eval_every_epochs > 0 and done % spe == 0
                    and (done // spe) % spec.eval_every_epochs == 0
                )
                is_log = last or is_eval or done % spec.log_every == 0
                is_ckpt = done % spec.checkpoint_every == 0 and not last
                stop_now = stop.signum is not None and not multiprocess
                if not (is_log or is_ckpt or stop_now):
                    continue
                jax.block_until_ready((params, metrics))
                clock.pause()
                if is_log:
                    window = to_numpy(pending)
                    pending = []
                    losses = np.array([float(m["loss"]) for m in window])
                    finite = np.array([bool(m["finite"]) for m in window])
                    n_skipped = int((~finite).sum())
                    skipped += n_skipped
                    loss = float(losses[finite].mean()) if finite.any() else math.nan
                    extra = window_extremes(window)
                    if spec.loss_jump:
                        extra["loss_jump"], previous_loss = loss_jump(
                            losses[finite], previous_loss)
                    elapsed = clock.total - window_start
                    train_metric = task.metric_from_loss(loss)
                    row: dict[str, Any] = {
                        "step": done,
                        "epoch": done / spe,
                        "time_s": clock.total,
                        "loss": loss,
                        f"train_{metric}": train_metric,
                        "learning_rate": spec.learning_rate(step),
                        "skipped": n_skipped,
                        "steps_per_s": timed_in_window / elapsed if elapsed > 0 else None,
                        **extra,
                    }
                    if is_eval:
                        last_eval = spec.evaluate(params)
                        row[f"eval_{metric}"] = last_eval.get(metric)
                    spec.writer.write(row)
                    last_row = row
                    if spec.on_log is not None:
                        spec.on_log(row)
                    bar.update(done - bar.n)
                    postfix = {"loss": f"{loss:.3e}"}
                    if train_metric is not None:
                        postfix[metric] = f"{train_metric:.4g}"
                    bar.set_postfix(**postfix, steps_s=f"{row['steps_per_s'] or 0:.1f}",
                                    refresh=False)
                    window_start, timed_in_window = clock.total, 0
                    if multiprocess:
                        stop_now = _any_process(stop.signum)
                if stop_now or is_ckpt:
                    progress = {"train_time_s": clock.total, "skipped": skipped,
                                "compile_time_s": compile_time}
                    spec.save(done, params, opt_state, progress)
                if stop_now:
                    spec.writer.flush()
                    raise Interrupted(stop.signum or signal.SIGTERM, done)
                clock.start()
    finally:
        bar.close()
    clock.pause()
    return LoopResult(
        params=params, opt_state=opt_state, step=max(spec.start_step, spec.total_steps),
        train_time_s=clock.total, compile_time_s=compile_time, skipped=skipped,
        last_row=last_row, last_eval=last_eval,
    )


def window_extremes(window: list[dict[str, Any]]) -> dict[str, float]:
    """The largest value over a log window of every step metric besides ``loss`` and ``finite``
    (e.g. a curvature optimizer's largest preconditioned update): the worst step is what warns
    of a collapse. Non-finite values (skipped steps) are left out; ``nan`` if all are."""
    out = {}
    for key in window[0] if window else ():
        if key in ("loss", "finite"):
            continue
        values = np.array([float(np.max(m[key])) for m in window])
        values = values[np.isfinite(values)]
        out[key] = float(values.max()) if values.size else math.nan
    return out


def loss_jump(losses: np.ndarray, previous: float | None) -> tuple[float, float | None]:
    """The largest ratio of a step's loss to the step before it over a window (the step before
    the first is ``previous``, the last finite loss of the window before), and the window's last
    loss for the next call. Mini-batches differ, so ratios near 1 are noise; a collapse shows as
    a jump of 10x or more. ``nan`` when the window has fewer than two losses."""
    series = losses if previous is None else np.concatenate([[previous], losses])
    series = series[np.isfinite(series)]
    last = float(series[-1]) if series.size else previous
    if series.size < 2:
        return math.nan, last
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = series[1:] / series[:-1]
    ratios = ratios[np.isfinite(ratios)]
    return (float(ratios.max()) if ratios.size else math.nan), last


def _any_process(signum: int | None) -> bool:
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.int32(signum is not None))
    return bool(np.any(flags))
