"""The paper's Fig. 5 (and supp. Sec. 3.1): every preconditioner on a Gaussian field, the lion.

``python -m experiments.paper.fig5`` trains the paper's 5x256 Gaussian field (sigma 0.05) on the
DIV2K lion at 256x256, batch 512, with Adam, ESGD (our default and ``esgd_reference``),
ESGD-max, AdaHessian(E), the reference AdaHessian(J) (``|Hv|``), the true-Jacobi AdaHessian,
preconditioned SGD with ``D^J`` and ``D^E``, Shampoo and K-FAC, each at the registry's reference
settings (the supplement's hyperparameters where it gives them), 5 seeds, through the comparison
harness (:mod:`experiments.compare`): ``OUT/gaussian-OPTIMIZER/seedS`` plus ``report.md``.
``--resume`` reuses finished runs. A tiny configuration::

    python -m experiments.paper.fig5 --size 32 --epochs 1 --depth 2 --width 16 --seeds 0 \\
        --out runs/fig5-tiny
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from experiments import compare
from experiments.harness import cli
from experiments.paper.lion import LION

OPTIMIZERS = ("adam", "esgd", "esgd_reference", "esgd_max", "adahessian_e", "adahessian_j",
              "adahessian_jacobi", "preconditioned_sgd", "preconditioned_sgd_e", "shampoo", "kfac")
DEFAULT_OUT = "runs/fig5"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.fig5",
        title="DIV2K lion, Gaussian field: every preconditioner (paper Fig. 5)",
        out=DEFAULT_OUT, image=LION, activations=["gaussian"], optimizers=list(OPTIMIZERS),
        seeds=[0, 1, 2, 3, 4], epochs=10, target=25.0,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
