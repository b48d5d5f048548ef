"""The paper's Fig. 2: condition numbers of a 1D fit before and after diagonal preconditioning.

``python -m experiments.paper.condition`` fits ``f(x) = sin(2 pi x) + sin(6 pi x)`` on ``--points``
evenly spaced ``x`` in [-1, 1] with a Gaussian field of two hidden layers of 16 units by
full-batch gradient descent, three times: plain GD, GD preconditioned by the exact equilibration
diagonal ``D^E = ||H_i,:||`` and by the exact Jacobi diagonal ``D^J = |diag H|`` (both recomputed
from the exact Hessian every step, plus ``--damping``). Along every trajectory it records the
exact condition numbers of ``H`` and of ``D^-1/2 H D^-1/2`` for both diagonals.

Step size: each descent takes ``--step-scale / ||P||`` with ``P`` its own preconditioned Hessian
(``H`` for plain GD), i.e. the ``1/L`` step of its own curvature, so the loss curves compare the
conditioning and not a hand-picked learning rate. ``--lr`` fixes one learning rate for all three
instead. Everything runs in float64 (condition numbers reach 1e8 and more).

Writes ``condition.csv`` (one row per step and descent), ``summary.json`` and ``condition.png``
(a: condition numbers, b: losses) under ``--out``. Tiny: ``--steps 5 --points 32 --width 4``.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

DESCENTS = ("gd", "equilibration", "jacobi")
DEFAULT_OUT = "runs/condition"


def target(x: np.ndarray) -> np.ndarray:
    """The paper's 1D signal ``sin(2 pi x) + sin(6 pi x)``."""
    return np.sin(2 * np.pi * x) + np.sin(6 * np.pi * x)


def _diag(h: np.ndarray, kind: str, damping: float) -> np.ndarray:
    if kind == "gd":
        return np.ones(h.shape[0], h.dtype)
    d = np.linalg.norm(h, axis=1) if kind == "equilibration" else np.abs(np.diag(h))
    return d + damping


def _kappa(m: np.ndarray) -> tuple[float, float, float]:
    """``(kappa, kappa on the numerical range, max |lambda|)`` of a symmetric matrix.

    ``kappa`` is ``max |lambda| / min |lambda|``; the second leaves out the eigenvalues below the
    numerical-rank cutoff ``n * eps * max |lambda|`` (NumPy's ``matrix_rank`` tolerance), i.e.
    the exactly flat directions (dead units, symmetries) that make the first ~1/eps. Positive
    diagonal scaling keeps the rank, so both are comparable before and after preconditioning.
    NumPy's ``eigvalsh`` is several times faster than XLA's on this CPU.
    """
    s = np.abs(np.linalg.eigvalsh(m))
    top = float(s.max())
    tiny = np.finfo(m.dtype).tiny
    cutoff = m.shape[0] * np.finfo(m.dtype).eps * top
    kept = s[s > cutoff]
    smallest_kept = float(kept.min()) if kept.size else tiny
    return top / max(float(s.min()), tiny), top / max(smallest_kept, tiny), top


def make_curvature(loss_flat: Any) -> Any:
    """Jitted ``theta -> (loss, gradient, symmetrised exact Hessian)``."""

    @jax.jit
    def curvature(theta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        loss, g = jax.value_and_grad(loss_flat)(theta)
        h = jax.hessian(loss_flat)(theta)
        return loss, g, 0.5 * (h + h.T)

    return curvature


def descent_step(loss: float, g: np.ndarray, h: np.ndarray, kind: str, damping: float,
                 step_scale: float, lr: float | None) -> tuple[np.ndarray, dict[str, float]]:
    """The update ``-eta D^-1 g`` of descent ``kind`` and the step's diagnostics."""
    diag: dict[str, float] = {"loss": float(loss)}
    norms = {}
    diag["kappa_hessian"], diag["kappa_range_hessian"], norms["gd"] = _kappa(h)
    for name in ("equilibration", "jacobi"):
        s = 1.0 / np.sqrt(_diag(h, name, damping))
        diag[f"kappa_{name}"], diag[f"kappa_range_{name}"], norms[name] = _kappa(
            h * s[:, None] * s[None, :])
    eta = step_scale / norms[kind] if lr is None else lr
    diag["step_size"] = float(eta)
    return -eta * g / _diag(h, kind, damping), diag


def run(*, steps: int = 1000, points: int = 256, width: int = 16, sigma: float = 0.1,
        damping: float = 1e-8, step_scale: float = 1.0, lr: float | None = None,
        seed: int = 0, log_every: int = 1, out: str = DEFAULT_OUT) -> dict[str, Any]:
    """Run the three descents and write the outputs; returns the summary."""
    import fields

    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    x = np.linspace(-1.0, 1.0, points)[:, None]
    y = target(x)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with jax.enable_x64(True):
        model = fields.make("gaussian", depth=3, width=width, out_features=1, sigma=sigma,
                            dtype=jnp.float64, param_dtype=jnp.float64)
        params = model.init(jax.random.key(seed), jnp.asarray(x[:1]))["params"]
        theta0, unravel = ravel_pytree(params)
        xs, ys = jnp.asarray(x), jnp.asarray(y)

        def loss_flat(theta: jax.Array) -> jax.Array:
            return jnp.mean((model.apply({"params": unravel(theta)}, xs) - ys) ** 2)

        curvature = make_curvature(loss_flat)
        for kind in DESCENTS:
            theta = np.asarray(theta0)
            for t in range(steps + 1):
                loss, g, h = (np.asarray(a) for a in curvature(jnp.asarray(theta)))
                update, diag = descent_step(float(loss), g, h, kind, damping, step_scale, lr)
                if t % log_every == 0 or t == steps:
                    rows.append({"descent": kind, "step": t, **diag})
                theta = theta + update
    _write_csv(out_dir / "condition.csv", rows)
    summary = summarise(rows)
    summary.update(settings={"steps": steps, "points": points, "width": width, "sigma": sigma,
                             "damping": damping, "step_scale": step_scale, "lr": lr,
                             "seed": seed, "num_params": int(theta0.shape[0])},
                   wall_time_s=time.perf_counter() - start)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(out_dir / "condition.png", rows)
    return summary


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """First and last condition numbers and losses of each descent, and the median ratios
    ``kappa(H) / kappa(D^-1/2 H D^-1/2)`` over the steps of each preconditioned descent."""
    out: dict[str, Any] = {}
    for kind in DESCENTS:
        r = [row for row in rows if row["descent"] == kind]
        if not r:
            continue
        entry = {"first": r[0], "last": r[-1]}
        for name in ("equilibration", "jacobi"):
            ratios = [row["kappa_hessian"] / row[f"kappa_{name}"] for row in r]
            entry[f"median_reduction_{name}"] = float(np.median(ratios))
            entry[f"fraction_steps_reduced_{name}"] = float(np.mean(np.array(ratios) > 1))
        out[kind] = entry
    return out


def _write_csv(path: pathlib.Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: pathlib.Path) -> list[dict[str, Any]]:
    """Rows of ``condition.csv`` with numbers parsed."""
    with path.open() as f:
        return [{k: (v if k == "descent" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def plot(path: pathlib.Path, rows: Sequence[dict[str, Any]]) -> None:
    """Fig. 2: (a) kappa before (dotted) and after (solid) each preconditioner along its own
    descent; (b) the losses of the three descents."""
    from experiments.harness.plots import _pyplot

    plt = _pyplot()
    fig, (ax_k, ax_l) = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"gd": "tab:blue", "equilibration": "goldenrod", "jacobi": "tab:green"}
    for kind in DESCENTS:
        r = [row for row in rows if row["descent"] == kind]
        steps = [row["step"] for row in r]
        if kind != "gd":
            ax_k.semilogy(steps, [row["kappa_hessian"] for row in r], ":", color=colors[kind],
                          label=f"kappa(H), {kind} descent")
            ax_k.semilogy(steps, [row[f"kappa_{kind}"] for row in r], "-", color=colors[kind],
                          label=f"kappa(D^-1/2 H D^-1/2), D={kind}")
        ax_l.semilogy(steps, [row["loss"] for row in r], color=colors[kind],
                      label="GD" if kind == "gd" else f"GD + {kind}")
    ax_k.set(xlabel="step", ylabel="condition number", title="(a) condition numbers")
    ax_l.set(xlabel="step", ylabel="MSE", title="(b) full-batch loss")
    for ax in (ax_k, ax_l):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="python -m experiments.paper.condition", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="descent steps (default 1000)")
    p.add_argument("--points", type=int, default=256, help="samples of the signal (256)")
    p.add_argument("--width", type=int, default=16, help="hidden width (16)")
    p.add_argument("--sigma", type=float, default=0.1, help="Gaussian width (0.1)")
    p.add_argument("--damping", type=float, default=1e-8, help="added to D^E and D^J (1e-8)")
    p.add_argument("--step-scale", type=float, default=1.0,
                   help="step = scale / ||preconditioned H|| (1.0)")
    p.add_argument("--lr", type=float, default=None, help="fixed learning rate instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    a = parser().parse_args(argv)
    s = run(steps=a.steps, points=a.points, width=a.width, sigma=a.sigma, damping=a.damping,
            step_scale=a.step_scale, lr=a.lr, seed=a.seed, log_every=a.log_every, out=a.out)
    for kind in DESCENTS:
        print(f"{kind}: loss {s[kind]['first']['loss']:.3g} -> {s[kind]['last']['loss']:.3g}; "
              f"kappa(H) {s[kind]['first']['kappa_hessian']:.3g}, "
              f"D^E {s[kind]['first']['kappa_equilibration']:.3g}, "
              f"D^J {s[kind]['first']['kappa_jacobi']:.3g} at step 0")
    print(f"outputs: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
