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
from experiments.harness import cli, plots
from experiments.harness.metrics import read_metrics
from experiments.harness.report import (
    RunResult,
    bar_check,
    cells,
    markdown_table,
    read_results,
    table,
)
from experiments.paper.lion import LION

#: ESGD variants: name -> (options of ``jaxprecond.esgd``, what it is). Values are the first
#: ones tried, chosen from the mechanism before any run (see docs/ROBUSTNESS.md), not tuned.
#: Every variant sets ``clip`` explicitly, so its meaning does not follow ``esgd``'s default
#: (``clip=1`` since issue 11; ``esgd_clip`` is that default, ``esgd_noclip`` the method before).
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "esgd_noclip": ({"clip": None}, "no safeguard: the papers' method (per-refresh correction)"),
    "esgd_probes8": ({"clip": None, "warmup_probes": 8},
                     "8 probes on each of the 50 warm-up refreshes"),
    "esgd_floor": ({"clip": None, "curvature_floor": 0.1},
                   "sqrt(D) floored at 0.1 x its mean over each parameter"),
    "esgd_clip": ({"clip": 1.0}, "preconditioned update clipped to [-1, 1] (Sophia's rule)"),
    # Tight clip: a few times the largest healthy entry (0.001-0.01 after step 8 on the lion's
    # sine seed 0, see docs/ROBUSTNESS.md); the bound is absolute, so it depends on the scale.
    "esgd_clip_tight": ({"clip": 0.01}, "preconditioned update clipped to [-0.01, 0.01]"),
    "esgd_rampup": ({"clip": None, "lr_warmup_steps": 256},
                    "step ramped linearly over the first 256 steps"),
    "esgd_floor_probes": ({"clip": None, "curvature_floor": 0.1, "warmup_probes": 8},
                          "floor 0.1 and 8 warm-up probes"),
    # Combined after the first lion screening: clip had the best medians, floor the tightest
    # spread (docs/ROBUSTNESS.md).
    "esgd_clip_floor": ({"clip": 1.0, "curvature_floor": 0.1}, "clip 1 and floor 0.1"),
    # Combined after the DIV2K runs: clip alone left a wider spread than Adam's on sine fields,
    # 8 warm-up probes alone had tight spreads but lower medians on the lion.
    "esgd_clip_probes8": ({"clip": 1.0, "warmup_probes": 8}, "clip 1 and 8 warm-up probes"),
    # Issue 21: fewer warm-up refreshes (each an HVP) with the clip in place; a default changes
    # only if quality holds over fields, images and seeds (benchmarks/whole_run.py: the time).
    "esgd_clip_warmup20": ({"clip": 1.0, "warmup": 20}, "clip 1, 20 warm-up refreshes (not 50)"),
    "esgd_clip_warmup10": ({"clip": 1.0, "warmup": 10}, "clip 1, 10 warm-up refreshes (not 50)"),
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


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
#: The trace columns plotted for a collapsing and a healthy seed.
TRACE_COLUMNS = (("loss", "training loss (window mean)"),
                 ("max_update", "largest |preconditioned update| entry"),
                 ("loss_jump", "largest step-to-step loss ratio"))


def _image_name(results: Sequence[RunResult]) -> str:
    image = results[0].summary.get("config", {}).get("image")
    return pathlib.Path(image).stem if image else "astronaut (bundled)"


def _bar_lines(results: Sequence[RunResult], candidates: Sequence[str]) -> list[str]:
    rows = []
    for name in candidates:
        for check in bar_check(results, name):
            c, b = check.candidate, check.baseline
            rows.append({
                "field": check.activation, "ESGD variant": name,
                "median vs Adam (dB)": f"{c[0]:.2f} vs {b[0]:.2f}",
                "worst seed vs Adam's worst": f"{c[1]:.2f} vs {b[1]:.2f}",
                "spread vs Adam's": f"{c[2] - c[1]:.2f} vs {b[2] - b[1]:.2f}",
                "seeds": f"{check.seeds[0]}/{check.seeds[1]}",
                "bar": " ".join(f"{k}:{'yes' if ok else 'no'}" for k, ok in
                                (("median", check.median), ("worst", check.worst),
                                 ("spread", check.spread))),
            })
    return [markdown_table(rows), ""] if rows else []


def results_section(roots: Sequence[pathlib.Path], assets: pathlib.Path,
                    traces: dict[str, pathlib.Path] | None = None, target: float = 25.0) -> str:
    """The generated part of ``docs/ROBUSTNESS.md``: per grid in ``roots`` the seed-aware table,
    a strip plot of every seed's final PSNR and the bar check of each ESGD variant against
    Adam; then the traces plot of ``traces`` (label -> run directory). Plots go to ``assets``,
    linked relative to the doc's folder (``assets``' parent)."""
    assets.mkdir(parents=True, exist_ok=True)
    lines = ["## Results", "",
             "Generated by `python -m experiments.paper.robustness --write-doc` from the run "
             "directories; final PSNR in dB on the full 256x256 image after 10 epochs. Bar: "
             "median above Adam's; no seed more than 1 dB below Adam's worst; spread (max - "
             "min) at most twice Adam's. The time columns are wall-clock on 2 CPU cores shared "
             "with another run, so they are noisy and not comparable across rows; the step "
             "times are measured by `benchmarks/step_time.py` (section Step time).", ""]
    for root in roots:
        results = read_results(root)
        if not results:
            lines += [f"`{root}`: no finished runs yet.", ""]
            continue
        name = _image_name(results)
        seeds = sorted({r.seed for r in results})
        epochs = results[0].summary.get("epochs",
                                        results[0].summary.get("config", {}).get("epochs", "?"))
        epochs = f"{epochs:g}" if isinstance(epochs, int | float) else epochs
        lines += [f"### {name}, {epochs} epochs, seeds "
                  f"{' '.join(map(str, seeds))}", "",
                  markdown_table(table(results, target, baseline="adam")), ""]
        finals = {cell: [r.final for r in runs] for cell, runs in cells(results).items()}
        adam = [v for (a, o), vals in finals.items() if o == "adam" for v in vals
                if v is not None and v == v]
        floor = (min(adam) - 8.0) if adam else None
        png = assets / f"seeds_{name.replace(' ', '_')}.png"
        plots.seed_strip(png, finals, label="final PSNR (dB)", floor=floor,
                         title=f"{name}: every seed (dots), median (bar); "
                               "triangles: below the axis (collapsed)")
        lines += [f"![every seed on {name}]({png.parent.name}/{png.name})", ""]
        candidates = [o for o in dict.fromkeys(o for _, o in finals) if o.startswith("esgd")]
        lines += _bar_lines(results, candidates)
    if traces:
        png = assets / "traces.png"
        plots.trace_plot(png, {k: read_metrics(v / "metrics.csv") for k, v in traces.items()},
                         TRACE_COLUMNS, title="first 2 epochs, logged every 4 steps")
        lines += ["### Traces of a collapsing and a healthy seed", "",
                  f"![traces]({png.parent.name}/{png.name})", ""]
    return "\n".join(lines) + "\n"


def write_doc(roots: Sequence[pathlib.Path], output: pathlib.Path,
              traces: dict[str, pathlib.Path] | None = None) -> str:
    """Replace the part of ``output`` between :data:`BEGIN` and :data:`END` (appended when
    absent) with :func:`results_section`; the hand-written prose around it stays."""
    section = results_section(roots, output.parent / "robustness", traces)
    text = output.read_text() if output.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + BEGIN + "\n" + section + END + rest.split(END, 1)[1]
    else:
        text = text + ("\n" if text else "") + BEGIN + "\n" + section + END + "\n"
    output.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--write-doc" in argv:
        p = argparse.ArgumentParser(prog="python -m experiments.paper.robustness --write-doc")
        p.add_argument("--write-doc", action="store_true")
        p.add_argument("--roots", nargs="+", type=pathlib.Path, required=True)
        p.add_argument("--output", type=pathlib.Path, default=pathlib.Path("docs/ROBUSTNESS.md"))
        p.add_argument("--traces", nargs="*", default=[], metavar="LABEL=RUN_DIR",
                       help="runs whose first steps are plotted together (logged densely)")
        a = p.parse_args(argv)
        traces = {}
        for item in a.traces:
            label, sep, path = item.rpartition("=")
            if not sep or not (pathlib.Path(path) / "metrics.csv").exists():
                p.error(f"--traces {item!r}: expected LABEL=RUN_DIR with a metrics.csv")
            traces[label] = pathlib.Path(path)
        for root in a.roots:
            if not root.is_dir():
                p.error(f"--roots {root}: not a directory; expected a comparison grid")
        write_doc(a.roots, a.output, traces)
        print(f"wrote {a.output}")
        return 0
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.robustness",
        title="ESGD safeguards against collapse: seeds x fields", setup=register_variants,
        out=DEFAULT_OUT, image=LION, activations=list(ACTIVATIONS),
        optimizers=["adam", *VARIANTS], seeds=[0, 1, 2, 3, 4], epochs=10,
        eval_every=0, timing_steps=0,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
