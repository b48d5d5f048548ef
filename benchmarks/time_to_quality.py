"""Time to quality: for each image and field, how long each optimizer takes to reach a common
PSNR, over seeds, at its registry settings and at its best learning rate from a sweep.

Three subcommands, each resumable and each writing plain run directories (the comparison
harness's ``ACT-OPT/seedS`` under one folder per image), so the table renders from archived
``summary.json`` and ``metrics.csv`` files like ``docs/REPRODUCTION.md``::

    python -m benchmarks.time_to_quality run --out runs/ttq/registry --resume
    python -m benchmarks.time_to_quality sweep --out runs/ttq/sweep --resume
    python -m benchmarks.time_to_quality run --lrs runs/ttq/sweep/best_lrs.json \\
        --out runs/ttq/tuned --resume
    python -m benchmarks.time_to_quality table runs/ttq/registry [runs/ttq/tuned]

``run`` trains every optimizer on every (image, field) at the paper's size (256x256, 5x256
field, batch 512, 10 epochs by default) with 5 seeds; ``--lrs`` gives each optimizer and field
its own learning rate. ``sweep`` trains each optimizer at 5 learning rates (the registry's times
0.1, 0.3, 1, 3, 10) with 2 seeds on images that are *not* in the table, and writes
``best_lrs.json``: per optimizer and field, the rate with the highest median final PSNR over the
sweep's images and seeds. ``table`` prints, per image and field, the common target (the lowest
median final training PSNR among the optimizers that learned,
:func:`experiments.harness.targets.common_target`) and each optimizer's median training seconds
and steps to reach it, with the min-max over seeds and the ratio to Adam's time
(:func:`experiments.harness.targets.race`).

Wall-clock times are only comparable within one machine and one load; the table says which
machine ran each grid (from the summaries).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.errors import UsageError
from experiments.harness.report import read_results
from experiments.harness.targets import FieldRace, Run, field_races, nan_float, reach

DATA = "../shared/data/images/div2k_fourier_features_test"
#: The table's images: the lion, two other DIV2K images, scikit-image's astronaut (the first
#: three need ``../shared/data``; a missing one is an error naming it).
IMAGES = (f"{DATA}/image_014.jpg", f"{DATA}/image_011.jpg", f"{DATA}/image_013.jpg",
          "skimage:astronaut")
#: The sweep's images: none of them is in the table.
SWEEP_IMAGES = (f"{DATA}/image_015.jpg", "skimage:coffee")
ACTIVATIONS = ("sine", "gaussian", "wavelet", "relu_pe")
#: Sophia is Sophia-H, the published method (Hutchinson's diagonal); ``sophia_e`` is our variant.
OPTIMIZERS = ("adam", "esgd", "esgd_reference", "adahessian_e", "muon", "sophia_h")
#: Why Muon's registry rate stays what it is (decided with its sweep in hand; the page says it).
MUON_DEFAULT = (
    "**Muon's registry rate is kept.** It was chosen on the `beyond` preset (64x64 images, 3x64 "
    "fields), and the `beyond`, occupancy and audio/video comparisons run at it; at the paper's "
    "size the sweep shows Muon's shortfall in the registry table is its learning rate, not the "
    "method, so the fair comparison is the tuned table below. Training a 5x256 field on an "
    "image with Muon, pass the sweep's rate (`--lr`).",
    "",
)

#: Said above the tuned table (``run --reuse`` made it so).
REUSE_NOTE = ("Where the sweep chose the rate a cell of the registry table already ran at, the "
              "cell's runs are that table's (same settings, seeds and machine; `run --reuse`), "
              "not trained again.")
#: Said after the list of reused cells: the registry's runs predate one change of the engine.
REUSE_CODE_NOTE = ("The registry's runs were trained before commit `9e4cfc2` left the refresh out "
                   "of the trace of the curvature optimizers' plain steps, the tuned table's new "
                   "runs after it; the update is the same, and ESGD's step measured 1.12x Adam's "
                   "before it and 1.08x after (`docs/OPTIMIZERS.md`, one run each), so a reused "
                   "curvature optimizer's seconds may be a few percent longer than new code's.")

#: The sweep's learning rates, as factors of the registry's.
LR_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
BASELINE = "adam"
#: Where the archived grids live, and the document rendered from them.
ARCHIVE = pathlib.Path("docs/time_to_quality/runs")
DOC = pathlib.Path("docs/TIME_TO_QUALITY.md")
#: The README's headline block lies between these lines (``render`` rewrites it).
README_BEGIN = "<!-- time-to-quality headline (python -m benchmarks.time_to_quality render) -->"
README_END = "<!-- end of time-to-quality headline -->"


def image_name(image: str) -> str:
    """The folder name of an image's grid: the file's stem, or ``skimage-NAME``."""
    return image.replace(":", "-") if image.startswith("skimage:") else pathlib.Path(image).stem


def check_images(images: Sequence[str]) -> None:
    """:class:`UsageError` naming every image file that does not exist, before any training."""
    missing = [im for im in images if not im.startswith("skimage:")
               and not pathlib.Path(im).is_file()]
    if missing:
        raise UsageError(f"--images {' '.join(missing)}: no such file (expected PNG or JPEG "
                         "files, or skimage:NAME; the DIV2K images ship in ../shared/data)")
    names = [image_name(im) for im in images]
    if len(set(names)) != len(names):
        raise UsageError(f"--images {' '.join(images)}: two images share a name; expected "
                         "distinct file stems")


def load_lrs(path: str | None) -> dict[str, dict[str, float]]:
    """``{optimizer: {activation: lr}}`` from a ``best_lrs.json`` (empty without a path)."""
    if path is None:
        return {}
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--lrs {path}: not a readable JSON file ({exc})") from None
    lrs = data.get("best_lrs", data) if isinstance(data, dict) else None
    if not isinstance(lrs, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, int | float) for x in v.values())
            for v in lrs.values()):
        raise UsageError(f"--lrs {path}: expected {{optimizer: {{activation: lr}}}}")
    return lrs


def _train(images: Sequence[str], out: pathlib.Path, optimizers: Sequence[str],
           activations: Sequence[str], rest: Sequence[str], lrs: dict[str, dict[str, float]],
           title: str) -> int:
    """One compare grid per image, optimizer and (when ``lrs`` names one) learning rate."""
    for image in images:
        for opt in optimizers:
            for act in activations:
                lr = lrs.get(opt, {}).get(act)
                code = compare.drive(
                    [*rest, "--image", image, "--optimizers", opt, "--activations", act,
                     "--out", str(out / image_name(image)),
                     *(["--lr", repr(lr)] if lr is not None else [])],
                    prog="python -m benchmarks.time_to_quality", title=title, epochs=10)
                if code:
                    return code
    return 0


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.time_to_quality {command}",
                                add_help=False)
    p.add_argument("--images", nargs="+",
                   default=list(SWEEP_IMAGES if command == "sweep" else IMAGES))
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    p.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    p.add_argument("--out", default=f"runs/ttq/{'sweep' if command == 'sweep' else 'registry'}")
    if command == "run":
        p.add_argument("--lrs", default=None, help="best_lrs.json from the sweep")
        p.add_argument("--reuse", default=None,
                       help="a finished grid (the registry table's): a cell whose --lrs rate is "
                            "the rate it ran at takes its finished runs instead of training them "
                            "again")
    else:
        p.add_argument("--factors", nargs="+", type=float, default=list(LR_FACTORS))
    return p


def _check(args: argparse.Namespace) -> None:
    """Every image and optimizer name checked before any training (a bad one is an error that
    names it)."""
    from experiments import optimizers

    check_images(args.images)
    for o in args.optimizers:
        optimizers.get(o)


def _no_replay(rest: list[str]) -> list[str]:
    """``--timing-steps 0`` unless given: the tables read training and compile time, never the
    optimizer-time replay after each run, which costs about half the training time again."""
    return rest if any(a.startswith("--timing-steps") for a in rest) else [
        *rest, "--timing-steps", "0"]


def run(argv: Sequence[str]) -> int:
    """``run``: the table's grids (every other flag goes to ``experiments.compare``)."""
    args, rest = _parser("run").parse_known_args(argv)
    _check(args)
    rest = ["--seeds", "0", "1", "2", "3", "4", *rest] if "--seeds" not in rest else list(rest)
    rest = _no_replay(rest)
    lrs = load_lrs(args.lrs)
    if args.reuse is not None:
        if not pathlib.Path(args.reuse).is_dir():
            raise UsageError(f"--reuse {args.reuse}: no such directory; expected a finished "
                             "grid such as runs/ttq/registry")
        copied = reuse_runs(pathlib.Path(args.reuse), pathlib.Path(args.out), args.images,
                            args.optimizers, args.activations, lrs)
        if copied:
            print(f"reused {len(copied)} finished runs of {args.reuse} at the same rate")
            rest = rest if "--resume" in rest else [*rest, "--resume"]
    return _train(args.images, pathlib.Path(args.out), args.optimizers, args.activations, rest,
                  lrs, "time to quality")


#: What a reused run brings along: all the table and the archive read.
REUSED_FILES = ("config.json", "metrics.csv", "summary.json")


def reuse_runs(src: pathlib.Path, out: pathlib.Path, images: Sequence[str],
               optimizers: Sequence[str], activations: Sequence[str],
               lrs: dict[str, dict[str, float]]) -> list[pathlib.Path]:
    """Copy into ``out`` every finished run of ``src`` (same ``IMAGE/ACT-OPT/seedS`` layout)
    whose learning rate is the one ``lrs`` gives its cell: where the sweep chose the rate a cell
    already ran at, its runs are the tuned table's runs, and training them again would only
    re-draw the clock. A run already in ``out`` is left alone; returns the copies."""
    import shutil

    copied = []
    for image in images:
        for opt in optimizers:
            for act in activations:
                lr = lrs.get(opt, {}).get(act)
                cell = f"{image_name(image)}/{act}-{opt}"
                for run in sorted((src / cell).glob("seed*")):
                    try:
                        ran = json.loads((run / "summary.json").read_text())["learning_rate"]
                    except (OSError, ValueError, KeyError, TypeError):
                        continue  # not finished
                    target = out / cell / run.name
                    if (lr is None or not isinstance(ran, int | float)
                            or not math.isclose(ran, lr, rel_tol=1e-9) or target.exists()):
                        continue
                    target.mkdir(parents=True)
                    for name in REUSED_FILES:
                        shutil.copy2(run / name, target / name)
                    copied.append(target)
    return copied


def sweep(argv: Sequence[str]) -> int:
    """``sweep``: every optimizer at each factor of its registry rate, then ``best_lrs.json``."""
    from experiments import optimizers

    args, rest = _parser("sweep").parse_known_args(argv)
    _check(args)
    if any(f <= 0 or not math.isfinite(f) for f in args.factors):
        raise UsageError(f"--factors {args.factors}: expected positive numbers")
    rest = _no_replay(["--seeds", "0", "1", *rest] if "--seeds" not in rest else list(rest))
    out = pathlib.Path(args.out)
    for factor in args.factors:
        lrs = {o: {a: optimizers.get(o).lr_for(a) * factor for a in args.activations}
               for o in args.optimizers}
        code = _train(args.images, out / f"x{factor:g}", args.optimizers, args.activations,
                      rest, lrs, f"learning-rate sweep, x{factor:g}")
        if code:
            return code
    best = best_lrs(out)
    (out / "best_lrs.json").write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
    print(f"best learning rates: {out / 'best_lrs.json'}")
    return 0


def best_lrs(root: pathlib.Path) -> dict[str, Any]:
    """Per optimizer and field, the learning rate of the sweep under ``root`` (``xF/IMAGE/``
    grids) with the highest median final PSNR over all its images and seeds (a diverged run
    counts as the worst), with every rate's median beside it."""
    finals: dict[tuple[str, str], dict[float, list[float]]] = {}
    for grid in sorted(root.glob("x*/*")):
        for r in read_results(grid):
            lr = r.summary.get("learning_rate")
            if lr is None:
                continue
            value = r.final if r.final is not None and math.isfinite(r.final) else -math.inf
            finals.setdefault((r.optimizer, r.activation), {}).setdefault(float(lr), []).append(
                value)
    best: dict[str, dict[str, float]] = {}
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for (opt, act), by_lr in sorted(finals.items()):
        med = {lr: statistics.median(v) for lr, v in by_lr.items()}
        best.setdefault(opt, {})[act] = max(med, key=med.__getitem__)
        medians.setdefault(opt, {})[act] = {f"{lr:g}": m for lr, m in sorted(med.items())}
    return {"best_lrs": best, "median_final_psnr": medians}


def grid_cells(root: pathlib.Path) -> list[FieldRace]:
    """Every (image, field) under ``root`` (one compare grid per image folder), raced
    (:func:`~experiments.harness.targets.field_races`; ``.grid`` is the image's name)."""
    grids = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [c for g in grids for c in field_races(g)]


#: Seeds a cell needs to count as complete.
SEEDS = 5


def complete(race: FieldRace) -> bool:
    """Whether every optimizer of the table (:data:`OPTIMIZERS`) ran :data:`SEEDS` seeds in this
    (image, field): a race among only those that have run so far is not the table's race."""
    return all(len(race.by_opt.get(o, ())) >= SEEDS for o in OPTIMIZERS)


def reused_cells(registry: pathlib.Path, tuned: pathlib.Path) -> list[str]:
    """``field/optimizer`` of every cell with a run under ``tuned`` that is a copy of the
    registry's (``run --reuse``: the same ``summary.json``, byte for byte), sorted."""
    cells = set()
    for summary in tuned.glob("*/*-*/seed*/summary.json"):
        twin = registry / summary.relative_to(tuned)
        if twin.is_file() and twin.read_bytes() == summary.read_bytes():
            act, opt = summary.parent.parent.name.split("-", 1)
            cells.add(f"{act}/{opt}")
    return sorted(cells)


def seconds_with_compile(runs: Sequence[Run], target: float | None) -> float | None:
    """Median over seeds of the training seconds to ``target`` plus the run's first step
    (compilation included, ``compile_time_s``), a seed that never reached it counting as never;
    ``None`` unless at least half the seeds reached it."""
    values = []
    for r in runs:
        hit = reach(r, target)
        first = nan_float(r.summary.get("compile_time_s"))
        values.append(hit.time_s + first if hit is not None and math.isfinite(first)
                      else math.inf)
    m = statistics.median(values) if values else math.inf
    return m if math.isfinite(m) else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "—"


#: The two races of a field: to the common target (the issue's: the lowest median final PSNR
#: among the optimizers that learned) and to Adam's median final PSNR.
RACES = {"common": "common target", "adam": "Adam's final PSNR"}


def _check_race(to: str) -> None:
    if to not in RACES:
        raise ValueError(f"to={to!r}: expected one of {sorted(RACES)}")


def _race(c: FieldRace, to: str) -> tuple[Any, list[Any]]:
    """``(target, placings)`` of the race ``to`` (a key of :data:`RACES`)."""
    _check_race(to)
    return (c.target, c.placings) if to == "common" else (c.baseline_target, c.baseline_placings)


def table(roots: Sequence[pathlib.Path], to: str = "common") -> list[str]:
    """Markdown: per grid root, image and field, the race to the common target (``to=
    "common"``) or to Adam's final PSNR (``"adam"``)."""
    from experiments.paper.reproduction import _settings

    _check_race(to)
    lines: list[str] = []
    for root in roots:
        found = grid_cells(root)
        if not found:
            lines += [f"No finished runs in `{root}`.", ""]
            continue
        results = [r for g in sorted(root.iterdir()) if g.is_dir() for r in read_results(g)]
        lines += [f"### `{root}`", "", _settings(results), "",
                  f"| image | field | {RACES[to]} (dB) | optimizer | lr | median s to target "
                  "(min-max) | median steps | seeds reached | time / Adam's | with compile: "
                  "median s | with compile / Adam's |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in found:
            target, placings = _race(c, to)
            base = next((p for p in placings if p.optimizer == BASELINE), None)
            base_full = (seconds_with_compile(c.by_opt[BASELINE], target.value)
                         if base is not None else None)
            for p in placings:
                lr = c.by_opt[p.optimizer][0].summary.get("learning_rate")
                span = (f" ({p.seconds_range[0]:.1f}-{p.seconds_range[1]:.1f})"
                        if p.seconds_range else "")
                full = seconds_with_compile(c.by_opt[p.optimizer], target.value)
                field = c.field if complete(c) else f"{c.field} (incomplete)"
                lines.append(
                    f"| {c.grid} | {field} | "
                    + ("—" if target.value is None else f"{target.value:g}")
                    + f" | {p.optimizer} | {lr if lr is not None else '—'} | "
                    + ("not reached" if p.seconds is None else f"{p.seconds:.1f}{span}")
                    + " | " + ("—" if p.steps is None else f"{p.steps:g}")
                    + f" | {p.reached}/{p.seeds} | "
                    + _ratio(p.seconds, base.seconds if base else None)
                    + " | " + ("—" if full is None else f"{full:.1f}")
                    + f" | {_ratio(full, base_full)} |")
        lines.append("")
    return lines


def headline(root: pathlib.Path, to: str = "common") -> list[str]:
    """Per field, over the images of the grid under ``root``: which optimizer reached the
    target of the race ``to`` (:data:`RACES`) first on how many images, and each optimizer's
    time to it as a fraction of Adam's (median over the images where both got there on at
    least half their seeds, with the min-max and the number of those images)."""
    _check_race(to)
    found = [c for c in grid_cells(root) if complete(c)]
    lines = []
    for field in dict.fromkeys(c.field for c in found):
        mine = [c for c in found if c.field == field]
        races = [_race(c, to) for c in mine]
        firsts = [pl[0].optimizer for _, pl in races if pl and pl[0].finished]
        counts = sorted(((firsts.count(o), o) for o in set(firsts)), reverse=True)
        targets = ", ".join(f"{t.value:g}" for t, _ in races if t.value is not None) or "none"
        ratios: dict[str, list[float]] = {}
        for _, placings in races:
            base = next((p for p in placings if p.optimizer == BASELINE), None)
            for p in placings:
                if p.optimizer != BASELINE and p.finished and base is not None and base.finished:
                    ratios.setdefault(p.optimizer, []).append(p.seconds / base.seconds)
        parts = []
        for opt, rs in sorted(ratios.items(), key=lambda kv: statistics.median(kv[1])):
            # How many images the fraction rests on: one optimizer's median over 1 image is not
            # another's over 4.
            span = f"{min(rs):.2f}-{max(rs):.2f}x; " if len(rs) > 1 else ""
            parts.append(f"`{opt}` {statistics.median(rs):.2f}x ({span}{len(rs)}/{len(mine)} "
                         f"image{'s' * (len(mine) > 1)})")
        first = ", ".join(f"`{o}` on {n}/{len(mine)}" for n, o in counts) or "none"
        # An optimizer absent from the fractions must not read as "not run": say it never got
        # there (on half its seeds) on any image.
        never = [o for o in dict.fromkeys(p.optimizer for _, pl in races for p in pl)
                 if o != BASELINE and not any(
                     p.optimizer == o and p.finished for _, pl in races for p in pl)]
        lines.append(f"- **{field}** ({len(mine)} image{'s' * (len(mine) > 1)}; {targets} dB): "
                     f"first to {'the ' * (to == 'common')}{RACES[to]}: {first}. Time to it as a "
                     "fraction of Adam's: "
                     + ("; ".join(parts) if parts else "no optimizer and Adam both reached it")
                     + "." + (" Never there on half its seeds, on any image: "
                              + ", ".join(f"`{o}`" for o in never) + "." if never else ""))
    return lines


def sweep_lines(root: pathlib.Path) -> list[str]:
    """Markdown: the sweep's median final PSNR per optimizer, field and learning rate, the chosen
    rate in bold, and a warning where it lies at the edge of the sweep."""
    from experiments import optimizers

    best = best_lrs(root)
    if not best["best_lrs"]:
        return [f"Not run yet (no finished runs in `{root}`).", ""]
    results = [r for g in sorted(root.glob("x*/*")) if g.is_dir() for r in read_results(g)]
    images = sorted({g.name for g in root.glob("x*/*") if g.is_dir()})
    seeds = sorted({r.seed for r in results})
    factors = sorted({float(f.name[1:]) for f in root.glob("x*") if f.is_dir()})
    lines = [f"Images: {', '.join(images)} (none of them in the table); seeds "
             f"{' '.join(map(str, seeds))}; each rate a factor of the registry's. Median final "
             "full-image PSNR (dB) over images and seeds (a diverged run counts as the worst); "
             "the chosen rate in bold.", "",
             "| optimizer | field | registry lr | "
             + " | ".join(f"x{f:g}" for f in factors) + " | chosen lr |",
             "|---|---|---|" + "---|" * len(factors) + "---|"]
    edges = []
    for opt, by_act in best["median_final_psnr"].items():
        for act, by_lr in by_act.items():
            reg = optimizers.get(opt).lr_for(act)
            chosen = best["best_lrs"][opt][act]
            row = []
            for f in factors:
                key = next((k for k in by_lr if math.isclose(float(k), reg * f, rel_tol=1e-6)),
                           None)
                if key is None:
                    row.append("—")
                    continue
                text = "diverged" if not math.isfinite(by_lr[key]) else f"{by_lr[key]:.2f}"
                row.append(f"**{text}**" if math.isclose(float(key), chosen, rel_tol=1e-6)
                           else text)
            lines.append(f"| {opt} | {act} | {reg:g} | " + " | ".join(row) + f" | {chosen:g} |")
            tried = sorted(float(k) for k in by_lr)
            if len(tried) > 1 and chosen in (tried[0], tried[-1]):
                edges.append(f"`{opt}` on {act} ({chosen:g})")
    lines.append("")
    for opt, by_act in best["median_final_psnr"].items():
        gaps = []
        for act, by_lr in by_act.items():
            reg = optimizers.get(opt).lr_for(act)
            at_reg = next((m for k, m in by_lr.items()
                           if math.isclose(float(k), reg, rel_tol=1e-6)), None)
            chosen = best["best_lrs"][opt][act]
            if at_reg is not None and not math.isclose(chosen, reg, rel_tol=1e-6):
                gap = ("diverged" if not math.isfinite(at_reg)
                       else f"{max(by_lr.values()) - at_reg:.2f} dB below")
                gaps.append(f"{act} (x{chosen / reg:.2g}; the registry rate ends {gap})")
        if gaps:
            lines.append(f"- `{opt}`: best away from its registry rate on " + ", ".join(gaps)
                         + ".")
    lines.append("")
    if edges:
        lines += ["At the edge of the sweep (the best rate may lie beyond it): "
                  + ", ".join(edges) + ".", ""]
    return lines


#: Per field, the optimizer the paper finds faster: ESGD on wavelet, sine and Gaussian fields,
#: Adam on ReLU(PE) (v2, Fig. 1 caption and Sec. 1; Theorem 4.3 for why: sparse HVPs).
PAPER_FASTER = {"sine": "esgd", "gaussian": "esgd", "wavelet": "esgd", "relu_pe": BASELINE}
#: The paper's claim in :func:`claim_lines`' table.
PAPER_SOURCE = "Chng et al., v2, Fig. 1 caption and Sec. 1"


def claim_lines(root: pathlib.Path, settings: str) -> list[str]:
    """Markdown: per field of the grid under ``root``, the paper's claim (:data:`PAPER_FASTER`)
    against the race of ESGD and Adam to Adam's final PSNR, image by image: on how many images
    the optimizer the paper names got there first, and ESGD's time over Adam's (median and
    min-max over the images where ESGD got there on half its seeds); ``settings`` says at which
    rates the grid ran."""
    found = [c for c in grid_cells(root) if complete(c)]
    lines = []
    for field in dict.fromkeys(c.field for c in found):
        claimed = PAPER_FASTER.get(field)
        if claimed is None:
            continue
        mine = [c for c in found if c.field == field]
        ahead, ratios = 0, []
        for c in mine:
            by = {p.optimizer: p for p in c.baseline_placings}
            esgd, adam = by.get("esgd"), by.get(BASELINE)
            if esgd is None or adam is None:
                continue
            esgd_first = esgd.finished and (not adam.finished or esgd.seconds < adam.seconds)
            ahead += esgd_first == (claimed == "esgd")
            if esgd.finished and adam.finished:
                ratios.append(esgd.seconds / adam.seconds)
        n = len(mine)
        verdict = ("holds" if ahead == n else "does not hold" if ahead == 0 else "mixed")
        ratio = (f"{statistics.median(ratios):.2f}x"
                 + (f" ({min(ratios):.2f}-{max(ratios):.2f}x)" if len(ratios) > 1 else "")
                 + f" on {len(ratios)}/{n}" if ratios else "never there on half its seeds")
        lines.append(f"| {field} | {'ESGD' if claimed == 'esgd' else 'Adam'} | {ahead}/{n} | "
                     f"{ratio} | {verdict} |")
    if not lines:
        return []
    return [f"Per field, the optimizer the paper finds faster ({PAPER_SOURCE}), against the race "
            f"of ESGD and Adam alone to Adam's median final PSNR, image by image ({settings}; "
            "wall-clock training seconds):", "",
            "| field | paper: faster | images where it got there first | ESGD's time / Adam's "
            "(median, min-max; images) | the claim, by time |", "|---|---|---|---|---|",
            *lines, ""]


def summary_lines(root: pathlib.Path) -> list[str]:
    """The summary of the grid under ``root``: both races of :data:`RACES` per field (empty
    until a field is complete)."""
    adam, common = headline(root, "adam"), headline(root, "common")
    if not common:
        return []
    return ["**To Adam's final PSNR** (Adam's median final training PSNR, floored to 0.1 dB: "
            "how long until each optimizer gives what Adam gives at the end of the run):", "",
            *adam, "",
            "**To the common target** (the lowest median final training PSNR among the "
            "optimizers that learned; with six optimizers the weakest sets it, often within the "
            "first epoch, so this race is about the first seconds):", "", *common]


def _plots(root: pathlib.Path, assets: pathlib.Path) -> list[str]:
    """One PSNR-against-time figure per image of ``root`` (a panel per field, median over seeds
    with a min-max band, the common target dashed and Adam's final PSNR dotted), drawn into
    ``assets``; markdown links."""
    from experiments.harness.plots import PlotSpec, comparison_plots

    found = grid_cells(root)
    links = []
    for image in dict.fromkeys(c.grid for c in found):
        mine = [c for c in found if c.grid == image]
        name = f"{root.name}_{image}_psnr_vs_time"
        comparison_plots(
            assets, [(c.field, o, [r.rows for r in runs]) for c in mine
                     for o, runs in c.by_opt.items()],
            plots=[PlotSpec(name, "time_s", "train_psnr", "training time (s)",
                            "training PSNR (dB)")],
            hlines={c.field: {name: t.value for name, t in (
                ("common target", c.target), ("Adam's final", c.baseline_target))
                if t.value is not None} for c in mine})
        links.append(f"![{root.name}, {image}: PSNR against training time]"
                     f"({assets.name}/{name}.png)")
    return links


def render(archive: pathlib.Path, doc: pathlib.Path, readme: pathlib.Path | None) -> None:
    """Write ``doc`` (and the headline block of ``readme``) from the archived grids under
    ``archive`` (``registry/``, ``sweep/``, ``tuned/``); a grid not run yet is said to be."""
    assets = doc.parent / "time_to_quality"
    assets.mkdir(parents=True, exist_ok=True)
    registry, sweep_root, tuned = archive / "registry", archive / "sweep", archive / "tuned"
    expected = [image_name(im) for im in IMAGES]
    # The summary is the tuned table's once it has as many complete images as the registry's
    # (one tuned image must not replace four), else the registry's; the count is that table's.
    done = {name: {c.grid for c in grid_cells(r) if complete(c)}
            for name, r in (("registry", registry), ("tuned", tuned))}
    which = "tuned" if done["tuned"] and len(done["tuned"]) >= len(done["registry"]) else "registry"
    root = tuned if which == "tuned" else registry
    summary = summary_lines(root)
    ran = done[which]
    reused = reused_cells(registry, tuned)
    lines = [
        "# Time to quality",
        "",
        "<!-- Generated by `python -m benchmarks.time_to_quality render` from the archived runs "
        f"under `{archive}`; edit the code, not this file. -->",
        "",
        "For each image and field: how long each optimizer takes to reach a common quality, "
        "the lowest median final training PSNR among the optimizers that learned "
        "(`experiments.harness.targets.common_target`, the issue's definition), and how long to "
        "reach Adam's median final training PSNR (`baseline_target`), the quality a user of "
        "Adam has at the end of the run. Image fitting at the paper's size "
        "(256x256, 5x256 field, batch 512), 10 epochs (1,280 steps), 5 seeds per cell; training "
        "seconds are the loop's clock from the second step on (the first step, with its "
        "compilation, is the *with compile* column). Times come from one machine under one "
        "load and are comparable only within a table.",
        "",
        "## Summary",
        "",
        f"From the {which}-settings table, {len(ran)} of {len(expected)} images complete "
        f"({', '.join(sorted(ran)) or 'none'}"
        + ("" if set(ran) >= set(expected) else f"; planned: {', '.join(expected)}") + "):",
        "",
        *(summary or ["Not run yet."]),
        "",
        "### The paper's claim, by wall-clock time",
        "",
        *(claim_lines(registry, "the registry table: every optimizer at its registry rate")
          or ["Not run yet.", ""]),
        *claim_lines(tuned, "the tuned table: each optimizer at its sweep's best rate"),
        "## At the registry's settings",
        "",
        *(table([registry])[2:] if grid_cells(registry) else ["Not run yet.", ""]),
        *(["The same race to Adam's median final PSNR (floored to 0.1 dB):", "",
           *table([registry], "adam")[4:]] if grid_cells(registry) else []),
        f"A field marked *incomplete* has not yet run every optimizer ({', '.join(OPTIMIZERS)}) "
        f"on {SEEDS} seeds; it stays out of the summary.", "",
        *_plots(registry, assets),
        "",
        "## The learning-rate sweep",
        "",
        "Each optimizer, Adam included, at 5 learning rates around its registry rate (x0.1 to "
        "x10), 2 seeds, on images not in the tables (`python -m benchmarks.time_to_quality "
        "sweep`), extended by one factor (`--factors`) where the best lay at an edge; the "
        "chosen rate, the highest median final PSNR, is what the tuned table runs.",
        "",
        *sweep_lines(sweep_root),
        *MUON_DEFAULT,
        "## At the sweep's learning rates",
        "",
        *([REUSE_NOTE + (f" Reused: {', '.join(f'`{c}`' for c in reused)}. {REUSE_CODE_NOTE}"
                         if reused else ""), "", *table([tuned])[2:],
           "The same race to Adam's median final PSNR:", "", *table([tuned], "adam")[4:]]
          if grid_cells(tuned) else ["Not run yet.", ""]),
        *(_plots(tuned, assets) if grid_cells(tuned) else []),
        "",
        "## Rerunning",
        "",
        "```bash",
        "python -m benchmarks.time_to_quality run --out runs/ttq/registry --log-every 32 --resume",
        "python -m benchmarks.time_to_quality sweep --out runs/ttq/sweep --resume",
        "python -m benchmarks.time_to_quality run --lrs runs/ttq/sweep/best_lrs.json "
        "--reuse runs/ttq/registry --out runs/ttq/tuned --log-every 32 --resume",
        f"python -m experiments.harness.archive runs/ttq/registry {registry}  # likewise sweep, "
        "tuned",
        "python -m benchmarks.time_to_quality render",
        "```",
        "",
    ]
    doc.write_text("\n".join(lines))
    if readme is not None:
        text = readme.read_text()
        if README_BEGIN not in text or README_END not in text:
            raise UsageError(f"--readme {readme}: expected the markers {README_BEGIN!r} and "
                             f"{README_END!r} around the headline block")
        head, rest = text.split(README_BEGIN, 1)
        _, tail = rest.split(README_END, 1)
        link = os.path.relpath(doc, readme.parent)
        block = ([f"Measured on {len(ran)} of {len(expected)} images at the {which} settings "
                  f"([{link}]({link}), `python -m benchmarks.time_to_quality render`):", "",
                  *summary] if summary else
                 [f"Not measured yet: the table's grids have not run ([{link}]({link}) says "
                  "what has).", ""])
        readme.write_text(head + README_BEGIN + "\n" + "\n".join(block) + "\n" + README_END
                          + tail)


def render_main(argv: Sequence[str]) -> int:
    """``render``: ``docs/TIME_TO_QUALITY.md`` and the README's headline from the archive."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.time_to_quality render")
    p.add_argument("--archive", default=str(ARCHIVE))
    p.add_argument("--doc", default=str(DOC))
    p.add_argument("--readme", default="README.md", help="'none' to leave it alone")
    args = p.parse_args(argv)
    render(pathlib.Path(args.archive), pathlib.Path(args.doc),
           None if args.readme == "none" else pathlib.Path(args.readme))
    print(f"wrote {args.doc}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    commands = {"run": run, "sweep": sweep, "render": render_main,
                "table": cli.print_command(table)}
    return cli.run_subcommand(commands, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
