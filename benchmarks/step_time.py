"""Step time of every optimizer relative to ``optax.adam``, measured in one process.

The paper's image field: a 5-layer, 256-wide Gaussian field (sigma 0.05) fitting RGB values at
batches of 512 coordinates. Every optimizer runs through the same compiled train step
(``jaxprecond.make_train_step``, or the registry's own step for K-FAC); after a warm-up that
covers compilation and the curvature warm-up (ESGD's first 50 HVP steps), each step is timed
with ``block_until_ready`` and the median is divided by Adam's. Rounds interleave the
optimizers so that drift in machine load hits all of them alike.

Also printed: the cost of one forward-over-reverse HVP (``jvp`` of ``grad``) relative to one
gradient, which bounds what an optimizer with an HVP every step can achieve.

ESGD with each safeguard against collapse (``docs/ROBUSTNESS.md``) is timed the same way, and
the curvature warm-up (ESGD's first 50 steps, plain and with ``warmup_probes=8``) on its own.

Run: ``python -m benchmarks.step_time [--rounds 5 --steps 40 --include-baselines]``.
Timings are ratios on *this* machine; on CPU with other work running they are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fields
import jaxprecond as jp

BATCH = 512


class _SyntheticImageTask:
    """Just enough of a harness task for K-FAC's loss registration (apply and batch)."""

    def __init__(self, model: Any, coords: np.ndarray, pixels: np.ndarray):
        self.model, self.coords, self.pixels = model, coords, pixels

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        return self.model.apply({"params": params}, x)

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"coords": self.coords[idx], "pixels": self.pixels[idx]}


def _core_optimizers() -> dict[str, Callable[[], optax.GradientTransformation]]:
    return {
        "adam": lambda: optax.adam(1e-4),
        "esgd": lambda: jp.esgd(0.15),
        "esgd_max": lambda: jp.esgd_max(0.15),
        "adahessian_e (HVP every step)": lambda: jp.adahessian(0.15),
        "adahessian_j": lambda: jp.adahessian(0.15, preconditioner="abs_hvp"),
        "adahessian_jacobi": lambda: jp.adahessian(0.15, preconditioner="jacobi"),
        "preconditioned_sgd": lambda: jp.preconditioned_sgd(0.01),
    }


def _safeguarded_esgd() -> dict[str, Callable[[], optax.GradientTransformation]]:
    """ESGD without its default clip, and with each other safeguard of issue 11
    (docs/ROBUSTNESS.md), timed like the others."""
    return {
        "esgd clip=None (unclipped)": lambda: jp.esgd(0.15, clip=None),
        "esgd curvature_floor=0.1": lambda: jp.esgd(0.15, curvature_floor=0.1),
        "esgd warmup_probes=8": lambda: jp.esgd(0.15, warmup_probes=8),
        "esgd lr_warmup_steps=256": lambda: jp.esgd(0.15, lr_warmup_steps=256),
    }


#: Optimizers whose first ``WARMUP_STEPS`` steps (an HVP each) are also timed on their own.
WARMUP_TIMED = ("esgd", "esgd warmup_probes=8", "esgd clip=None (unclipped)")
WARMUP_STEPS = 50


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=60, help="untimed steps before timing")
    parser.add_argument("--warmup-rounds", type=int, default=1,
                        help="rounds of the first 50 steps timed from a fresh state")
    parser.add_argument("--include-baselines", action="store_true",
                        help="also time shampoo, kfac and lbfgs (experiments.optimizers)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    coords = rng.uniform(-1, 1, (256 * 256, 2)).astype(np.float32)
    pixels = rng.uniform(0, 1, (256 * 256, 3)).astype(np.float32)
    model = fields.make("gaussian")
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]

    def loss_fn(p: Any, batch: dict[str, jax.Array]) -> jax.Array:
        return jnp.mean((model.apply({"params": p}, batch["coords"]) - batch["pixels"]) ** 2)

    batches = [
        jax.device_put({"coords": coords[i * BATCH:(i + 1) * BATCH],
                        "pixels": pixels[i * BATCH:(i + 1) * BATCH]})
        for i in range(8)
    ]

    runners: dict[str, Any] = {}
    for name, make in {**_core_optimizers(), **_safeguarded_esgd()}.items():
        tx = make()
        runners[name] = [jp.make_train_step(loss_fn, tx), params, tx.init(params)]
    fresh_states = {name: runners[name][2] for name in WARMUP_TIMED}
    if args.include_baselines:
        from experiments import optimizers
        from experiments.optimizers.kfac import kfac_task_options

        task = _SyntheticImageTask(model, coords, pixels)
        for name, lr, opts in [("shampoo", 0.1, {}), ("lbfgs", 1.0, {}),
                               ("kfac", 1e-4, kfac_task_options(task))]:
            tx = optimizers.build(name, lr, **opts)
            make_step = optimizers.make_step_fn(name)
            kwargs = {"extra_args": ("value", "grad", "value_fn")} if name == "lbfgs" else {}
            runners[name] = [make_step(loss_fn, tx, **kwargs), params, tx.init(params)]

    def run(name: str, n: int, timed: bool) -> list[float]:
        step, p, s = runners[name]
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            p, s, metrics = step(p, s, batches[i % len(batches)])
            if timed:
                jax.block_until_ready(p)
                out.append(time.perf_counter() - t0)
        jax.block_until_ready(p)
        runners[name][1:] = [p, s]
        return out

    for name in runners:
        run(name, args.warmup, timed=False)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name in runners:
            times[name] += run(name, args.steps, timed=True)

    # The curvature warm-up (an HVP on each of the first 50 steps) timed from a fresh state, on
    # the already compiled step (no recompilation: the state has the same structure).
    warmup_times: dict[str, list[float]] = {name: [] for name in WARMUP_TIMED}
    for _ in range(args.warmup_rounds):
        for name in WARMUP_TIMED:
            runners[name][1:] = [params, fresh_states[name]]
            warmup_times[name] += run(name, WARMUP_STEPS, timed=True)

    # HVP versus gradient cost on the same batch.
    b = batches[0]
    obj = lambda p: loss_fn(p, b)
    grad_fn = jax.jit(jax.grad(obj))
    probe = jp.sample_probes(jax.random.PRNGKey(1), params)
    hvp_fn = jax.jit(lambda p, v: jp.grad_and_hvp(obj, p, v))
    jax.block_until_ready(grad_fn(params))
    jax.block_until_ready(hvp_fn(params, probe))

    def median_time(f: Callable[[], Any], n: int = 50) -> float:
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    t_grad = median_time(lambda: grad_fn(params))
    t_hvp = median_time(lambda: hvp_fn(params, probe))

    adam = statistics.median(times["adam"])
    ratios = {}
    print(f"device: {jax.devices()[0].device_kind}; field 5x256 gaussian, batch {BATCH}; "
          f"{args.rounds} rounds x {args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"{'optimizer':32s} {'median ms':>10s} {'mean ms':>9s} {'median/adam':>12s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        ratios[name] = med / adam
        print(f"{name:32s} {1e3 * med:10.2f} {1e3 * statistics.fmean(ts):9.2f} "
              f"{med / adam:11.2f}x")
    print(f"first {WARMUP_STEPS} steps (curvature warm-up, an HVP each), median ms and ratio "
          "to adam's step:")
    for name, ts in warmup_times.items():
        med = statistics.median(ts)
        ratios[f"{name} (warm-up)"] = med / adam
        print(f"  {name:30s} {1e3 * med:10.2f} {med / adam:11.2f}x")
    print(f"gradient {1e3 * t_grad:.2f} ms; grad+HVP (one jvp of grad) {1e3 * t_hvp:.2f} ms; "
          f"HVP/gradient cost ratio {t_hvp / t_grad:.2f}")
    print("targets: esgd <= 1.05x adam; adahessian (HVP every step) <= 2.6x adam")
    ratios["hvp_over_grad"] = t_hvp / t_grad
    return ratios


if __name__ == "__main__":
    main()
