"""The L-BFGS claims of the companion paper, ``python -m experiments.paper.companion``.

Saratchandran, Chng et al., "Curvature-aware training for coordinate networks" (ICCV 2023;
``../shared/paper/curvature_aware_coordinate_networks_intro.txt``) claim that on a full-batch
image fit L-BFGS converges much faster than Adam for sine and Gaussian fields and slower for ReLU
fields (their Fig. 1), and that splitting the signal into patches, one small field per patch,
keeps L-BFGS cheap as signals grow. Two subcommands:

``fig1``: full-batch ``lbfgs`` (optax, zoom line search) against Adam on the same full batch for
sine, Gaussian, ReLU and ReLU+PE fields, through :mod:`experiments.compare` (one epoch = one
iteration; loss against iterations and against time in ``OUT/loss_vs_*.png``)::

    python -m experiments.paper.companion fig1 --size 64 --epochs 300 --out runs/companion/fig1

``patches``: the image cut into ``--grid`` x ``--grid`` patches, one small field per patch, all
trained at once with full-batch L-BFGS (``jax.vmap`` over the patches: one compiled step), the
predictions stitched back; seconds to ``--target-psnr`` of the stitched image against one field
trained with Adam on the whole image (full batch, through the harness)::

    python -m experiments.paper.companion patches --size 128 --grid 4 --out runs/companion/patches
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from experiments import compare
from experiments.harness import cli
from experiments.harness.errors import UsageError
from experiments.harness.report import time_to_target
from experiments.tasks import patches

LION = "../shared/data/images/div2k_fourier_features_test/image_014.jpg"
FIG1_ACTIVATIONS = ("sine", "gaussian", "relu", "relu_pe")
FIG1_OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_OUT = "runs/companion"
#: What docs/REPRODUCTION.md reports (2 shared CPU cores).
FIG1_ARGS = ("--image", LION, "--size", "64", "--epochs", "200", "--seeds", "0", "1", "2", "3",
             "4", "--timing-steps", "0", "--no-progress", "--resume")
PATCH_ARGS = ("--image", LION, "--size", "128", "--grid", "4", "--patch-width", "32",
              "--patch-depth", "3", "--iterations", "300", "--adam-epochs", "200",
              "--target-psnr", "25", "--seeds", "0", "1", "2", "3", "4")


# --- the patch split (shared with the video frame-blocks: experiments.tasks.patches) ----------

def split_patches(image: np.ndarray, grid: int) -> np.ndarray:
    """``image`` (H, W, C) cut into ``grid`` x ``grid`` patches, row-major over the grid
    (:func:`experiments.tasks.patches.split_blocks` with a ``(grid, grid)`` grid).

    Args:
      image: an (H, W, C) array; H and W must be multiples of ``grid``.
      grid: patches per side.

    Returns:
      (grid * grid, H / grid, W / grid, C).
    """
    h, w, _ = image.shape
    if grid < 1 or h % grid or w % grid:
        raise UsageError(f"--grid {grid}: expected a divisor of the image's {h}x{w} pixels")
    return patches.split_blocks(image, (grid, grid))


def stitch_patches(blocks: np.ndarray, grid: int) -> np.ndarray:
    """Inverse of :func:`split_patches`: (grid * grid, h, w, C) -> (grid * h, grid * w, C)."""
    return patches.stitch_blocks(blocks, (grid, grid))


class PatchFit(patches.BlockFit):
    """One field per patch (local coordinates in [-1, 1]), all trained at once with full-batch
    L-BFGS under ``jax.vmap``: :class:`experiments.tasks.patches.BlockFit` on a
    ``grid`` x ``grid`` split of an image.

    Args:
      image: (H, W, 3) in [0, 1].
      grid: patches per side.
      model: the Flax field every patch uses (its own parameters per patch).
      memory_size: L-BFGS curvature pairs.
    """

    def __init__(self, image: np.ndarray, grid: int, model: Any, *, memory_size: int = 10):
        split_patches(np.asarray(image), grid)  # the image's own error for a bad grid
        super().__init__(image, (grid, grid), model, memory_size=memory_size)
        self.image = self.signal
        self.grid = grid
        self.patch_shape = self.block_shape
        self.pixels = self.values


def _patch_seed(args: argparse.Namespace, fit: PatchFit, image: np.ndarray, seed: int,
                out: pathlib.Path) -> dict[str, Any]:
    """One seed of the patch comparison in ``out`` (``result.json``, ``adam/``): the shared
    :func:`experiments.tasks.patches.run_seed` with the image task's full-batch Adam field."""
    from experiments.tasks import image as image_task

    def adam(adam_out: pathlib.Path) -> dict[str, Any]:
        parsed = image_task.parser().parse_args([
            "--size", str(args.size), "--activation", args.activation, "--optimizer", "adam",
            "--depth", str(args.adam_depth), "--width", str(args.adam_width),
            "--batch-size", str(args.size * args.size), "--epochs", str(args.adam_epochs),
            "--seed", str(seed), "--timing-steps", "0", "--no-progress", "--resume",
            "--out", str(adam_out), *(["--image", args.image] if args.image else []),
            *(["--lr", str(args.adam_lr)] if args.adam_lr else [])])
        return image_task.run(image_task.make_config(parsed))

    return patches.run_seed(fit, seed=seed, out=out, iterations=args.iterations,
                            eval_every=args.eval_every, target_psnr=args.target_psnr,
                            settings=_patch_settings(args), adam_epochs=args.adam_epochs,
                            adam=adam)


def _patch_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that a seed's result depends on (all but ``--seed(s)``, ``--out``)."""
    return patches.settings_of(args)


def run_patches(args: argparse.Namespace) -> dict[str, Any]:
    """Patch-split L-BFGS against one Adam field, per seed in ``OUT/seedS``; writes
    ``OUT/patches.json`` (every seed) and ``OUT/patches_psnr_vs_time.png``."""
    from experiments.tasks.field_factory import make_field
    from experiments.tasks.image_data import load_image

    seeds = list(dict.fromkeys(args.seeds if args.seeds is not None else [args.seed]))
    out = pathlib.Path(args.out)
    patches.check_finished_seeds(out, seeds, _patch_settings(args))
    image = load_image(args.image or None, args.size)
    split_patches(image, args.grid)  # checks the grid before any work
    out.mkdir(parents=True, exist_ok=True)
    model = make_field(args.activation, args.patch_depth, args.patch_width)
    fit = PatchFit(image, args.grid, model)
    runs = [_patch_seed(args, fit, image, s, out / f"seed{s}") for s in seeds]
    params = fit.init(seeds[0])[0]
    result = {
        "image": args.image, "size": args.size, "grid": args.grid,
        "patch_field": f"{args.activation} depth {args.patch_depth} width {args.patch_width}",
        "adam_field": f"{args.activation} depth {args.adam_depth} width {args.adam_width}",
        "patch_params": sum(x.size for x in jax.tree.leaves(params)),
        "target_psnr": args.target_psnr, "seeds": seeds, "runs": runs,
    }
    patches.write_result(out, result, f"L-BFGS, {args.grid}x{args.grid} patch fields")
    return result


def patch_parser() -> cli.OneLineParser:
    """The parser of the ``patches`` subcommand."""
    p = cli.OneLineParser(prog="python -m experiments.paper.companion patches")
    p.add_argument("--image", default=LION)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--grid", type=int, default=4, help="patches per side (default 4)")
    patches.add_fit_args(p)
    p.add_argument("--out", default=f"{DEFAULT_OUT}/patches")
    return p


def run(argv: Sequence[str] | None) -> int:
    """``fig1 ...`` or ``patches ...``; returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("fig1", "patches"):
        raise UsageError(f"subcommand {argv[:1]}: expected 'fig1' or 'patches'")
    if argv[0] == "patches":
        run_patches(patch_parser().parse_args(argv[1:]))
        return 0
    rest = argv[1:]
    size = int(compare.parser().parse_known_args(rest)[0].size)
    return compare.drive(
        rest, prog="python -m experiments.paper.companion fig1",
        title="Companion Fig. 1: full-batch L-BFGS vs Adam",
        image=LION, activations=list(FIG1_ACTIVATIONS), optimizers=list(FIG1_OPTIMIZERS),
        batch_size=size * size, epochs=300, target=30.0, out=f"{DEFAULT_OUT}/fig1",
    )


#: The companion paper's Fig. 1 expectation: is L-BFGS ahead of Adam for this activation?
FIG1_EXPECTED = {"sine": True, "gaussian": True, "relu_pe": False, "relu": False}


def fig1_verdicts(results: Sequence[Any], target: float) -> list[str]:
    """One line per activation: L-BFGS against Adam on the seeds both ran, by iterations and by
    seconds to ``target`` dB (not reaching it counts as slower) and by final PSNR, and whether
    each agrees with the companion paper's Fig. 1 (L-BFGS faster for sine and Gaussian, slower
    for ReLU)."""
    from experiments.harness.report import cells

    grouped = cells(results)
    out = []
    for act in sorted({a for a, _ in grouped}):
        lb = {r.seed: r for r in grouped.get((act, "lbfgs"), [])}
        ad = {r.seed: r for r in grouped.get((act, "adam"), [])}
        common = sorted(set(lb) & set(ad))
        if not common:
            continue

        def reach(run: Any, k: int) -> float:
            hit = time_to_target(run.rows, target)
            return math.inf if hit is None else hit[k]

        expected = FIG1_EXPECTED.get(act)

        higher = sum((lb[s].final or -math.inf) > (ad[s].final or -math.inf) for s in common)

        def psnr_at(run: Any, key: str, value: float) -> float:
            """Training PSNR of the last row of ``run`` with ``key`` at most ``value``."""
            rows = [r for r in run.rows if r.get(key) is not None and r[key] <= value
                    and r.get("train_psnr") is not None]
            return rows[-1]["train_psnr"] if rows else -math.inf

        def higher_at(key: str) -> int:
            """Seeds on which L-BFGS's PSNR is higher at the end of the shorter run (in
            iterations or in seconds)."""
            count = 0
            for s in common:
                end = min(lb[s].rows[-1][key], ad[s].rows[-1][key])
                count += psnr_at(lb[s], key, end) > psnr_at(ad[s], key, end)
            return count

        def judged(k: int) -> str:
            first = sum(reach(lb[s], k) < reach(ad[s], k) for s in common)
            later = sum(reach(lb[s], k) > reach(ad[s], k) for s in common)
            n = len(common)
            text = f"{first}/{n} seeds"
            if first + later == 0:  # neither reached the target on any seed
                key = ("epoch", "time_s")[k]
                first = higher_at(key)
                later = n - first
                text += (" (neither reached it on any seed: judged by the PSNR at the end of the "
                         f"shorter run in {('iterations', 'seconds')[k]}, L-BFGS higher on "
                         f"{first}/{n})")
            ahead = first > later
            verdict = ("not judged, fewer than 5 seeds" if n < 5 else
                       "no claim for this field" if expected is None else
                       "agrees" if ahead == expected else "disagrees")
            return f"{text}, {'L-BFGS' if ahead else 'Adam'} ahead: {verdict}"

        by_iter, by_time = judged(0), judged(1)
        out.append(
            f"- {act}: L-BFGS reached {target:g} dB in fewer iterations than Adam on "
            f"{by_iter}; in less time on {by_time}; it ended higher after the "
            f"same iterations on {higher}/{len(common)}, median final PSNR "
            f"{_spread([lb[s].final for s in common])} vs "
            f"{_spread([ad[s].final for s in common])} dB.")
    return [*out, ""] if out else []


def _spread(values: Sequence[float | None], spec: str = ".2f") -> str:
    """``median (min to max)`` of ``values`` (:func:`experiments.harness.report.spread`); ``-``
    for none."""
    from experiments.harness.report import spread

    stats = spread(values)
    if stats is None:
        return "-"
    med, lo, hi = (format(v, spec) for v in stats)
    return med if len(values) == 1 else f"{med} ({lo} to {hi})"


def reproduction_section(root: pathlib.Path, assets: pathlib.Path | None = None) -> str:
    """The companion-paper section of ``docs/REPRODUCTION.md`` from ``root/fig1`` (the
    ``fig1`` grid) and ``root/patches/patches.json``.

    Args:
      root: the parent of both subcommands' ``--out``.
      assets: if given, the plots are copied there as ``companion_*.png`` and linked as
        ``reproduction/NAME``.

    Returns:
      Markdown, starting with a ``##`` heading; says plainly what has not run.
    """
    import shutil

    from experiments.harness.report import markdown_table, read_results, table
    from experiments.tasks import patches as patches_mod

    root = pathlib.Path(root)
    lines = [
        "## The companion paper: L-BFGS on full-batch image fits (Saratchandran, Chng et al., "
        "ICCV 2023)", "",
        "What it says (`curvature_aware_coordinate_networks_intro.txt`): on a full-batch image "
        "fit L-BFGS converges much faster than Adam for sine and Gaussian fields and slower for "
        "ReLU fields (its Fig. 1); splitting the signal into patches, one small field each, keeps "
        "L-BFGS cheap as signals grow.", "",
        "Ours: `lbfgs` is `optax.lbfgs` (memory 10, zoom line search, at most 20 evaluations "
        "an iteration); Adam at the registry's reference rates, on the same full batch. An "
        "L-BFGS iteration evaluates the loss and gradient at least once and often more (the line "
        "search), so fewer iterations need not mean less time: the verdicts judge both.", "",
    ]
    fig1 = root / "fig1"
    results = read_results(fig1) if fig1.is_dir() else []
    if results:
        first = results[0].summary.get("config", {})
        seeds = sorted({r.seed for r in results})
        iters = max(r.summary.get("steps", 0) for r in results)
        lines += [
            f"Fig. 1, what ran: lion {first.get('size')}x{first.get('size')} full batch, field "
            f"depth {first.get('depth') or 5} width {first.get('width') or 256}, {iters} "
            f"iterations, seeds {seeds}. 'epochs' below are iterations.", "",
            markdown_table(table(results, 30.0, baseline="adam")), "",
            *fig1_verdicts(results, 30.0),
        ]
        lines += _copy_plots(fig1, assets, "fig1", ("loss_vs_steps", "loss_vs_time"), shutil)
    else:
        lines += [f"Fig. 1: no finished run in `{fig1}`. Run: `python -m "
                  f"experiments.paper.companion fig1 {' '.join(FIG1_ARGS)} --out {fig1}`.", ""]
    patches = root / "patches" / "patches.json"
    if patches.is_file():
        r = json.loads(patches.read_text())
        runs = r.get("runs") or [r]  # one-seed files of before --seeds hold a single run
        first = runs[0]["adam_one_field"]
        lines += [
            f"Patch split, what ran ({len(runs)} seed{'s' if len(runs) != 1 else ''}, "
            f"{r.get('seeds', [0])}): `{pathlib.Path(r['image'] or 'astronaut').name}` "
            f"{r['size']}x{r['size']}, "
            f"{r['grid']}x{r['grid']} patches, one {r['patch_field']} field per patch "
            f"({r['patch_params']} parameters in all), trained together with full-batch L-BFGS "
            f"(`jax.vmap` over patches), against one {r['adam_field']} field with full-batch "
            f"Adam (lr {first['lr']}). Median over seeds, (min to max); seconds are training "
            "time without compilation on a CPU core shared with another job.", "",
        ]
        lines += patches_mod.result_lines(runs, r["target_psnr"])
        lines += _copy_plots(patches.parent, assets, "patches", ("patches_psnr_vs_time",),
                             shutil)
    else:
        lines += [f"Patch split: no finished run in `{patches.parent}`. Run: `python -m "
                  f"experiments.paper.companion patches {' '.join(PATCH_ARGS)} "
                  f"--out {patches.parent}`.", ""]
    return "\n".join(lines)


def _copy_plots(src: pathlib.Path, assets: pathlib.Path | None, tag: str,
                names: Sequence[str], shutil: Any) -> list[str]:
    if assets is None:
        return []
    assets.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        if (src / f"{name}.png").exists():
            dest = f"companion_{tag}_{name}.png".replace("_patches_patches", "_patches")
            shutil.copyfile(src / f"{name}.png", assets / dest)
            out.append(f"![{name}](reproduction/{dest})")
    return [*out, ""] if out else []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
