"""The README's demo: ESGD against Adam on a wavelet and a Gaussian field.

``python -m experiments.demo`` fits the paper's 5x256 fields to scikit-image's bundled astronaut
(downsampled to 128x128, batch 512, 30 epochs, both optimizers at their defaults) with ESGD and
with Adam, each with 5 seeds, prints the comparison table (median and min-max over seeds, and on
how many seeds ESGD beats Adam) and then, per field, the race to a common quality: the lowest
median final training PSNR of the two optimizers, which one reached it first in wall-clock
training seconds (median over the seeds) and how many times sooner than Adam
(:func:`experiments.harness.targets.race_line`). The plots show the PSNR and the loss against
training time beside the same curves against epochs (``psnr_vs_time.png``,
``loss_vs_time.png``). An idle 2-core CPU runs it in about 6 minutes. Runs live in
``runs/demo``; running the demo again reuses finished runs (delete the directory to start
over). The flags below shrink or grow it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

from experiments import compare
from experiments.harness.report import cells, read_results
from experiments.harness.targets import Run, race_line

DEFAULTS = {"size": 128, "epochs": 30, "out": "runs/demo", "target_psnr": 25.0,
            "seeds": [0, 1, 2, 3, 4]}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.demo``."""
    p = argparse.ArgumentParser(prog="python -m experiments.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=DEFAULTS["size"])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--out", default=DEFAULTS["out"])
    p.add_argument("--image", default=None, help="PNG or JPEG (default: bundled astronaut)")
    p.add_argument("--target-psnr", type=float, default=DEFAULTS["target_psnr"])
    p.add_argument("--seeds", nargs="+", type=int, default=DEFAULTS["seeds"],
                   help="seeds of every run (default 0 1 2 3 4)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="further flags for experiments.compare, e.g. --extra --depth 3")
    args = p.parse_args(argv)
    flags = [
        "--task", "image", "--optimizers", "esgd", "adam", "--activations", "wavelet", "gaussian",
        "--size", str(args.size), "--epochs", str(args.epochs), "--out", args.out,
        "--target-psnr", str(args.target_psnr), "--eval-every", "5", "--timing-steps", "100",
        "--seeds", *map(str, args.seeds), "--resume",
    ]
    if args.image:
        flags += ["--image", args.image]
    print(f"demo: ESGD vs Adam, wavelet and Gaussian fields, {args.size}x{args.size} image, "
          f"{args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}; runs in {args.out}")
    code = compare.main(flags + list(args.extra))
    if code == 0:
        for line in race_lines(pathlib.Path(args.out)):
            print(line)
    return code


def race_lines(out: pathlib.Path) -> list[str]:
    """Per field of the grid in ``out``: which optimizer reached the common target first, by
    wall-clock training time, and by what factor over Adam."""
    by_field: dict[str, dict[str, list[Run]]] = {}
    for (field, opt), runs in cells(read_results(out)).items():
        by_field.setdefault(field, {})[opt] = [Run.of(r) for r in runs]
    return [race_line(field, by_opt) for field, by_opt in by_field.items()]


if __name__ == "__main__":
    sys.exit(main())
