"""The paper's Fig. 4: sparsity of Hessian-vector products through ESGD training on an image.

``python -m experiments.paper.sparsity`` trains a field per activation (gaussian, sine, wavelet,
relu, relu_pe by default) with ESGD through the harness
(:func:`experiments.harness.train.train`) and, at initialisation and after every ``--every``
epochs, computes one HVP with a Rademacher probe on a fixed mini-batch of ``--batch-size``
pixels, recording per parameter leaf (layer kernel / bias) the fraction of entries that are
exactly zero (:func:`jaxprecond.diagnostics.hvp_sparsity`). The
hook is the task's ``evaluate``, which the harness calls at its evaluation epochs, so the
training itself is the harness's, unchanged.

Writes under ``--out``: one run directory per activation, ``sparsity.csv`` (activation, epoch,
leaf, fraction), ``summary.json`` (mean over leaves and over the recorded points of training,
as the paper reports) and ``sparsity.png``. Tiny: ``--size 16 --depth 2 --width 8 --epochs 1``.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from experiments.harness import cli
from experiments.paper.lion import LION
from experiments.tasks import image
from experiments.tasks.image import ImageTask, prepare

ACTIVATIONS = ("gaussian", "sine", "wavelet", "relu", "relu_pe")
DEFAULT_OUT = "runs/sparsity"


def leaf_name(path: Any) -> str:
    """``'Dense_0/kernel'`` style name of a pytree path."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


class SparsityImageTask(ImageTask):
    """An :class:`ImageTask` that also records HVP sparsity whenever it is evaluated."""

    def __init__(self, base: ImageTask, *, batch_size: int, seed: int):
        super().__init__(base.image, base.model, source=base.source)
        rng = np.random.default_rng(seed)
        idx = rng.choice(self.num_examples, size=min(batch_size, self.num_examples),
                         replace=False)
        self._probe_batch = self.batch(idx)
        self._key = jax.random.key(seed + 1)
        self.records: list[dict[str, Any]] = []
        self.evaluations = 0
        self.every = 1

    def init_params(self, key: jax.Array) -> Any:
        params = super().init_params(key)
        self.records.extend(self._sparsity(params, epoch=0))
        return params

    def evaluate(self, params: Any) -> dict[str, float]:
        self.evaluations += 1
        self.records.extend(self._sparsity(params, epoch=self.evaluations * self.every))
        return super().evaluate(params)

    def _sparsity(self, params: Any, epoch: int) -> list[dict[str, Any]]:
        fractions = _sparsity_fn(self)(params, self._probe_batch, jax.random.fold_in(
            self._key, epoch))
        flat = jax.tree_util.tree_flatten_with_path(fractions)[0]
        return [{"epoch": epoch, "leaf": leaf_name(p), "fraction": float(v)} for p, v in flat]


def _sparsity_fn(task: SparsityImageTask) -> Any:
    from jaxprecond.diagnostics import hvp_sparsity

    if not hasattr(task, "_jitted_sparsity"):
        task._jitted_sparsity = jax.jit(
            lambda params, batch, key: hvp_sparsity(
                lambda p: task.loss_fn(p, batch), params, key))
    return task._jitted_sparsity


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train every activation with ESGD, record sparsity, write the outputs; return the summary."""
    from experiments.harness.train import train

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for activation in args.activations:
        config = image.make_config(args, activation=activation, optimizer="esgd",
                                   out=str(out / activation)).replace(eval_every=args.every)
        task = SparsityImageTask(prepare(config), batch_size=args.probe_batch, seed=args.seed)
        task.every = args.every
        train(task, config)
        rows += [{"activation": activation, **r} for r in task.records]
    with (out / "sparsity.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["activation", "epoch", "leaf", "fraction"])
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    summary["settings"] = {"epochs": args.epochs, "every": args.every, "size": args.size,
                           "probe_batch": args.probe_batch, "seed": args.seed,
                           "image": args.image, "depth": args.depth, "width": args.width}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(out / "sparsity.png", rows)
    return summary


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per activation: mean fraction of zeros per leaf over the recorded points, and the mean
    over leaves (the paper's single number per activation)."""
    out: dict[str, Any] = {"activations": {}}
    for activation in dict.fromkeys(r["activation"] for r in rows):
        mine = [r for r in rows if r["activation"] == activation]
        leaves = list(dict.fromkeys(r["leaf"] for r in mine))
        per_leaf = {leaf: float(np.mean([r["fraction"] for r in mine if r["leaf"] == leaf]))
                    for leaf in leaves}
        out["activations"][activation] = {"per_leaf": per_leaf,
                                          "mean": float(np.mean(list(per_leaf.values())))}
    return out


def plot(path: pathlib.Path, rows: Sequence[dict[str, Any]]) -> None:
    """Mean fraction of zeros over training, per leaf, one group of bars per activation."""
    from experiments.harness.plots import _pyplot

    plt = _pyplot()
    summary = summarise(rows)["activations"]
    activations = list(summary)
    leaves = list(dict.fromkeys(leaf for a in activations for leaf in summary[a]["per_leaf"]))
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.6 * len(activations) * 1.5))
    height = 0.8 / max(len(leaves) + 1, 1)
    for i, activation in enumerate(activations):
        values = [summary[activation]["per_leaf"].get(leaf, np.nan) for leaf in leaves]
        values.append(summary[activation]["mean"])
        for j, v in enumerate(values):
            ax.barh(i + j * height, v, height, color=f"C{j}",
                    label=(leaves + ["mean"])[j] if i == 0 else None)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(activations))], activations)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of exact zeros in Hv (mean over training)")
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    """The command-line parser (the harness's run flags plus the sparsity ones)."""
    p = cli.OneLineParser(prog="python -m experiments.paper.sparsity", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--activations", nargs="+", default=list(ACTIVATIONS), metavar="NAME")
    p.add_argument("--every", type=int, default=1, help="epochs between measurements (1)")
    p.add_argument("--probe-batch", type=int, default=512,
                   help="pixels of the fixed batch whose loss the HVP differentiates (512)")
    image.add_data_args(p)
    cli.add_run_args(p, grid=True)
    p.set_defaults(out=DEFAULT_OUT, image=None, epochs=5, timing_steps=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code. ``--image`` defaults to the bundled image; pass
    ``--image`` the lion (``experiments.paper.lion.LION``) for the paper's setting."""
    return cli.run_main(lambda a: _main(a), argv)


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    summary = run(args)
    for activation, s in summary["activations"].items():
        print(f"{activation}: mean fraction of zeros in Hv {s['mean']:.3f}")
    print(f"outputs: {args.out}")
    return 0


__all__ = ["LION", "SparsityImageTask", "main", "run", "summarise"]

if __name__ == "__main__":
    sys.exit(main())
