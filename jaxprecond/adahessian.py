"""AdaHessian with the equilibration, Jacobi, published and reference ``|Hv|`` preconditioners.

Which diagonal ``D`` each variant divides the gradient by (``hessian_power=1``):

- ``'equilibrated'`` (AdaHessian(E)): EMA of ``(Hv)**2``; ``D = sqrt(.)``, in expectation the
  row norms ``||H_i,:||``.
- ``'jacobi'`` (true Jacobi): EMA of the signed ``v * Hv``; ``D = |.|``, in expectation
  ``|diag H|``.
- ``'squared_hutchinson'`` (AdaHessian as published): EMA of ``(v * Hv)**2``; ``D = sqrt(.)``,
  equal to ``||H_i,:||`` in expectation for Rademacher ``v``.
- ``'abs_hvp'`` (the reference AdaHessian(J)): EMA of ``|Hv|``; ``D = sqrt(.)``, the square root
  of an entry-wise mean absolute row combination.

AdaHessian as published (Yao et al. 2021) squares a single probe's Hutchinson estimate
``v * Hv`` before its moving average. With a Rademacher probe every ``v_i`` is +-1, so
``(v * Hv)**2 == (Hv)**2``: in expectation that is the *equilibration* preconditioner, not the
Jacobi one. ``'jacobi'`` averages the signed ``v * Hv`` (whose mean is ``diag H``) and takes the
absolute value of the average, so it converges to ``|diag H|``.
"""

from __future__ import annotations

from typing import Any, Literal

import jax.numpy as jnp
import optax

from jaxprecond.curvature import scale_by_curvature, with_learning_rate
from jaxprecond.estimators import diagonal_estimator
from jaxprecond.hvp import ProbeKind

Preconditioner = Literal["equilibrated", "jacobi", "squared_hutchinson", "abs_hvp"]

# preconditioner -> (estimator kind, statistic accumulated by the moving average, map from the
# bias-corrected average to D)
_VARIANTS = {
    # AdaHessian(E): E[(Hv)^2] = ||H_i,:||^2, so sqrt(average) is the row norm D^E.
    "equilibrated": ("equilibration", None, jnp.sqrt),
    # True Jacobi: E[v * Hv] = diag H, so |average| is D^J = |diag H|.
    "jacobi": ("hutchinson", None, jnp.abs),
    # AdaHessian as published (Yao et al.): (v * Hv)^2 averaged, then square-rooted. With a
    # Rademacher v this is (Hv)^2: equilibration in expectation.
    "squared_hutchinson": ("hutchinson", jnp.square, jnp.sqrt),
    # The reference AdaHessian(J): |Hv| averaged, then square-rooted.
    "abs_hvp": ("abs_hvp", None, jnp.sqrt),
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
    """Rescales updates as AdaHessian: ``m_hat / (D**k + eps)``.

    ``D`` comes from a moving average ``v`` of a per-refresh HVP statistic chosen by
    ``preconditioner`` (see the module docstring): ``'equilibrated'`` averages ``(Hv)**2`` and
    ``D = sqrt(v_hat) -> ||H_i,:||`` (AdaHessian(E) of the paper); ``'jacobi'`` averages the
    signed Hutchinson estimate ``v * Hv`` and ``D = |v_hat| -> |diag H|`` (the Jacobi
    preconditioner ``D^J``); ``'squared_hutchinson'`` averages ``(v * Hv)**2`` and
    ``D = sqrt(v_hat)``, AdaHessian as published, which with Rademacher probes is the
    equilibration preconditioner in expectation; ``'abs_hvp'`` averages ``|Hv|`` and
    ``D = sqrt(v_hat)``, what the paper's reference AdaHessian(J) code does (a square-root
    row-norm scaling, not a Jacobi diagonal).

    Args:
      preconditioner: ``'equilibrated'``, ``'jacobi'``, ``'squared_hutchinson'`` or
        ``'abs_hvp'``.
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
    kind, statistic, diagonal_fn = _VARIANTS[preconditioner]
    return scale_by_curvature(
        diagonal_estimator(kind, n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name),
        statistic=statistic, diagonal_fn=diagonal_fn, b1=b1, b2=b2, eps=eps,
        accumulation="ema", warmup=warmup, update_interval=update_interval,
        bias_correction=bias_correction, hessian_power=hessian_power, mu_dtype=mu_dtype,
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
    """AdaHessian: Adam with a Hessian diagonal in place of the second moment.

    See :func:`scale_by_adahessian` for what each ``preconditioner`` divides by.

    Defaults follow the paper's reference code: an HVP every step, ``k = 1``, ``eps = 1e-4``,
    learning rate 0.15.

    Args:
      learning_rate: a number or an optax schedule.
      preconditioner: ``'equilibrated'`` (AdaHessian(E), ``D = ||H_i,:||``), ``'jacobi'``
        (``D = |diag H|``), ``'squared_hutchinson'`` (AdaHessian as published; equilibration in
        expectation with Rademacher probes) or ``'abs_hvp'`` (the reference AdaHessian(J)).
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
