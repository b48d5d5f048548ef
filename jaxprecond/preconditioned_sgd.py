"""Preconditioned SGD: Algorithms 1 and 2 of the paper, with a Jacobi or equilibration D."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import optax

from jaxprecond.curvature import scale_by_curvature, with_learning_rate
from jaxprecond.estimators import diagonal_estimator
from jaxprecond.hvp import ProbeKind

# preconditioner -> (estimator kind, map from the estimate to an estimate of D)
_VARIANTS = {
    "jacobi": ("hutchinson", jnp.abs),  # D^J = |diag H| from |mean v * Hv|
    "equilibrated": ("equilibration", jnp.sqrt),  # D^E = ||H_i,:|| from sqrt(mean (Hv)^2)
}


def scale_by_preconditioned_sgd(
    preconditioner: Literal["jacobi", "equilibrated"] = "jacobi",
    eps: float = 1e-4,
    *,
    accumulate: bool = False,
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    axis_name: str | None = None,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Rescales the gradient by ``D**-1/2`` with a freshly estimated diagonal ``D`` every step.

    Algorithm 1 of the paper (``accumulate=False``): ``u = g / (sqrt(D_t) + eps)``, ``D_t`` the
    current estimate of ``D^J = |diag H|`` or ``D^E = ||H_i,:||``. Algorithm 2
    (``accumulate=True``): ``D_t = D_{t-1} + D_t^est``; as written the paper divides by the sum
    *before* the current estimate, which is zero at the first step, so we include it.

    Args:
      preconditioner: ``'jacobi'`` or ``'equilibrated'``.
      eps: added to the denominator.
      accumulate: Algorithm 2's running sum instead of Algorithm 1's fresh estimate.
      n_probes: probes averaged per step (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking the extra argument ``obj_fn``.
    """
    if preconditioner not in _VARIANTS:
        raise ValueError(
            f"preconditioner={preconditioner!r} is unknown; expected one of {tuple(_VARIANTS)}"
        )
    kind, to_d = _VARIANTS[preconditioner]
    return scale_by_curvature(
        diagonal_estimator(kind, n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name),
        statistic=to_d, b1=0.0, b2=0.0, eps=eps,
        accumulation="sum" if accumulate else "ema", warmup=0, update_interval=1,
        bias_correction="none",
    )


def preconditioned_sgd(
    learning_rate: optax.ScalarOrSchedule = 0.01,
    *,
    preconditioner: Literal["jacobi", "equilibrated"] = "jacobi",
    eps: float = 1e-4,
    accumulate: bool = False,
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    weight_decay: float = 0.0,
    axis_name: str | None = None,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """SGD preconditioned by a diagonal Hessian estimate, as the paper's Algorithms 1 and 2.

    ``x <- x - lr * D**-1/2 g`` with ``D`` the Jacobi (``|diag H|``) or the equilibration
    (``||H_i,:||``) diagonal, estimated from one HVP per step. No momentum, no averaging: a
    baseline that shows what the curvature alone does.

    Args:
      learning_rate: a number or an optax schedule.
      preconditioner: ``'jacobi'`` or ``'equilibrated'``.
      eps: added to the denominator.
      accumulate: Algorithm 2 (running sum of the estimates) instead of Algorithm 1.
      n_probes: probes averaged per step (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      weight_decay: decoupled weight decay.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` takes ``obj_fn``.

    Example:
      >>> import jaxprecond
      >>> tx = jaxprecond.preconditioned_sgd(0.01, preconditioner="equilibrated")

    References:
      Chng, Saratchandran and Lucey, `Preconditioners for the stochastic training of neural
      fields <https://arxiv.org/abs/2402.08784>`_, 2024 (Algorithms 1 and 2, v1).
    """
    return with_learning_rate(
        scale_by_preconditioned_sgd(
            preconditioner, eps, accumulate=accumulate, n_probes=n_probes, probe=probe,
            axis_name=axis_name, seed=seed,
        ),
        learning_rate,
        weight_decay,
    )
