"""ESGD's seed-to-seed collapses and the safeguards against them: ``python -m
experiments.paper.robustness``.

Trains Adam and ESGD variants (the reference ESGD and each safeguard of the shared curvature
engine, alone and combined) on one image for several fields and seeds, through the comparison
harness (:func:`experiments.compare.drive`): one run directory per (field, optimizer, seed) and
``report.md`` with the median, min-max and win count against Adam. ``--write-doc`` turns the grids
under ``--roots`` into ``docs/ROBUSTNESS.md``. Tiny::

    python -m experiments.paper.robustness --size 16 --depth 2 --width 16 --epochs 1 \\
        --seeds 0 1 --activations sine --out /tmp/rob
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare, optimizers
from experiments.harness import cli
from experiments.harness.report import markdown_table, read_results, table
from experiments.paper.lion import LION

#: ESGD variants: name -> (options of ``jaxprecond.esgd``, what it is). Values are the first
#: ones tried, chosen from the mechanism before any run (see docs/ROBUSTNESS.md), not tuned.
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "esgd_probes8": ({"warmup_probes": 8}, "8 probes on each of the 50 warm-up refreshes"),
    "esgd_floor": ({"curvature_floor": 0.1},
                   "sqrt(D) floored at 0.1 x its mean over each parameter"),
    "esgd_clip": ({"clip": 1.0}, "preconditioned update clipped to [-1, 1] (Sophia's rule)"),
    # Tight clip: a few times the largest healthy entry (0.001-0.01 after step 8 on the lion's
    # sine seed 0, see docs/ROBUSTNESS.md); the bound is absolute, so it depends on the scale.
    "esgd_clip_tight": ({"clip": 0.01}, "preconditioned update clipped to [-0.01, 0.01]"),
    "esgd_rampup": ({"lr_warmup_steps": 256}, "step ramped linearly over the first 256 steps"),
    "esgd_floor_probes": ({"curvature_floor": 0.1, "warmup_probes": 8},
                          "floor 0.1 and 8 warm-up probes"),
}
ACTIVATIONS = ("wavelet", "sine", "gaussian")
DEFAULT_OUT = "runs/robustness"


def register_variants() -> None:
    """Register every ESGD variant of :data:`VARIANTS` (at ESGD's learning rates)."""
    esgd = optimizers.get("esgd")
    for name, (options, description) in VARIANTS.items():
        if name not in optimizers.names():
            optimizers.register(optimizers.OptimizerSpec(
                name, optimizers.lazy_builder("jaxprecond", "esgd", **options),
                default_lr=dict(esgd.default_lr), uses_curvature=True,
                description=f"ESGD, {description}",
            ))


def write_doc(roots: Sequence[pathlib.Path], output: pathlib.Path, target: float = 25.0) -> str:
    """The results part of ``docs/ROBUSTNESS.md``: one seed-aware table per grid in ``roots``."""
    lines = ["## Results", ""]
    for root in roots:
        results = read_results(root)
        if not results:
            lines += [f"`{root}`: no finished runs yet.", ""]
            continue
        image = results[0].summary.get("config", {}).get("image") or "astronaut (bundled)"
        seeds = sorted({r.seed for r in results})
        lines += [f"### {pathlib.Path(image).name}, {results[0].summary.get('epochs'):g} epochs, "
                  f"seeds {' '.join(map(str, seeds))} (`{root}`)", "",
                  markdown_table(table(results, target, baseline="adam")), ""]
    text = "\n".join(lines) + "\n"
    output.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--write-doc" in argv:
        p = argparse.ArgumentParser(prog="python -m experiments.paper.robustness --write-doc")
        p.add_argument("--write-doc", action="store_true")
        p.add_argument("--roots", nargs="+", type=pathlib.Path, required=True)
        p.add_argument("--output", type=pathlib.Path, default=pathlib.Path("robustness.md"))
        a = p.parse_args(argv)
        write_doc(a.roots, a.output)
        print(f"wrote {a.output}")
        return 0
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.robustness",
        title="ESGD safeguards against collapse: seeds x fields", setup=register_variants,
        out=DEFAULT_OUT, image=LION, activations=list(ACTIVATIONS),
        optimizers=["adam", "esgd", *VARIANTS], seeds=[0, 1, 2, 3, 4], epochs=10,
        eval_every=0, timing_steps=0,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
