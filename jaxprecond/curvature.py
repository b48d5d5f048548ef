"""The shared engine of every HVP-based diagonal preconditioner in jaxprecond.

ESGD, ESGD-max, AdaHessian (all its variants) and the paper's preconditioned SGD differ only in
*which* statistic of a Hessian-vector product they accumulate, *how* they accumulate it, how they
turn the accumulator into the diagonal ``D``, how often they refresh it and how they correct its
bias. :func:`scale_by_curvature` implements that once; the public optimizers are thin
configurations of it.

The update, for gradient ``g`` at step ``t`` (1-based) after ``n`` curvature refreshes, is::

    on refresh steps:  s   = statistic(estimate)            # e.g. (Hv)^2 or v * Hv
                       nu  = b2 * nu + (1 - b2) * s          # 'ema'
                           | max(b2 * nu, s)                 # 'max'
                           | nu + (s - nu) / n               # 'mean' (equal weights)
                           | nu + s                          # 'sum'
    every step:        mu  = b1 * mu + (1 - b1) * g
                       D   = diagonal_fn(nu / c)             # sqrt for a second moment,
                                                             # abs for a signed diagonal
                       u   = mu_hat / (D**k + eps) * lr_scale

with ``c = 1 - b2**n`` ('per_refresh', correct), ``1 - b2**t`` ('reference', what the paper's
PyTorch code does), or 1 ('none'); ``lr_scale = 1 - lr_warmup**n`` for ESGD-max. Every
preconditioner therefore divides the gradient by its own ``D`` (power -1, the paper's change of
variables, eqs. 2-5 of v1): ``D = sqrt(mean (Hv)**2) -> ||H_i,:||`` for equilibration and
``D = |mean v * Hv| -> |diag H|`` for Jacobi. The Jacobi estimate is averaged *signed* and its
absolute value taken afterwards: with a Rademacher ``v``, ``(v * Hv)**2 == (Hv)**2``, so
squaring each probe's estimate before averaging would estimate the row norms instead.

Safeguards against a collapse (all off by default, i.e. the reference behaviour; see
``docs/ROBUSTNESS.md``). With one Rademacher probe, ``(Hv)_i**2`` can be tiny for a coordinate
whose row of ``H`` is not, and dividing by its square root gives that coordinate a huge step:

- ``warmup_probes=K``: refreshes during the warm-up average ``K`` probes (``K`` HVPs each);
- ``curvature_floor=r``: ``D`` is floored at ``r`` times its mean over the leaf,
  ``max(D, r * mean(D))``;
- ``clip=rho``: every entry of ``u`` is clipped to ``[-rho, rho]`` (as ``optax.contrib.sophia``
  clips its ratio to ``[-1, 1]``), so no step exceeds ``rho * lr``;
- ``lr_warmup_steps=N``: ``lr_scale`` also ramps linearly from ``1/N`` to 1 over the first ``N``
  steps.

The state keeps two diagnostics of the last refresh step's update (:func:`curvature_diagnostics`):
the largest ``|u|`` entry before clipping and the fraction of coordinates whose ``D**k`` is below
``eps``.

The refresh schedule runs *inside* the jitted update with ``jax.lax.cond``: steps that do not
refresh pay no HVP. Under ``jax.vmap`` a ``cond`` on a batched predicate becomes a ``select``
that evaluates both branches, so the HVP is then paid every step. Under ``optax.MultiSteps``
(optax 0.2.8) the inner update runs on every micro-step with the gradients accumulated so far
and its new state is kept only on the micro-step that emits: the schedule counts *emitted*
steps, the curvature kept comes from the last micro-batch, and while a refresh is due its HVP is
computed on every micro-step of that accumulation cycle (``k`` HVPs, one kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from jaxprecond.hvp import no_refresh_hvp, tree_all_finite

Accumulation = Literal["ema", "max", "mean", "sum"]
BiasCorrection = Literal["per_refresh", "reference", "none"]
ACCUMULATIONS: tuple[str, ...] = ("ema", "max", "mean", "sum")
BIAS_CORRECTIONS: tuple[str, ...] = ("per_refresh", "reference", "none")


class CurvatureDiagnostics(NamedTuple):
    """What warns of a collapse (float32 scalars), measured on the update of the last refresh
    step: every step of the warm-up, then every ``update_interval`` steps.

    Attributes:
      max_update: the largest ``|u|`` entry of the preconditioned update, before clipping and
        before the learning rate.
      small_curvature_fraction: fraction of coordinates whose ``D**k`` is below ``eps`` (their
        step is set by ``eps`` alone).
    """

    max_update: chex.Array
    small_curvature_fraction: chex.Array


class CurvatureState(NamedTuple):
    """State of :func:`scale_by_curvature`.

    Attributes:
      count: number of updates taken (int32).
      hvp_count: number of successful curvature refreshes (int32).
      hvp_due: whether the *next* update refreshes the curvature (bool); train steps read it
        to share one forward-over-reverse pass between the gradient and the HVP.
      mu: first moment of the updates (``None`` when ``b1 == 0``).
      nu: accumulated curvature statistic.
      estimator_state: state of the diagonal estimator (its PRNG key).
      diagnostics: :class:`CurvatureDiagnostics` of the last refresh step's update.
    """

    count: chex.Array
    hvp_count: chex.Array
    hvp_due: chex.Array
    mu: optax.Updates | None
    nu: optax.Updates
    estimator_state: Any
    diagnostics: CurvatureDiagnostics


def refresh_due(
    count: chex.Array, hvp_count: chex.Array, warmup: int, update_interval: int
) -> chex.Array:
    """Whether the update at (0-based) step ``count`` refreshes the curvature.

    Refreshes on steps ``0 .. warmup-1``, then every ``update_interval`` steps, the first at
    ``warmup + update_interval - 1`` (149, 249, ... with the reference ESGD's 50 and 100), and
    always while no refresh has succeeded yet (a step never divides by ``eps`` alone).
    """
    periodic = (count - warmup + 1) % update_interval == 0
    return (count < warmup) | periodic | (hvp_count == 0)


def _curvature_states(opt_state: Any) -> list[CurvatureState]:
    return [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, CurvatureState))
        if isinstance(s, CurvatureState)
    ]


def curvature_diagnostics(opt_state: Any) -> dict[str, chex.Array]:
    """The :class:`CurvatureDiagnostics` of the curvature transforms inside ``opt_state``.

    Looks through wrappers like :func:`curvature_due`; with several curvature transforms each
    value is the largest. Cheap (scalars kept in the state), traceable, and ``{}`` for a state
    without a curvature transform, so a train step can always add it to its metrics.

    Returns:
      ``{'max_update': ..., 'small_curvature_fraction': ...}`` or ``{}``.
    """
    states = _curvature_states(opt_state)
    if not states:
        return {}
    out = {}
    for name in CurvatureDiagnostics._fields:
        values = [jnp.asarray(getattr(s.diagnostics, name)) for s in states]
        out[name] = values[0] if len(values) == 1 else jnp.max(jnp.stack(values))
    return out


def curvature_due(opt_state: Any) -> chex.Array | None:
    """Whether any jaxprecond curvature transform inside ``opt_state`` refreshes on its next update.

    Looks through wrappers (``optax.chain``, ``inject_hyperparams``, ``apply_if_finite``, ...).

    Args:
      opt_state: any optax state.

    Returns:
      A scalar boolean array, or ``None`` when the state holds no curvature transform.
    """
    states = _curvature_states(opt_state)
    if not states:
        return None
    due = jnp.asarray(states[0].hvp_due)
    for s in states[1:]:
        due = due | s.hvp_due
    return due


def _is_number(x: Any) -> bool:
    """Python numbers are validated; arrays (e.g. from ``optax.inject_hyperparams``) are not."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_unit_interval(name: str, value: float, *, closed_low: bool = True) -> None:
    if not _is_number(value):
        return
    ok = (0.0 <= value < 1.0) if closed_low else (0.0 < value < 1.0)
    if not ok:
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"{name}={value!r} is out of range; expected a number in {interval}")


def _check_int(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        if hasattr(value, "dtype"):
            return  # an array from inject_hyperparams
        raise ValueError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")


def check_curvature_args(
    *,
    b1: float,
    b2: float,
    eps: float,
    accumulation: str,
    warmup: int,
    update_interval: int,
    bias_correction: str,
    hessian_power: float,
    lr_warmup: float | None,
    curvature_floor: float = 0.0,
    clip: float | None = None,
    lr_warmup_steps: int = 0,
) -> None:
    """Validates the hyperparameters of :func:`scale_by_curvature`; raises ``ValueError``."""
    _check_unit_interval("b1", b1)
    _check_unit_interval("b2", b2)
    if _is_number(eps) and not eps >= 0:
        raise ValueError(f"eps={eps!r} is invalid; expected a number >= 0")
    if accumulation not in ACCUMULATIONS:
        raise ValueError(
            f"accumulation={accumulation!r} is unknown; expected one of {ACCUMULATIONS}"
        )
    if bias_correction not in BIAS_CORRECTIONS:
        raise ValueError(
            f"bias_correction={bias_correction!r} is unknown; expected one of {BIAS_CORRECTIONS}"
        )
    if accumulation != "ema" and bias_correction != "none":
        raise ValueError(
            f"bias_correction={bias_correction!r} applies to accumulation='ema' only; "
            f"expected 'none' with accumulation={accumulation!r}"
        )
    _check_int("warmup", warmup, 0)
    _check_int("update_interval", update_interval, 1)
    if _is_number(hessian_power) and not hessian_power > 0:
        raise ValueError(f"hessian_power={hessian_power!r} is invalid; expected a number > 0")
    if lr_warmup is not None:
        _check_unit_interval("lr_warmup", lr_warmup, closed_low=False)
    if _is_number(curvature_floor) and not curvature_floor >= 0:
        raise ValueError(
            f"curvature_floor={curvature_floor!r} is invalid; expected a number >= 0 (a "
            "fraction of the mean root curvature; 0 disables the floor)"
        )
    if clip is not None and _is_number(clip) and not clip > 0:
        raise ValueError(f"clip={clip!r} is invalid; expected a number > 0 or None")
    _check_int("lr_warmup_steps", lr_warmup_steps, 0)


def scale_by_curvature(
    estimator: optax.GradientTransformationExtraArgs,
    *,
    statistic: Callable[[jax.Array], jax.Array] | None = None,
    diagonal_fn: Callable[[jax.Array], jax.Array] = jnp.sqrt,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-4,
    accumulation: Accumulation = "ema",
    warmup: int = 0,
    update_interval: int = 1,
    bias_correction: BiasCorrection = "per_refresh",
    hessian_power: float = 1.0,
    nesterov: bool = False,
    momentum_bias_correction: bool | None = None,
    lr_warmup: float | None = None,
    mu_dtype: Any | None = None,
    warmup_estimator: optax.GradientTransformationExtraArgs | None = None,
    curvature_floor: float = 0.0,
    clip: float | None = None,
    lr_warmup_steps: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Rescales updates by a refreshed, accumulated HVP statistic (see the module docstring).

    Args:
      estimator: a diagonal estimator from :mod:`jaxprecond.estimators` (or any transform whose
        ``update`` returns a pytree like ``params``, e.g. one given to ``optax.contrib.sophia``).
      statistic: element-wise map applied to the estimate before accumulation (identity if
        ``None``); e.g. ``jnp.square`` turns a Hutchinson estimate into published AdaHessian's
        ``(v * Hv)**2``.
      diagonal_fn: element-wise map from the bias-corrected accumulator to the diagonal ``D``
        the update divides by: ``jnp.sqrt`` (default) when the accumulator holds a second
        moment such as ``(Hv)**2``, ``jnp.abs`` when it holds a signed diagonal such as the
        Hutchinson ``v * Hv``.
      b1: decay of the first moment; ``0`` disables it (no state is kept).
      b2: decay of the curvature accumulator (``'ema'`` and ``'max'``).
      eps: added to the denominator.
      accumulation: ``'ema'``, ``'max'``, ``'mean'`` (equal-weight average of all refreshes)
        or ``'sum'``.
      warmup: number of initial steps that all refresh the curvature.
      update_interval: refresh period after the warm-up.
      bias_correction: ``'per_refresh'``, ``'reference'`` or ``'none'`` (both moments).
      hessian_power: exponent ``k`` of ``D`` in the denominator.
      nesterov: Nesterov-style first moment, ``b1 * mu + (1 - b1) * g``.
      momentum_bias_correction: divide the first moment by ``1 - b1**t`` (``1 - b1**(t+1)``
        for the Nesterov form, as the reference ``esgd_max.py``). ``None``: whenever
        ``bias_correction != 'none'``.
      lr_warmup: if given, updates are scaled by ``1 - lr_warmup ** hvp_count``.
      mu_dtype: dtype of the first moment (default: that of the updates).
      warmup_estimator: used instead of ``estimator`` on refreshes during the warm-up (steps
        ``< warmup``), e.g. the same estimator with more probes; it must keep the same state
        (estimators of :mod:`jaxprecond.estimators` keep a PRNG key).
      curvature_floor: floor of ``D`` as a fraction of its mean over each leaf (``0``: none).
      clip: bound on every entry of the preconditioned update before the learning rate
        (``None``: none).
      lr_warmup_steps: linear ramp of the update scale over the first steps (``0``: none).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; pass ``obj_fn`` (params -> loss on the
      current batch) to ``update``.
    """
    check_curvature_args(
        b1=b1, b2=b2, eps=eps, accumulation=accumulation, warmup=warmup,
        update_interval=update_interval, bias_correction=bias_correction,
        hessian_power=hessian_power, lr_warmup=lr_warmup, curvature_floor=curvature_floor,
        clip=clip, lr_warmup_steps=lr_warmup_steps,
    )
    estimator = optax.with_extra_args_support(estimator)
    if warmup_estimator is not None:
        warmup_estimator = optax.with_extra_args_support(warmup_estimator)
    use_floor = not (_is_number(curvature_floor) and curvature_floor == 0)
    stat = statistic if statistic is not None else (lambda x: x)
    use_mu = not (_is_number(b1) and b1 == 0)

    def init_fn(params):
        zero = jnp.zeros([], jnp.int32)
        return CurvatureState(
            count=zero,
            hvp_count=zero,
            hvp_due=refresh_due(zero, zero, warmup, update_interval),
            mu=optax.tree.zeros_like(params, dtype=mu_dtype) if use_mu else None,
            nu=optax.tree.zeros_like(params),
            estimator_state=estimator.init(params),
            diagnostics=CurvatureDiagnostics(jnp.zeros([], jnp.float32),
                                             jnp.zeros([], jnp.float32)),
        )

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("curvature preconditioners need params: update(g, s, params, ...)")
        # Hyperparameters as float32 arrays, so that Python numbers and the arrays of
        # optax.inject_hyperparams give bit-identical updates (1 - b1 rounds the same way).
        b1_, b2_, eps_ = (jnp.asarray(x, jnp.float32) for x in (b1, b2, eps))

        def refresh(operand):
            nu, hvp_count, est_state = operand
            if warmup_estimator is None:
                est, est_state = estimator.update(updates, est_state, params, **extra_args)
            else:
                est, est_state = jax.lax.cond(
                    state.count < warmup,
                    lambda s: warmup_estimator.update(updates, s, params, **extra_args),
                    lambda s: estimator.update(updates, s, params, **extra_args),
                    est_state,
                )
            s = jax.tree.map(stat, est)
            if accumulation == "ema":
                new_nu = jax.tree.map(lambda n, x: b2_ * n + (1 - b2_) * x, nu, s)
            elif accumulation == "max":
                new_nu = jax.tree.map(lambda n, x: jnp.maximum(b2_ * n, x), nu, s)
            elif accumulation == "mean":
                weight = 1.0 / (hvp_count + 1).astype(jnp.float32)
                new_nu = jax.tree.map(lambda n, x: n + weight * (x - n), nu, s)
            else:
                new_nu = jax.tree.map(jnp.add, nu, s)
            new_nu = optax.tree.cast_like(new_nu, nu)
            # A non-finite HVP never reaches the state: keep the old curvature.
            ok = tree_all_finite(new_nu)
            nu = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_nu, nu)
            return nu, hvp_count + ok.astype(jnp.int32), est_state

        # On make_train_step's branch where nothing refreshes, hvp_due is false: leave the
        # refresh out of the trace rather than compile a conditional that copies the curvature.
        no_refresh = extra_args.get("hvp_fn") is no_refresh_hvp
        operand = (state.nu, state.hvp_count, state.estimator_state)
        nu, hvp_count, est_state = (operand if no_refresh else jax.lax.cond(
            state.hvp_due, refresh, lambda operand: operand, operand))
        count_inc = optax.safe_increment(state.count)

        correct_mu = (bias_correction != "none" if momentum_bias_correction is None
                      else momentum_bias_correction)
        if use_mu:
            mu = optax.tree.update_moment(updates, state.mu, b1_, 1)
            if nesterov:
                # The reference esgd_max.py: (b1 m_t + (1 - b1) g) / (1 - b1**(t+1)), the weight
                # that b1 m_t + (1 - b1) g puts on the gradients seen so far.
                m_hat = jax.tree.map(lambda m, g: b1_ * m + (1 - b1_) * g, mu, updates)
                if correct_mu:
                    m_hat = optax.tree.bias_correction(m_hat, b1_, count_inc + 1)
            else:
                m_hat = optax.tree.bias_correction(mu, b1_, count_inc) if correct_mu else mu
        else:
            mu, m_hat = None, updates

        if bias_correction == "per_refresh":
            correction = 1 - b2_ ** jnp.maximum(hvp_count, 1).astype(jnp.float32)
        elif bias_correction == "reference":
            correction = 1 - b2_ ** count_inc.astype(jnp.float32)
        else:
            correction = jnp.ones([], jnp.float32)
        scale = jnp.where(hvp_count > 0, 1.0, 0.0)  # no curvature yet: no step
        if lr_warmup is not None:
            lr_warmup_ = jnp.asarray(lr_warmup, jnp.float32)
            scale = scale * (1 - lr_warmup_ ** hvp_count.astype(jnp.float32))
        if not (_is_number(lr_warmup_steps) and lr_warmup_steps == 0):
            ramp = count_inc.astype(jnp.float32) / jnp.asarray(lr_warmup_steps, jnp.float32)
            scale = scale * jnp.minimum(ramp, 1.0)

        def diagonal_of(n):
            d = diagonal_fn(n.astype(jnp.float32) / correction)
            if not (_is_number(hessian_power) and hessian_power == 1):
                d = d**hessian_power
            return d

        roots = jax.tree.map(diagonal_of, nu)

        if use_floor:
            floor_ = jnp.asarray(curvature_floor, jnp.float32)
            roots = jax.tree.map(lambda r: jnp.maximum(r, floor_ * jnp.mean(r)), roots)
        ratios = jax.tree.map(lambda m, r: m / (r + eps_), m_hat, roots)

        def measure(_):
            leaves = jax.tree.leaves(ratios)
            max_update = (jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
                          if leaves else jnp.zeros([], jnp.float32))
            n_small = sum(jnp.sum(r < eps_) for r in jax.tree.leaves(roots))
            n_total = max(1, sum(r.size for r in jax.tree.leaves(roots)))
            return CurvatureDiagnostics(
                # Before a first successful refresh no step is taken (scale 0): report 0.
                jnp.where(hvp_count > 0, max_update, 0.0).astype(jnp.float32),
                (jnp.asarray(n_small, jnp.float32) / n_total).astype(jnp.float32),
            )

        # Measured on refresh steps only (every step of the warm-up, where collapses start):
        # two extra passes over the parameters every step cost ~5% of a small field's step.
        diagnostics = (state.diagnostics if no_refresh else
                       jax.lax.cond(state.hvp_due, measure, lambda _: state.diagnostics, None))

        def precondition(ratio, g):
            if clip is not None:
                clip_ = jnp.asarray(clip, jnp.float32)
                ratio = jnp.clip(ratio, -clip_, clip_)
            return (scale * ratio).astype(g.dtype)

        # The same ratios as the diagnostics: each computed once.
        new_updates = jax.tree.map(precondition, ratios, updates)
        if use_mu:
            mu = optax.tree.cast(mu, mu_dtype)
        new_state = CurvatureState(
            count=count_inc,
            hvp_count=hvp_count,
            hvp_due=refresh_due(count_inc, hvp_count, warmup, update_interval),
            mu=mu,
            nu=nu,
            estimator_state=est_state,
            diagnostics=diagnostics,
        )
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def with_learning_rate(
    scaler: optax.GradientTransformation,
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """The optax alias pattern: ``scaler``, decoupled weight decay, then ``-learning_rate``."""
    if _is_number(learning_rate) and not learning_rate > 0:
        raise ValueError(
            f"learning_rate={learning_rate!r} is invalid; expected a number > 0 or a schedule"
        )
    if _is_number(weight_decay) and not weight_decay >= 0:
        raise ValueError(f"weight_decay={weight_decay!r} is invalid; expected a number >= 0")
    parts = [scaler]
    if not (_is_number(weight_decay) and weight_decay == 0):
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)
