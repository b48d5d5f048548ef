"""The paper's image comparison on the DIV2K lion: ``python -m experiments.paper.lion``.

Gaussian, sine, wavelet and ReLU+PE fields, each trained with Adam, ESGD (our per-refresh bias
correction), ESGD with the reference code's bias correction (``esgd_reference``), AdaHessian(E)
and AdaHessian(J) at the registry's reference learning rates, through the comparison harness
(:mod:`experiments.compare`): one run directory per pair under ``--out`` plus ``report.md``.
Extending a finished grid: rerun with ``--resume --epochs N``. A tiny configuration::

    python -m experiments.paper.lion --size 32 --epochs 1 --depth 2 --width 16 --out runs/lion-tiny
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from experiments import compare, optimizers
from experiments.harness import cli

LION = "../shared/data/images/div2k_fourier_features_test/image_014.jpg"
ACTIVATIONS = ("gaussian", "sine", "wavelet", "relu_pe")
OPTIMIZERS = ("adam", "esgd", "esgd_reference", "adahessian_e", "adahessian_j")
DEFAULT_OUT = "runs/lion"


def register_reference_esgd() -> None:
    """Register ``esgd_reference``: ESGD exactly as the reference code runs it, with its bias
    correction ``1 - b2**t`` over all steps (not over refreshes) and no clip, at ESGD's
    learning rates."""
    if "esgd_reference" in optimizers.names():
        return
    esgd = optimizers.get("esgd")
    optimizers.register(optimizers.OptimizerSpec(
        "esgd_reference",
        optimizers.lazy_builder("jaxprecond", "esgd", bias_correction="reference", clip=None),
        default_lr=dict(esgd.default_lr), uses_curvature=True,
        description="ESGD as the reference code: bias correction 1 - b2^t (t = all steps), no clip",
    ))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return cli.run_main(lambda a: compare.drive(
        a, prog="python -m experiments.paper.lion", title="DIV2K lion: optimizer comparison",
        setup=register_reference_esgd, out=DEFAULT_OUT, image=LION,
        activations=list(ACTIVATIONS), optimizers=list(OPTIMIZERS), epochs=10, target=25.0,
    ), argv)


if __name__ == "__main__":
    sys.exit(main())
