"""Generate ``docs/REPRODUCTION.md`` from the runs' output files: ``python -m
experiments.paper.reproduction``.

The page is assembled from one fragment per section, ``docs/reproduction/sections/<name>.md``
(``--sections``), each holding the section's markdown and, between ``<!-- claims -->`` and
``<!-- /claims -->``, its claim lines; the page's claims list is every fragment's, in the fixed
order of :data:`SECTION_NAMES`. A fragment is rewritten only when its section's flag is given and
names a directory with results; every other fragment is kept as it is, so rerunning one section
(or none, which only reassembles) never wipes another whose runs are gone. A flag naming a
missing directory is an error (exit code 2) before anything is written. The flags:

- ``--condition DIR``: :mod:`experiments.paper.condition` (``summary.json``, Fig. 2);
- ``--adam-vs-sgd DIR``: the grid of :mod:`experiments.paper.adam_vs_sgd` (Fig. 3a);
- ``--sparsity DIR``: :mod:`experiments.paper.sparsity` (``summary.json``, Fig. 4);
- ``--lion DIR``: the grid of :mod:`experiments.paper.lion` (Figs. 1, 5);
- ``--fig5 DIR``: the grid of :mod:`experiments.paper.fig5` (Fig. 5, every preconditioner), read
  from its committed archive (``docs/reproduction/runs/fig5``, written by
  :mod:`experiments.harness.archive`) and rendered by :mod:`experiments.paper.fig5_section`;
- ``--extra DIR``: follow-up image run directories, one table row each;
- ``--occupancy DIR``: the grid of :mod:`experiments.paper.occupancy` (Sec. 5.2);
- ``--nerf DIR``: the grids of :mod:`experiments.paper.nerf` (Table 1), one per subdirectory;
- ``--beyond DIR``: the grids of :mod:`experiments.paper.beyond` (Muon, Sophia);
- ``--companion DIR``: ``fig1`` and ``patches`` of :mod:`experiments.paper.companion` (L-BFGS);
- ``--signals DIR``: the archived per-signal grids of :mod:`experiments.paper.signals` (L-BFGS on
  speech and video) and its ``video_patches/patches.json``.

``--output`` is the page (``docs/REPRODUCTION.md``); copies of the plots, shrunk to under 300 KB
each, go to ``--assets`` (``docs/reproduction``). Every number in a section is read from its run
files; the paper's numbers are constants, quoted from the paper and issue 5.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import pathlib
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from experiments.harness.errors import UsageError
from experiments.harness.report import (
    RunResult,
    cells,
    grid_plots,
    markdown_table,
    read_results,
    table,
)

#: Wavelet image at epoch 10 (paper v2, Fig. 1): full-image PSNR in dB.
PAPER_WAVELET_EPOCH10 = {"esgd": 29.36, "adam": 26.61}
#: Final training MSE after 200 epochs in the reference repository (issue 5): (Adam, ESGD).
PAPER_FINAL_MSE = {"gaussian": (8.5e-4, 2.9e-4), "sine": (1.5e-3, 7e-5),
                   "wavelet": (6e-4, 8e-5), "relu_pe": (1.9e-4, 8.5e-4)}
MAX_ASSET_BYTES = 300_000


def _json(path: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _metrics(run: pathlib.Path) -> list[dict[str, float]]:
    try:
        with (run / "metrics.csv").open() as f:
            return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                    for row in csv.DictReader(f)]
    except OSError:
        return []


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, spec)


def _verdict(ok: bool | None) -> str:
    return {True: "**reproduced**", False: "**not reproduced**", None: "not run"}[ok]


def copy_asset(src: pathlib.Path, assets: pathlib.Path, name: str) -> str | None:
    """Copy a PNG into ``assets`` as ``name``, shrinking it until it is under 300 KB; return
    the path relative to the docs page's directory, or ``None`` if ``src`` is missing."""
    if not src.is_file():
        return None
    from PIL import Image

    assets.mkdir(parents=True, exist_ok=True)
    dest = assets / name
    image = Image.open(src).convert("RGB")
    while True:
        image.quantize(colors=128).save(dest, optimize=True)
        if dest.stat().st_size < MAX_ASSET_BYTES or image.width < 64:
            break
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    return f"{assets.name}/{name}"


def _image(lines: list[str], assets: pathlib.Path, src: pathlib.Path, name: str,
           caption: str) -> None:
    rel = copy_asset(src, assets, name)
    if rel:
        lines += [f"![{caption}]({rel})", "", f"*{caption}*", ""]


#: A verdict on a paper claim needs the median over at least this many seeds.
MIN_SEEDS = 5
#: Medians closer than this (relative) are called a near tie beside the verdict.
NEAR_TIE = 0.05


def _judged(n: int, ok: bool) -> str:
    """The verdict of a claim read from medians over ``n`` seeds."""
    if n < MIN_SEEDS:
        return f"not judged ({n} seed{'s' if n != 1 else ''}; a verdict needs {MIN_SEEDS})"
    return _verdict(ok)


def _eval_at(rows: list[dict[str, float]], epoch: float) -> tuple[float, float] | None:
    """(epoch, full-image PSNR) of the evaluation at ``epoch``, else the last evaluation."""
    evals = [r for r in rows if math.isfinite(r.get("eval_psnr", math.nan))]
    if not evals:
        return None
    exact = [r for r in evals if abs(r["epoch"] - epoch) < 1e-9]
    r = exact[0] if exact else evals[-1]
    return r["epoch"], r["eval_psnr"]


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(vals) if vals else None


def _by_seed(runs: Sequence[RunResult], key: Any) -> dict[int, float | None]:
    return {r.seed: key(r) for r in runs}


def _paired(a: dict[int, float | None], b: dict[int, float | None],
            better: Any) -> tuple[int, int]:
    """On how many shared seeds ``better(a, b)`` holds (missing or non-finite values lose)."""
    shared = [s for s in a if s in b]
    return sum(bool(better(a[s], b[s])) for s in shared), len(shared)


def _higher(x: float | None, y: float | None) -> bool:
    return x is not None and math.isfinite(x) and (y is None or not math.isfinite(y) or x > y)


def _lower(x: float | None, y: float | None) -> bool:
    return x is not None and math.isfinite(x) and (y is None or not math.isfinite(y) or x < y)


def _machine(results: Sequence[RunResult]) -> str:
    """The machine the runs ran on, from their summaries (device, platform, JAX)."""
    devices = sorted({str(r.summary.get("device", "?")) for r in results})
    jax_versions = sorted({str(r.summary.get("jax_version", "?")) for r in results})
    cpu = all("cpu" in d.lower() for d in devices)
    return (("2 shared CPU cores" if cpu else "device " + ", ".join(devices))
            + f" (JAX {', '.join(jax_versions)})")


def _settings(results: Sequence[RunResult]) -> str:
    """Length, seeds and machine of a grid, read from its runs."""
    epochs = sorted({r.summary.get("epochs") for r in results}, key=str)
    steps = sorted({r.summary.get("steps") for r in results}, key=str)
    seeds = sorted({r.seed for r in results})
    per_cell = sorted({len(v) for v in cells(results).values()})
    n = f"{per_cell[0]}-{per_cell[-1]}" if len(per_cell) > 1 else str(per_cell[0])
    # A run of a fixed number of steps (NeRF's --iterations) has no epoch budget: its epochs
    # are a fraction of the rays, not a length anyone chose.
    fixed = all(r.summary.get("config", {}).get("steps") for r in results)
    length = (f"{', '.join(_fmt(s, 'g') for s in steps)} steps" if fixed else
              f"{', '.join(_fmt(e, 'g') for e in epochs)} epochs "
              f"({', '.join(_fmt(s, 'g') for s in steps)} steps)")
    return (f"Length: {length}; seeds "
            f"{' '.join(map(str, seeds))} ({n} per cell); machine: {_machine(results)}.")


def _plot_source(root: pathlib.Path, results: Sequence[RunResult]) -> pathlib.Path:
    """Where the grid's comparison plots are: ``root`` when the grid drew them, else (an archive
    of ``summary.json`` and ``metrics.csv`` only) a temporary directory they are drawn into."""
    if (root / "loss_vs_steps.png").is_file():
        return root
    out = pathlib.Path(tempfile.mkdtemp(prefix="reproduction-plots-"))
    grid_plots(results, out)
    return out


def lion_section(lion: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    """The image comparison over seeds: markdown lines and the claims' verdict lines."""
    lines = ["## Image comparison on the DIV2K lion (paper Figs. 1, 5)", ""]
    claims: list[str] = []
    results = read_results(lion)
    if not results:
        return lines + [f"Not run (no finished runs in `{lion}`).", ""], [
            f"- Wavelet ESGD > Adam at epoch 10; ESGD/Adam final-MSE orderings: "
            f"{_verdict(None)}"]
    grid = cells(results)
    epochs = sorted({r.summary.get("epochs") for r in results})
    seeds = sorted({r.seed for r in results})
    lines += [f"Runs: `{lion}`. {_settings(results)} The reference trains 200 epochs; "
              f"epochs run: {', '.join(_fmt(e, 'g') for e in epochs)}, seeds: "
              + " ".join(map(str, seeds)) + ". "
              "Batch 512, 128 steps an epoch, 5x256 fields, registry learning rates. Every "
              "number is the median over seeds with its min-max; a claim is judged on medians "
              f"over at least {MIN_SEEDS} seeds. Times per step are wall-clock on 2 CPU cores "
              "shared with other jobs, so they are noisy. Final PSNR: full 256x256 image; "
              "final training MSE: mean mini-batch loss of the last epoch.", ""]
    lines += [markdown_table(table(results, 25.0, baseline="adam")), ""]
    # Claim 1: wavelet at epoch 10, over seeds.
    at10 = {o: _by_seed(grid.get(("wavelet", o), []),
                        lambda r: (_eval_at(_metrics(r.out), 10.0) or (None, None))[1])
            for o in ("esgd", "esgd_reference", "adam")}
    lines += ["### Wavelet at epoch 10", "",
              "| optimizer | paper (dB) | ours, median (dB) | ours, min-max | seeds |",
              "|---|---|---|---|---|"]
    for o, values in at10.items():
        vals = [v for v in values.values() if v is not None]
        if not vals:
            continue
        lines.append(f"| {o} | {PAPER_WAVELET_EPOCH10.get(o, PAPER_WAVELET_EPOCH10['esgd'])} | "
                     f"{_fmt(_median(vals), '.2f')} | {_fmt(min(vals), '.2f')}-"
                     f"{_fmt(max(vals), '.2f')} | {len(vals)} |")
    lines.append("")
    for o, label in (("esgd", "ESGD"), ("esgd_reference",
                                         "ESGD with the reference's bias correction")):
        if not (at10[o] and at10["adam"]):
            claims.append(f"- Wavelet image, {label} beats Adam at epoch 10 (paper 29.36 vs "
                          f"26.61 dB): not run yet (wavelet runs: {len(at10[o])} of `{o}`, "
                          f"{len(at10['adam'])} of `adam`)")
        else:
            e, a = _median(list(at10[o].values())), _median(list(at10["adam"].values()))
            k, n = _paired(at10[o], at10["adam"], _higher)
            claims.append(
                f"- Wavelet image, {label} beats Adam at epoch 10 (paper 29.36 vs 26.61 dB; "
                f"ours median {_fmt(e, '.2f')} vs {_fmt(a, '.2f')} dB, {label.split()[0]} "
                f"ahead on {k}/{n} seeds): "
                f"{_judged(n, e is not None and a is not None and e > a)}")
    # Claim 2: final MSE orderings, medians over seeds.
    lines += ["### Final training MSE, Adam vs ESGD (medians over seeds)", "",
              "Paper column: the reference repository's final training MSE after 200 epochs "
              "(quoted in issue 5). Ours: after the epochs above.", "",
              "| field | paper Adam | paper ESGD | paper winner | our Adam | our ESGD | "
              "our ESGD (reference bias corr.) | our winner (median) | ESGD lower on |",
              "|---|---|---|---|---|---|---|---|---|"]
    for field, (p_adam, p_esgd) in PAPER_FINAL_MSE.items():
        losses = {o: _by_seed(grid.get((field, o), []), lambda r: r.summary.get("final_loss"))
                  for o in ("adam", "esgd", "esgd_reference")}
        med = {o: _median(list(v.values())) for o, v in losses.items()}
        paper_winner = "ESGD" if p_esgd < p_adam else "Adam"
        if med["adam"] is None or (med["esgd"] is None and med["esgd_reference"] is None):
            claims.append(f"- {field}: {paper_winner} reaches the lower training MSE (paper "
                          f"{p_adam:g} Adam vs {p_esgd:g} ESGD at 200 epochs): not run yet ("
                          + ", ".join(f"{len(v)} runs of `{o}`" for o, v in losses.items())
                          + ")")
        rows = []
        for o in ("esgd", "esgd_reference"):
            if med[o] is None or med["adam"] is None:
                continue
            k, n = _paired(losses[o], losses["adam"], _lower)
            ours = "ESGD" if med[o] < med["adam"] else "Adam"
            rows.append((o, ours, k, n))
            what = "ESGD" if o == "esgd" else "ESGD with the reference's bias correction"
            claims.append(f"- {field}: {paper_winner} reaches the lower training MSE (paper "
                          f"{p_adam:g} Adam vs {p_esgd:g} ESGD at 200 epochs; ours, {what}: "
                          f"median {med[o]:.3g} vs Adam {med['adam']:.3g}, ESGD lower on "
                          f"{k}/{n} seeds): {_judged(n, ours == paper_winner)}")
        first = rows[0] if rows else None
        lines.append(f"| {field} | {p_adam:g} | {p_esgd:g} | {paper_winner} | "
                     f"{_fmt(med['adam'])} | {_fmt(med['esgd'])} | "
                     f"{_fmt(med['esgd_reference'])} | {first[1] if first else '—'} | "
                     + ("; ".join(f"{o}: {k}/{n}" for o, _, k, n in rows) or "—") + " |")
    lines.append("")
    lines += _orderings(grid)
    plot_dir = _plot_source(lion, results)
    for plot, caption in (("loss_vs_steps.png", "Training loss against iterations (lion), "
                                                "median over seeds with min-max band"),
                          ("psnr_vs_epoch.png", "Training PSNR against epochs (lion)"),
                          ("loss_vs_time.png", "Training loss against time (lion)")):
        _image(lines, assets, plot_dir / plot, f"lion_{plot}", caption)
    for o in ("adam", "esgd", "esgd_reference"):
        runs = grid.get(("wavelet", o), [])
        if runs:
            median_run = sorted(runs, key=lambda r: r.final if r.final is not None
                                and math.isfinite(r.final) else -math.inf)[len(runs) // 2]
            _image(lines, assets, median_run.out / "reconstruction.png",
                   f"lion_wavelet_{o}.png",
                   f"Wavelet field, {o}, final reconstruction of the median seed "
                   f"({median_run.seed})")
    return lines, claims


def _orderings(grid: dict[tuple[str, str], list[RunResult]]) -> list[str]:
    """Per field, the optimizers' median full-image PSNR at epoch 10 (the length of the paper's
    Figs. 1 and 5) and at the end, and whether the leader at epoch 10 still leads at the end."""
    fields = list(dict.fromkeys(a for a, _ in grid))
    opts = [o for o in ("adam", "esgd", "esgd_reference") if any((f, o) in grid for f in fields)]
    if not fields or not opts:
        return []
    lines = ["### Orderings at epoch 10 and at the end", "",
             "Median full-image PSNR (dB) over seeds (their number in brackets) at epoch 10 and "
             "after the last epoch; the leader is the optimizer with the higher median. Where "
             "the leader changes, the ordering seen at 10 epochs flips by the paper's length "
             "(read it with the seed counts: a cell still running has fewer).", "",
             "| field | " + " | ".join(f"{o} @10 | {o} end" for o in opts)
             + " | leader @10 | leader at the end | ordering |",
             "|---|" + "---|" * (2 * len(opts) + 3)]
    for field in fields:
        at10, end, n10, n_end = {}, {}, {}, {}
        for o in opts:
            runs = grid.get((field, o), [])
            evals = [_eval_at(_metrics(r.out), 10.0) for r in runs]
            vals10 = [e[1] for e in evals if e is not None and e[0] == 10.0]
            at10[o], n10[o] = _median(vals10), len(vals10)
            end[o], n_end[o] = _median([r.final for r in runs]), len(runs)
        both = [o for o in opts if at10[o] is not None and end[o] is not None]
        # An ordering needs two optimizers measured at both lengths.
        lead10 = max(both, key=lambda o: at10[o]) if len(both) > 1 else None
        lead_end = max(both, key=lambda o: end[o]) if len(both) > 1 else None
        verdict = ("—" if lead10 is None else "holds" if lead10 == lead_end else "flips")
        lines.append(f"| {field} | " + " | ".join(
            f"{_fmt(at10[o], '.2f')} ({n10[o]}) | {_fmt(end[o], '.2f')} ({n_end[o]})"
            for o in opts)
            + f" | {lead10 or '—'} | {lead_end or '—'} | {verdict} |")
    return lines + [""]


def condition_section(cond: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    """Fig. 2: markdown lines and verdicts."""
    lines = ["## Condition numbers on the 1D signal (paper Fig. 2)", ""]
    s = _json(cond / "summary.json")
    if not s:
        return lines + [f"Not run (no `{cond}/summary.json`).", ""], [
            f"- Fig. 2 preconditioning lowers the condition number: {_verdict(None)}"]
    st = s["settings"]
    lines += [f"Settings: {json.dumps(st)}; wall time {_fmt(s.get('wall_time_s'), '.0f')} s. "
              "Exact float64 Hessians; `kappa` = max|lambda| / min|lambda|; `kappa (range)` "
              "leaves out eigenvalues below n*eps*max|lambda| (exactly flat directions).", "",
              "| descent | loss first | loss last | kappa(H) step 0 | kappa D^E step 0 | "
              "kappa D^J step 0 | kappa(H) last | kappa D^E last | kappa D^J last | "
              "median kappa(H)/kappa D^E | median kappa(H)/kappa D^J |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("gd", "equilibration", "jacobi"):
        e = s.get(kind)
        if not e:
            continue
        f, la = e["first"], e["last"]
        lines.append(
            f"| {kind} | {_fmt(f['loss'])} | {_fmt(la['loss'])} | {_fmt(f['kappa_hessian'])} | "
            f"{_fmt(f['kappa_equilibration'])} | {_fmt(f['kappa_jacobi'])} | "
            f"{_fmt(la['kappa_hessian'])} | {_fmt(la['kappa_equilibration'])} | "
            f"{_fmt(la['kappa_jacobi'])} | {_fmt(e['median_reduction_equilibration'])} | "
            f"{_fmt(e['median_reduction_jacobi'])} |")
    lines.append("")
    csv_path = cond / "condition.csv"
    if csv_path.is_file():
        from experiments.paper.condition import read_csv

        rows = read_csv(csv_path)
        lines += ["Median over each descent's steps of the condition numbers on the numerical "
                  "range (flat directions left out):", "",
                  "| descent | kappa(H) | kappa D^E | kappa D^J |", "|---|---|---|---|"]
        for kind in ("gd", "equilibration", "jacobi"):
            r = [row for row in rows if row["descent"] == kind]
            if r:
                med = {k: float(sorted(row[f"kappa_range_{k}"] for row in r)[len(r) // 2])
                       for k in ("hessian", "equilibration", "jacobi")}
                lines.append(f"| {kind} | {_fmt(med['hessian'])} | "
                             f"{_fmt(med['equilibration'])} | {_fmt(med['jacobi'])} |")
        lines += ["", "Caveat: kappa(H) of this 321-parameter Gaussian network is ~1e19 and "
                  "more, beyond 1/eps of float64 (4.5e15): the Hessian is numerically singular "
                  "(flat directions), so the raw ratios measure the spread of the non-zero "
                  "spectrum against rounding-level eigenvalues; the range-restricted numbers "
                  "above are the meaningful ones. The paper does not say how it handles this.",
                  ""]
    _image(lines, assets, cond / "condition.png", "condition.png",
           "(a) condition numbers before (dotted) / after (solid); (b) losses")
    eq, ja, gd = s.get("equilibration"), s.get("jacobi"), s.get("gd")
    claims = []
    if csv_path.is_file():
        fracs = {}
        for kind in ("equilibration", "jacobi"):
            r = [row for row in read_csv(csv_path) if row["descent"] == kind]
            fracs[kind] = sum(row[f"kappa_range_{kind}"] < row["kappa_range_hessian"]
                              for row in r) / max(len(r), 1)
        claims.append(
            "- Fig. 2a on the numerical range (the meaningful condition number here, see the "
            f"caveat): fraction of steps where D^E lowers kappa {fracs['equilibration']:.2f}, "
            f"D^J {fracs['jacobi']:.2f}: "
            f"{_verdict(fracs['equilibration'] > 0.5 and fracs['jacobi'] > 0.5)}")
    if eq and ja:
        both = (eq["fraction_steps_reduced_equilibration"] > 0.5
                and ja["fraction_steps_reduced_jacobi"] > 0.5)
        claims.append(
            "- Fig. 2a (raw kappa, as plotted): both preconditioners lower kappa along their "
            "descents (fraction of steps "
            f"reduced: D^E {eq['fraction_steps_reduced_equilibration']:.2f}, D^J "
            f"{ja['fraction_steps_reduced_jacobi']:.2f}): "
            f"{_verdict(both)}")
        claims.append(
            "- Fig. 2a (raw kappa): D^E reduces kappa more than D^J (median reduction "
            f"{eq['median_reduction_equilibration']:.3g} vs {ja['median_reduction_jacobi']:.3g}):"
            f" {_verdict(eq['median_reduction_equilibration'] > ja['median_reduction_jacobi'])}")
    if eq and ja and gd:
        ok = eq["last"]["loss"] < min(gd["last"]["loss"], ja["last"]["loss"])
        claims.append(
            f"- Fig. 2b: both preconditioned descents beat plain GD (final loss D^E "
            f"{eq['last']['loss']:.3g}, D^J {ja['last']['loss']:.3g}, GD "
            f"{gd['last']['loss']:.3g}): "
            f"{_verdict(max(eq['last']['loss'], ja['last']['loss']) < gd['last']['loss'])}")
        claims.append(
            f"- Fig. 2b: the D^E descent converges fastest (final loss D^E "
            f"{eq['last']['loss']:.3g}, D^J {ja['last']['loss']:.3g}, GD {gd['last']['loss']:.3g}"
            f" after {st['steps']} steps): {_verdict(ok)}")
    return lines, claims


def sparsity_section(sp: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    """Fig. 4: markdown lines and verdicts."""
    lines = ["## Sparsity of Hessian-vector products (paper Fig. 4)", ""]
    s = _json(sp / "summary.json")
    if not s:
        return lines + [f"Not run (no `{sp}/summary.json`).", ""], [
            f"- Fig. 4 ReLU HVPs sparse, others dense: {_verdict(None)}"]
    lines += [f"Settings: {json.dumps(s.get('settings', {}))}. Fraction of exact zeros in one "
              "Rademacher HVP on a fixed batch, mean over leaves and over the measurements "
              "(initialisation and every `every` epochs).", "",
              "| activation | mean fraction of zeros | per leaf |", "|---|---|---|"]
    acts = s["activations"]
    for a, v in acts.items():
        per = ", ".join(f"{k} {x:.3f}" for k, x in v["per_leaf"].items())
        lines.append(f"| {a} | {v['mean']:.4f} | {per} |")
    lines.append("")
    _image(lines, assets, sp / "sparsity.png", "sparsity.png",
           "Fraction of exact zeros in Hv, mean over training")
    dense = [acts[a]["mean"] for a in ("gaussian", "sine", "wavelet") if a in acts]
    sparse = [acts[a]["mean"] for a in ("relu", "relu_pe") if a in acts]
    claims = []
    if dense and sparse:
        ok = min(sparse) > max(dense)
        claims.append(f"- Fig. 4: ReLU/ReLU+PE HVPs sparser than Gaussian/sine/wavelet (min "
                      f"sparse {min(sparse):.3f} vs max dense {max(dense):.3f}): {_verdict(ok)}")
    return lines, claims


def adam_sgd_section(avs: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    """Fig. 3: markdown lines and verdicts, medians over seeds."""
    lines = ["## Adam vs SGD (paper Fig. 3a)", ""]
    results = read_results(avs)
    if not results:
        return lines + [f"Not run (no finished runs in `{avs}`).", ""], [
            f"- Fig. 3a Adam beats SGD: {_verdict(None)}"]
    grid = cells(results)
    first = results[0].summary
    lines += [f"Image: `{first.get('config', {}).get('image') or 'bundled'}`. "
              f"{_settings(results)} Registry learning rates (Adam 1e-4, 5e-5 sine, 1e-3 "
              "relu_pe; SGD 1.0). Medians over seeds; a claim is judged on the median final "
              f"training MSE over at least {MIN_SEEDS} seeds, and 'Adam lower on' counts the "
              "seeds on which Adam's run ends below SGD's with the same seed.", "",
              "| field | Adam MSE | SGD MSE | Adam PSNR | SGD PSNR | Adam lower on |",
              "|---|---|---|---|---|---|"]
    claims = []
    for field in dict.fromkeys(a for a, _ in grid):
        loss = {o: _by_seed(grid.get((field, o), []), lambda r: r.summary.get("final_loss"))
                for o in ("adam", "sgd")}
        psnr = {o: _median([r.final for r in grid.get((field, o), [])]) for o in ("adam", "sgd")}
        med = {o: _median(list(v.values())) for o, v in loss.items()}
        k, n = _paired(loss["adam"], loss["sgd"], _lower)
        lines.append(f"| {field} | {_fmt(med['adam'])} | {_fmt(med['sgd'])} | "
                     f"{_fmt(psnr['adam'], '.2f')} | {_fmt(psnr['sgd'], '.2f')} | {k}/{n} |")
        if med["adam"] is not None and med["sgd"] is not None:
            gap = abs(med["adam"] - med["sgd"]) / max(med["adam"], med["sgd"])
            near = (f"; a near tie: the medians differ by {100 * gap:.0f}%"
                    if gap < NEAR_TIE else "")
            claims.append(f"- Fig. 3a {field}: Adam reaches a lower loss than SGD (median "
                          f"{med['adam']:.3g} vs {med['sgd']:.3g}, Adam lower on {k}/{n} "
                          f"seeds{near}): {_judged(n, med['adam'] < med['sgd'])}")
    lines.append("")
    _image(lines, assets, _plot_source(avs, results) / "loss_vs_steps.png", "adam_vs_sgd.png",
           "Adam vs SGD, training loss against iterations (median over seeds, min-max band)")
    return lines, claims


def extra_section(extra: pathlib.Path) -> list[str]:
    """Follow-up runs (a setting tried where a claim did not reproduce), one row per run."""
    runs = sorted(p for p in extra.glob("*") if (p / "summary.json").is_file())
    if not runs:
        return []
    lines = ["## Follow-up runs (settings tried where a claim did not reproduce; compare "
             "with the lion table)", "",
             "| run | activation | optimizer | lr | opt args | epochs | final PSNR (dB) | "
             "final training MSE |", "|---|---|---|---|---|---|---|---|"]
    for p in runs:
        s = _json(p / "summary.json") or {}
        c = s.get("config", {})
        lines.append(f"| {p.name} | {c.get('activation')} | {c.get('optimizer')} | "
                     f"{_fmt(s.get('learning_rate'), 'g')} | {json.dumps(c.get('opt_args', {}))} "
                     f"| {_fmt(s.get('epochs'), 'g')} | {_fmt(s.get('final_psnr'), '.2f')} | "
                     f"{_fmt(s.get('final_loss'))} |")
    return lines + [""]


REASONS = """## Likely reasons where we differ

- Length: the lion grid (Adam against both ESGDs, four fields) runs the reference's 200
  epochs; Fig. 5, Adam against SGD, the epoch-10 wavelet claim and the DIV2K images run 10
  epochs (2 CPU cores). The lion section's "Orderings at epoch 10 and at the end" table shows
  which orderings seen at 10 epochs hold at 200.
- Data: our lion is a JPEG copy of the paper's array, resized to 256x256 by us.
- Bias correction: the reference ESGD divides by `1 - b2^t` over all steps, not over refreshes,
  which inflates its step 2-3x; our default is the per-refresh correction. The table above shows
  both.
- Learning rates: the registry's reference values (Adam 1e-4, 5e-5 for sine, 1e-3 for ReLU+PE;
  ESGD 0.15, 0.1 for ReLU+PE; AdaHessian 0.15; SGD 1.0, ours) were not tuned here.
- Fig. 5, AdaHessian(E) per iteration: at the registry's 0.15 it reaches the pair target
  (21.9 dB) in fewer iterations than our ESGD on 1 seed of 5 (it misses it on 2). The learning-
  rate check (2 seeds each, `docs/reproduction/runs/fig5/lr_check/adahessian_e_lr*`) shows the
  rate matters but does not flip the claim: at 0.05 it never reaches 21.9 dB in 10 epochs; at 0.5
  it reaches it in 896 iterations on both seeds and ends at 25.15 dB (median), ahead of
  `esgd_reference` (median 1024 iterations, one seed never) but behind `esgd` (768 on 5/5).
- Fig. 5, the paper's ESGD (`esgd_reference`) by time: it is not the best per unit of time
  (0/5 seeds) and reaches Adam's pair target sooner on 2/5 seeds only, while our `esgd` does
  both (3/5, 5/5). The difference between the two is the spread over seeds: `esgd_reference`
  ends epoch 10 anywhere from 21.96 to 26.38 dB, `esgd` from 24.68 to 25.23 dB. That is the
  unclipped update's collapse in its first steps, which `docs/ROBUSTNESS.md` traces over seeds
  to single-probe curvature that cancels to near zero, and which the clip in our default
  guards against.
- Sine: an earlier reading here, that only the reference's bias correction let ESGD beat Adam
  on a sine field, came from one-seed, 10-epoch runs (the follow-up table). At the paper's
  length on 5 seeds both our default ESGD and `esgd_reference` end far above Adam (lion
  section), so it does not hold there. The two corrections do differ: during the warm-up
  (every step refreshes) they agree, and afterwards the reference divides by `sqrt(1 - b2^t)`
  while refreshes (and our `sqrt(1 - b2^n)`) barely advance, so its step grows over training,
  like a learning-rate warm-up.
- Fig. 2: the paper gives neither the sampling of x, the Gaussian width, the step size nor
  whether D is recomputed every step; ours are stated in the settings line.
"""


# --- the page, assembled from one fragment per section ----------------------------------------

#: The sections of the page, in the order they (and their claims) appear.
SECTION_NAMES = ("condition", "adam_vs_sgd", "sparsity", "lion", "fig5", "div2k", "extra",
                 "occupancy", "nerf", "tuned_3d", "beyond", "companion", "signals")
#: The lines that delimit a fragment's claims (the page's "## Claims" list is theirs, in order).
CLAIMS_BEGIN = "<!-- claims -->"
CLAIMS_END = "<!-- /claims -->"
LION_IMAGE = "../shared/data/images/div2k_fourier_features_test/image_014.jpg"
TITLE = "# Reproduction of the paper's results"


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def _has_summary(d: pathlib.Path) -> bool:
    return (d / "summary.json").is_file()


def _has_grid(d: pathlib.Path) -> bool:
    return bool(read_results(d))


def _has_runs(d: pathlib.Path) -> bool:
    return any(d.glob("*/summary.json"))


def _has_grids(d: pathlib.Path) -> bool:
    return any(read_results(g) for g in sorted(d.iterdir()) if g.is_dir())


def _has_reported_grids(d: pathlib.Path) -> bool:
    return any(read_results(r.parent) for r in sorted(d.glob("*/report.md")))


def _has_companion(d: pathlib.Path) -> bool:
    return bool(read_results(d / "fig1")) or (d / "patches" / "patches.json").is_file()


def _extra(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    return extra_section(d), []


def _fig5(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import fig5_section

    return fig5_section.render(d, assets)


def _div2k(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import div2k

    return div2k.reproduction_section(d)


def _occupancy(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import occupancy

    return _lines(occupancy.reproduction_section(d, assets)), []


def _nerf(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import nerf

    return _lines(nerf.reproduction_section(d)), []


def _tuned_3d(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from benchmarks import tuned_3d

    return tuned_3d.reproduction_section(d)


def _beyond(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import beyond

    return _lines(beyond.reproduction_section(d, assets)), []


def _companion(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import companion

    return _lines(companion.reproduction_section(d, assets)), []


def _signals(d: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    from experiments.paper import signals

    return signals.reproduction_section(d)


#: Where ``python -m experiments.paper.fig5`` trains (its ``DEFAULT_OUT``) and where its
#: finished runs are archived (and committed) for the page.
FIG5_RUNS = "runs/fig5"
FIG5_ARCHIVE = "docs/reproduction/runs/fig5"


def _fig5_commands() -> tuple[str, ...]:
    return ("python -m experiments.paper.fig5 --resume",
            f"python -m experiments.harness.archive {FIG5_RUNS} {FIG5_ARCHIVE} --commit")


def _archived(grid: str, *run: str) -> Callable[[], tuple[str, ...]]:
    """The commands of a section rendered from its archive: the run(s) into ``runs/GRID`` and
    the archive of their small outputs into ``docs/reproduction/runs/GRID``."""
    return lambda: (*run, f"python -m experiments.harness.archive runs/{grid} "
                          f"docs/reproduction/runs/{grid} --commit")


def _occupancy_commands() -> tuple[str, ...]:
    from experiments.paper import occupancy

    return (f"python -m experiments.paper.occupancy {' '.join(occupancy.CPU_ARGS)} "
            f"--out {occupancy.DEFAULT_OUT}",)


def _nerf_commands() -> tuple[str, ...]:
    from experiments.paper import nerf

    return tuple(f"python -m experiments.paper.nerf --scene {scene} {' '.join(nerf.CPU_ARGS)} "
                 f"--target-psnr 20 --out runs/nerf/{name}-cpu"
                 for scene, name in ((nerf.LEGO, "lego"), (nerf.FERN, "fern")))


def _tuned_3d_commands() -> tuple[str, ...]:
    return tuple(
        cmd for task in ("occupancy", "nerf") for cmd in (
            f"python -m benchmarks.tuned_3d sweep --task {task} --out runs/tuned_3d/{task}-sweep "
            "--resume",
            f"python -m benchmarks.tuned_3d run --task {task} --lrs runs/tuned_3d/{task}-sweep/"
            f"best_lrs.json --out runs/tuned_3d/{task} --resume",
            f"python -m experiments.harness.archive runs/tuned_3d/{task}-sweep "
            f"docs/tuned_3d/runs/{task}-sweep --commit",
            f"python -m experiments.harness.archive runs/tuned_3d/{task} docs/tuned_3d/runs/{task} "
            "--commit"))


def _beyond_commands() -> tuple[str, ...]:
    from experiments.paper import beyond

    return (f"python -m experiments.paper.beyond {' '.join(beyond.SMALL_ARGS)} "
            f"--out {beyond.DEFAULT_OUT}",)


def _companion_commands() -> tuple[str, ...]:
    from experiments.paper import companion

    return (f"python -m experiments.paper.companion fig1 {' '.join(companion.FIG1_ARGS)} "
            f"--out {companion.DEFAULT_OUT}/fig1",
            f"python -m experiments.paper.companion patches {' '.join(companion.PATCH_ARGS)} "
            f"--out {companion.DEFAULT_OUT}/patches")


_GRID = "finished runs ACT-OPT/summary.json or ACT-OPT/seedS/summary.json"


@dataclasses.dataclass(frozen=True)
class Section:
    """One section of the page and how to regenerate it.

    Attributes:
      name: the fragment's stem (``sections/<name>.md``), one of :data:`SECTION_NAMES`.
      flag: the command-line flag that names its run directory.
      runs: the run directory :attr:`commands` write (the flag's value in the rerun text).
      expected: what such a run directory holds (said when it does not).
      has_results: whether a directory holds anything to render.
      render: ``(run directory, assets) -> (markdown lines, claim lines)``.
      commands: ``() -> the commands that produce the runs`` (``$L`` is the lion image).
    """

    name: str
    flag: str
    runs: str
    expected: str
    has_results: Callable[[pathlib.Path], bool]
    render: Callable[[pathlib.Path, pathlib.Path], tuple[list[str], list[str]]]
    commands: Callable[[], tuple[str, ...]]

    @property
    def dest(self) -> str:
        """The flag's attribute name in the parsed arguments."""
        return self.flag.removeprefix("--").replace("-", "_")

    def regenerate(self) -> str:
        """The command that rewrites this section's fragment from :attr:`runs`."""
        return f"python -m experiments.paper.reproduction {self.flag} {self.runs}"


#: Every section, in page order.
SECTIONS: dict[str, Section] = {s.name: s for s in (
    Section("condition", "--condition", "runs/condition",
            "summary.json from python -m experiments.paper.condition", _has_summary,
            condition_section,
            lambda: ("python -m experiments.paper.condition --steps 200",)),
    Section("adam_vs_sgd", "--adam-vs-sgd", "docs/reproduction/runs/adam_vs_sgd",
            f"the (archived) grid of python -m experiments.paper.adam_vs_sgd ({_GRID})",
            _has_grid, adam_sgd_section,
            _archived("adam_vs_sgd", "python -m experiments.paper.adam_vs_sgd --image $L "
                      "--seeds 0 1 2 3 4 --out runs/adam_vs_sgd --resume")),
    Section("sparsity", "--sparsity", "runs/sparsity",
            "summary.json from python -m experiments.paper.sparsity", _has_summary,
            sparsity_section,
            lambda: ("python -m experiments.paper.sparsity --image $L --epochs 5 --every 1",)),
    Section("lion", "--lion", "docs/reproduction/runs/lion200",
            f"the (archived) grid of python -m experiments.paper.lion ({_GRID})", _has_grid,
            lion_section,
            _archived("lion200", "python -m experiments.paper.lion --activations wavelet gaussian "
                      "sine relu_pe --optimizers adam esgd esgd_reference --seeds 0 1 2 3 4 "
                      "--epochs 200 --eval-every 10 --out runs/lion200 --resume")),
    Section("fig5", "--fig5", FIG5_ARCHIVE,
            f"the archived grid of python -m experiments.paper.fig5 ({_GRID}; summary.json and "
            "metrics.csv suffice)", _has_grid, _fig5, _fig5_commands),
    Section("div2k", "--div2k", "docs/reproduction/runs/div2k",
            f"archived grids of python -m experiments.paper.div2k (IMAGE/ with {_GRID})",
            _has_grids, _div2k,
            _archived("div2k", "python -m experiments.paper.div2k --seeds 0 1 2 3 4 "
                      "--out runs/div2k --resume")),
    Section("extra", "--extra", "runs/extra",
            "image run directories (*/summary.json)", _has_runs, _extra,
            lambda: ("python -m experiments.image --image $L --activation sine --optimizer esgd "
                     "--lr 0.3 --epochs 10 --eval-every 5 --out runs/extra/sine-esgd-lr0.3  "
                     "# one run directory per setting tried",)),
    Section("occupancy", "--occupancy", "runs/occupancy/armadillo",
            f"the grid of python -m experiments.paper.occupancy ({_GRID})", _has_grid,
            _occupancy, _occupancy_commands),
    Section("nerf", "--nerf", "runs/nerf",
            f"grids of python -m experiments.paper.nerf (GRID/ with {_GRID})", _has_grids,
            _nerf, _nerf_commands),
    Section("tuned_3d", "--tuned-3d", "docs/tuned_3d/runs",
            "archived sweeps and grids of python -m benchmarks.tuned_3d (occupancy-sweep/, "
            "occupancy/, nerf-sweep/, nerf/)",
            lambda d: any(_has_grids(d / t) for t in ("occupancy", "nerf") if (d / t).is_dir()),
            _tuned_3d, _tuned_3d_commands),
    Section("beyond", "--beyond", "runs/beyond",
            f"grids of python -m experiments.paper.beyond (GRID/report.md with {_GRID})",
            _has_reported_grids, _beyond, _beyond_commands),
    Section("companion", "--companion", "runs/companion",
            "fig1/ with finished runs or patches/patches.json from "
            "python -m experiments.paper.companion", _has_companion, _companion,
            _companion_commands),
    Section("signals", "--signals", "docs/reproduction/runs/signals",
            f"archived grids of python -m experiments.paper.signals (SIGNAL/ with {_GRID})",
            lambda d: _has_grids(d) or (d / "video_patches" / "patches.json").is_file(),
            _signals,
            _archived("signals", "python -m experiments.paper.signals --out runs/signals "
                      "--resume --no-progress",
                      "python -m experiments.paper.signals lbfgs-probe --out "
                      "runs/signals/lbfgs_probe --resume --no-progress",
                      "python -m experiments.paper.signals video-patches --seeds 0 1 2 3 4 "
                      "--out runs/signals/video_patches")),
)}


class Fragment(NamedTuple):
    """A section's fragment: its claim lines and its markdown (starting at its ``##``)."""

    claims: list[str]
    body: str


def parse_fragment(text: str, where: str = "fragment") -> Fragment:
    """Split a fragment's text into its claims block and its body; leading ``<!-- -->`` comment
    lines are dropped. A claims block that is not closed raises :class:`UsageError`."""
    lines = text.split("\n")
    i = 0
    while i < len(lines) and (not lines[i].strip() or (
            lines[i].lstrip().startswith("<!--") and lines[i].rstrip().endswith("-->")
            and lines[i].strip() != CLAIMS_BEGIN)):
        i += 1
    claims: list[str] = []
    if i < len(lines) and lines[i].strip() == CLAIMS_BEGIN:
        ends = [j for j in range(i + 1, len(lines)) if lines[j].strip() == CLAIMS_END]
        if not ends:
            raise UsageError(f"{where}: '{CLAIMS_BEGIN}' is never closed; expected a line "
                             f"'{CLAIMS_END}' after the claims")
        claims = [c for c in lines[i + 1:ends[0]] if c.strip()]
        i = ends[0] + 1
    return Fragment(claims, "\n".join(lines[i:]).strip("\n"))


def read_fragment(path: pathlib.Path) -> Fragment:
    """The fragment in ``path`` (see :func:`parse_fragment`)."""
    return parse_fragment(path.read_text(), str(path))


def write_fragment(path: pathlib.Path, name: str, source: str, lines: Sequence[str],
                   claims: Sequence[str]) -> pathlib.Path:
    """Write section ``name``'s fragment (its markdown ``lines`` and its ``claims``, rendered
    from ``source``) to ``path``, replacing it whole; returns ``path``."""
    text = "\n".join([
        f"<!-- Section '{name}' of docs/REPRODUCTION.md, {source}. Written by "
        "`python -m experiments.paper.reproduction`; do not edit by hand. The claims block "
        "below feeds the page's claims list. -->",
        CLAIMS_BEGIN, *claims, CLAIMS_END, "",
        "\n".join(lines).strip("\n"), "",
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _commands(section: Section) -> list[str]:
    return [*section.commands(), section.regenerate()]


def rerun_text(sections_dir: pathlib.Path) -> str:
    """The page's "Rerunning" section: every section's commands, in page order."""
    lines = ["## Rerunning", "",
             f"Each section lives in its own fragment, `{sections_dir}/<name>.md`. "
             "`python -m experiments.paper.reproduction` rewrites a fragment only when the "
             "section's flag names a run directory that holds results, keeps every other "
             "fragment as it is, and reassembles this page from all of them; with no flag it "
             "only reassembles. Per section, the runs and then the regeneration:", "",
             "```", f"L={LION_IMAGE}"]
    for section in SECTIONS.values():
        lines += [f"# {section.name}", *_commands(section)]
    lines += ["```",
              "Extend the lion grid towards the reference 200 epochs with `--resume --epochs N`; "
              "the grids reuse finished runs with `--resume`.", "",
              "Results that must survive the machine are archived: `python -m "
              "experiments.harness.archive SRC DST --commit` copies `summary.json`, "
              "`metrics.csv` and `config.json` of every finished run under SRC (never "
              "checkpoints, TensorBoard events or images) to the same path under DST and commits "
              "DST alone when it changed; rerun it as runs finish. The fig5 section renders from "
              f"that archive (`{FIG5_ARCHIVE}`), not from `runs/`, so it can be regenerated on "
              "any checkout.", ""]
    return "\n".join(lines)


def assemble(sections_dir: pathlib.Path, output: pathlib.Path) -> pathlib.Path:
    """Write the page ``output`` from the fragments in ``sections_dir``: the header, the claims
    of every fragment and the sections, in :data:`SECTION_NAMES` order (a section without a
    fragment is left out and named in one line with its commands), then the likely reasons
    and the rerun commands. Returns ``output``."""
    fragments = {name: read_fragment(sections_dir / f"{name}.md") for name in SECTION_NAMES
                 if (sections_dir / f"{name}.md").is_file()}
    lines = [TITLE, "",
             f"Generated by `python -m experiments.paper.reproduction` from the section "
             f"fragments in `{sections_dir}/`, each rendered from its runs' output files "
             "(see Rerunning); do not edit by hand. Paper numbers are quoted from the paper (v2) "
             "and issue 5.", ""]
    missing = [name for name in SECTION_NAMES if name not in fragments]
    if missing:
        lines += ["Sections not generated yet: " + "; ".join(
            f"{name} (" + ", then ".join(
                f"`{c.replace('$L', LION_IMAGE)}`" for c in _commands(SECTIONS[name])) + ")"
            for name in missing) + ".", ""]
    lines += ["## Claims", ""]
    lines += [c for f in fragments.values() for c in f.claims]
    lines.append("")
    for fragment in fragments.values():
        if fragment.body:
            lines += [fragment.body, ""]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join([*lines, REASONS, rerun_text(sections_dir)]))
    return output


def parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    from experiments.harness import cli

    p = cli.OneLineParser(prog="python -m experiments.paper.reproduction", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    for s in SECTIONS.values():
        p.add_argument(s.flag, metavar="DIR", default=None,
                       help=f"regenerate the {s.name} section from DIR: {s.expected} "
                            f"(the rerun commands write {s.runs})")
    p.add_argument("--output", default="docs/REPRODUCTION.md")
    p.add_argument("--assets", default=None,
                   help="plot copies (default: OUTPUT's dir/reproduction)")
    p.add_argument("--sections", default=None,
                   help="section fragments (default: OUTPUT's dir/reproduction/sections)")
    return p


def run(argv: Sequence[str] | None) -> int:
    """Regenerate the requested sections' fragments, then assemble the page; returns 0."""
    a = parser().parse_args(argv)
    output = pathlib.Path(a.output)
    assets = pathlib.Path(a.assets) if a.assets else output.parent / "reproduction"
    sections_dir = (pathlib.Path(a.sections) if a.sections
                    else output.parent / "reproduction" / "sections")
    if assets.parent != output.parent:
        print(f"note: assets {assets} are linked relative to {output.parent}", file=sys.stderr)
    requested = {s.name: pathlib.Path(getattr(a, s.dest)) for s in SECTIONS.values()
                 if getattr(a, s.dest) is not None}
    for name, path in requested.items():  # every flag checked before any work
        if not path.is_dir():
            what = "not a directory" if path.exists() else "no such directory"
            raise UsageError(f"{SECTIONS[name].flag} {path}: {what}; expected a run directory "
                             f"with {SECTIONS[name].expected}")
    for fragment in sorted(sections_dir.glob("*.md")):
        read_fragment(fragment)  # a broken fragment stops the run before anything is written
    rendered = {}
    for name, path in requested.items():
        section = SECTIONS[name]
        if not section.has_results(path):
            print(f"note: {section.flag} {path}: no results (expected {section.expected}); "
                  f"keeping {sections_dir / (name + '.md')} as it is", file=sys.stderr)
            continue
        rendered[name] = (path, *section.render(path, assets))
    for name, (path, lines, claims) in rendered.items():
        dest = write_fragment(sections_dir / f"{name}.md", name, f"rendered from `{path}`",
                              lines, claims)
        print(f"wrote {os.fspath(dest)}")
    print(f"wrote {os.fspath(assemble(sections_dir, output))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2, with one line on stderr, for bad input)."""
    from experiments.harness import cli

    return cli.run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
