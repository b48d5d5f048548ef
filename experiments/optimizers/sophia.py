"""Sophia (``optax.contrib.sophia``) driven by jaxprecond's diagonal estimators.

Sophia (Liu et al. 2023) divides an EMA of the gradient by ``max(gamma * h, eps)``, ``h`` an EMA
of a Hessian-diagonal estimate refreshed every ``update_interval`` steps, and clips every
coordinate of the result to ``[-1, 1]`` before the learning rate: where the curvature estimate is
small or negative the step falls back to a sign step of size ``lr``. Two variants:

* ``sophia_h``: ``hessian_diagonal_fn=jaxprecond.hutchinson_diagonal(...)``, Sophia-H with our
  Hutchinson estimator ``v * Hv``. Given the same seed it draws the same Rademacher probes as
  optax's own ``hutchinson_estimator_diag_hessian`` (one split of the state key, then one key per
  leaf), so the updates agree; unlike optax's, ours ``pmean`` the HVP over ``axis_name``, so
  replicas under ``pmap`` stay identical.
* ``sophia_e``: Sophia's clipped update with the equilibration preconditioner
  ``D^E = sqrt(EMA_b2((Hv)^2))`` (row norms of H, as ESGD uses) in place of the EMA of
  ``diag H``: :func:`rms_diagonal` wraps :func:`jaxprecond.equilibration_diagonal`, keeps the EMA
  of ``(Hv)^2`` and returns its square root; Sophia's own EMA is then switched off (``b2=0``)
  so ``h = D^E`` exactly. For the exact quantities ``D^E >= |diag H|`` entry-wise, and the
  estimate is never negative (a negative Hutchinson estimate makes ``sophia_h`` take a clipped
  sign step), so ``sophia_e`` clips less often than ``sophia_h``.

Both keep optax's defaults (``b1=0.965, b2=0.99, gamma=0.01, clip_threshold=1,
update_interval=10``) except ``weight_decay=0`` (Adam, our baseline, has none). The train step
(:func:`jaxprecond.make_train_step`) passes ``obj_fn``, which Sophia forwards to the estimator.
Sophia's ``lax.cond`` refresh (``count % update_interval == 0``) skips the HVP on other steps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["RmsDiagonalState", "rms_diagonal", "sophia_e", "sophia_h"]

_SOPHIA_DEFAULTS: dict[str, Any] = {"weight_decay": 0.0}


class RmsDiagonalState(NamedTuple):
    """State of :func:`rms_diagonal`: the estimator's state and the EMA of its estimates."""

    inner: Any
    ema: Any


def rms_diagonal(
    estimator: optax.GradientTransformationExtraArgs, decay: float = 0.99
) -> optax.GradientTransformationExtraArgs:
    """``sqrt(EMA_decay(estimate))`` of a diagonal estimator (as Sophia's ``h``: no bias
    correction).

    Args:
      estimator: a diagonal estimator whose ``update`` returns a non-negative estimate, e.g.
        :func:`jaxprecond.equilibration_diagonal` (``(Hv)^2``, mean ``||H_i,:||^2``).
      decay: the EMA's decay per call.

    Returns:
      An estimator (``update`` returns the estimate) for Sophia's ``hessian_diagonal_fn``.
    """
    estimator = optax.with_extra_args_support(estimator)

    def init_fn(params):
        return RmsDiagonalState(estimator.init(params), optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        est, inner = estimator.update(updates, state.inner, params, **extra_args)
        ema = optax.tree.update_moment(est, state.ema, decay, 1)
        return jax.tree.map(jnp.sqrt, ema), RmsDiagonalState(inner, ema)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sophia_h(
    learning_rate: optax.ScalarOrSchedule,
    *,
    seed: int = 0,
    axis_name: str | None = None,
    n_probes: int = 1,
    **options: Any,
) -> optax.GradientTransformationExtraArgs:
    """``optax.contrib.sophia`` with :func:`jaxprecond.hutchinson_diagonal` (Sophia-H).

    Args:
      learning_rate: a float or a schedule (the largest step of any coordinate).
      seed: seed of the estimator's probes.
      axis_name: mapped axis over which the estimator ``pmean``-s its HVPs.
      n_probes: Hutchinson probes per refresh.
      **options: any other ``optax.contrib.sophia`` argument (``b1``, ``b2``, ``gamma``,
        ``clip_threshold``, ``update_interval``, ``weight_decay``, ...).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its update needs ``obj_fn``.
    """
    import jaxprecond

    est = jaxprecond.hutchinson_diagonal(n_probes=n_probes, seed=seed, axis_name=axis_name)
    return optax.contrib.sophia(
        learning_rate, hessian_diagonal_fn=est, **{**_SOPHIA_DEFAULTS, **options})


def sophia_e(
    learning_rate: optax.ScalarOrSchedule,
    *,
    seed: int = 0,
    axis_name: str | None = None,
    n_probes: int = 1,
    b2: float = 0.99,
    **options: Any,
) -> optax.GradientTransformationExtraArgs:
    """Sophia's clipped update with the equilibration preconditioner ``D^E`` for ``h``.

    ``h = sqrt(EMA_b2((Hv)^2))`` (see :func:`rms_diagonal`), refreshed every
    ``update_interval`` steps; Sophia's own EMA is off.

    Args:
      learning_rate: a float or a schedule.
      seed: seed of the estimator's probes.
      axis_name: mapped axis over which the estimator ``pmean``-s its HVPs.
      n_probes: probes per refresh.
      b2: decay of the EMA of ``(Hv)^2`` per refresh (Sophia's ``b2``).
      **options: any other ``optax.contrib.sophia`` argument except ``b2``.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its update needs ``obj_fn``.
    """
    import jaxprecond

    est = rms_diagonal(
        jaxprecond.equilibration_diagonal(n_probes=n_probes, seed=seed, axis_name=axis_name),
        decay=b2)
    return optax.contrib.sophia(
        learning_rate, b2=0.0, hessian_diagonal_fn=est, **{**_SOPHIA_DEFAULTS, **options})
