"""The paper's Fig. 3 (image panel): Adam against SGD for each activation.

``python -m experiments.paper.adam_vs_sgd`` trains ReLU+PE, wavelet, sine and Gaussian fields
with Adam and with SGD (registry learning rates) through the comparison harness
(:mod:`experiments.compare`) and writes its ``report.md`` and loss plots under ``--out``. Tiny::

    python -m experiments.paper.adam_vs_sgd --size 16 --depth 2 --width 8 --epochs 1 --out /tmp/avs
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from experiments import compare
from experiments.harness import cli

ACTIVATIONS = ("relu_pe", "wavelet", "sine", "gaussian")
DEFAULT_OUT = "runs/adam_vs_sgd"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code. ``--image`` defaults to the bundled image; pass the
    lion (``experiments.paper.lion.LION``) for the paper's setting."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.adam_vs_sgd", title="Adam vs SGD (paper Fig. 3a)",
        out=DEFAULT_OUT, activations=list(ACTIVATIONS), optimizers=["adam", "sgd"], epochs=10,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
