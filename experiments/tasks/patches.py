"""The companion paper's patch split, for signals of any dimensionality: the signal cut into a
regular grid of blocks (image patches, video frame-blocks), one small field per block, all
trained at once with full-batch L-BFGS under ``jax.vmap`` (one compiled step for every block),
the predictions stitched back.

:func:`split_blocks` and :func:`stitch_blocks` cut an ``(*S, C)`` signal into
``prod(grid)`` blocks and put them back (row-major over the grid: the last grid axis varies
fastest); :class:`BlockFit` fits them; :func:`run_seed` times one seed of the split against one
Adam field on the whole signal, and :func:`write_result` / :func:`result_lines` write and render
what every seed found. :mod:`experiments.paper.companion` (image patches, ``patches``) and
:mod:`experiments.paper.signals` (video frame-blocks, ``video-patches``) both use them.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr, read_metrics
from experiments.harness.report import spread, time_to_target


def grid_coords(shape: Sequence[int]) -> np.ndarray:
    """Grid coordinates in [-1, 1]^D of a block of ``shape`` (D axes), ``(prod(shape), D)``,
    ordered as a C-order array of ``shape`` flattens; each axis ``linspace(-1, 1, n)``. For
    (H, W) it is :func:`~experiments.tasks.image_data.pixel_coords`, for (T, H, W)
    :func:`~experiments.tasks.video_data.video_coords`."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))


def _check_grid(shape: Sequence[int], grid: Sequence[int]) -> None:
    if len(grid) != len(shape) or any(g < 1 or n % g for n, g in zip(shape, grid, strict=True)):
        raise UsageError(f"grid {'x'.join(map(str, grid))}: expected one divisor of each axis "
                         f"of the signal's {'x'.join(map(str, shape))} samples")


def split_blocks(signal: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """``signal`` (*S, C) cut into ``prod(grid)`` blocks, row-major over the grid.

    Args:
      signal: an ``(S_1, ..., S_D, C)`` array.
      grid: blocks along each of the D axes; each must divide its axis.

    Returns:
      ``(prod(grid), S_1 / grid_1, ..., S_D / grid_D, C)``.
    """
    signal = np.asarray(signal)
    shape, c = signal.shape[:-1], signal.shape[-1]
    grid = tuple(int(g) for g in grid)
    _check_grid(shape, grid)
    block = tuple(n // g for n, g in zip(shape, grid, strict=True))
    d = len(grid)
    # (g_1, b_1, g_2, b_2, ..., C) -> (g_1, ..., g_D, b_1, ..., b_D, C)
    split = signal.reshape(*[x for g, b in zip(grid, block, strict=True) for x in (g, b)], c)
    order = [2 * i for i in range(d)] + [2 * i + 1 for i in range(d)] + [2 * d]
    return split.transpose(order).reshape(math.prod(grid), *block, c)


def stitch_blocks(blocks: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`split_blocks`: ``(prod(grid), *B, C)`` -> ``(*(grid * B), C)``."""
    blocks = np.asarray(blocks)
    grid = tuple(int(g) for g in grid)
    n, block, c = blocks.shape[0], blocks.shape[1:-1], blocks.shape[-1]
    if n != math.prod(grid) or len(block) != len(grid):
        raise ValueError(f"{n} blocks of {'x'.join(map(str, block))} do not fill a "
                         f"{'x'.join(map(str, grid))} grid")
    d = len(grid)
    joined = blocks.reshape(*grid, *block, c)
    order = [x for i in range(d) for x in (i, d + i)] + [2 * d]
    return joined.transpose(order).reshape(*[g * b for g, b in zip(grid, block, strict=True)], c)


class BlockFit:
    """One field per block (local coordinates in [-1, 1]^D), all trained at once with full-batch
    L-BFGS under ``jax.vmap``.

    Args:
      signal: ``(*S, C)`` values (an (H, W, 3) image, a (T, H, W, 3) clip, ...).
      grid: blocks along each of the D axes of ``S``.
      model: the Flax field every block uses (its own parameters per block), D inputs, C outputs.
      memory_size: L-BFGS curvature pairs.
    """

    def __init__(self, signal: np.ndarray, grid: Sequence[int], model: Any, *,
                 memory_size: int = 10):
        from experiments.optimizers.lbfgs import lbfgs

        self.signal = np.asarray(signal, np.float32)
        self.grid_shape = tuple(int(g) for g in grid)
        blocks = split_blocks(self.signal, self.grid_shape)
        self.num_blocks = len(blocks)
        self.block_shape = blocks.shape[1:]
        self.coords = jnp.asarray(grid_coords(self.block_shape[:-1]))
        self.values = jnp.asarray(blocks.reshape(self.num_blocks, -1, blocks.shape[-1]))
        self.model = model
        self.tx = lbfgs(memory_size=memory_size)

        def loss(params: Any, values: jax.Array) -> jax.Array:
            return jnp.mean((model.apply({"params": params}, self.coords) - values) ** 2)

        def step(params: Any, state: Any, values: jax.Array) -> tuple[Any, Any, jax.Array]:
            def obj(p: Any) -> jax.Array:
                return loss(p, values)

            value, grad = jax.value_and_grad(obj)(params)
            updates, state = self.tx.update(grad, state, params, value=value, grad=grad,
                                            value_fn=obj)
            return optax.apply_updates(params, updates), state, value

        self._step = jax.jit(jax.vmap(step))
        self._predict = jax.jit(jax.vmap(lambda p: model.apply({"params": p}, self.coords)))

    def init(self, seed: int) -> tuple[Any, Any]:
        """Stacked parameters (one set per block, independent keys) and L-BFGS states."""
        keys = jax.random.split(jax.random.PRNGKey(seed), self.num_blocks)
        params = jax.vmap(lambda k: self.model.init(
            k, jnp.zeros((1, self.coords.shape[1]), jnp.float32))["params"])(keys)
        return params, self.init_state(params)

    def init_state(self, params: Any) -> Any:
        """The stacked L-BFGS states of stacked ``params``."""
        return jax.vmap(self.tx.init)(params)

    def step(self, params: Any, state: Any) -> tuple[Any, Any, jax.Array]:
        """One L-BFGS iteration of every block; returns the per-block losses before it."""
        return self._step(params, state, self.values)

    def predict(self, params: Any) -> np.ndarray:
        """The stitched reconstruction, the shape of ``signal``."""
        out = np.asarray(self._predict(params)).reshape(-1, *self.block_shape)
        return stitch_blocks(out, self.grid_shape)


def add_fit_args(p: argparse.ArgumentParser) -> None:
    """The flags every patch-split command shares: the per-block field and its L-BFGS
    iterations, the one Adam field it races, the target and the seeds."""
    p.add_argument("--activation", default="sine")
    p.add_argument("--patch-depth", type=int, default=3)
    p.add_argument("--patch-width", type=int, default=32)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--adam-depth", type=int, default=5)
    p.add_argument("--adam-width", type=int, default=256)
    p.add_argument("--adam-epochs", type=int, default=1000, help="full-batch Adam iterations")
    p.add_argument("--adam-lr", type=float, default=None, help="default: the registry's")
    p.add_argument("--target-psnr", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                   help="run each seed in OUT/seedS (default: the single --seed); finished "
                        "seeds are reused")


def settings_of(args: Any) -> dict[str, Any]:
    """The flags that a seed's result depends on (all but ``--seed(s)``, ``--out``)."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("seed", "seeds", "out")}


def check_finished_seeds(out: pathlib.Path, seeds: Sequence[int],
                         settings: dict[str, Any]) -> None:
    """:class:`UsageError` if a finished seed under ``out`` (``seedS/result.json``) ran with
    other ``settings`` (a finished seed is reused only if it ran with these)."""
    if any(s < 0 for s in seeds):
        raise UsageError(f"--seeds {list(seeds)}: expected non-negative integers")
    for s in seeds:
        done = out / f"seed{s}" / "result.json"
        if done.is_file():
            held = json.loads(done.read_text()).get("settings") or {}
            if held != settings:
                diff = sorted(k for k in set(held) | set(settings)
                              if held.get(k) != settings.get(k))
                raise UsageError(f"--out {out}: seed{s} ran with other settings "
                                 f"({', '.join(diff)}); expected the same flags or another --out")


def run_seed(fit: BlockFit, *, seed: int, out: pathlib.Path, iterations: int, eval_every: int,
             target_psnr: float, settings: dict[str, Any], adam_epochs: int,
             adam: Callable[[pathlib.Path], dict[str, Any]]) -> dict[str, Any]:
    """One seed of the split against one Adam field, in ``out`` (``result.json``, ``adam/``).

    The blocks train for ``iterations`` L-BFGS iterations (compilation outside the clock),
    the stitched signal's PSNR logged every ``eval_every``; ``adam(out / 'adam')`` trains the
    one Adam field through the harness (resuming an interrupted run) and returns its summary,
    whose ``metrics.csv`` gives its curve. A finished seed's ``result.json`` is reused (the
    caller checks its settings first, :func:`check_finished_seeds`).
    """
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    signal = fit.signal
    params, state = fit.init(seed)
    jax.block_until_ready(fit.step(params, state))  # compile outside the clock
    rows, elapsed = [], 0.0
    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        params, state, losses = fit.step(params, state)
        jax.block_until_ready(losses)
        elapsed += time.perf_counter() - t0
        if it % eval_every == 0 or it == iterations:
            mse = float(np.mean((fit.predict(params) - signal) ** 2))
            rows.append({"epoch": it, "time_s": elapsed, "train_psnr": psnr(mse)})
    adam_out = out / "adam"
    summary = adam(adam_out)
    adam_rows = read_metrics(adam_out / "metrics.csv")
    result = {
        "seed": seed, "settings": settings,
        "lbfgs_patches": {"iterations": iterations, "final_psnr": rows[-1]["train_psnr"],
                          "seconds": elapsed, "reached": time_to_target(rows, target_psnr)},
        "adam_one_field": {"epochs": adam_epochs, "final_psnr": summary.get("final_psnr"),
                           "seconds": summary.get("train_time_s"),
                           "lr": summary.get("learning_rate"),
                           "reached": time_to_target(adam_rows, target_psnr)},
        "lbfgs_rows": rows,
        "adam_rows": [{k: r.get(k) for k in ("epoch", "time_s", "train_psnr")}
                      for r in adam_rows],
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(done)
    return result


def write_result(out: pathlib.Path, result: dict[str, Any], label: str, *,
                 name: str = "patches") -> None:
    """Write ``out/NAME.json`` (``result``, its ``runs`` one per seed) and
    ``out/NAME_psnr_vs_time.png`` (each seed's PSNR against training time, ``label`` naming the
    split's curve), and print the result without its runs."""
    from experiments.harness.plots import _pyplot

    tmp = out / f"{name}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out / f"{name}.json")
    runs = result["runs"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for k, run_ in enumerate(runs):
        for key, colour, text in (("lbfgs_rows", "C0", label),
                                  ("adam_rows", "C1", "Adam, one field (full batch)")):
            rows = run_[key]
            ax.plot([r["time_s"] for r in rows], [r["train_psnr"] for r in rows], color=colour,
                    alpha=0.7, lw=1, label=text if k == 0 else None)
    ax.axhline(result["target_psnr"], color="gray", linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, log)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"one line per seed ({len(runs)})", fontsize=9)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / f"{name}_psnr_vs_time.png", dpi=100)
    plt.close(fig)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


def _spread(values: Sequence[float | None], spec: str = ".2f") -> str:
    stats = spread(values)
    if stats is None:
        return "-"
    med, lo, hi = (format(v, spec) for v in stats)
    return med if len(values) == 1 else f"{med} ({lo} to {hi})"


def result_lines(runs: Sequence[dict[str, Any]], target_psnr: float,
                 split_label: str = "L-BFGS, patch fields",
                 split_name: str = "patch-split") -> list[str]:
    """The markdown table of a split's seeds (:func:`run_seed` results): per method the
    iterations, final PSNR, seconds and iterations to ``target_psnr`` (median (min to max) over
    the seeds that reached it) and how many did; then Adam's time over the split's, seed by
    seed."""
    lines = [f"| method | iterations | final PSNR (dB) | seconds to {target_psnr:g} dB "
             "| iterations to it | seeds that reached it |",
             "|---|---|---|---|---|---|"]
    for key, label, its in (("lbfgs_patches", split_label, "iterations"),
                            ("adam_one_field", "Adam, one field", "epochs")):
        cell = [x[key] for x in runs]
        hit = [c["reached"] for c in cell if c["reached"]]
        lines.append(
            f"| {label} | {cell[0][its]} | {_spread([c['final_psnr'] for c in cell])} "
            f"| {_spread([h[1] for h in hit], '.1f')} "
            f"| {_spread([h[0] for h in hit], 'g')} | {len(hit)}/{len(cell)} |")
    lines.append("")
    lb = [x["lbfgs_patches"]["reached"] for x in runs]
    ad = [x["adam_one_field"]["reached"] for x in runs]
    ratios = [a[1] / b[1] for a, b in zip(ad, lb, strict=True) if a and b and b[1] > 0]
    if ratios:
        lines += [f"Seed by seed, Adam took {_spread(ratios, '.0f')}x as long as the "
                  f"{split_name} L-BFGS to reach {target_psnr:g} dB.", ""]
    return lines
