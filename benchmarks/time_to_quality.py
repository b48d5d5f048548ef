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
import pathlib
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.errors import UsageError
from experiments.harness.report import cells, read_results
from experiments.harness.targets import Run, common_target, race

DATA = "../shared/data/images/div2k_fourier_features_test"
#: The table's images: the lion, two other DIV2K images, scikit-image's astronaut (the first
#: three need ``../shared/data``; a missing one is an error naming it).
IMAGES = (f"{DATA}/image_014.jpg", f"{DATA}/image_011.jpg", f"{DATA}/image_013.jpg",
          "skimage:astronaut")
#: The sweep's images: none of them is in the table.
SWEEP_IMAGES = (f"{DATA}/image_015.jpg", "skimage:coffee")
ACTIVATIONS = ("sine", "gaussian", "wavelet", "relu_pe")
OPTIMIZERS = ("adam", "esgd", "esgd_reference", "adahessian_e", "muon", "sophia")
#: The sweep's learning rates, as factors of the registry's.
LR_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
BASELINE = "adam"


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
    else:
        p.add_argument("--factors", nargs="+", type=float, default=list(LR_FACTORS))
    return p


def run(argv: Sequence[str]) -> int:
    """``run``: the table's grids (every other flag goes to ``experiments.compare``)."""
    args, rest = _parser("run").parse_known_args(argv)
    check_images(args.images)
    rest = ["--seeds", "0", "1", "2", "3", "4", *rest] if "--seeds" not in rest else list(rest)
    return _train(args.images, pathlib.Path(args.out), args.optimizers, args.activations, rest,
                  load_lrs(args.lrs), "time to quality")


def sweep(argv: Sequence[str]) -> int:
    """``sweep``: every optimizer at each factor of its registry rate, then ``best_lrs.json``."""
    from experiments import optimizers

    args, rest = _parser("sweep").parse_known_args(argv)
    check_images(args.images)
    if any(f <= 0 or not math.isfinite(f) for f in args.factors):
        raise UsageError(f"--factors {args.factors}: expected positive numbers")
    rest = ["--seeds", "0", "1", *rest] if "--seeds" not in rest else list(rest)
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


def table(roots: Sequence[pathlib.Path]) -> list[str]:
    """Markdown: per grid root, image and field, the race to the common target."""
    lines: list[str] = []
    for root in roots:
        grids = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        results = [r for g in grids for r in read_results(g)]
        if not results:
            lines += [f"No finished runs in `{root}`.", ""]
            continue
        from experiments.paper.reproduction import _settings

        lines += [f"### `{root}`", "", _settings(results), "",
                  "| image | field | common target (dB) | optimizer | lr | median s to target "
                  "(min-max) | median steps | seeds reached | time / Adam's |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for grid in grids:
            by_field: dict[str, dict[str, list[Run]]] = {}
            for (act, opt), runs in cells(read_results(grid)).items():
                by_field.setdefault(act, {})[opt] = [Run.of(r) for r in runs]
            for act, by_opt in by_field.items():
                target = common_target(by_opt)
                placings = race(by_opt, target.value)
                base = next((p for p in placings if p.optimizer == BASELINE), None)
                for p in placings:
                    lr = by_opt[p.optimizer][0].summary.get("learning_rate")
                    span = (f" ({p.seconds_range[0]:.1f}-{p.seconds_range[1]:.1f})"
                            if p.seconds_range else "")
                    ratio = (f"{p.seconds / base.seconds:.2f}x"
                             if p.seconds is not None and base is not None
                             and base.seconds else "—")
                    lines.append(
                        f"| {grid.name} | {act} | "
                        + ("—" if target.value is None else f"{target.value:g}")
                        + f" | {p.optimizer} | {lr if lr is not None else '—'} | "
                        + ("not reached" if p.seconds is None else f"{p.seconds:.1f}{span}")
                        + " | " + ("—" if p.steps is None else f"{p.steps:g}")
                        + f" | {p.reached}/{p.seeds} | {ratio} |")
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": run, "sweep": sweep,
                "table": lambda a: print("\n".join(table([pathlib.Path(x) for x in a]))) or 0}
    if not argv or argv[0] not in commands:
        sys.stderr.write(f"error: expected a subcommand, one of {', '.join(commands)}\n"
                         f"{__doc__}")
        return 2
    return cli.run_main(lambda a: commands[argv[0]](a), argv[1:])


if __name__ == "__main__":
    sys.exit(main())
