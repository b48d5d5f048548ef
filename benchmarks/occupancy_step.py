"""Occupancy step time: ESGD relative to Adam, measured in one process.

The paper's occupancy setting: a 5-layer, 256-wide Gaussian field (sigma 0.09) with one logit,
BCE with logits on batches of 50,000 points (the made torus+sphere, sampled as the task does).
Both optimizers run through the task's compiled train step (``jaxprecond.make_train_step`` on
:class:`experiments.tasks.occupancy.OccupancyTask`). ESGD is compiled once, refreshing every
other step, and timed on its HVP steps (what the warm-up and every ``update_interval``-th step
after it cost) and on its plain steps; the amortised ratio is that of a run of ``--run-steps``
steps (default: the paper's 200 epochs x 20 steps) with the reference schedule (HVP on the
first 50 steps, then every 100). Rounds interleave Adam and ESGD so drift in machine load hits
both alike.

Run: ``python -m benchmarks.occupancy_step [--batch-size 50000 --steps 3 --rounds 3]``.
Ratios on *this* machine; on a shared CPU they are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import jax
import numpy as np

import jaxprecond as jp
from experiments import optimizers
from experiments.tasks import occupancy
from experiments.tasks import occupancy_data as od


def _timed(step: Any, params: Any, opt_state: Any, batch: Any, n: int) -> tuple[list[float], Any]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        params, opt_state, metrics = step(params, opt_state, batch)
        jax.block_until_ready((params, metrics))
        times.append(time.perf_counter() - start)
    return times, (params, opt_state)


def _timed_by_refresh(step: Any, params: Any, opt_state: Any, batch: Any,
                      n: int) -> tuple[dict[str, list[float]], Any]:
    """Seconds of ``n`` steps, split by whether the step refreshed the curvature (read from
    the state before the step: :func:`jaxprecond.curvature_due`)."""
    times: dict[str, list[float]] = {"esgd_hvp": [], "esgd_plain": []}
    for _ in range(n):
        due = bool(jp.curvature_due(opt_state))
        start = time.perf_counter()
        params, opt_state, metrics = step(params, opt_state, batch)
        jax.block_until_ready((params, metrics))
        times["esgd_hvp" if due else "esgd_plain"].append(time.perf_counter() - start)
    return times, (params, opt_state)


def measure_task(task: Any, batch: Any, steps: int, rounds: int,
                 learning_rates: tuple[float, float] = (1e-4, 0.15)) -> dict[str, float]:
    """Median seconds per step of Adam, ESGD's HVP step and ESGD's plain step on ``task``
    (anything with ``init_params`` and ``loss_fn``), all on the one ``batch``.

    ESGD is compiled once, refreshing on every other step (``warmup=0, update_interval=2``:
    the same two branches as the reference schedule), and each of its steps is filed under
    the branch it took; a round runs ``steps`` of each kind. ``learning_rates``: Adam's and
    ESGD's (they do not change the time of a step).
    """
    params = task.init_params(jax.random.PRNGKey(0))
    adam_lr, esgd_lr = learning_rates
    adam = optimizers.build("adam", adam_lr)
    esgd = optimizers.build("esgd", esgd_lr, warmup=0, update_interval=2)
    state = {}
    for name, tx in (("adam", adam), ("esgd", esgd)):
        step = jp.make_train_step(task.loss_fn, tx)
        opt = tx.init(params)
        # Compilation and untimed steps; ESGD's four take each branch twice (the first run of
        # a branch can cost more than the others).
        _, (p, o) = _timed(step, params, opt, batch, 2 if name == "adam" else 4)
        state[name] = (step, p, o)
    times: dict[str, list[float]] = {"adam": [], "esgd_hvp": [], "esgd_plain": []}
    for _ in range(rounds):
        step, p, o = state["adam"]
        t, (p, o) = _timed(step, p, o, batch, steps)
        state["adam"] = (step, p, o)
        times["adam"].extend(t)
        step, p, o = state["esgd"]
        split, (p, o) = _timed_by_refresh(step, p, o, batch, 2 * steps)
        state["esgd"] = (step, p, o)
        for name, t in split.items():
            times[name].extend(t)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(batch_size: int, steps: int, rounds: int, depth: int | None = None,
            width: int | None = None) -> dict[str, float]:
    """Median seconds per step of Adam, ESGD's HVP step and ESGD's plain step."""
    data = od.make_dataset(od.TorusSphere(), od.SamplingSettings(points=batch_size,
                                                                 eval_points=1000))
    task = occupancy.OccupancyTask(od.TorusSphere(), data,
                                   occupancy.make_model("gaussian", depth, width),
                                   od.SamplingSettings(points=batch_size, eval_points=1000),
                                   batch_size=batch_size)
    return measure_task(task, task.batch(np.arange(batch_size)), steps, rounds)


def amortised(t: dict[str, float], run_steps: int, warmup: int = 50, interval: int = 100) -> float:
    """Mean ESGD step time over a run with the reference refresh schedule."""
    hvp_steps = min(warmup, run_steps) + max(0, run_steps - warmup) // interval
    return (hvp_steps * t["esgd_hvp"] + (run_steps - hvp_steps) * t["esgd_plain"]) / run_steps


def print_ratios(t: dict[str, Any], mean: float, run_steps: int) -> None:
    """Print Adam's step, ESGD's HVP and plain steps and its amortised step (``mean`` over
    ``run_steps``), each with its ratio to Adam's."""
    print(f"  adam              {t['adam'] * 1e3:9.1f} ms   1.00x")
    print(f"  esgd (HVP step)   {t['esgd_hvp'] * 1e3:9.1f} ms   {t['esgd_hvp'] / t['adam']:.2f}x")
    print(f"  esgd (plain step) {t['esgd_plain'] * 1e3:9.1f} ms   "
          f"{t['esgd_plain'] / t['adam']:.2f}x")
    print(f"  esgd amortised over {run_steps} steps: {mean * 1e3:.1f} ms   "
          f"ratio ESGD/Adam {mean / t['adam']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=50_000)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round and optimizer")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--run-steps", type=int, default=4000,
                   help="run length for the amortised ratio (default 200 epochs x 20 steps)")
    args = p.parse_args(argv)
    t = measure(args.batch_size, args.steps, args.rounds, args.depth, args.width)
    mean = amortised(t, args.run_steps)
    print(f"occupancy step, batch {args.batch_size}, {jax.devices()[0].device_kind}")
    print_ratios(t, mean, args.run_steps)


if __name__ == "__main__":
    main()
