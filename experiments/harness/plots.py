"""Images and plots: reconstructions, error maps, convergence and comparison curves."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any

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


def comparison_plots(
    out_dir: pathlib.Path, runs: Sequence[tuple[str, str, Rows]], *, metric: str = "psnr",
    label: str = "PSNR (dB)",
) -> dict[str, pathlib.Path]:
    """Loss against iterations and against time, one panel per group (e.g. activation).

    Args:
      out_dir: where ``loss_vs_steps.png``, ``loss_vs_time.png`` and ``<metric>_vs_epoch.png``
        go.
      runs: ``(group, label, metrics rows)`` per run.
      metric, label: the task's metric (its ``train_<metric>`` column) and its axis label.

    Returns:
      Plot name -> path.
    """
    plt = _pyplot()
    groups = list(dict.fromkeys(group for group, _, _ in runs))
    paths = {}
    for name, x, y, xlabel, ylabel, log in (
        ("loss_vs_steps", "step", "loss", "iteration", "training loss", True),
        ("loss_vs_time", "time_s", "loss", "training time (s)", "training loss", True),
        (f"{metric}_vs_epoch", "epoch", f"train_{metric}", "epoch", label, False),
    ):
        fig, axes = plt.subplots(
            1, len(groups), figsize=(4.5 * len(groups), 3.8), squeeze=False
        )
        for ax, group in zip(axes[0], groups, strict=True):
            for g, run_label, rows in runs:
                if g == group:
                    (ax.semilogy if log else ax.plot)(*_finite(rows, x, y), label=run_label)
            ax.set_title(group)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.tight_layout()
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=100)
        plt.close(fig)
    return paths
