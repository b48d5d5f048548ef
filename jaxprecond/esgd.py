"""Equilibrated SGD (ESGD) and ESGD-max as optax transforms."""

from __future__ import annotations

from typing import Any, Literal

import optax

from jaxprecond.curvature import scale_by_curvature, with_learning_rate
from jaxprecond.estimators import equilibration_diagonal
from jaxprecond.hvp import ProbeKind


def scale_by_esgd(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    *,
    update_interval: int = 100,
    warmup: int = 50,
    bias_correction: Literal["per_refresh", "reference"] = "per_refresh",
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
    warmup_probes: int | None = None,
    curvature_floor: float = 0.0,
    clip: float | None = 1.0,
    lr_warmup_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by the equilibration preconditioner, refreshed on a schedule.

    On refresh steps ``D <- b2 D + (1 - b2) (Hv)**2``; every step
    ``u = m_hat / (sqrt(D / c) + eps)`` with Adam's first moment ``m``. ``c`` is
    ``1 - b2**n`` after ``n`` refreshes (``'per_refresh'``, the correct debiasing of an average
    of ``n`` samples) or ``1 - b2**t`` at step ``t`` (``'reference'``, what the paper's code does;
    between refreshes it keeps shrinking, so steps grow 2-3x larger than the curvature says).

    Args:
      b1: decay of the first moment.
      b2: decay of the curvature average.
      eps: added to the denominator.
      update_interval: HVP refresh period after the warm-up.
      warmup: number of initial steps that each take an HVP.
      bias_correction: ``'per_refresh'`` (default) or ``'reference'``.
      n_probes: probes averaged per refresh (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` (reference) or ``'gaussian'``.
      axis_name: mapped axis over which the curvature is ``pmean``-ed (pmap / shard_map).
      seed: seed of the probe PRNG key kept in the state.
      mu_dtype: dtype of the first moment.
      warmup_probes, curvature_floor, clip, lr_warmup_steps: safeguards against a collapse
        (:func:`jaxprecond.curvature.scale_by_curvature`): probes per warm-up refresh, floor
        of the root curvature relative to its mean, bound on the preconditioned update's
        entries, linear ramp of the step over the first steps. Only ``clip = 1`` is on by
        default; ``clip=None`` is the reference method (see :func:`esgd`).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking the extra argument ``obj_fn``.
    """
    if bias_correction not in ("per_refresh", "reference"):
        raise ValueError(
            f"bias_correction={bias_correction!r} is unknown; expected 'per_refresh' or 'reference'"
        )
    warmup_estimator = None
    if warmup_probes is not None:
        warmup_estimator = equilibration_diagonal(
            n_probes=warmup_probes, probe=probe, seed=seed, axis_name=axis_name)
    return scale_by_curvature(
        equilibration_diagonal(n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name),
        b1=b1, b2=b2, eps=eps, accumulation="ema", warmup=warmup,
        update_interval=update_interval, bias_correction=bias_correction, mu_dtype=mu_dtype,
        warmup_estimator=warmup_estimator, curvature_floor=curvature_floor, clip=clip,
        lr_warmup_steps=lr_warmup_steps,
    )


def esgd(
    learning_rate: optax.ScalarOrSchedule = 0.15,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    *,
    update_interval: int = 100,
    warmup: int = 50,
    bias_correction: Literal["per_refresh", "reference"] = "per_refresh",
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    weight_decay: float = 0.0,
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
    warmup_probes: int | None = None,
    curvature_floor: float = 0.0,
    clip: float | None = 1.0,
    lr_warmup_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Equilibrated stochastic gradient descent (ESGD), with a bound on each step.

    Defaults are the reference settings (Rademacher probes, an HVP on each of the first 50 steps
    and then every 100 steps (0-based steps 149, 249, ...), ``b1 = 0.9``, ``b2 = 0.999``,
    ``eps = 1e-4``, learning rate 0.15; the paper uses 0.1 for ReLU+PE fields) with one
    safeguard added: each entry of the preconditioned update ``m_hat / (sqrt(D) + eps)`` is
    clipped to ``[-1, 1]`` (``clip=1``, as ``optax.contrib.sophia`` clips its ratio), so no
    coordinate moves more than ``learning_rate`` in a step. A single Rademacher probe can make
    ``(Hv)_i`` almost cancel, and the reference method then takes a step of
    ``learning_rate * g_i / eps`` that wrecks some seeds in their first steps; healthy entries
    are 100-1000x below the bound, so it acts on those outliers only. Over 5 seeds on DIV2K
    images it removed every collapse and raised the median PSNR (``docs/ROBUSTNESS.md``).

    Which is which:

    - ``esgd(lr)``: this library's ESGD (per-refresh bias correction, ``clip=1``);
    - ``esgd(lr, clip=None)``: the method of the papers, with the correct bias correction;
    - ``esgd(lr, clip=None, bias_correction='reference')``: exactly what the paper's PyTorch
      code does.

    Steps without a refresh cost one gradient, like Adam.

    Args:
      learning_rate: a number or an optax schedule.
      b1: decay of the first moment.
      b2: decay of the curvature average.
      eps: added to the denominator.
      update_interval: HVP refresh period after the warm-up.
      warmup: number of initial steps that each take an HVP.
      bias_correction: ``'per_refresh'`` (default, correct) or ``'reference'`` (the reference
        code's total-step correction).
      n_probes: probes averaged per refresh (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      weight_decay: decoupled weight decay (AdamW-style), 0 by default.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.
      mu_dtype: dtype of the first moment.
      warmup_probes: probes averaged on each warm-up refresh (``None``: as ``n_probes``).
      curvature_floor: floor of ``sqrt(D)`` as a fraction of its mean over each parameter
        (``0``: none).
      clip: bound on each entry of the preconditioned update before the learning rate, so no
        coordinate moves more than ``clip * learning_rate`` in a step (default 1; ``None``:
        no bound, the reference method).
      lr_warmup_steps: the step ramps linearly to its full size over these first steps.
        ``warmup_probes``, ``curvature_floor`` and ``lr_warmup_steps`` are off by default; see
        ``docs/ROBUSTNESS.md`` for what each safeguard does to the seed-to-seed spread.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` takes ``obj_fn``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxprecond
      >>> loss = lambda p, x: jnp.mean((x @ p) ** 2)
      >>> params, x = jnp.ones(3), jnp.eye(3)
      >>> tx = jaxprecond.esgd(0.1)
      >>> state = tx.init(params)
      >>> obj_fn = lambda p: loss(p, x)
      >>> updates, state = tx.update(jax.grad(obj_fn)(params), state, params, obj_fn=obj_fn)

    References:
      Dauphin, de Vries and Bengio, `Equilibrated adaptive learning rates for non-convex
      optimization <https://arxiv.org/abs/1502.04390>`_, 2015.
      Chng, Saratchandran and Lucey, `Preconditioners for the stochastic training of neural
      fields <https://arxiv.org/abs/2402.08784>`_, 2024.
    """
    return with_learning_rate(
        scale_by_esgd(
            b1, b2, eps, update_interval=update_interval, warmup=warmup,
            bias_correction=bias_correction, n_probes=n_probes, probe=probe,
            axis_name=axis_name, seed=seed, mu_dtype=mu_dtype, warmup_probes=warmup_probes,
            curvature_floor=curvature_floor, clip=clip, lr_warmup_steps=lr_warmup_steps,
        ),
        learning_rate,
        weight_decay,
    )


def scale_by_esgd_max(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    *,
    update_interval: int = 100,
    warmup: int = 50,
    lr_warmup: float = 0.99,
    momentum_bias_correction: bool = True,
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformationExtraArgs:
    """ESGD-max: a decayed running maximum of ``(Hv)**2`` with Nesterov-style momentum.

    On refresh steps ``nu <- max(b2 nu, (Hv)**2)`` (no bias correction of ``nu``); every step,
    at (1-based) step ``t`` after ``n`` refreshes::

        u = (b1 m_t + (1 - b1) g) / (1 - b1**(t+1)) / (sqrt(nu) + eps) * (1 - lr_warmup**n)

    with ``m_t = b1 m_{t-1} + (1 - b1) g``, as the reference ``esgd_max.py`` (crowsonkb's ESGD
    v2) computes it: ``1 - b1**(t+1)`` is the weight ``b1 m_t + (1 - b1) g`` puts on the
    gradients so far (the reference's ``1 - bias * beta1``). ``momentum_bias_correction=False``
    leaves that division out; the first steps are then up to ``1 / (1 - b1**2)``, about 5x,
    smaller.

    Args:
      b1: decay of the first moment.
      b2: decay applied to the running maximum.
      eps: added to the denominator.
      update_interval: HVP refresh period after the warm-up.
      warmup: number of initial steps that each take an HVP.
      lr_warmup: the step is scaled by ``1 - lr_warmup ** (number of HVPs)``.
      momentum_bias_correction: divide the momentum by ``1 - b1**(t+1)`` as the reference
        does (default); ``False`` leaves it out.
      n_probes: probes averaged per refresh (``None``: one). A Python int; under
        ``optax.inject_hyperparams`` name it in ``static_args`` when you set it.
      probe: ``'rademacher'`` or ``'gaussian'``.
      axis_name: mapped axis over which the curvature is ``pmean``-ed.
      seed: seed of the probe PRNG key.
      mu_dtype: dtype of the first moment.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking the extra argument ``obj_fn``.
    """
    return scale_by_curvature(
        equilibration_diagonal(n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name),
        b1=b1, b2=b2, eps=eps, accumulation="max", warmup=warmup,
        update_interval=update_interval, bias_correction="none", nesterov=True,
        momentum_bias_correction=momentum_bias_correction, lr_warmup=lr_warmup,
        mu_dtype=mu_dtype,
    )


def esgd_max(
    learning_rate: optax.ScalarOrSchedule = 0.15,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    *,
    update_interval: int = 100,
    warmup: int = 50,
    lr_warmup: float = 0.99,
    momentum_bias_correction: bool = True,
    n_probes: int | None = None,
    probe: ProbeKind = "rademacher",
    weight_decay: float = 0.0,
    axis_name: str | None = None,
    seed: int = 0,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformationExtraArgs:
    """ESGD-max, the reference ``esgd_max.py`` variant of ESGD (see :func:`scale_by_esgd_max`).

    Args:
      learning_rate: a number or an optax schedule.
      b1: decay of the first moment.
      b2: decay applied to the running maximum.
      eps: added to the denominator.
      update_interval: HVP refresh period after the warm-up.
      warmup: number of initial steps that each take an HVP.
      lr_warmup: the step is scaled by ``1 - lr_warmup ** (number of HVPs)``.
      momentum_bias_correction: the reference's division of the momentum by
        ``1 - b1**(t+1)`` (default); ``False`` leaves it out.
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
      >>> tx = jaxprecond.esgd_max(0.15)

    References:
      Dauphin, de Vries and Bengio, `Equilibrated adaptive learning rates for non-convex
      optimization <https://arxiv.org/abs/1502.04390>`_, 2015.
    """
    return with_learning_rate(
        scale_by_esgd_max(
            b1, b2, eps, update_interval=update_interval, warmup=warmup, lr_warmup=lr_warmup,
            momentum_bias_correction=momentum_bias_correction, n_probes=n_probes, probe=probe,
            axis_name=axis_name, seed=seed, mu_dtype=mu_dtype,
        ),
        learning_rate,
        weight_decay,
    )
