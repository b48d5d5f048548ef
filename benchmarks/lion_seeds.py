"""Several seeds of one image run, trained one after another or all at once with ``jax.vmap``.

The image task's lion run (``python -m experiments.image``: a field fitting the 256x256 DIV2K
lion, MSE on shuffled batches of 512 pixels, 128 steps an epoch) for ``S`` seeds, two ways:

- ``sequential``: one seed after the other through one compiled epoch (``jax.lax.scan`` of the
  optimizer's train step over the epoch's 128 batches);
- ``vmapped``: the same epoch function mapped over the seeds with ``jax.vmap``: parameters and
  optimizer states stacked, each seed with its own initialisation, probe key and shuffle, one
  compiled program for all of them.

Both use what the harness uses: the registry's optimizer and learning rate
(``experiments.optimizers.get(name).lr_for(activation)``, built with ``seed=seed``), its train
step (``make_step_fn``: ``jaxprecond.make_train_step`` for Adam and ESGD), the image task's
loss, ``init_params(PRNGKey(seed))`` and the harness's data order
(:class:`experiments.harness.batches.ShuffledBatches` with the seed), so seed ``s`` here is seed
``s`` of ``python -m experiments.image``; the numbers are those of ``docs/REPRODUCTION.md``'s
lion section: the final training MSE (mean mini-batch loss of the last epoch) and the PSNR of
the full-image reconstruction.

The refresh schedule under ``vmap``: a ``jax.lax.cond`` whose predicate is batched becomes a
``select`` that pays the HVP on every step (``docs/OPTIMIZERS.md``). The schedule depends only on
the step count and the number of successful refreshes, which all seeds share, so the vmapped
step is given one unbatched "refresh now" flag per curvature transform (any seed's), and the
cond stays a cond. ``schedules_agreed`` in the result says whether every seed's own flag was
that one on every step (it is unless a seed's HVP turned non-finite); when it is, each seed's
run is the sequential run, up to float reassociation in the batched matrix products.

Run: ``python -m benchmarks.lion_seeds --activation wavelet --optimizer esgd --seeds 5
--epochs 200 [--mode both]``. A registry optimizer whose seed enters anything but its initial
state (all of them today: the seed is the probe key kept in the state) would need one step
function per seed; the update here is that of the optimizer built with the first seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import optimizers
from experiments.harness.batches import ShuffledBatches
from experiments.tasks.field_factory import make_field
from experiments.tasks.image import ImageTask
from experiments.tasks.image_data import BUNDLED_IMAGE, load_image
from jaxprecond import CurvatureState

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
#: The paper's lion (DIV2K test image 14), as ``docs/REPRODUCTION.md`` uses it.
LION = REPO_ROOT.parent / "shared" / "data" / "images" / "div2k_fourier_features_test" / \
    "image_014.jpg"
MODES = ("sequential", "vmapped")


def lion_image() -> tuple[str | None, str]:
    """``(path for load_image, description)``: the lion when present, else scikit-image's
    astronaut."""
    if LION.is_file():
        return str(LION), "the DIV2K lion (image_014.jpg)"
    return None, f"scikit-image's astronaut ({BUNDLED_IMAGE}; the lion {LION} is absent)"


@dataclasses.dataclass(frozen=True)
class SeedRun:
    """One optimizer on one field, several seeds.

    Attributes:
      activation: the field's activation.
      optimizer: a registry name.
      seeds: the seeds (initialisation, probe key and data order, as the harness's ``--seed``).
      epochs: passes over the image.
      size, depth, width, batch: the image side, field and batch (the paper's 256, 5x256, 512).
      opt_args: extra builder options (none for the registry's settings).
    """

    activation: str
    optimizer: str
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 200
    size: int = 256
    depth: int | None = None
    width: int | None = None
    batch: int = 512
    opt_args: tuple[tuple[str, Any], ...] = ()


def make_task(image: np.ndarray, run: SeedRun, source: str) -> ImageTask:
    """The image task of ``run`` on ``image`` (already loaded at ``run.size``)."""
    return ImageTask(image, make_field(run.activation, run.depth, run.width), source=source)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def _is_curvature(x: Any) -> bool:
    return isinstance(x, CurvatureState)


def _dues(state: Any) -> list[jax.Array]:
    """The ``hvp_due`` flag of every curvature transform in ``state``, in tree order."""
    return [s.hvp_due for s in jax.tree.leaves(state, is_leaf=_is_curvature) if _is_curvature(s)]


def _with_dues(state: Any, dues: Sequence[jax.Array]) -> Any:
    """``state`` with the ``hvp_due`` flags of its curvature transforms replaced, in order."""
    it = iter(dues)
    return jax.tree.map(lambda s: s._replace(hvp_due=next(it)) if _is_curvature(s) else s,
                        state, is_leaf=_is_curvature)


class _Runner:
    """The optimizer, compiled epoch functions and initial states of a :class:`SeedRun`."""

    def __init__(self, task: ImageTask, run: SeedRun):
        self.task, self.run = task, run
        spec = optimizers.get(run.optimizer)
        self.learning_rate = spec.lr_for(run.activation)
        options = dict(run.opt_args)
        txs = [optimizers.build(run.optimizer, self.learning_rate, seed=s, **options)
               for s in run.seeds]
        self.params0 = [task.init_params(jax.random.PRNGKey(s)) for s in run.seeds]
        self.states0 = [tx.init(p) for tx, p in zip(txs, self.params0, strict=True)]
        make_step = optimizers.make_step_fn(run.optimizer)
        self.step = make_step(task.loss_fn, txs[0])
        self.coords = jax.device_put(task.coords)
        self.pixels = jax.device_put(task.pixels)
        self.batchers = [ShuffledBatches(task.num_examples, run.batch, s) for s in run.seeds]
        self.steps_per_epoch = self.batchers[0].steps_per_epoch
        self.epoch = jax.jit(self._epoch)
        self.vmapped_epoch = jax.jit(self._vmapped_epoch)

    def indices(self, k: int, epoch: int) -> np.ndarray:
        """Seed ``k``'s batches of ``epoch``, ``(steps_per_epoch, batch)`` (the harness's
        order)."""
        spe, b = self.steps_per_epoch, self.batchers[k]
        return np.stack([b.indices(epoch * spe + j) for j in range(spe)]).astype(np.int32)

    def _batch(self, coords: jax.Array, pixels: jax.Array, ix: jax.Array) -> dict[str, Any]:
        return {"coords": coords[ix], "pixels": pixels[ix]}

    def _epoch(self, params: Any, state: Any, idx: jax.Array, coords: jax.Array,
               pixels: jax.Array) -> tuple[Any, Any, jax.Array]:
        def body(carry, ix):
            p, s = carry
            p, s, metrics = self.step(p, s, self._batch(coords, pixels, ix))
            return (p, s), metrics["loss"]

        (params, state), losses = jax.lax.scan(body, (params, state), idx)
        return params, state, losses

    def _vmapped_epoch(self, params: Any, state: Any, idx: jax.Array, coords: jax.Array,
                       pixels: jax.Array) -> tuple[Any, Any, jax.Array, jax.Array]:
        def one(p, s, ix, dues):
            return self.step(p, _with_dues(s, dues), self._batch(coords, pixels, ix))

        def body(carry, ix):
            p, s = carry
            own = _dues(s)  # each (seeds,)
            shared = [jnp.any(d) for d in own]
            agreed = jnp.all(jnp.stack([jnp.all(d == d0) for d, d0 in zip(own, shared,
                                                                          strict=True)]
                                       or [jnp.bool_(True)]))
            p, s, metrics = jax.vmap(one, in_axes=(0, 0, 0, None))(p, s, ix, shared)
            return (p, s), (metrics["loss"], agreed)

        # idx: (seeds, steps, batch) -> scan over steps.
        (params, state), (losses, agreed) = jax.lax.scan(body, (params, state),
                                                         jnp.swapaxes(idx, 0, 1))
        return params, state, losses.T, jnp.all(agreed)


def _summary(run: SeedRun, runner: _Runner, mode: str) -> dict[str, Any]:
    return {"mode": mode, "activation": run.activation, "optimizer": run.optimizer,
            "learning_rate": runner.learning_rate, "seeds": list(run.seeds),
            "epochs": run.epochs, "steps_per_epoch": runner.steps_per_epoch,
            "batch": run.batch, "opt_args": dict(run.opt_args), "status": "complete"}


def _seed_result(task: ImageTask, seed: int, params: Any, epoch_mse: list[float]
                 ) -> dict[str, Any]:
    evaluation = task.evaluate(params)
    return {"seed": seed, "epochs_done": len(epoch_mse),
            "final_train_mse": epoch_mse[-1] if epoch_mse else None,
            "final_psnr": evaluation["psnr"], "final_image_mse": evaluation["mse"],
            "epoch_mse": epoch_mse}


def _fits(now: float, need: float, deadline: float | None) -> bool:
    return deadline is None or now + need <= deadline


class _EpochClock:
    """Epoch times (the first, compilation included, apart) and whether the epochs left fit
    before ``deadline``."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.first: float | None = None
        self.times: list[float] = []

    def record(self, seconds: float) -> None:
        if self.first is None:
            self.first = seconds
        else:
            self.times.append(seconds)

    def need(self, epochs: int) -> float:
        """Estimated seconds for ``epochs`` more epochs (0 before a compiled epoch is timed)."""
        return epochs * statistics.median(self.times) if self.times else 0.0

    def fits(self, epochs: int) -> bool:
        """Whether ``epochs`` more fit before the deadline (always, before an epoch after the
        first has been timed)."""
        return not self.times or _fits(time.perf_counter(), self.need(epochs), self.deadline)

    @property
    def epoch_s(self) -> float | None:
        return statistics.median(self.times) if self.times else self.first


def run_sequential(task: ImageTask, run: SeedRun, deadline: float | None = None
                   ) -> dict[str, Any]:
    """Train the seeds one after another; a seed that cannot finish by ``deadline``
    (``time.perf_counter()``; estimated from the epochs timed so far) is not started, or is
    stopped after the epoch that showed it.

    Returns:
      The run's settings, ``status``, ``wall_s`` (training of the seeds done, compilation
      included, evaluation not), ``first_epoch_s`` (compilation included), ``epoch_s``
      (median of the other epochs), ``seed_wall_s`` and ``per_seed`` results.
    """
    runner = _Runner(task, run)
    out = _summary(run, runner, "sequential")
    per_seed, seed_wall = [], []
    clock = _EpochClock(deadline)
    for k, seed in enumerate(run.seeds):
        if not clock.fits(run.epochs):
            out["status"] = (f"stopped before seed {seed}: a seed needs about "
                             f"{clock.need(run.epochs):.0f} s, more than the time left")
            break
        t_seed = time.perf_counter()
        params, state = runner.params0[k], runner.states0[k]
        losses, stopped = [], False
        idx = runner.indices(k, 0)
        for epoch in range(run.epochs):
            t0 = time.perf_counter()
            params, state, epoch_losses = runner.epoch(params, state, idx, runner.coords,
                                                       runner.pixels)
            if epoch + 1 < run.epochs:
                idx = runner.indices(k, epoch + 1)  # on the host while the device trains
            losses.append(epoch_losses)
            jax.block_until_ready(epoch_losses)
            clock.record(time.perf_counter() - t0)
            left = run.epochs - epoch - 1
            if left and not clock.fits(left):
                out["status"] = (f"stopped seed {seed} after {epoch + 1} epochs: the other "
                                 f"{left} need about {clock.need(left):.0f} s, more than the "
                                 "time left")
                stopped = True
                break
        seed_wall.append(time.perf_counter() - t_seed)
        epoch_mse = [float(np.mean(x)) for x in jax.device_get(losses)]
        per_seed.append(_seed_result(task, seed, params, epoch_mse))  # not in wall_s
        if stopped:
            break
    out.update(wall_s=sum(seed_wall), seed_wall_s=seed_wall, first_epoch_s=clock.first,
               epoch_s=clock.epoch_s, per_seed=per_seed)
    return out


def run_vmapped(task: ImageTask, run: SeedRun, deadline: float | None = None
                ) -> dict[str, Any]:
    """Train all seeds at once (``jax.vmap`` over stacked parameters and states); stops after
    the epoch that shows the rest cannot finish by ``deadline``.

    Returns:
      As :func:`run_sequential` (``wall_s`` for all seeds together), plus ``schedules_agreed``
      (``None`` for an optimizer without a refresh schedule).
    """
    runner = _Runner(task, run)
    out = _summary(run, runner, "vmapped")
    params, state = _stack(runner.params0), _stack(runner.states0)
    n = len(run.seeds)
    losses, agreed = [], []
    clock = _EpochClock(deadline)
    idx = np.stack([runner.indices(k, 0) for k in range(n)])
    start = time.perf_counter()
    for epoch in range(run.epochs):
        t0 = time.perf_counter()
        params, state, epoch_losses, ok = runner.vmapped_epoch(params, state, idx,
                                                               runner.coords, runner.pixels)
        if epoch + 1 < run.epochs:
            idx = np.stack([runner.indices(k, epoch + 1) for k in range(n)])
        losses.append(epoch_losses)
        agreed.append(ok)
        jax.block_until_ready(epoch_losses)
        clock.record(time.perf_counter() - t0)
        left = run.epochs - epoch - 1
        if left and not clock.fits(left):
            out["status"] = (f"stopped after {epoch + 1} epochs: the other {left} need about "
                             f"{clock.need(left):.0f} s, more than the time left")
            break
    wall = time.perf_counter() - start
    host_losses = np.stack(jax.device_get(losses))  # (epochs, seeds, steps)
    per_seed = [_seed_result(task, seed, _unstack(params, k),
                             [float(x) for x in host_losses[:, k].mean(axis=-1)])
                for k, seed in enumerate(run.seeds)]
    out.update(wall_s=wall, first_epoch_s=clock.first, epoch_s=clock.epoch_s,
               schedules_agreed=(bool(np.all(jax.device_get(agreed)))
                                 if _dues(runner.states0[0]) else None),
               per_seed=per_seed)
    return out


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {"sequential": run_sequential,
                                                      "vmapped": run_vmapped}


def median_range(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)`` of ``values``."""
    return statistics.median(values), min(values), max(values)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--activation", default="wavelet")
    p.add_argument("--optimizer", default="esgd")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--mode", choices=(*MODES, "both"), default="both")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    path, source = lion_image()
    run = SeedRun(args.activation, args.optimizer, tuple(range(args.seeds)), args.epochs,
                  args.size, args.depth, args.width, args.batch_size)
    task = make_task(load_image(path, args.size), run, path or BUNDLED_IMAGE)
    print(f"{source}, {args.size}x{args.size}; {jax.devices()[0].device_kind}")
    results = []
    for mode in (MODES if args.mode == "both" else (args.mode,)):
        r = RUNNERS[mode](task, run)
        results.append(r)
        mse = median_range([s["final_train_mse"] for s in r["per_seed"]])
        db = median_range([s["final_psnr"] for s in r["per_seed"]])
        print(f"{mode:10s} {args.activation} {args.optimizer}: wall {r['wall_s']:.1f} s "
              f"(first epoch {r['first_epoch_s']:.2f} s, then {r['epoch_s']:.3f} s an epoch); "
              f"final train MSE {mse[0]:.3g} ({mse[1]:.3g}-{mse[2]:.3g}); "
              f"PSNR {db[0]:.2f} dB ({db[1]:.2f}-{db[2]:.2f}); {r['status']}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
