"""Exact curvature diagnostics for small models (the paper's Figs. 2 and 4).

These materialise the full Hessian, so they are meant for models with at most a few thousand
parameters (the paper's 1D experiment has a few hundred); :func:`hvp_sparsity` works at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxprecond.hvp import ObjFn, ProbeKind, hvp, sample_probes

Params = Any


def hessian(obj_fn: ObjFn, params: Params) -> jax.Array:
    """The exact Hessian of ``obj_fn`` at ``params`` as an ``(n, n)`` matrix.

    Parameters are flattened in ``jax.flatten_util.ravel_pytree`` order.

    Args:
      obj_fn: scalar objective of the parameters.
      params: any pytree of arrays.

    Returns:
      The ``(n, n)`` Hessian, ``n`` the total number of parameters.
    """
    flat, unravel = ravel_pytree(params)
    # Compiled: op-by-op evaluation of a Hessian is an order of magnitude slower.
    return jax.jit(jax.hessian(lambda x: obj_fn(unravel(x))))(flat)


def hessian_diagonal(obj_fn: ObjFn, params: Params) -> Params:
    """The exact ``diag(H)`` (what the Hutchinson estimator estimates), shaped like ``params``."""
    _, unravel = ravel_pytree(params)
    return unravel(jnp.diag(hessian(obj_fn, params)))


def hessian_row_norms(obj_fn: ObjFn, params: Params) -> Params:
    """The exact row norms ``||H_i,:||`` (the equilibration diagonal ``D^E``), like ``params``.

    The equilibration estimator's ``(Hv)**2`` has mean ``||H_i,:||**2``, the square of these.
    """
    _, unravel = ravel_pytree(params)
    return unravel(jnp.linalg.norm(hessian(obj_fn, params), axis=1))


def condition_number(matrix: jax.Array) -> jax.Array:
    """Condition number ``sigma_max / sigma_min`` (2-norm) of a square matrix.

    For the symmetric, possibly indefinite Hessian these are the largest and smallest absolute
    eigenvalues. A singular matrix gives ``inf``.
    """
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix of shape {matrix.shape} is not square; expected (n, n)")
    s = jnp.linalg.svd(matrix, compute_uv=False)
    return jnp.where(s[-1] > 0, s[0] / s[-1], jnp.inf)


def preconditioned_hessian(h: jax.Array, d: jax.Array) -> jax.Array:
    """``D^-1/2 H D^-1/2`` for a positive diagonal ``d`` (a flat vector)."""
    d = jnp.ravel(d)
    if d.shape[0] != h.shape[0]:
        raise ValueError(f"diagonal of length {d.shape[0]} does not match H of shape {h.shape}")
    s = 1.0 / jnp.sqrt(d)
    return h * s[:, None] * s[None, :]


def preconditioned_condition_number(h: jax.Array, d: Any) -> jax.Array:
    """Condition number of ``D^-1/2 H D^-1/2``, the Hessian seen after preconditioning by ``D``.

    Args:
      h: the ``(n, n)`` Hessian.
      d: the positive diagonal of ``D``: a flat vector or a pytree like the parameters (then
        flattened as :func:`hessian` flattens parameters).

    Returns:
      The scalar condition number.
    """
    flat = ravel_pytree(d)[0] if not isinstance(d, jax.Array) else d
    return condition_number(preconditioned_hessian(h, flat))


def condition_numbers(obj_fn: ObjFn, params: Params) -> dict[str, jax.Array]:
    """Condition numbers of ``H``, and of ``H`` preconditioned by ``D^E`` and by ``D^J``.

    Returns:
      ``{'hessian': kappa(H), 'equilibration': kappa(D_E^-1/2 H D_E^-1/2),
      'jacobi': kappa(D_J^-1/2 H D_J^-1/2)}`` with the exact ``D^E = ||H_i,:||`` and
      ``D^J = |diag H|``; ``inf`` where a diagonal entry is zero.
    """
    h = hessian(obj_fn, params)
    d_e = jnp.linalg.norm(h, axis=1)
    d_j = jnp.abs(jnp.diag(h))
    out = {"hessian": condition_number(h)}
    for name, d in (("equilibration", d_e), ("jacobi", d_j)):
        out[name] = jnp.where(jnp.all(d > 0), condition_number(preconditioned_hessian(h, d)),
                              jnp.inf)
    return out


def hvp_sparsity(
    obj_fn: ObjFn, params: Params, key: jax.Array, probe: ProbeKind = "rademacher"
) -> Params:
    """Fraction of exact zeros in one Hessian-vector product, per leaf (the paper's Fig. 4).

    Args:
      obj_fn: scalar objective of the parameters.
      params: current parameters.
      key: PRNG key of the probe.
      probe: ``'rademacher'`` (as the paper) or ``'gaussian'``.

    Returns:
      A pytree like ``params`` of scalars in ``[0, 1]``.
    """
    hv = hvp(obj_fn, params, sample_probes(key, params, probe))
    return jax.tree.map(lambda x: jnp.mean((x == 0).astype(jnp.float32)), hv)


def gauss_newton_diagonal(residual_fn: Callable[[Params], jax.Array], params: Params) -> Params:
    """The diagonal of the Gauss-Newton matrix ``J^T J`` of a residual function.

    For the loss ``0.5 * sum(r(params)**2)`` the Gauss-Newton matrix is ``J^T J`` with ``J`` the
    Jacobian of ``r``. Adam's second moment accumulates ``g * g = diag(J_f^T J_f)`` for the
    ``1 x n`` Jacobian ``J_f`` of the loss itself, the diagonal Gauss-Newton view of Adam in the
    paper (Sec. 4, Eq. 10): pass ``residual_fn = obj_fn`` (a 1-vector) to get exactly ``g * g``.

    Args:
      residual_fn: maps params to a vector of residuals.
      params: current parameters.

    Returns:
      ``diag(J^T J)`` shaped like ``params``.
    """
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda x: jnp.ravel(residual_fn(unravel(x))))(flat)
    return unravel(jnp.sum(jnp.square(jac), axis=0))
