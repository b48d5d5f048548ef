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
from collections.abc import Callable, Sequence
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


#: Baselines of :mod:`experiments.optimizers` timed with ``--include-baselines``: name -> the
#: registry's learning rate for a Gaussian field (K-FAC also gets the task's options).
BASELINES: dict[str, float] = {"shampoo": 0.1, "lbfgs": 1.0, "kfac": 1e-4, "muon": 0.005,
                               "sophia_h": 1e-3, "sophia_e": 1e-3}


def measure(
    *,
    rounds: int = 5,
    steps: int = 40,
    warmup: int = 60,
    warmup_rounds: int = 1,
    include_baselines: bool = False,
    include_safeguards: bool = True,
    only: Sequence[str] | None = None,
    depth: int | None = None,
    width: int | None = None,
    batch: int = BATCH,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Median step times of every optimizer, interleaved in rounds, in this process.

    Args:
      rounds, steps, warmup, warmup_rounds: as the command-line flags.
      include_baselines: also time :data:`BASELINES` (Shampoo, K-FAC, L-BFGS, Muon, Sophia).
      include_safeguards: also time ESGD with each safeguard of ``docs/ROBUSTNESS.md``.
      only: time only these names (Adam is always timed: it is the reference).
      depth, width: the field's size (default the paper's 5x256).
      batch: coordinates per step (the paper's 512).
      deadline: a ``time.perf_counter()`` value; optimizers not yet compiled by then are
        dropped (listed in ``skipped``, as are baselines whose optional package is missing) so
        that a run under a time budget still reports the others.

    Returns:
      ``{"step_s": {name: median s}, "mean_s": {...}, "ratio": {name: median / adam's},
      "warmup_s": {...}, "warmup_ratio": {...}, "grad_s", "hvp_s", "hvp_over_grad",
      "skipped": [names], "config": {...}}``.
    """
    rng = np.random.default_rng(0)
    coords = rng.uniform(-1, 1, (256 * 256, 2)).astype(np.float32)
    pixels = rng.uniform(0, 1, (256 * 256, 3)).astype(np.float32)
    overrides = {k: v for k, v in (("depth", depth), ("width", width)) if v is not None}
    model = fields.make("gaussian", **overrides)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))["params"]

    def loss_fn(p: Any, batch: dict[str, jax.Array]) -> jax.Array:
        return jnp.mean((model.apply({"params": p}, batch["coords"]) - batch["pixels"]) ** 2)

    batches = [
        jax.device_put({"coords": coords[i * batch:(i + 1) * batch],
                        "pixels": pixels[i * batch:(i + 1) * batch]})
        for i in range(8)
    ]

    def wanted(name: str) -> bool:
        return only is None or name == "adam" or name in only

    makers = {**_core_optimizers(), **(_safeguarded_esgd() if include_safeguards else {})}
    runners: dict[str, Any] = {}
    for name, make in makers.items():
        if wanted(name):
            tx = make()
            runners[name] = [jp.make_train_step(loss_fn, tx), params, tx.init(params)]
    fresh_states = {name: runners[name][2] for name in WARMUP_TIMED if name in runners}
    skipped: list[str] = []
    if include_baselines:
        from experiments import optimizers
        from experiments.optimizers.kfac import kfac_task_options

        task = _SyntheticImageTask(model, coords, pixels)
        for name, lr in BASELINES.items():
            if not wanted(name):
                continue
            try:
                opts = kfac_task_options(task) if name == "kfac" else {}
                tx = optimizers.build(name, lr, **opts)
                make_step = optimizers.make_step_fn(name)
            except ImportError as exc:  # an optional package missing on this machine
                skipped.append(f"{name} ({exc})")
                continue
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

    for name in list(runners):
        if deadline is not None and name != "adam" and time.perf_counter() > deadline:
            skipped.append(name)
            del runners[name]
            fresh_states.pop(name, None)
            continue
        run(name, warmup, timed=False)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name in runners:
            times[name] += run(name, steps, timed=True)

    # The curvature warm-up (an HVP on each of the first 50 steps) timed from a fresh state, on
    # the already compiled step (no recompilation: the state has the same structure).
    warmup_times: dict[str, list[float]] = {name: [] for name in fresh_states}
    for _ in range(warmup_rounds):
        for name in fresh_states:
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
    step_s = {name: statistics.median(ts) for name, ts in times.items()}
    adam = step_s["adam"]
    warmup_s = {name: statistics.median(ts) for name, ts in warmup_times.items()}
    return {
        "step_s": step_s,
        "mean_s": {name: statistics.fmean(ts) for name, ts in times.items()},
        "ratio": {name: t / adam for name, t in step_s.items()},
        "warmup_s": warmup_s,
        "warmup_ratio": {name: t / adam for name, t in warmup_s.items()},
        "grad_s": t_grad,
        "hvp_s": t_hvp,
        "hvp_over_grad": t_hvp / t_grad,
        "skipped": skipped,
        "config": {"field": f"{model.depth}x{model.width or 256} gaussian", "batch": batch,
                   "rounds": rounds, "steps": steps, "warmup": warmup,
                   "warmup_rounds": warmup_rounds,
                   "parameters": int(sum(x.size for x in jax.tree.leaves(params)))},
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=60, help="untimed steps before timing")
    parser.add_argument("--warmup-rounds", type=int, default=1,
                        help="rounds of the first 50 steps timed from a fresh state")
    parser.add_argument("--include-baselines", action="store_true",
                        help="also time shampoo, kfac, lbfgs, muon, sophia_h and sophia_e "
                             "(experiments.optimizers)")
    args = parser.parse_args(argv)
    r = measure(rounds=args.rounds, steps=args.steps, warmup=args.warmup,
                warmup_rounds=args.warmup_rounds, include_baselines=args.include_baselines)

    ratios = {}
    print(f"device: {jax.devices()[0].device_kind}; field 5x256 gaussian, batch {BATCH}; "
          f"{args.rounds} rounds x {args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"{'optimizer':32s} {'median ms':>10s} {'mean ms':>9s} {'median/adam':>12s}")
    for name, med in r["step_s"].items():
        ratios[name] = r["ratio"][name]
        print(f"{name:32s} {1e3 * med:10.2f} {1e3 * r['mean_s'][name]:9.2f} "
              f"{r['ratio'][name]:11.2f}x")
    print(f"first {WARMUP_STEPS} steps (curvature warm-up, an HVP each), median ms and ratio "
          "to adam's step:")
    for name, med in r["warmup_s"].items():
        ratios[f"{name} (warm-up)"] = r["warmup_ratio"][name]
        print(f"  {name:30s} {1e3 * med:10.2f} {r['warmup_ratio'][name]:11.2f}x")
    print(f"gradient {1e3 * r['grad_s']:.2f} ms; grad+HVP (one jvp of grad) "
          f"{1e3 * r['hvp_s']:.2f} ms; HVP/gradient cost ratio {r['hvp_over_grad']:.2f}")
    print("targets: esgd <= 1.05x adam; adahessian (HVP every step) <= 2.6x adam")
    ratios["hvp_over_grad"] = r["hvp_over_grad"]
    return ratios


if __name__ == "__main__":
    main()
