"""The optimizer's share of the step time, measured apart from the training loop.

The training loop fuses gradient and update into one compiled step and never waits on the device
between steps, so the update cannot be timed inside it without slowing it down. The paper times
the optimizer's ``step()`` (update, curvature HVPs, applying it). We measure the same thing as
the time of the real compiled train step minus the time of the loss-and-gradient alone, both on
one device with the same batch, over a window of consecutive steps, so refresh schedules (HVPs
every step in a warm-up, then every ``update_interval`` steps) are sampled at their true rates:

* runs of at most ``window`` steps: replayed in full from the initial state;
* longer runs: the first ``window`` steps from the initial state (warm-up included) plus the
  remaining steps at the per-step cost of ``window`` steps continued from the final state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import optax


def _timed_steps(step: Any, params: Any, opt_state: Any, batch: Any, n: int) -> float:
    jax.block_until_ready(step(params, opt_state, batch))  # compile (result discarded)
    start = time.perf_counter()
    for _ in range(n):
        params, opt_state, _ = step(params, opt_state, batch)
    jax.block_until_ready((params, opt_state))
    return time.perf_counter() - start


def _timed_grads(grad_fn: Callable, params: Any, batch: Any, n: int) -> float:
    jax.block_until_ready(grad_fn(params, batch))
    start = time.perf_counter()
    out = None
    for _ in range(n):
        out = grad_fn(params, batch)
    jax.block_until_ready(out)
    return time.perf_counter() - start


def optimizer_time(
    loss_fn: Callable[[Any, Any], jax.Array],
    tx: optax.GradientTransformationExtraArgs,
    *,
    initial: tuple[Any, Any],
    final: tuple[Any, Any],
    batch: Any,
    steps: int,
    window: int,
    step: Any = None,
    make_step: Callable[..., Any] | None = None,
) -> float:
    """Estimated seconds the optimizer took over a run of ``steps`` steps.

    Args:
      loss_fn: ``loss_fn(params, batch)``.
      tx: the run's optimizer, built for one device (no ``axis_name``).
      initial: ``(params, opt_state)`` at step 0, on one device.
      final: ``(params, opt_state)`` at the end of the run, on one device.
      batch: one training batch (host arrays of the per-process batch).
      steps: steps the run took.
      window: steps replayed per measurement.
      step: the run's own single-device train step, if it has one (saves a compilation).
      make_step: the train-step builder (default ``jaxprecond.make_train_step``).
    """
    if make_step is None:
        from jaxprecond import make_train_step as make_step

    if step is None or step.parallel is not None:
        step = make_step(loss_fn, tx, parallel=None, devices=jax.local_devices()[:1])
    batch = step.shard(batch)
    grad_fn = jax.jit(jax.value_and_grad(loss_fn))

    def cost(params: Any, opt_state: Any, n: int) -> float:
        params, opt_state = step.place(params), step.place(opt_state)
        return max(0.0, _timed_steps(step, params, opt_state, batch, n)
                   - _timed_grads(grad_fn, params, batch, n))

    if steps <= window:
        return cost(*initial, steps)
    return cost(*initial, window) + (steps - window) * cost(*final, window) / window
