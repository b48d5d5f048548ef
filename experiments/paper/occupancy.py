"""The paper's occupancy comparison (Sec. 5.2, Figs. 6-7).

``python -m experiments.paper.occupancy``:

The Stanford armadillo, a Gaussian field (sigma 0.09) trained with ESGD (the library default,
clip 1), with ESGD as the papers' reference code runs it (``esgd_reference``, no clip) and with
Adam, plus a ReLU+PE field (where the paper expects Adam to win), at the registry's reference
learning rates,
over seeds, through the comparison harness (:mod:`experiments.compare`): one run directory per
(activation, optimizer, seed) under ``--out`` plus ``report.md`` and its plots. The defaults are
the paper's setting (1M points, batch 50,000, 5x256, 200 epochs); the CPU run of
:data:`CPU_ARGS` is what ``docs/REPRODUCTION.md`` reports. Extending a grid: rerun with
``--resume`` and more ``--seeds`` or a larger ``--epochs``. A tiny configuration::

    python -m experiments.paper.occupancy --points 3000 --batch-size 500 --depth 2 --width 16 \\
        --epochs 1 --seeds 0 --mesh-resolution 16 --eval-points 1000 --out runs/occ-tiny
"""

from __future__ import annotations

import itertools
import json
import pathlib
import shutil
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.report import cells, finite, ranking, read_results

ARMADILLO = "../shared/data/meshes/armadillo.obj"
ACTIVATIONS = ("gaussian", "relu_pe")
OPTIMIZERS = ("esgd", "esgd_reference", "adam")
DEFAULT_OUT = "runs/occupancy/armadillo"
#: The run this machine affords (2 shared CPU cores): the paper's depth, proportions and
#: 20 steps an epoch, at a fifth of the points and batch and half the width, for 30 epochs.
CPU_ARGS = ("--points", "200000", "--batch-size", "10000", "--width", "128", "--epochs", "30",
            "--eval-points", "20000", "--mesh-resolution", "96", "--timing-steps", "0",
            "--seeds", "0", "1", "2", "3", "4")

#: ``python -m benchmarks.occupancy_step`` at the paper's scale on this machine (2026-11-24).
STEP_RATIO_NOTE = (
    "`python -m benchmarks.occupancy_step` (5x256 Gaussian field, batch 50,000, this 2-core "
    "CPU): Adam 3.0 s a step, ESGD's HVP step 3.71x Adam, its plain step 1.12x; over the "
    "paper's 4000 steps (HVP on the first 50, then every 100) ESGD costs 1.17x Adam a step."
)

#: The paper's claims about this experiment, with their source.
PAPER_CLAIMS = (
    ("Fig. 6 (v2, Sec. 5.2): on the armadillo, a Gaussian field (5x256, sigma 0.09, 1M points, "
     "batch 50,000) trained with ESGD converges faster in BCE than with Adam and the other "
     "preconditioners.", "preconditioners_neural_fields_v2_full_text.txt, Sec. 5.2 and Fig. 6"),
    ("Fig. 7 (v2): at the same iteration (epoch 500), ESGD's mesh (dragon) has visibly higher "
     "fidelity than Adam's.", "preconditioners_neural_fields_v2_full_text.txt, Fig. 7 caption"),
    ("Fig. 1 / Sec. 1 (v2): for ReLU(PE) fields Adam performs better than ESGD.",
     "preconditioners_neural_fields_v2_full_text.txt, Fig. 1 caption and Sec. 1"),
    ("v1 supplement Fig. 15: time and epochs to convergence on the armadillo favour ESGD among "
     "the preconditioners (Shampoo omitted, it did not converge).",
     "preconditioners_inr_v1_full_text_with_supplement.txt, Sec. 7.7, Fig. 15"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.occupancy",
        title="Armadillo occupancy: ESGD vs Adam (paper Figs. 6-7)", task="occupancy",
        out=DEFAULT_OUT, mesh=ARMADILLO, activations=list(ACTIVATIONS),
        optimizers=list(OPTIMIZERS), epochs=200, target=0.9, eval_every=1,
    ), argv)


def _median(values: Sequence[float | None]) -> float | None:
    vals = finite(values)
    return statistics.median(vals) if vals else None


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _span(values: Sequence[float | None], spec: str = ".3f") -> str:
    vals = finite(values)
    if not vals:
        return "-"
    lo, hi = format(min(vals), spec), format(max(vals), spec)
    return lo if lo == hi else f"{lo} to {hi}"


def _reach(runs: Sequence[Any], target: float = 0.9) -> str:
    """Median epoch at which the held-out IoU first reaches ``target``, over the seeds that
    reached it ("n/m seeds")."""
    epochs = []
    for r in runs:
        hit = [row["epoch"] for row in r.rows if (row.get("eval_iou") or 0.0) >= target]
        if hit:
            epochs.append(hit[0])
    if not epochs:
        return "not reached"
    return f"{statistics.median(epochs):g} ({len(epochs)}/{len(runs)} seeds)"


def _chamfer(run_dir: pathlib.Path) -> float | None:
    try:
        return json.loads((run_dir / "mesh.json").read_text()).get("chamfer")
    except (OSError, ValueError):
        return None


#: Why the verdicts above are paper-settings verdicts, not tuned-against-tuned ones (issue 21).
BASELINE_CAVEAT = (
    "**Caveat: these are paper-settings verdicts.** Adam runs at the paper's 1e-4. Issue 21 "
    "reports, on a mesh none of us tuned on (Gaussian field, 10 epochs, seed 0, held-out IoU), "
    "Adam at 0.917 with 1e-4 but 0.947, 0.953 and 0.951 at 3e-4, 1e-3 and 3e-3, and ESGD at "
    "0.948, 0.939 and 0.928 at 0.05, 0.15 (ours) and 0.5: tuned against tuned, a tie. The fair "
    "comparison is the section *Tuned against tuned: occupancy and NeRF* below: each optimizer at"
    " its best rate from a sweep on the bunny (Adam 3e-4, ESGD 0.045), 5 seeds on the armadillo, "
    "30 epochs (`docs/tuned_3d/runs/occupancy`). There both end at the same median held-out IoU "
    "(0.966); ESGD needs fewer iterations to the common target on 4/5 seeds but more time on 4/5,"
    " 1.30x Adam's median: an ESGD lead here is a lead over Adam at the paper's rate only.")


def reproduction_section(root: pathlib.Path, assets: pathlib.Path | None = None) -> str:
    """The occupancy section of ``docs/REPRODUCTION.md`` from the grid in ``root``.

    Args:
      root: the ``--out`` of :func:`main` (``ACT-OPT/seedS`` run directories, ``report.md``).
      assets: if given, the grid's loss plots and one seed's mesh pictures are copied there
        (``occupancy_*.png``) and linked as ``reproduction/NAME`` (the page's asset folder).

    Returns:
      Markdown, starting with a ``##`` heading; says so plainly when no run has finished.
    """
    root = pathlib.Path(root)
    lines = ["## 3D binary occupancy: armadillo, ESGD vs Adam (paper Sec. 5.2, Figs. 6-7)", ""]
    lines.append("What the paper says:")
    lines += [f"- {claim} (source: `{source}`)" for claim, source in PAPER_CLAIMS]
    lines.append("")
    results = read_results(root) if root.is_dir() else []
    if not results:
        lines += [f"No finished runs in `{root}` yet. Run: "
                  f"`python -m experiments.paper.occupancy {' '.join(CPU_ARGS)} "
                  f"--out {root}`.", ""]
        return "\n".join(lines)
    grouped = cells(results)
    first = results[0].summary.get("config", {})
    lines += [
        "Our run (what fits on 2 shared CPU cores; the paper's is 1M points, batch 50,000, "
        "5x256, 200+ epochs): "
        f"mesh `{first.get('mesh')}`, {first.get('points')} points (1/3 uniform, 2/3 near the "
        f"surface at sigma 0.1 and 0.01), batch {first.get('batch_size')}, depth "
        f"{first.get('depth') or 5}, width {first.get('width') or 256}, "
        f"{max(r.summary.get('epochs', 0) for r in results):g} epochs "
        f"({max(r.summary.get('steps', 0) for r in results)} steps), reference learning rates "
        "(ESGD 0.15 Gaussian / 0.1 ReLU+PE, Adam 1e-4 / 1e-3). `esgd` is the library's default "
        "(clipped at 1, issue 11); `esgd_reference` is the papers' ESGD (no clip, the reference "
        "code's bias correction). IoU at probability 0.5 on "
        f"{first.get('eval_points')} held-out points uniform in the cube (`iou`) and "
        f"{first.get('eval_points')} near the surface (`iou_surface`, sigma 0.01); labels by "
        "the generalised winding number; Chamfer distance of the marching-cubes mesh "
        f"({first.get('mesh_resolution')}^3) to the armadillo in the frame [-0.95, 0.95].",
        "",
        "| activation | optimizer | seeds | epochs | final BCE (median) | IoU uniform: median "
        "(min to max) | IoU near surface: median | train-batch IoU: median | Chamfer: median | "
        "IoU > adam (same seed) | epochs to IoU 0.9: median | s/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_seed: dict[tuple[str, str], dict[int, float | None]] = {
        cell: {r.seed: r.final for r in runs} for cell, runs in grouped.items()}
    for (act, opt), runs in grouped.items():
        base = by_seed.get((act, "adam"), {})
        pairs = [(v, base[s]) for s, v in by_seed[(act, opt)].items()
                 if s in base and v is not None and base[s] is not None]
        wins = "-" if opt == "adam" or not pairs else \
            f"{sum(a > b for a, b in pairs)}/{len(pairs)}"
        s = [r.summary for r in runs]
        bce = _fmt(_median([x.get("final_loss") for x in s]), ".4f")
        lines.append(
            f"| {act} | {opt} | {len(runs)} | {_span([x.get('epochs') for x in s], 'g')} "
            f"| {bce} "
            f"| {_fmt(_median([r.final for r in runs]))} ({_span([r.final for r in runs])}) "
            f"| {_fmt(_median([x.get('final_iou_surface') for x in s]))} "
            f"| {_fmt(_median([x.get('final_train_batch_iou') for x in s]))} "
            f"| {_fmt(_median([_chamfer(r.out) for r in runs]), '.4f')} | {wins} "
            f"| {_reach(runs)} "
            f"| {_fmt(_median([x.get('time_per_step_s') for x in s]), '.3f')} |")
    lines.append("")
    lines += [ranking(results, "uniform IoU", ".3f"), ""]
    lines += _verdicts(grouped, by_seed)
    lines += [BASELINE_CAVEAT, ""]
    if assets is not None:
        lines += _copy_assets(root, grouped, pathlib.Path(assets))
    lines += [
        "s/step is the training loop's wall time per step on a CPU shared with other jobs, "
        "so it is noisy; the cost ratio comes from one process: "
        f"{STEP_RATIO_NOTE}",
        "",
        "Rerun: `python -m experiments.paper.occupancy "
        f"{' '.join(CPU_ARGS)} --out {root}` (add `--resume` to reuse finished runs; the "
        "defaults without these flags are the paper's scale). Step-time ratio ESGD/Adam at the "
        "paper's batch: `python -m benchmarks.occupancy_step`.",
        "",
    ]
    return "\n".join(lines)


def _verdicts(grouped: dict[Any, Any], by_seed: dict[Any, dict[int, float | None]]) -> list[str]:
    out = []
    for (act, expect), esgd in itertools.product(
            (("gaussian", "esgd"), ("relu_pe", "adam")), ("esgd", "esgd_reference")):
        e, a = by_seed.get((act, esgd)), by_seed.get((act, "adam"))
        if not e or not a:
            continue
        common = sorted(set(e) & set(a))
        me, ma = _median([e[s] for s in common]), _median([a[s] for s in common])
        if me is None or ma is None:
            continue
        loss = {opt: {r.seed: r.summary.get("final_loss") for r in grouped[(act, opt)]}
                for opt in (esgd, "adam")}
        be = _median([loss[esgd].get(s) for s in common])
        ba = _median([loss["adam"].get(s) for s in common])
        caveat = "" if len(common) >= 5 else "; fewer than 5 seeds, not a verdict"
        names = {"esgd": "ESGD", "adam": "Adam"}

        def judged(winner: str, expect: str = expect) -> str:
            agrees = "agrees with" if winner == expect else "disagrees with"
            return f"{names[winner]} ahead, which {agrees} the paper"

        by_bce = "-" if be is None or ba is None else judged("esgd" if be < ba else "adam")
        out.append(
            f"- {act}, `{esgd}` vs Adam over {len(common)} seeds: median final BCE "
            f"{_fmt(be, '.4f')} vs {_fmt(ba, '.4f')} ({by_bce}); median final IoU "
            f"{me:.3f} vs {ma:.3f} ({judged('esgd' if me > ma else 'adam')}); "
            f"{names[expect]} expected ahead{caveat}.")
    return [*out, ""] if out else []


def _copy_assets(root: pathlib.Path, grouped: dict[Any, Any], assets: pathlib.Path) -> list[str]:
    assets.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("loss_vs_steps.png", "loss_vs_time.png"):
        if (root / name).is_file():
            shutil.copyfile(root / name, assets / f"occupancy_{name}")
            out.append(f"![{name}](reproduction/occupancy_{name})")
    for (act, opt), runs in grouped.items():
        picture = runs[0].out / "mesh.png"
        if act == "gaussian" and picture.is_file():
            name = f"occupancy_mesh_{act}_{opt}_seed{runs[0].seed}.png"
            shutil.copyfile(picture, assets / name)
            out.append(f"![{act} {opt} mesh, seed {runs[0].seed}](reproduction/{name})")
    return [*out, ""] if out else []


if __name__ == "__main__":
    sys.exit(main())
