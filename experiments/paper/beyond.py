"""Beyond the paper: ESGD and Adam against Muon and Sophia, ``python -m experiments.paper.beyond``.

The image comparison of :mod:`experiments.paper.lion` (the four activations of Fig. 5, the
registry's learning rates, seeds) with the optimizers optax ships now: ``muon`` (hidden matrices
orthogonalised, AdamW for the rest), ``sophia_h`` (Sophia with our Hutchinson estimator) and
``sophia_e`` (Sophia's clipped update with the equilibration preconditioner). ``--images`` runs
the grid once per image, in ``OUT/<image stem>``; every other flag is
:mod:`experiments.compare`'s. The full protocol (>= 5 seeds, 10 epochs at 256x256)::

    python -m experiments.paper.beyond --seeds 0 1 2 3 4 --resume

The small configuration that ``docs/REPRODUCTION.md`` reports is :data:`SMALL_ARGS` (three DIV2K
images and scikit-image's coffee at 64x64, a 3x64 field, batch 128, 10 epochs, 5 seeds).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from experiments import compare
from experiments.harness import cli
from experiments.harness.report import markdown_table, ranking, read_results, table
from experiments.paper import occupancy

IMAGES_DIR = "../shared/data/images/div2k_fourier_features_test"
#: The lion (the paper's image) and two more DIV2K images of the shared set.
IMAGES = (f"{IMAGES_DIR}/image_014.jpg", f"{IMAGES_DIR}/image_000.jpg",
          f"{IMAGES_DIR}/image_005.jpg")
ACTIVATIONS = ("gaussian", "sine", "wavelet", "relu_pe")
OPTIMIZERS = ("adam", "esgd", "esgd_reference", "muon", "sophia_h", "sophia_e")
DEFAULT_OUT = "runs/beyond"
TARGET = 25.0
#: The small run reported in docs/REPRODUCTION.md (2 shared CPU cores): the three DIV2K images
#: and scikit-image's coffee, which is not in ../shared/data.
SMALL_ARGS = ("--images", *IMAGES, "skimage:coffee", "--size", "64", "--depth", "3", "--width",
              "64", "--batch-size", "128", "--epochs", "10", "--seeds", "0", "1", "2", "3", "4",
              "--timing-steps", "0", "--no-progress", "--resume")
#: The occupancy comparison with Muon and Sophia (the armadillo grid of
#: :mod:`experiments.paper.occupancy`, extended).
OCCUPANCY_ARGS = (*occupancy.CPU_ARGS, "--resume", "--optimizers", "esgd", "esgd_reference",
                  "adam", "muon", "sophia_h", "sophia_e", "--out", occupancy.DEFAULT_OUT)
#: The full protocol: three images, four activations, five seeds, 10 epochs at 256x256.
FULL_ARGS = ("--seeds", "0", "1", "2", "3", "4", "--resume")

#: The grids the reading below describes: the small setting on four images, 5 seeds each.
READ_GRIDS = {"image_000", "image_005", "image_014", "skimage_coffee"}
READ_SETTING = (64, 3, 64, 10, [0, 1, 2, 3, 4])
#: Our reading of those grids (``SMALL_ARGS`` with ``--images`` the three DIV2K images of
#: :data:`IMAGES` and ``skimage:coffee``, 2026-12-05), numbers from the tables above.
READING = (
    "Reading (16 cells: 4 images x 4 fields, 5 seeds each, 320 iterations at 64x64; Muon's and "
    "Sophia's rates were picked on seed 0 of the lion in this very setting, the other three "
    "images, `skimage:coffee` among them, were not used to pick anything):",
    "- Adam at the paper's rates is last in all 16 cells at this short budget, and every other "
    "optimizer's median is 1.6 to 10.9 dB above it.",
    "- Sine fields: clipped ESGD has the best median on all 4 images (25.2 to 28.8 dB), "
    "`sophia_e` within 0.1 to 1.6 dB of it; Muon stalls (20.0 to 22.7 dB), 5.1 to 6.2 dB behind.",
    "- Gaussian, wavelet and ReLU+PE fields: Muon has the best median on all 4 images, by "
    "0.0 to 0.9 dB over `sophia_e` on Gaussian and wavelet and by 0.9 to 1.6 dB over ESGD on "
    "ReLU+PE; clipped ESGD is 0.5 to 1.7 dB behind Muon on Gaussian and wavelet.",
    "- Is Sophia's clipping what ESGD lacks? At the same rate and estimator, the clip alone "
    "(`esgd` against `esgd_reference`) raises the median in all 16 cells and removes every "
    "collapse: the unclipped worst seeds are 3.7 dB (coffee, Gaussian), 6.0 dB (image_005, "
    "wavelet), -18.3 dB (image_005, sine) and 12.1 dB (lion, wavelet), while clipped ESGD's "
    "worst seed is above Adam's best in all 16 cells and spreads at most 1.4 dB.",
    "- `sophia_e` (ESGD's D^E inside Sophia) beats `sophia_h` (Hutchinson diag H) on Gaussian, "
    "sine and wavelet fields on every image, by 0.4 to 3.3 dB; on ReLU+PE `sophia_h` is ahead "
    "by 0.1 to 0.5 dB.",
    "- For a user at this scale: ESGD (the default, clipped) or `sophia_e` for sine fields; "
    "Muon for Gaussian, wavelet and ReLU+PE fields, with `sophia_e` and ESGD close behind on "
    "the first two; never the unclipped ESGD. In the occupancy comparison (its section) Muon "
    "and `sophia_e` also lead on the Gaussian field. None of this is the full protocol "
    "(256x256, 5x256 field), which has not run.",
)


def _split_images(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--images", nargs="+", default=list(IMAGES))
    known, rest = pre.parse_known_args(argv)
    return known.images, rest


def _out_of(rest: Sequence[str]) -> pathlib.Path:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--out", default=DEFAULT_OUT)
    known, _ = pre.parse_known_args(rest)
    return pathlib.Path(known.out)


def run(argv: Sequence[str] | None) -> int:
    """Run the grid once per ``--images`` entry (each in ``OUT/<stem>``); returns 0."""
    images, rest = _split_images(argv)
    out = _out_of(rest)
    rest = [a for i, a in enumerate(rest)
            if a != "--out" and (i == 0 or rest[i - 1] != "--out")]
    for image in images:
        compare.drive(
            [*rest, "--out", str(out / pathlib.Path(image.replace(":", "_")).stem)],
            prog="python -m experiments.paper.beyond",
            title=f"{pathlib.Path(image).name}: ESGD, Adam, Muon, Sophia",
            image=image, activations=list(ACTIVATIONS), optimizers=list(OPTIMIZERS),
            epochs=10, target=TARGET,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(run, argv)


def _grids(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p.parent for p in root.glob("*/report.md"))


def across_images(grids: Sequence[Sequence[Any]]) -> list[str]:
    """Per activation, over the images' grids: which optimizer had the best median, and on how
    many images each optimizer's worst seed beat Adam's best seed."""
    import statistics

    from experiments.harness.report import clear_wins, finals_by_activation

    best: dict[str, dict[str, int]] = {}
    clear: dict[str, dict[str, int]] = {}
    n_images: dict[str, int] = {}
    for results in grids:
        for act, opts in finals_by_activation(results).items():
            n_images[act] = n_images.get(act, 0) + 1
            top = max(opts, key=lambda o: statistics.median(opts[o]))
            best.setdefault(act, {}).setdefault(top, 0)
            best[act][top] += 1
            if "adam" in opts:
                won = clear_wins(opts, "adam")
                for opt in opts.keys() - {"adam"}:
                    clear.setdefault(act, {}).setdefault(opt, 0)
                    clear[act][opt] += opt in won
    lines = [f"Across the {len(grids)} images (same settings):"]
    for act in sorted(n_images):
        n = n_images[act]
        tops = ", ".join(f"{o} on {k}/{n}" for o, k in sorted(best[act].items(),
                                                                key=lambda x: -x[1]))
        wins = ", ".join(f"{o} {k}/{n}" for o, k in sorted(clear.get(act, {}).items(),
                                                           key=lambda x: (-x[1], x[0])))
        lines.append(f"- {act}: best median: {tops}; worst seed above Adam's best seed, "
                     f"images: {wins or '-'}.")
    return lines


def reproduction_section(root: pathlib.Path, assets: pathlib.Path | None = None) -> str:
    """The "Beyond the paper" section of ``docs/REPRODUCTION.md`` from the grids under ``root``.

    Args:
      root: the ``--out`` of :func:`main` (one grid per image stem, each with ``report.md``).
      assets: if given, each grid's loss plots are copied there as
        ``beyond_<stem>_loss_vs_steps.png``, ``..._loss_vs_time.png`` (the training MSE: PSNR on a
        log scale, inverted) and ``..._psnr_vs_epoch.png``, linked as
        ``reproduction/NAME``.

    Returns:
      Markdown, starting with a ``##`` heading; says so plainly when no run has finished.
    """
    root = pathlib.Path(root)
    lines = [
        "## Beyond the paper: ESGD and Adam against Muon and Sophia", "",
        "Optimizers (registry names; learning rates are ours, none is taken from McGinnis et "
        "al., arXiv 2512.14366, whose text we did not have):",
        "- `muon`: `optax.contrib.muon`, orthogonalised Nesterov momentum (5 Newton-Schulz "
        "steps) on the square hidden kernels; the first layer (it reads the 2 coordinates or the "
        "encoding, rank <= 2 without PE), the head and every bias on its AdamW fallback (lr "
        "1e-3), as Muon's authors treat embeddings and heads. lr 0.005 (0.02 for ReLU+PE). "
        "`muon_all2d` is optax's default partition (every 2-D leaf).",
        "- `sophia_h`: `optax.contrib.sophia` with `hessian_diagonal_fn="
        "jaxprecond.hutchinson_diagonal()` (Sophia-H; our estimator `pmean`s over devices, "
        "optax's does not); optax defaults (b1 0.965, b2 0.99, gamma 0.01, clip 1, Hessian "
        "every 10 steps), weight decay 0; lr 1e-3 (1e-4 sine); the clipped step is at most "
        "lr per coordinate.",
        "- `sophia_e`: the same clipped update with `h = sqrt(EMA((Hv)^2))`, the equilibration "
        "preconditioner D^E of ESGD, in place of the EMA of diag H; lr 1e-3.",
        "- How the learning rates were chosen: the best final PSNR of a one-seed sanity sweep "
        "(lion 64x64, 3x64 field, batch 128, 10 epochs; Gaussian, sine, ReLU+PE) over Muon "
        "{0.005, 0.02, 0.05} and Sophia {1e-4, 1e-3}. Adam and ESGD keep the paper's reference "
        "rates and were not swept, so this favours Muon and Sophia a little.",
        "- `esgd` is the library's default ESGD (ratio clipped at 1, issue 11) and "
        "`esgd_reference` the papers' (no clip); the pair isolates what the clip does at the "
        "same rate and estimator.",
        "",
    ]
    grids = _grids(root) if root.is_dir() else []
    if not grids:
        lines += [f"No finished grid in `{root}` yet. Run: "
                  f"`python -m experiments.paper.beyond {' '.join(SMALL_ARGS)} --out {root}`.",
                  ""]
    settings: set[tuple[Any, ...]] = set()
    for grid in grids:
        results = read_results(grid)
        if not results:
            continue
        first = results[0].summary.get("config", {})
        seeds = sorted({r.seed for r in results})
        epochs = max(r.summary.get("epochs", 0) for r in results)
        lines += [
            f"### `{pathlib.Path(first.get('image') or grid.name).name}`", "",
            f"What ran: {first.get('size')}x{first.get('size')} pixels, depth "
            f"{first.get('depth') or 5}, width {first.get('width') or 256}, batch "
            f"{first.get('batch_size')}, {epochs:g} epochs, seeds {seeds} "
            f"({len(seeds)} seed{'s' if len(seeds) != 1 else ''}).", "",
            markdown_table(table(results, TARGET, baseline="adam")),
            ranking(results, "PSNR in dB", ".1f", context=f"{len(seeds)} seed(s), at "
                    "this scale only (not a claim about the paper's setting)"), "",
        ]
        settings.add((first.get("size"), first.get("depth"), first.get("width"), epochs,
                      tuple(seeds)))
        if assets is not None:
            assets.mkdir(parents=True, exist_ok=True)
            for plot in ("loss_vs_steps", "loss_vs_time", "psnr_vs_epoch"):
                src = grid / f"{plot}.png"
                if src.exists():
                    name = f"beyond_{grid.name}_{plot}.png"
                    shutil.copyfile(src, assets / name)
                    lines.append(f"![{plot}](reproduction/{name})")
            lines.append("")
    if len(grids) > 1:
        lines += [*across_images([read_results(g) for g in grids]), ""]
    if {g.name for g in grids} == READ_GRIDS and settings == {(*READ_SETTING[:4],
                                                                 tuple(READ_SETTING[4]))}:
        lines += [*READING, ""]
    lines += [
        "Still to run (the full protocol, >= 5 seeds, 256x256, the paper's 5x256 field): "
        f"`nice -n 19 python -m experiments.paper.beyond {' '.join(FULL_ARGS)} "
        "--out runs/beyond/full`. Muon and Sophia in the occupancy comparison: the "
        "occupancy section's table, from `python -m experiments.paper.occupancy "
        f"{' '.join(OCCUPANCY_ARGS)}`.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
