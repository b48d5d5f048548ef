"""Generate ``docs/REPRODUCTION.md`` from the runs' output files: ``python -m
experiments.paper.reproduction``.

Reads (each optional; a missing one is reported as not run):

- ``--lion`` (``runs/lion``): the grid of :mod:`experiments.paper.lion`;
- ``--condition`` (``runs/condition``): :mod:`experiments.paper.condition`;
- ``--sparsity`` (``runs/sparsity``): :mod:`experiments.paper.sparsity`;
- ``--adam-vs-sgd`` (``runs/adam_vs_sgd``): :mod:`experiments.paper.adam_vs_sgd`;

and writes ``--output`` (``docs/REPRODUCTION.md``) with copies of the plots, shrunk to under
300 KB each, in ``--assets`` (``docs/reproduction``). Every number in the page is read from those
files; the paper's numbers are constants below, quoted from the paper and issue 5.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

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


def _eval_at(rows: list[dict[str, float]], epoch: float) -> tuple[float, float] | None:
    """(epoch, full-image PSNR) of the evaluation at ``epoch``, else the last evaluation."""
    evals = [r for r in rows if math.isfinite(r.get("eval_psnr", math.nan))]
    if not evals:
        return None
    exact = [r for r in evals if abs(r["epoch"] - epoch) < 1e-9]
    r = exact[0] if exact else evals[-1]
    return r["epoch"], r["eval_psnr"]


def lion_section(lion: pathlib.Path, assets: pathlib.Path) -> tuple[list[str], list[str]]:
    """The image comparison: markdown lines and the claims' verdict lines."""
    lines = ["## Image comparison on the DIV2K lion (paper Figs. 1, 5)", ""]
    claims: list[str] = []
    runs = sorted(p for p in lion.glob("*-*") if (p / "summary.json").is_file())
    if not runs:
        return lines + [f"Not run (no finished runs in `{lion}`).", ""], [
            f"- Wavelet ESGD > Adam at epoch 10; ESGD/Adam final-MSE orderings: "
            f"{_verdict(None)}"]
    summaries = {p.name: _json(p / "summary.json") or {} for p in runs}
    epochs = sorted({s.get("epochs") for s in summaries.values()})
    lines += [f"Runs: `{lion}`, epochs run: {', '.join(_fmt(e, 'g') for e in epochs)} "
              "(the reference trains 200). Batch 512, 128 steps an epoch, 5x256 fields, "
              "registry learning rates, seed 0. Times per step are wall-clock on 2 CPU cores "
              "shared with other jobs, so they are noisy and not comparable across runs. "
              "Final PSNR: full 256x256 image; final training MSE: mean mini-batch loss of "
              "the last epoch.", ""]
    lines += ["| run | lr | epochs | final PSNR (dB) | final training MSE | ms / step |",
              "|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        lines.append(f"| {name} | {_fmt(s.get('learning_rate'), 'g')} | "
                     f"{_fmt(s.get('epochs'), 'g')} | {_fmt(s.get('final_psnr'), '.2f')} | "
                     f"{_fmt(s.get('final_loss'), '.3g')} | "
                     f"{_fmt((s.get('time_per_step_s') or math.nan) * 1e3, '.1f')} |")
    lines.append("")
    # Claim 1: wavelet at epoch 10.
    w = {o: _eval_at(_metrics(lion / f"wavelet-{o}"), 10.0)
         for o in ("esgd", "esgd_reference", "adam")}
    lines += ["### Wavelet at epoch 10", "",
              "| optimizer | paper (dB) | ours (dB) | our epoch |", "|---|---|---|---|"]
    for o in ("esgd", "esgd_reference", "adam"):
        ours = w[o]
        lines.append(f"| {o} | {PAPER_WAVELET_EPOCH10.get(o, PAPER_WAVELET_EPOCH10['esgd'])} | "
                     f"{_fmt(ours[1] if ours else None, '.2f')} | "
                     f"{_fmt(ours[0] if ours else None, 'g')} |")
    lines.append("")
    ok = None
    if w["esgd"] and w["adam"]:
        ok = w["esgd"][1] > w["adam"][1]
        claims.append(
            f"- Wavelet image, ESGD beats Adam at epoch {_fmt(w['esgd'][0], 'g')} "
            f"(paper 29.36 vs 26.61 dB; ours {w['esgd'][1]:.2f} vs {w['adam'][1]:.2f} dB): "
            f"{_verdict(ok)}")
    if w["esgd_reference"] and w["adam"]:
        claims.append(
            f"- ... and with the reference's bias correction (as the paper ran ESGD): "
            f"{w['esgd_reference'][1]:.2f} vs {w['adam'][1]:.2f} dB: "
            f"{_verdict(w['esgd_reference'][1] > w['adam'][1])}")
    # Claim 2: final MSE orderings.
    lines += ["### Final training MSE, Adam vs ESGD", "",
              "Paper column: the reference repository's final training MSE after 200 epochs "
              "(quoted in issue 5). Ours: after the epochs in the table above.", "",
              "| field | paper Adam | paper ESGD | paper winner | our Adam | our ESGD | "
              "our ESGD (reference bias corr.) | our winner | epochs |",
              "|---|---|---|---|---|---|---|---|---|"]
    for field, (p_adam, p_esgd) in PAPER_FINAL_MSE.items():
        sa = summaries.get(f"{field}-adam", {})
        se = summaries.get(f"{field}-esgd", {})
        sr = summaries.get(f"{field}-esgd_reference", {})
        a, e = sa.get("final_loss"), se.get("final_loss")
        paper_winner = "ESGD" if p_esgd < p_adam else "Adam"
        ours = None if a is None or e is None else ("ESGD" if e < a else "Adam")
        lines.append(f"| {field} | {p_adam:g} | {p_esgd:g} | {paper_winner} | {_fmt(a)} | "
                     f"{_fmt(e)} | {_fmt(sr.get('final_loss'))} | {ours or '—'} | "
                     f"{_fmt(se.get('epochs'), 'g')} |")
        if ours is not None:
            claims.append(f"- {field}: {paper_winner} reaches the lower training MSE "
                          f"(paper {p_adam:g} Adam vs {p_esgd:g} ESGD at 200 epochs; ours "
                          f"{a:.3g} vs {e:.3g} at {_fmt(se.get('epochs'), 'g')} epochs): "
                          f"{_verdict(ours == paper_winner)}")
        r = sr.get("final_loss")
        if a is not None and r is not None:
            ref_winner = "ESGD" if r < a else "Adam"
            claims.append(f"  - with the reference's bias correction (as the paper ran ESGD): "
                          f"ESGD {r:.3g} vs Adam {a:.3g}: "
                          f"{_verdict(ref_winner == paper_winner)}")
    lines.append("")
    # Bias correction.
    lines += ["### ESGD bias correction: ours (per refresh) vs the reference's (all steps)", "",
              "| field | per-refresh PSNR | reference PSNR | per-refresh MSE | reference MSE |",
              "|---|---|---|---|---|"]
    for field in PAPER_FINAL_MSE:
        se = summaries.get(f"{field}-esgd", {})
        sr = summaries.get(f"{field}-esgd_reference", {})
        if se or sr:
            lines.append(f"| {field} | {_fmt(se.get('final_psnr'), '.2f')} | "
                         f"{_fmt(sr.get('final_psnr'), '.2f')} | {_fmt(se.get('final_loss'))} | "
                         f"{_fmt(sr.get('final_loss'))} |")
    lines.append("")
    for plot, caption in (("loss_vs_steps.png", "Training loss against iterations (lion)"),
                          ("psnr_vs_epoch.png", "Training PSNR against epochs (lion)"),
                          ("loss_vs_time.png", "Training loss against time (lion)")):
        _image(lines, assets, lion / plot, f"lion_{plot}", caption)
    for o in ("adam", "esgd"):
        _image(lines, assets, lion / f"wavelet-{o}" / "reconstruction.png",
               f"lion_wavelet_{o}.png", f"Wavelet field, {o}, final reconstruction")
    return lines, claims


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
    """Fig. 3: markdown lines and verdicts."""
    lines = ["## Adam vs SGD (paper Fig. 3a)", ""]
    runs = sorted(p for p in avs.glob("*-*") if (p / "summary.json").is_file())
    if not runs:
        return lines + [f"Not run (no finished runs in `{avs}`).", ""], [
            f"- Fig. 3a Adam beats SGD: {_verdict(None)}"]
    s = {p.name: _json(p / "summary.json") or {} for p in runs}
    first = next(iter(s.values()))
    lines += [f"Image: `{first.get('config', {}).get('image') or 'bundled'}`, epochs "
              f"{_fmt(first.get('epochs'), 'g')}.", "",
              "| field | Adam MSE | SGD MSE | Adam PSNR | SGD PSNR |", "|---|---|---|---|---|"]
    claims = []
    for field in dict.fromkeys(p.name.rsplit("-", 1)[0] for p in runs):
        a, g = s.get(f"{field}-adam", {}), s.get(f"{field}-sgd", {})
        lines.append(f"| {field} | {_fmt(a.get('final_loss'))} | {_fmt(g.get('final_loss'))} | "
                     f"{_fmt(a.get('final_psnr'), '.2f')} | {_fmt(g.get('final_psnr'), '.2f')} |")
        if a.get("final_loss") is not None and g.get("final_loss") is not None:
            ok = a["final_loss"] < g["final_loss"]
            claims.append(f"- Fig. 3a {field}: Adam reaches a lower loss than SGD "
                          f"({a['final_loss']:.3g} vs {g['final_loss']:.3g}): {_verdict(ok)}")
    lines.append("")
    _image(lines, assets, avs / "loss_vs_steps.png", "adam_vs_sgd.png",
           "Adam vs SGD, training loss against iterations")
    return lines, claims


RERUN = """## Rerunning

```
L=../shared/data/images/div2k_fourier_features_test/image_014.jpg
python -m experiments.paper.condition --steps 200
python -m experiments.paper.lion --epochs 10 --eval-every 5 --timing-steps 50   # default image: L
python -m experiments.paper.sparsity --image $L --epochs 5 --every 1
python -m experiments.paper.adam_vs_sgd --image $L --epochs 10 --eval-every 5 --timing-steps 0
python -m experiments.paper.reproduction
```
Extend the lion grid towards the reference 200 epochs with `--resume --epochs N`.
"""

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

- Length: every image run here is far shorter than the reference's 200 epochs (2 CPU cores
  shared with other jobs); orderings early in training need not hold at epoch 200.
- Data: our lion is a JPEG copy of the paper's array, resized to 256x256 by us.
- Bias correction: the reference ESGD divides by `1 - b2^t` over all steps, not over refreshes,
  which inflates its step 2-3x; our default is the per-refresh correction. The table above shows
  both.
- Learning rates: the registry's reference values (Adam 1e-4, 5e-5 for sine, 1e-3 for ReLU+PE;
  ESGD 0.15, 0.1 for ReLU+PE; AdaHessian 0.15; SGD 1.0, ours) were not tuned here.
- Sine with our per-refresh ESGD: the reference's bias correction is what made ESGD beat Adam
  in our short runs (see the tables). Its inflation is not a constant factor: during the
  warm-up (every step refreshes) both corrections agree, and afterwards the reference divides by
  `sqrt(1 - b2^t)` while refreshes (and our `sqrt(1 - b2^n)`) barely advance, so its step grows
  over training, like a learning-rate warm-up. A constant larger learning rate for the
  per-refresh variant does not recover it (follow-up runs table, if present).
- Fig. 2: the paper gives neither the sampling of x, the Gaussian width, the step size nor
  whether D is recomputed every step; ours are stated in the settings line.
"""


def generate(lion: pathlib.Path, condition: pathlib.Path, sparsity: pathlib.Path,
             adam_vs_sgd: pathlib.Path, output: pathlib.Path, assets: pathlib.Path,
             extra: pathlib.Path | None = None) -> pathlib.Path:
    """Write the reproduction page; returns its path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    sections, claims = [], []
    for fn, path in ((condition_section, condition), (adam_sgd_section, adam_vs_sgd),
                     (sparsity_section, sparsity), (lion_section, lion)):
        lines, verdicts = fn(path, assets)
        sections += lines
        claims += verdicts
    if extra is not None:
        sections += extra_section(extra)
    head = ["# Reproduction of the paper's analyses and 2D results", "",
            "Generated by `python -m experiments.paper.reproduction` from the runs' output files; "
            "do not edit by hand. Paper numbers are quoted from the paper (v2) and issue 5.", "",
            "## Claims", ""] + claims + [""]
    output.write_text("\n".join(head + sections + [REASONS, RERUN]))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m experiments.paper.reproduction",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lion", default="runs/lion")
    p.add_argument("--condition", default="runs/condition")
    p.add_argument("--sparsity", default="runs/sparsity")
    p.add_argument("--adam-vs-sgd", default="runs/adam_vs_sgd")
    p.add_argument("--extra", default="runs/extra",
                   help="follow-up image runs (any run directories) listed in their own table")
    p.add_argument("--output", default="docs/REPRODUCTION.md")
    p.add_argument("--assets", default=None,
                   help="plot copies (default: OUTPUT's dir/reproduction)")
    a = p.parse_args(argv)
    output = pathlib.Path(a.output)
    assets = pathlib.Path(a.assets) if a.assets else output.parent / "reproduction"
    if assets.parent != output.parent:
        print(f"note: assets {assets} are linked relative to {output.parent}", file=sys.stderr)
    path = generate(pathlib.Path(a.lion), pathlib.Path(a.condition), pathlib.Path(a.sparsity),
                    pathlib.Path(a.adam_vs_sgd), output, assets, pathlib.Path(a.extra))
    print(f"wrote {os.fspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
