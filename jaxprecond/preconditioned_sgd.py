"""Preconditioned SGD: Algorithms 1 and 2 of the paper, with a Jacobi or equilibration D."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
import optax

from jaxprecond.curvature import scale_by_curvature, with_learning_rate
from jaxprecond.estimators import diagonal_estimator
from jaxprecond.hvp import ProbeKind

# preconditioner -> (estimator kind, map from the (averaged) estimate to D)
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
    """Rescales the gradient by ``D**-1`` with a diagonal ``D`` estimated from HVPs every step.

    Algorithm 1 of the paper (``accumulate=False``): ``u = g / (D_t + eps)``, ``D_t`` this
    step's estimate of ``D^J = |diag H|`` (``|mean_k v_k * H v_k|``) or ``D^E = ||H_i,:||``
    (``sqrt(mean_k (H v_k)**2)``). The power is -1, not the ``-1/2`` that Algorithm 1 writes:
    the paper's change of variables ``x~ = D**(1/2) x`` (v1 eqs. 1-5) gives the preconditioned
    Hessian ``D**-1/2 H D**-1/2`` and, in the original variables, the step ``D**-1 g``; the
    ``D**-1/2`` of Algorithm 1 is what one writes for a ``D`` that holds squared row norms.

    With one Rademacher probe (the default) the two are the *same* step: ``|v_i (Hv)_i| =
    |(Hv)_i| = sqrt((Hv)_i**2)`` because ``|v_i| = 1``, so Algorithm 1's Jacobi and equilibration
    estimates coincide entry by entry. They differ (and converge to ``|diag H|`` and
    ``||H_i,:||``) only when the estimate averages several probes (``n_probes > 1``) or steps
    (``accumulate=True``).

    ``accumulate=True`` (Algorithm 2, ESGD as in Dauphin et al.): the estimates of all steps
    so far are averaged with equal weights before ``D`` is formed (the signed ``v * Hv`` for
    Jacobi, ``(Hv)**2`` for equilibration), so ``D`` converges to its exact value at a fixed
    point instead of following one noisy probe. (The paper's Algorithm 2 writes a running sum
    and divides by the sum before the current estimate, zero at the first step; the average
    keeps ``D`` on the scale of ``H``, so the learning rate means the same in both modes.)

    Args:
      preconditioner: ``'jacobi'`` or ``'equilibrated'``.
      eps: added to the denominator.
      accumulate: average the estimates of all steps (Algorithm 2) instead of Algorithm 1's
        fresh estimate.
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
        diagonal_fn=to_d, b1=0.0, b2=0.0, eps=eps,
        accumulation="mean" if accumulate else "ema", warmup=0, update_interval=1,
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

    ``x <- x - lr * D**-1 g`` with ``D`` the Jacobi (``|diag H|``) or the equilibration
    (``||H_i,:||``) diagonal, estimated from HVPs every step (see
    :func:`scale_by_preconditioned_sgd` for why the power is -1). No momentum: a baseline that
    shows what the curvature alone does.

    Args:
      learning_rate: a number or an optax schedule.
      preconditioner: ``'jacobi'`` or ``'equilibrated'``.
      eps: added to the denominator.
      accumulate: Algorithm 2 (average of all estimates so far) instead of Algorithm 1.
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
