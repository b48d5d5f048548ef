"""Images and plots: reconstructions, error maps, convergence and comparison curves."""

from __future__ import annotations

import math
import pathlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

Rows = Sequence[dict[str, Any]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_rgb(path: pathlib.Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) image with values in [0, 1] (clipped) as 8-bit PNG."""
    from PIL import Image

    pixels = np.clip(np.nan_to_num(np.asarray(image, np.float32)), 0.0, 1.0)
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)


def save_error_map(path: pathlib.Path, prediction: np.ndarray, target: np.ndarray) -> None:
    """Write the per-pixel absolute error (mean over channels) as a colour-mapped PNG."""
    plt = _pyplot()
    error = np.abs(np.asarray(prediction) - np.asarray(target)).mean(axis=-1)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    im = ax.imshow(np.nan_to_num(error, nan=1.0), cmap="inferno", vmin=0.0)
    ax.set_axis_off()
    ax.set_title(f"|error|, mean {float(np.nanmean(error)):.4f}")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _finite(rows: Rows, x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        a, b = row.get(x), row.get(y)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            xs.append(a)
            ys.append(b)
    return xs, ys


def convergence_plot(
    path: pathlib.Path, rows: Rows, title: str, *, metric: str = "psnr", label: str = "PSNR (dB)"
) -> None:
    """Training loss against steps and the task's metric against epochs for one run."""
    plt = _pyplot()
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.semilogy(*_finite(rows, "step", "loss"))
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (window mean)")
    ax_loss.grid(True, which="both", alpha=0.3)
    tx, ty = _finite(rows, "epoch", f"train_{metric}")
    if tx:
        ax_metric.plot(tx, ty, label="training batches")
    ex, ey = _finite(rows, "epoch", f"eval_{metric}")
    if ex:
        ax_metric.plot(ex, ey, "o-", label="evaluation")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(label)
    ax_metric.grid(True, alpha=0.3)
    if tx or ex:
        ax_metric.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def seed_band(
    runs: Sequence[Rows], x: str, y: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Median curve and min-max band of ``y`` against ``x`` over the seeds of one cell.

    The seeds' logs are aligned row by row (same settings log at the same steps), truncated to
    the shortest; ``x`` is the median over seeds (steps agree, times differ a little). A
    non-finite ``y`` (a diverged seed) is kept as NaN, so the band shows the gap.

    Returns:
      ``(x, median, low, high)``, or ``None`` when no seed logged both columns.
    """
    series = []
    for rows in runs:
        pts = [(r.get(x), r.get(y)) for r in rows if r.get(x) is not None]
        if pts and any(v is not None for _, v in pts):
            series.append(np.array([[a, np.nan if b is None else b] for a, b in pts], float))
    if not series:
        return None
    n = min(len(a) for a in series)
    stack = np.stack([a[:n] for a in series])
    xs = np.median(stack[:, :, 0], axis=0)
    ys = stack[:, :, 1]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        ys = np.where(np.isfinite(ys), ys, np.nan)
        return xs, np.nanmedian(ys, axis=0), np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)


def clip_bands(ax: Any, top: float, factor: float = 10.0) -> bool:
    """Cap a log-scale panel at ``factor`` x ``top`` (the highest median curve) when a band goes
    far above it, as one diverged seed's loss does, and say so on the panel; returns whether it
    capped."""
    if not (np.isfinite(top) and top > 0 and ax.get_ylim()[1] > factor * top):
        return False
    ax.set_ylim(top=factor * top)
    ax.text(0.01, 0.99, f"bands clipped at {factor:g}x the highest median", fontsize=7,
            transform=ax.transAxes, va="top", color="gray")
    return True


def clip_low_bands(ax: Any, low: float, high: float, slack: float = 0.25) -> bool:
    """Raise a linear panel's floor to ``slack`` x the medians' span (``low`` to ``high``)
    below the lowest median when a band goes further down, as one collapsed seed's PSNR does
    (-300 dB hides every curve), and say so on the panel; returns whether it raised it."""
    floor = low - slack * (high - low)
    if not (np.isfinite(floor) and high > low and ax.get_ylim()[0] < floor):
        return False
    ax.set_ylim(bottom=floor)
    ax.text(0.01, 0.01, "bands clipped below the medians", fontsize=7,
            transform=ax.transAxes, va="bottom", color="gray")
    return True


class PlotSpec(NamedTuple):
    """One comparison plot: its file stem, the columns against each other, axis labels, and
    whether the y axis is logarithmic."""

    name: str
    x: str
    y: str
    xlabel: str
    ylabel: str
    log: bool = False


def default_plots(metric: str = "psnr", label: str = "PSNR (dB)") -> tuple[PlotSpec, ...]:
    """The comparison report's plots: loss against iterations and time, the metric against
    epochs and against wall-clock time (what a user waits for)."""
    return (PlotSpec("loss_vs_steps", "step", "loss", "iteration", "training loss", True),
            PlotSpec("loss_vs_time", "time_s", "loss", "training time (s)", "training loss",
                     True),
            PlotSpec(f"{metric}_vs_epoch", "epoch", f"train_{metric}", "epoch", label),
            PlotSpec(f"{metric}_vs_time", "time_s", f"train_{metric}", "training time (s)",
                     label))


def run_styles(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{label: (colour, line style)}``, distinct for up to 30 labels: past ten the colours
    repeat, so the line style changes (the 11th is ``C0`` dashed)."""
    return {lbl: (f"C{i % 10}", ("-", "--", ":")[i // 10 % 3]) for i, lbl in enumerate(labels)}


def comparison_plots(
    out_dir: pathlib.Path, runs: Sequence[tuple[str, str, Sequence[Rows]]], *,
    metric: str = "psnr", label: str = "PSNR (dB)", plots: Sequence[PlotSpec] | None = None,
    panel_size: tuple[float, float] = (4.5, 3.8),
    hlines: Mapping[str, float | Mapping[str, float]] | None = None,
) -> dict[str, pathlib.Path]:
    """Loss against iterations and against time, and the metric against epochs (or ``plots``),
    one panel per group (e.g. activation), each curve the median over seeds with a min-max band.

    Args:
      out_dir: where ``loss_vs_steps.png``, ``loss_vs_time.png`` and ``<metric>_vs_epoch.png``
        (or ``NAME.png`` of each of ``plots``) go.
      runs: ``(group, label, [metrics rows of each seed])`` per cell.
      metric, label: the task's metric (its ``train_<metric>`` column) and its axis label.
      plots: the plots to draw instead of :func:`default_plots` (any column of the rows, e.g.
        one the caller added, as x or y).
      panel_size: (width, height) of one group's panel in inches.
      hlines: per group, a value of the y axis drawn as a dashed line on its panel (e.g. the
        group's common target, labelled "target"), or several as ``{label: value}`` (dashed,
        dotted, ...); groups without one get none.

    Returns:
      Plot name -> path.
    """
    plt = _pyplot()
    groups = list(dict.fromkeys(group for group, _, _ in runs))
    # One look per run label on every panel, so one legend below the panels serves them all.
    looks = run_styles(list(dict.fromkeys(lbl for _, lbl, _ in runs)))
    shared = len(groups) > 1
    paths = {}
    for name, x, y, xlabel, ylabel, log in (plots or default_plots(metric, label)):
        fig, axes = plt.subplots(
            1, len(groups), figsize=(panel_size[0] * len(groups), panel_size[1]), squeeze=False
        )
        legend: dict[str, Any] = {}
        for ax, group in zip(axes[0], groups, strict=True):
            # The medians' range: a collapsed seed's band must not hide the rest.
            top, low = -np.inf, np.inf
            for g, run_label, seeds in runs:
                band = seed_band(seeds, x, y) if g == group else None
                if band is None:
                    continue
                xs, mid, lo, hi = band
                n = len(seeds)
                line, = ax.plot(xs, mid, color=looks[run_label][0], ls=looks[run_label][1],
                                label=run_label + (f" (median of {n})" if n > 1 else ""))
                legend.setdefault(line.get_label(), line)
                finite_mid = np.asarray(mid, float)[np.isfinite(mid)]
                if finite_mid.size:
                    top, low = max(top, finite_mid.max()), min(low, finite_mid.min())
                if n > 1:
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
                if log:
                    ax.set_yscale("log")
            if log:
                clip_bands(ax, top)
            else:
                clip_low_bands(ax, low, top)
            marks_drawn = []
            if hlines and group in hlines:
                marks = hlines[group]
                if not isinstance(marks, Mapping):
                    marks = {"target": marks}
                for (mark, value), style in zip(marks.items(), ("--", ":", "-."), strict=False):
                    marks_drawn.append(ax.axhline(value, color="k", ls=style, lw=1,
                                                  label=f"{mark} {value:g}"))
            ax.set_title(group)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            if shared and marks_drawn:  # the panel's own lines; the runs' legend is below
                ax.legend(handles=marks_drawn, fontsize="small")
            elif not shared and ax.get_legend_handles_labels()[0]:
                ax.legend()
        if shared and legend:
            fig.legend(handles=list(legend.values()), loc="lower center",
                       ncol=min(len(legend), 6), frameon=False)
            rows = math.ceil(len(legend) / 6)
            fig.tight_layout(rect=(0, 0.08 * rows * 3.8 / panel_size[1], 1, 1))
        else:
            fig.tight_layout()
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=100)
        plt.close(fig)
    return paths


def seed_strip(
    path: pathlib.Path, finals: dict[tuple[str, str], Sequence[float | None]], *, label: str,
    title: str, floor: float | None = None,
) -> None:
    """Every seed's final metric as a dot, one panel per activation and one column per optimizer,
    with the median as a bar: the spread over seeds at a glance.

    ``finals`` maps (activation, optimizer) to the per-seed values. Values below ``floor`` (a
    collapsed seed; non-finite counts as below) are drawn at the floor as down-triangles.
    """
    plt = _pyplot()
    activations = list(dict.fromkeys(a for a, _ in finals))
    colour = {o: f"C{i % 10}" for i, o in enumerate(dict.fromkeys(o for _, o in finals))}
    fig, axes = plt.subplots(1, len(activations), figsize=(3.6 * len(activations), 3.8),
                             squeeze=False)
    for ax, activation in zip(axes[0], activations, strict=True):
        names = [o for a, o in finals if a == activation]
        for i, name in enumerate(names):
            vals = np.array([np.nan if v is None else v for v in finals[activation, name]], float)
            low = ~np.isfinite(vals) | (vals < floor if floor is not None else False)
            jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.scatter(i + jitter[~low], vals[~low], s=18, color=colour[name], zorder=3)
            if floor is not None and low.any():
                ax.scatter(i + jitter[low], np.full(low.sum(), floor), marker="v", s=30,
                           color=colour[name], zorder=3)
            kept = np.where(np.isfinite(vals), vals, -np.inf)
            ax.hlines(np.median(kept), i - 0.25, i + 0.25, color="k", lw=1.5, zorder=4)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        if floor is not None:
            ax.set_ylim(bottom=floor - 0.5)
        ax.set_title(activation)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(label)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def trace_plot(
    path: pathlib.Path, traces: dict[str, Rows], columns: Sequence[tuple[str, str]], *,
    x: str = "step", title: str = "",
) -> None:
    """Several runs' logged columns against ``x``, one log-scale panel per column (e.g. the loss
    and the largest preconditioned update of a collapsing and a healthy seed)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(columns), figsize=(4.4 * len(columns), 3.6), squeeze=False)
    for ax, (column, label) in zip(axes[0], columns, strict=True):
        for name, rows in traces.items():
            xs, ys = _finite(rows, x, column)
            pts = [(a, b) for a, b in zip(xs, ys, strict=True) if b > 0]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=name, lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
