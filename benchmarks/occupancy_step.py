"""Occupancy step time: ESGD relative to Adam, measured in one process.

The paper's occupancy setting: a 5-layer, 256-wide Gaussian field (sigma 0.09) with one logit,
BCE with logits on batches of 50,000 points (the made torus+sphere, sampled as the task does).
Both optimizers run through the task's compiled train step (``jaxprecond.make_train_step`` on
:class:`experiments.tasks.occupancy.OccupancyTask`). ESGD is timed on its HVP steps (the
warm-up, and every ``update_interval``-th step after it) and on its plain steps; the amortised
ratio is that of a run of ``--run-steps`` steps (default: the paper's 200 epochs x 20 steps) with
the reference schedule (HVP on the first 50 steps, then every 100). Rounds interleave Adam and
ESGD so drift in machine load hits both alike.

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


def measure(batch_size: int, steps: int, rounds: int, depth: int | None = None,
            width: int | None = None) -> dict[str, float]:
    """Median seconds per step of Adam, ESGD's HVP step and ESGD's plain step."""
    data = od.make_dataset(od.TorusSphere(), od.SamplingSettings(points=batch_size,
                                                                 eval_points=1000))
    task = occupancy.OccupancyTask(od.TorusSphere(), data,
                                   occupancy.make_model("gaussian", depth, width),
                                   od.SamplingSettings(points=batch_size, eval_points=1000),
                                   batch_size=batch_size)
    batch = task.batch(np.arange(batch_size))
    params = task.init_params(jax.random.PRNGKey(0))
    # ESGD with a huge warm-up refreshes every step; with warm-up 0 and a huge interval, never
    # (after its first step).
    txs = {
        "adam": optimizers.build("adam", 1e-4),
        "esgd_hvp": optimizers.build("esgd", 0.15, warmup=10**9, update_interval=100),
        "esgd_plain": optimizers.build("esgd", 0.15, warmup=0, update_interval=10**9),
    }
    state = {}
    for name, tx in txs.items():
        step = jp.make_train_step(task.loss_fn, tx)
        opt = tx.init(params)
        _, (p, o) = _timed(step, params, opt, batch, 2)  # compile + first (refresh) step
        state[name] = (step, p, o)
    times: dict[str, list[float]] = {name: [] for name in txs}
    for _ in range(rounds):
        for name, (step, p, o) in state.items():
            t, (p, o) = _timed(step, p, o, batch, steps)
            state[name] = (step, p, o)
            times[name].extend(t)
    return {name: statistics.median(t) for name, t in times.items()}


def amortised(t: dict[str, float], run_steps: int, warmup: int = 50, interval: int = 100) -> float:
    """Mean ESGD step time over a run with the reference refresh schedule."""
    hvp_steps = min(warmup, run_steps) + max(0, run_steps - warmup) // interval
    return (hvp_steps * t["esgd_hvp"] + (run_steps - hvp_steps) * t["esgd_plain"]) / run_steps


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
    print(f"  adam              {t['adam'] * 1e3:9.1f} ms   1.00x")
    print(f"  esgd (HVP step)   {t['esgd_hvp'] * 1e3:9.1f} ms   {t['esgd_hvp'] / t['adam']:.2f}x")
    print(f"  esgd (plain step) {t['esgd_plain'] * 1e3:9.1f} ms   "
          f"{t['esgd_plain'] / t['adam']:.2f}x")
    print(f"  esgd amortised over {args.run_steps} steps: {mean * 1e3:.1f} ms   "
          f"ratio ESGD/Adam {mean / t['adam']:.2f}x")


if __name__ == "__main__":
    main()
