"""Matrix-free estimators of Hessian diagonals from Hessian-vector products.

Each estimator is an ``optax.GradientTransformationExtraArgs`` whose ``update`` *returns the
estimate* instead of an update, exactly the contract of ``optax.contrib.sophia``'s
``hessian_diagonal_fn``; so ours plug into sophia and into each other. The PRNG key lives in the
state; each call draws fresh probes.

Estimates (``v`` with ``E[v v^T] = I``, Rademacher or Gaussian):

* ``'hutchinson'``: ``v * Hv``, mean ``diag(H)`` (Bekas, Kokiopoulou and Saad 2007). The Jacobi
  preconditioner ``D^J = |diag H|`` is built from it.
* ``'equilibration'``: ``(Hv)**2``, mean ``sum_j H_ij^2 = ||H_i,:||^2``, the squared row norms
  (Bradley and Murray 2011). The equilibration preconditioner ``D^E = ||H_i,:||`` is its square
  root (Dauphin, de Vries and Bengio 2015).
* ``'abs_hvp'``: ``|Hv|``. This is what the reference AdaHessian(J) code of the paper actually
  accumulates (see ``DESIGN.md``); its mean is *not* a Hessian diagonal but an entry-wise mean
  absolute row combination, bounded by ``||H_i,:||`` (Rademacher probes) from above.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxprecond import hvp as hvp_lib
from jaxprecond.data_parallel import resolve_axis

EstimatorKind = Literal["hutchinson", "equilibration", "abs_hvp"]
ESTIMATOR_KINDS: tuple[str, ...] = ("hutchinson", "equilibration", "abs_hvp")

_PER_PROBE = {
    "hutchinson": lambda v, hv: v * hv,
    "equilibration": lambda v, hv: jnp.square(hv),
    "abs_hvp": lambda v, hv: jnp.abs(hv),
}


class EstimatorState(NamedTuple):
    """State of a diagonal estimator: the PRNG key of the next probe draw."""

    key: jax.Array


def check_estimator_args(kind: str, n_probes: int, probe: str) -> None:
    """Validates estimator arguments; raises ``ValueError`` naming the bad value."""
    if hasattr(n_probes, "dtype"):
        raise ValueError(
            f"n_probes={n_probes!r} is an array (optax.inject_hyperparams makes numeric "
            "arguments arrays); expected a Python int: pass static_args=('n_probes',)"
        )
    if kind not in ESTIMATOR_KINDS:
        raise ValueError(f"estimator {kind!r} is unknown; expected one of {ESTIMATOR_KINDS}")
    if not isinstance(n_probes, int) or isinstance(n_probes, bool) or n_probes < 1:
        raise ValueError(f"n_probes={n_probes!r} is invalid; expected an integer >= 1")
    hvp_lib._check_probe_kind(probe)


def diagonal_from_probes(kind: EstimatorKind, hvp_fn: hvp_lib.HvpFn, probes: Any) -> Any:
    """Averages the per-probe estimate over a stack of probes.

    Args:
      kind: ``'hutchinson'``, ``'equilibration'`` or ``'abs_hvp'``.
      hvp_fn: ``v -> H v`` at the current parameters.
      probes: pytree like the parameters with a leading probe axis.

    Returns:
      The mean over probes of the per-probe estimate, shaped like the parameters.

    Example:
      With the ``n`` scaled standard-basis vectors ``sqrt(n) e_i`` as probes the Hutchinson and
      equilibration estimates are exact: ``diag(H)`` and the squared row norms.
    """
    per_probe = _PER_PROBE[kind]

    def one(v):
        return jax.tree.map(per_probe, v, hvp_fn(v))

    n = jax.tree.leaves(probes)[0].shape[0]
    if n == 1:
        est = one(jax.tree.map(lambda p: p[0], probes))
        return est
    return jax.tree.map(lambda e: jnp.mean(e, axis=0), jax.vmap(one)(probes))


def estimate_diagonal(
    kind: EstimatorKind,
    key: jax.Array,
    params: Any,
    *,
    obj_fn: hvp_lib.ObjFn | None = None,
    hvp_fn: hvp_lib.HvpFn | None = None,
    n_probes: int = 1,
    probe: hvp_lib.ProbeKind = "rademacher",
    axis_name: str | None = None,
) -> Any:
    """One stochastic estimate of a Hessian diagonal quantity at ``params``.

    Args:
      kind: which estimate, see the module docstring.
      key: PRNG key for the probes (use the same key on every replica).
      params: current parameters.
      obj_fn: scalar objective of the parameters; used when ``hvp_fn`` is not given.
      hvp_fn: optional precomputed ``v -> H v`` (e.g. from :func:`hvp.linearized_hvp`), which
        lets a train step share one forward-over-reverse pass between gradient and HVP.
      n_probes: number of probes averaged.
      probe: ``'rademacher'`` or ``'gaussian'``.
      axis_name: if given, every HVP is ``pmean``-ed over this mapped axis before the estimate
        is formed, so data-parallel replicas (different data, identical probes) compute the
        estimate of the global batch. ``None``: the axis of an enclosing
        :func:`jaxprecond.data_parallel_axis` (set by ``make_train_step(parallel='pmap')``),
        if any.

    Returns:
      The estimate, shaped like ``params``.
    """
    # Masked params (optax.masked) need an obj_fn / hvp_fn restricted to them (jaxprecond.masked).
    from jaxprecond.masking import check_restricted

    check_restricted(params, obj_fn=obj_fn, hvp_fn=hvp_fn)
    axis_name = resolve_axis(axis_name)
    if hvp_fn is None:
        if obj_fn is None:
            raise ValueError(
                "a Hessian-vector product is needed but neither obj_fn nor hvp_fn was passed; "
                "call update(..., obj_fn=lambda p: loss(p, batch)). A wrapper may have dropped "
                "it: optax.with_extra_args_support and optax.chain drop the extra arguments of "
                "a plain GradientTransformation such as optax.MultiSteps(...)"
                ".gradient_transformation() (pass the MultiSteps object to make_train_step, or "
                "wrap it as optax.GradientTransformationExtraArgs(ms.init, ms.update)), and "
                "Flax's TrainState.apply_gradients hands keywords to .replace (use "
                "jaxprecond.flax_utils.TrainState)"
            )
        if n_probes == 1:
            hvp_fn = lambda v: hvp_lib.hvp(obj_fn, params, v)
        else:
            _, _, hvp_fn = hvp_lib.linearized_hvp(obj_fn, params)
    if axis_name is not None:
        # Average the HVP itself (not the nonlinear estimate): with identical probes on every
        # replica this is the HVP of the global mean loss, so replicas match one device.
        local_hvp_fn = hvp_fn
        hvp_fn = lambda v: jax.lax.pmean(local_hvp_fn(v), axis_name)
    probes = hvp_lib.sample_probes(key, params, probe, n_probes)
    return diagonal_from_probes(kind, hvp_fn, probes)


def diagonal_estimator(
    kind: EstimatorKind,
    *,
    n_probes: int | None = 1,
    probe: hvp_lib.ProbeKind = "rademacher",
    seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """A diagonal estimator as a transform whose ``update`` returns the estimate.

    Args:
      kind: ``'hutchinson'``, ``'equilibration'`` or ``'abs_hvp'``.
      n_probes: probes averaged per call.
      probe: ``'rademacher'`` or ``'gaussian'``.
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis over which the HVPs are ``pmean``-ed (pmap / shard_map).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update(updates, state, params,
      obj_fn=...)`` returns ``(estimate, new_state)``. An ``hvp_fn`` extra argument, when given,
      replaces ``obj_fn``.
    """
    n_probes = 1 if n_probes is None else n_probes
    check_estimator_args(kind, n_probes, probe)

    def init_fn(params):
        del params
        return EstimatorState(key=jax.random.PRNGKey(seed))

    def update_fn(updates, state, params=None, *, obj_fn=None, hvp_fn=None, **extra_args):
        del updates, extra_args
        if params is None:
            raise ValueError("the diagonal estimator needs params; call update(g, s, params, ...)")
        key, subkey = jax.random.split(state.key)
        est = estimate_diagonal(
            kind, subkey, params, obj_fn=obj_fn, hvp_fn=hvp_fn, n_probes=n_probes, probe=probe,
            axis_name=axis_name,
        )
        return est, EstimatorState(key=key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def hutchinson_diagonal(
    *, n_probes: int = 1, probe: hvp_lib.ProbeKind = "rademacher", seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Hutchinson estimator of ``diag(H)``: returns ``mean_k v_k * H v_k``.

    Args:
      n_probes: probes averaged per call.
      probe: ``'rademacher'`` (lowest variance for the diagonal) or ``'gaussian'``.
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis over which the HVPs are ``pmean``-ed.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` returning the estimate from ``update``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> import jaxprecond
      >>> tx = optax.contrib.sophia(1e-3, hessian_diagonal_fn=jaxprecond.hutchinson_diagonal())
      >>> params = jnp.ones(3)
      >>> state = tx.init(params)
      >>> f = lambda p: jnp.sum(p**4)
      >>> updates, state = tx.update(jax.grad(f)(params), state, params, obj_fn=f)

    References:
      Bekas, Kokiopoulou and Saad, `An estimator for the diagonal of a matrix
      <https://doi.org/10.1016/j.apnum.2007.01.003>`_, 2007.
    """
    return diagonal_estimator(
        "hutchinson", n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name
    )


def equilibration_diagonal(
    *, n_probes: int = 1, probe: hvp_lib.ProbeKind = "rademacher", seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Equilibration estimator: returns ``mean_k (H v_k)**2``, whose mean is ``||H_i,:||^2``.

    The equilibration preconditioner ``D^E_i = ||H_i,:||`` is the square root of the mean.

    Args:
      n_probes: probes averaged per call.
      probe: ``'rademacher'`` (as the reference ESGD) or ``'gaussian'``; both are unbiased.
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis over which the HVPs are ``pmean``-ed.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` returning the estimate from ``update``.

    Example:
      >>> import jax.numpy as jnp, jaxprecond
      >>> est = jaxprecond.equilibration_diagonal(n_probes=8)
      >>> A = jnp.array([[2.0, 1.0], [1.0, 3.0]])
      >>> f = lambda x: 0.5 * x @ A @ x
      >>> d, _ = est.update(None, est.init(jnp.zeros(2)), jnp.zeros(2), obj_fn=f)

    References:
      Bradley and Murray, `Matrix-free approximate equilibration
      <https://arxiv.org/abs/1110.2805>`_, 2011.
      Dauphin, de Vries and Bengio, `Equilibrated adaptive learning rates for non-convex
      optimization <https://arxiv.org/abs/1502.04390>`_, 2015.
    """
    return diagonal_estimator(
        "equilibration", n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name
    )


def abs_hvp_diagonal(
    *, n_probes: int = 1, probe: hvp_lib.ProbeKind = "rademacher", seed: int = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """The ``|Hv|`` statistic that the reference AdaHessian(J) code accumulates.

    Not an estimator of ``diag(H)``: it is offered so the paper's AdaHessian(J) runs can be
    reproduced as they were run. Use :func:`hutchinson_diagonal` for a true Jacobi diagonal.

    Args:
      n_probes: probes averaged per call.
      probe: ``'rademacher'`` or ``'gaussian'``.
      seed: seed of the PRNG key kept in the state.
      axis_name: mapped axis over which the HVPs are ``pmean``-ed.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` returning ``mean_k |H v_k|`` from ``update``.

    Example:
      >>> import jaxprecond
      >>> est = jaxprecond.abs_hvp_diagonal()

    References:
      Chng, Saratchandran and Lucey, `Preconditioners for the stochastic training of neural
      fields <https://arxiv.org/abs/2402.08784>`_ (reference code), 2024.
    """
    return diagonal_estimator(
        "abs_hvp", n_probes=n_probes, probe=probe, seed=seed, axis_name=axis_name
    )
