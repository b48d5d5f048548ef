"""The paper's image comparison on the DIV2K lion: ``python -m experiments.paper.lion``.

Gaussian, sine, wavelet and ReLU+PE fields, each trained with Adam, ESGD (the library default:
per-refresh bias correction, clip 1), ESGD as the reference code runs it (``esgd_reference``),
AdaHessian(E) and AdaHessian(J) at the registry's reference learning rates, through the
comparison harness (:mod:`experiments.compare`): one run directory per pair under ``--out`` plus
``report.md``. Extending a finished grid: rerun with ``--resume --epochs N``. A tiny configuration::

    python -m experiments.paper.lion --size 32 --epochs 1 --depth 2 --width 16 --out runs/lion-tiny
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from experiments import compare
from experiments.harness import cli

LION = "../shared/data/images/div2k_fourier_features_test/image_014.jpg"
ACTIVATIONS = ("gaussian", "sine", "wavelet", "relu_pe")
OPTIMIZERS = ("adam", "esgd", "esgd_reference", "adahessian_e", "adahessian_j")
DEFAULT_OUT = "runs/lion"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.lion", title="DIV2K lion: optimizer comparison",
        out=DEFAULT_OUT, image=LION,
        activations=list(ACTIVATIONS), optimizers=list(OPTIMIZERS), epochs=10, target=25.0,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
