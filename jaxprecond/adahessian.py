"""AdaHessian with the equilibration, Jacobi and reference ``|Hv|`` preconditioners."""

from __future__ import annotations

from typing import Any, Literal

import jax.numpy as jnp
import optax

from jaxprecond.curvature import scale_by_curvature, with_learning_rate
from jaxprecond.estimators import diagonal_estimator
from jaxprecond.hvp import ProbeKind

Preconditioner = Literal["equilibrated", "jacobi", "abs_hvp"]

# preconditioner -> (estimator kind, statistic accumulated by the moving average)
_VARIANTS = {
    # AdaHessian(E): E[(Hv)^2] = ||H_i,:||^2, so sqrt(average) is the row norm D^E.
    "equilibrated": ("equilibration", None),
    # True Jacobi (Yao et al.'s AdaHessian): (v * Hv)^2, so sqrt(average) ~ |diag H| = D^J.
    "jacobi": ("hutchinson", jnp.square),
    # The reference AdaHessian(J): |Hv| averaged, then square-rooted.
    "abs_hvp": ("abs_hvp", None),
}
PRECONDITIONERS: tuple[str, ...] = tuple(_VARIANTS)


def scale_by_adahessian(
    preconditioner: Preconditioner = "equilibrated",
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    *,
    hessian_power: float = 1.0,
    update_interval: int = 1,
    warmup: int = 0,
    bias_correction: Literal["per_refresh", "reference"] = "per_refresh",
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates as AdaHessian: ``m_hat / ((sqrt(v_hat))**k + eps)``.

    ``v`` is a moving average of a per-refresh HVP statistic chosen by ``preconditioner``:
    ``'equilibrated'`` averages ``(Hv)**2`` (AdaHessian(E) of the paper); ``'jacobi'`` averages
    ``(v * Hv)**2``, the Hutchinson diagonal squared (AdaHessian as published, a Jacobi
    preconditioner); ``'abs_hvp'`` averages ``|Hv|``, which is what the paper's reference
    AdaHessian(J) code does (a square-root row-norm scaling, not a Jacobi diagonal).

    Args:
      preconditioner: ``'equilibrated'``, ``'jacobi'`` or ``'abs_hvp'``.
      b1: decay of the first moment.
      b2: decay of the curvature average.
      eps: added to the denominator.
      hessian_power: the power ``k`` (1 in the paper).
      update_interval: HVP refresh period after the warm-up (1: every step, as the reference).
      warmup: number of initial steps that each take an HVP.
      bias_correction: ``'per_refresh'`` or ``'reference'`` (identical when refreshing every
        step).
      n_probes: probes averaged per refresh (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.
      mu_dtype: dtype of the first moment.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking the extra argument ``obj_fn``.
    """
    if preconditioner not in _VARIANTS:
        raise ValueError(
            f"preconditioner={preconditioner!r} is unknown; expected one of {PRECONDITIONERS}"
        )
    if bias_correction not in ("per_refresh", "reference"):
        raise ValueError(
            f"bias_correction={bias_correction!r} is unknown; expected 'per_refresh' or 'reference'"
        )
    kind, statistic = _VARIANTS[preconditioner]
    return scale_by_curvature(
        diagonal_estimator(kind, n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name),
        statistic=statistic, b1=b1, b2=b2, eps=eps, accumulation="ema", warmup=warmup,
        update_interval=update_interval, bias_correction=bias_correction,
        hessian_power=hessian_power, mu_dtype=mu_dtype,
    )


def adahessian(
    learning_rate: optax.ScalarOrSchedule = 0.15,
    *,
    preconditioner: Preconditioner = "equilibrated",
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    hessian_power: float = 1.0,
    update_interval: int = 1,
    warmup: int = 0,
    bias_correction: Literal["per_refresh", "reference"] = "per_refresh",
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    weight_decay: float = 0.0,
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformationExtraArgs:
    """AdaHessian: Adam with a Hessian-based second moment (see :func:`scale_by_adahessian`).

    Defaults follow the paper's reference code: an HVP every step, ``k = 1``, ``eps = 1e-4``,
    learning rate 0.15.

    Args:
      learning_rate: a number or an optax schedule.
      preconditioner: ``'equilibrated'`` (AdaHessian(E)), ``'jacobi'`` (true Jacobi) or
        ``'abs_hvp'`` (the reference AdaHessian(J)).
      b1: decay of the first moment.
      b2: decay of the curvature average.
      eps: added to the denominator.
      hessian_power: the power ``k``.
      update_interval: HVP refresh period after the warm-up.
      warmup: number of initial steps that each take an HVP.
      bias_correction: ``'per_refresh'`` or ``'reference'``.
      n_probes: probes averaged per refresh (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      weight_decay: decoupled weight decay.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.
      mu_dtype: dtype of the first moment.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` takes ``obj_fn``.

    Example:
      >>> import jaxprecond
      >>> tx = jaxprecond.adahessian(0.15, preconditioner="jacobi")

    References:
      Yao et al., `ADAHESSIAN: An adaptive second order optimizer for machine learning
      <https://arxiv.org/abs/2006.00719>`_, 2021.
      Chng, Saratchandran and Lucey, `Preconditioners for the stochastic training of neural
      fields <https://arxiv.org/abs/2402.08784>`_, 2024.
    """
    return with_learning_rate(
        scale_by_adahessian(
            preconditioner, b1, b2, eps, hessian_power=hessian_power,
            update_interval=update_interval, warmup=warmup, bias_correction=bias_correction,
            n_probes=n_probes, probe=probe, axis_name=axis_name, seed=seed, mu_dtype=mu_dtype,
        ),
        learning_rate,
        weight_decay,
    )
