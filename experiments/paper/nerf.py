"""The paper's NeRF comparison (v2 Table 1, LLFF; v1 supplement Table 5, Blender).

``python -m experiments.paper.nerf``:

GARF's Gaussian radiance field trained with ESGD (the library default, clip 1), with ESGD as the
papers' reference code runs it (``esgd_reference``, no clip) and with Adam on one scene, over
seeds, through the comparison harness (:mod:`experiments.compare`, task ``nerf``): one run
directory per (activation, optimizer, seed) under ``--out`` plus ``report.md``. The defaults are
the paper's protocol (``--preset paper``: full resolution, 2048 rays, 128 samples, 8x256, 200K
iterations, ESGD lr 1 -> 0.01, Adam 1e-4 -> 5e-6, exponential decays), for a GPU; ``--preset
cpu`` is the reduced scale this repository's CPU run used (:data:`CPU_ARGS`). Table 1's
protocol: the iterations and optimizer time until the smoothed training PSNR first reaches a
value both optimizers reach.
"""

from __future__ import annotations

import math
import pathlib
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.report import RunResult, cells, finite, read_results
from experiments.tasks.nerf import SMOOTHING, first_reach, smoothed

LEGO = "../shared/data/nerf/lego"
FERN = "../shared/data/nerf/fern"
DEFAULT_OUT = "runs/nerf/lego"
OPTIMIZERS = ("esgd", "esgd_reference", "adam")
#: The CPU comparison reported in docs/REPRODUCTION.md (per scene: ``--scene`` and ``--out``).
CPU_ARGS = ("--preset", "cpu", "--seeds", "0", "1", "2", "3", "4", "--timing-steps", "50")
#: The paper's protocol on a GPU, per scene, with its Table 1 / Table 5 target.
GPU_COMMANDS = (
    f"python -m experiments.paper.nerf --scene {LEGO} --preset paper --target-psnr 26.44 "
    "--seeds 0 1 2 --out runs/nerf/lego-paper",
    f"python -m experiments.paper.nerf --scene {FERN} --preset paper --target-psnr 25.38 "
    "--seeds 0 1 2 --out runs/nerf/fern-paper",
)

_V2 = "preconditioners_neural_fields_v2_full_text.txt, Table 1"
_V1 = "preconditioners_inr_v1_full_text_with_supplement.txt, supplement Table 5"
#: (scene, target train PSNR, Adam iterations, Adam seconds, Adam test PSNR, SSIM,
#:  ESGD iterations, ESGD seconds, ESGD test PSNR, SSIM), with the table's source.
PAPER_TABLE1 = (
    ("fern", 25.38, "200K", 368.43, 24.38, 0.74, "120K", 270.81, 24.41, 0.74),
    ("flower", 29.17, "200K", 469.31, 25.67, 0.78, "120K", 263.93, 25.65, 0.78),
    ("horns", 24.95, "60K", 130.82, 21.82, 0.70, "120K", 227.58, 20.78, 0.63),
    ("orchids", 23.3, "200K", 501.90, 19.56, 0.61, "120K", 269.01, 19.74, 0.61),
    ("room", 31.20, "110K", 194.05, 31.60, 0.93, "140K", 201.88, 30.52, 0.90),
    ("fortress", 30.18, "140K", 333.70, 28.93, 0.81, "140K", 334.56, 28.6, 0.80),
    ("leaves", 21.36, "200K", 482.34, 19.56, 0.61, "120K", 271.25, 19.43, 0.59),
    ("trex", 25.50, "80K", 164.96, 22.04, 0.71, "120K", 209.25, 22.21, 0.75),
)
PAPER_TABLE5 = (
    ("lego", 26.44, "200K", 435.09, 25.37, 0.87, "80K", 179.59, 25.94, 0.89),
    ("chair", 31.33, "200K", 432.64, 33.82, 0.97, "100K", 227.33, 34.10, 0.98),
    ("drums", 25.16, "180K", 411.10, 24.62, 0.88, "100K", 239.46, 24.85, 0.89),
    ("hotdog", 25.2, "200K", 417.46, 31.82, 0.95, "150K", 324.04, 32.86, 0.96),
    ("ficus", 26.53, "200K", 481.04, 25.25, 0.91, "80K", 183.90, 26.95, 0.93),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.nerf",
        title="NeRF: ESGD vs Adam (paper Table 1 / supplement Table 5)", task="nerf",
        out=DEFAULT_OUT, scene=LEGO, preset="paper", activations=["gaussian"],
        optimizers=list(OPTIMIZERS), target=26.44,
    ), argv)


def _median(values: Sequence[float | None]) -> float | None:
    vals = finite(values)
    return statistics.median(vals) if vals else None


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def _smoothed_final(run: RunResult) -> float | None:
    rows = [r for r in run.rows if r.get("train_psnr") is not None]
    s = smoothed([r["train_psnr"] for r in rows])
    return s[-1] if s else None


def _paper_table(rows: Sequence[tuple[Any, ...]], source: str) -> list[str]:
    out = ["| scene | target train PSNR | Adam iters | Adam time (s) | Adam test PSNR / SSIM "
           "| ESGD iters | ESGD time (s) | ESGD test PSNR / SSIM |",
           "|---|---|---|---|---|---|---|---|"]
    for s, t, ai, at, ap, ass, ei, et, ep, es in rows:
        out.append(f"| {s} | {t} | {ai} | {at} | {ap} / {ass} | {ei} | {et} | {ep} / {es} |")
    return [*out, "", f"Source: `{source}` (V100 GPU; time is the update step alone).", ""]


def scene_table(root: pathlib.Path) -> tuple[list[str], float | None]:
    """Our table for one grid directory and the common target it used: the lowest, over
    optimizers, of the median final smoothed training PSNR (the paper's "same training PSNR at
    which both models converged"; a median, so that one collapsed seed does not pull the target
    down to where every run starts)."""
    results = read_results(root) if root.is_dir() else []
    if not results:
        return [], None
    grouped = cells(results)
    medians = finite([_median([_smoothed_final(r) for r in runs]) for runs in grouped.values()])
    target = math.floor(min(medians) * 10) / 10 if medians else None
    lines = [
        f"| optimizer | lr | seeds | iterations | s/step | optimizer ms/step | test PSNR: median "
        f"(min to max) | test SSIM | train PSNR (smoothed) | iterations to {target} dB "
        f"| optimizer s to {target} dB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (_act, opt), runs in grouped.items():
        s = [r.summary for r in runs]
        reach = [first_reach([x for x in r.rows if x.get("train_psnr") is not None], target)[0]
                 for r in runs]
        opt_s = [it * x["optimizer_time_per_step_s"] if it is not None
                 and x.get("optimizer_time_per_step_s") else None for it, x in zip(reach, s,
                                                                                    strict=True)]
        psnrs = [r.final for r in runs]
        span = finite(psnrs)
        c = s[0].get("config", {})
        lr = f"{c.get('learning_rate'):g}" + (
            f" -> {c.get('final_lr') or c.get('learning_rate') / 100:g} ({c.get('schedule')})"
            if c.get("schedule") != "constant" else "")
        lines.append(
            f"| {opt} | {lr} | {len(runs)} | {max(x.get('steps', 0) for x in s)} "
            f"| {_fmt(_median([x.get('time_per_step_s') for x in s]), '.3f')} "
            f"| {_fmt(1e3 * (_median([x.get('optimizer_time_per_step_s') for x in s]) or math.nan), '.2f')} "  # noqa: E501
            f"| {_fmt(_median(psnrs))} ({_fmt(min(span) if span else None)} to "
            f"{_fmt(max(span) if span else None)}) "
            f"| {_fmt(_median([x.get('final_eval_ssim') for x in s]), '.3f')} "
            f"| {_fmt(_median([_smoothed_final(r) for r in runs]))} "
            f"| {', '.join('not reached' if v is None else str(v) for v in reach)} "
            f"| {', '.join(_fmt(v, '.1f') for v in opt_s)} |")
    first = results[0].summary.get("config", {})
    info = results[0].summary.get("data", {})
    lines += ["", *verdicts(grouped, target)]
    lines += [
        f"Setting: scene `{first.get('scene')}` at image scale {first.get('image_scale')} "
        f"(train images {info.get('shape')}), {first.get('batch_size')} rays x "
        f"{first.get('samples')} samples a step, Gaussian field depth {first.get('depth')} "
        f"width {first.get('width')} (sigma 0.1), {first.get('steps')} iterations (the paper's "
        "decays, when used, compressed into them); test PSNR (mean over views) and SSIM "
        f"(`dm_pix.ssim`) on {first.get('test_views') or 'all'} evenly spread test views, "
        "rendered with bin-centre samples.",
        "",
    ]
    return lines, target


def verdicts(grouped: dict[Any, list[RunResult]], target: float | None) -> list[str]:
    """Per ESGD variant against Adam, on the seeds both ran: how often it reached ``target``
    (smoothed training PSNR) in fewer iterations and in less optimizer time (iterations x the
    run's optimizer time per step), and its median test PSNR against Adam's; the paper's
    Table 1 / Table 5 expect ESGD first on both at a similar test PSNR."""
    if target is None:
        return []
    by_opt = {opt: {r.seed: r for r in runs} for (_act, opt), runs in grouped.items()}
    adam = by_opt.get("adam", {})
    out = []

    def iters(run: RunResult) -> float:
        step = first_reach([x for x in run.rows if x.get("train_psnr") is not None], target)[0]
        return math.inf if step is None else step

    def seconds(run: RunResult) -> float:
        per_step = run.summary.get("optimizer_time_per_step_s")
        return math.inf if per_step is None else iters(run) * per_step

    for opt, runs in by_opt.items():
        common = sorted(set(runs) & set(adam))
        if opt == "adam" or not common:
            continue

        def judged(count: int, n: int = len(common)) -> str:
            if n < 5:
                return f"{count}/{n} seeds, not judged (fewer than 5)"
            return f"{count}/{n} seeds: {'agrees' if 2 * count > n else 'disagrees'}"

        fewer = sum(iters(runs[s]) < iters(adam[s]) for s in common)
        faster = sum(seconds(runs[s]) < seconds(adam[s]) for s in common)
        mine = _median([runs[s].final for s in common])
        theirs = _median([adam[s].final for s in common])
        out.append(
            f"- `{opt}` reached {target} dB before Adam, against the paper's Tables 1 and 5 "
            f"(ESGD first): in iterations on {judged(fewer)}; in optimizer time on "
            f"{judged(faster)}. Median test PSNR {_fmt(mine)} vs Adam {_fmt(theirs)} dB.")
    return [*out, ""] if out else []


#: Why a verdict at the CPU preset is not yet a fair one (issue 21).
BASELINE_CAVEAT = (
    "**Caveat: Adam here is handicapped.** Both optimizers run the registry's paper settings; "
    "Adam's is the paper's schedule, 1e-4 decayed to 5e-6, made for 200K iterations and here "
    "squeezed into the preset's 2,000. Issue 21 reports, for `lego-cpu` seed 0, Adam at the usual"
    " NeRF rates reaching 21.47 dB test PSNR (5e-4 decayed to 5e-5) and 22.84 dB (2e-3 decayed to"
    " 2e-4), above ESGD's median in the table. The fair comparison is the section *Tuned against "
    "tuned: occupancy and NeRF* below: each optimizer at its best rate and schedule from a sweep "
    "on fern (Adam 3e-3 -> 1.5e-4, 30x the paper's; ESGD 0.3 -> 3e-3, 0.3x), 5 seeds on lego, "
    "2,000 iterations (`docs/tuned_3d/runs/nerf`, run 2026-12-07). There Adam reaches the common "
    "training PSNR first on 3/5 seeds and ESGD takes 2.09x Adam's median time to it, and Adam "
    "ends higher (median test PSNR 22.52 dB against ESGD's 20.81): the ESGD lead in this table is"
    " a lead over Adam at the paper's schedule only, and does not survive a tuned Adam at this "
    "scale.")


def reproduction_section(root: pathlib.Path) -> str:
    """The NeRF section of ``docs/REPRODUCTION.md`` from the grids under ``root``
    (``root/lego-cpu``, ``root/fern-cpu``, any other ``root/*`` grid too).

    Returns:
      Markdown starting with a ``##`` heading; says so plainly when no run has finished.
    """
    root = pathlib.Path(root)
    lines = ["## NeRF: ESGD vs Adam (paper Table 1, supplement Table 5)", ""]
    lines += ["What the paper reports (iterations and update-step time until a training PSNR "
              "both optimizers reach; TensorBoard-smoothed curves, smoothing 0.8-0.9):", ""]
    lines += ["LLFF (Table 1):", ""] + _paper_table(PAPER_TABLE1, _V2)
    lines += ["Blender (supplement Table 5):", ""] + _paper_table(PAPER_TABLE5, _V1)
    grids = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    any_run = False
    for grid in grids:
        table, target = scene_table(grid)
        if not table:
            continue
        any_run = True
        lines += [f"### Ours: `{grid.name}` (a reduced CPU scale, not the paper's)", ""]
        lines += table
        if target is not None:
            lines += [f"The target {target} dB is the lowest, over optimizers, of the median "
                      f"final smoothed (TensorBoard EMA, weight {SMOOTHING}) training PSNR, "
                      "floored to 0.1 dB: the PSNR every optimizer typically converged to "
                      "(runs that never reach it are listed as such); "
                      "optimizer seconds = iterations x the optimizer's measured time per step "
                      "(compiled step minus loss-and-gradient, replayed after training).", ""]
    if not any_run:
        lines += [f"No finished NeRF runs in `{root}` yet.", ""]
    lines += [BASELINE_CAVEAT, ""]
    lines += [
        "At this scale the comparison says how the optimizers behave early on a small field "
        "and low-resolution images; it does not reproduce Table 1's numbers, which need the "
        "paper's 200K iterations at full resolution (about 9 s a gradient on this CPU). "
        "Optimizer time in particular: here the target falls within the first few hundred "
        "iterations, where ESGD's 50 warm-up steps (an HVP each) weigh most, and the estimate "
        "iterations x mean optimizer time per step even understates that; over the paper's "
        "200K iterations the warm-up is amortised and an HVP comes every 100 steps.",
        "",
        "Rerun on this CPU (background, resumable with `--resume`): "
        f"`python -m experiments.paper.nerf --scene {LEGO} {' '.join(CPU_ARGS)} "
        "--target-psnr 20 --out runs/nerf/lego-cpu`, and the same with "
        f"`--scene {FERN} --out runs/nerf/fern-cpu`.",
        "",
        "The paper's protocol on a GPU:",
        "",
        *[f"    {c}" for c in GPU_COMMANDS],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
