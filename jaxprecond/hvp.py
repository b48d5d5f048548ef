"""Hessian-vector products and random probes.

All Hessian-vector products (HVPs) in jaxprecond are forward-over-reverse: the JVP of the
gradient, ``jax.jvp(jax.grad(obj_fn), (params,), (v,))``. Its primal output *is* the gradient, so
:func:`grad_and_hvp` returns both for the price of one JVP.

Probes live on the parameters only (never on the data); every entry of a probe is independent of
every other, within a leaf and across leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

Params = Any
ObjFn = Callable[[Params], jax.Array]
HvpFn = Callable[[Params], Params]
ProbeKind = Literal["rademacher", "gaussian"]

PROBE_KINDS: tuple[str, ...] = ("rademacher", "gaussian")


def hvp(obj_fn: ObjFn, params: Params, v: Params) -> Params:
    """Hessian-vector product ``H(params) v`` of a scalar objective.

    Args:
        obj_fn: function of ``params`` returning a scalar loss.
        params: point at which the Hessian is taken (any pytree of arrays).
        v: tangent with the structure, shapes and dtypes of ``params``.

    Returns:
        ``H v`` with the structure of ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxprecond import hvp
        >>> f = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * x**2)
        >>> hvp(f, jnp.ones(2), jnp.ones(2))
        Array([1., 4.], dtype=float32)
    """
    return grad_and_hvp(obj_fn, params, v)[1]


def grad_and_hvp(obj_fn: ObjFn, params: Params, v: Params) -> tuple[Params, Params]:
    """Gradient and Hessian-vector product from a single ``jax.jvp`` of ``jax.grad``.

    Args:
        obj_fn: function of ``params`` returning a scalar loss.
        params: point of evaluation.
        v: tangent with the structure of ``params``.

    Returns:
        ``(grad, H v)``, both with the structure of ``params``.
    """
    return jax.jvp(jax.grad(obj_fn), (params,), (v,))


def no_refresh_hvp(v: Params) -> Params:
    """The ``hvp_fn`` that :func:`jaxprecond.make_train_step` passes on the branch of its step
    where no curvature transform refreshes (every ``hvp_due`` in the optimizer state is false).

    A curvature transform that receives this very function leaves its refresh out of the traced
    update: no conditional on the curvature (whose untaken branch copies every curvature
    buffer, each step), no estimator code, no second forward-over-reverse pass compiled into
    that branch (on the 5x256 field: 89 dot products in the compiled ESGD step instead of 54).
    Anyone else calling it gets NaN, never a plausible value: the curvature transforms'
    non-finite guard would keep the old curvature rather than accumulate it.
    """
    return jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), v)


def linearized_hvp(obj_fn: ObjFn, params: Params) -> tuple[jax.Array, Params, HvpFn]:
    """Loss, gradient and a reusable HVP function from one linearisation of ``value_and_grad``.

    The forward and backward passes run once; each call of the returned function costs only the
    tangent part of a forward-over-reverse JVP, so several probes (or a gradient plus a probe)
    share one pass. Used by :func:`jaxprecond.make_train_step` to fuse the gradient and the HVP.

    Args:
        obj_fn: function of ``params`` returning a scalar loss.
        params: point of evaluation.

    Returns:
        ``(loss, grad, hvp_fn)`` where ``hvp_fn(v)`` returns ``H v``.
    """
    (loss, grads), lin = jax.linearize(jax.value_and_grad(obj_fn), params)
    return loss, grads, lambda v: lin(v)[1]


def _check_probe_kind(kind: str) -> None:
    if kind not in PROBE_KINDS:
        raise ValueError(f"probe={kind!r} is unknown; expected one of {PROBE_KINDS}")


def sample_probes(
        key: jax.Array, params: Params, kind: ProbeKind = "rademacher", n_probes: int | None = None
) -> Params:
    """Random probe vectors with ``E[v v^T] = I`` over all of ``params``.

    Rademacher probes (the default) come from one draw of random bits for the whole tree, 32
    signs per ``uint32`` word, cut into the leaves in leaf order: one threefry computation in the
    compiled step instead of one per leaf, which made probe sampling about half of ESGD's XLA
    compile time on a 5-layer field and a large part of a refresh step's run time on the CPU.
    Gaussian probes draw each leaf from its own key. Either way every entry is independent of
    every other, within a leaf and across leaves, and a tree with fewer leaves (e.g. the trained
    leaves of :func:`jaxprecond.masked`, where frozen subtrees are ``optax.MaskedNode``) gets
    the same probes as the reduced tree of those leaves.

    Args:
        key: a PRNG key.
        params: pytree whose structure, shapes and dtypes the probes take.
        kind: ``'rademacher'`` (entries +-1) or ``'gaussian'`` (standard normal).
        n_probes: if given, every leaf gets a leading axis of this many independent probes.

    Returns:
        A pytree like ``params`` (with a leading probe axis when ``n_probes`` is given).
    """
    _check_probe_kind(kind)
    leaves, treedef = jax.tree.flatten(params)
    lead = () if n_probes is None else (n_probes,)
    if kind == "rademacher":
        sizes = [int(np.prod(jnp.shape(x), dtype=np.int64)) for x in leaves]
        total = sum(sizes)
        if total == 0:
            return jax.tree.unflatten(treedef, [jnp.zeros(lead + jnp.shape(x), jnp.result_type(x))
                                                for x in leaves])
        words = jax.random.bits(key, lead + (-(-total // 32),), jnp.uint32)
        shifts = jnp.arange(32, dtype=jnp.uint32)
        bits = ((words[..., None] >> shifts) & 1).reshape(lead + (-1,))[..., :total]
        signs = 2 * bits.astype(jnp.int8) - 1
        out, offset = [], 0
        for leaf, size in zip(leaves, sizes, strict=True):
            part = signs[..., offset:offset + size].reshape(lead + jnp.shape(leaf))
            out.append(part.astype(jnp.result_type(leaf)))
            offset += size
        return jax.tree.unflatten(treedef, out)
    keys = jax.random.split(key, max(len(leaves), 1))
    return jax.tree.unflatten(treedef, [
        jax.random.normal(k, lead + jnp.shape(x), dtype=jnp.result_type(x))
        for k, x in zip(keys, leaves, strict=False)
    ])


def tree_all_finite(tree: Params) -> jax.Array:
    """Scalar boolean: every entry of every leaf of ``tree`` is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]).all()
