"""Which mapped axis the curvature estimates are averaged over, under ``pmap`` or ``shard_map``.

Under data parallelism every replica sees its own part of the batch. The gradient is
``pmean``-ed by the train step; the curvature must be too, or each replica keeps its own
preconditioner and the replicas drift apart. Our estimators ``pmean`` each HVP over an axis:
the ``axis_name`` the transform was built with, or else the axis set by
:func:`data_parallel_axis` around the traced update. :func:`jaxprecond.make_train_step` sets it
for ``parallel='pmap'``, so a transform built without ``axis_name`` is still averaged there;
in a hand-written ``pmap`` either pass ``axis_name`` to the transform or trace its update
inside ``with data_parallel_axis(name):``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_UNSET = object()
_AXIS: contextvars.ContextVar = contextvars.ContextVar("jaxprecond_data_parallel_axis",
                                                       default=_UNSET)


@contextlib.contextmanager
def data_parallel_axis(axis_name: str | None) -> Iterator[None]:
    """Curvature estimates traced inside this block are averaged over ``axis_name``.

    Args:
      axis_name: the mapped axis of the enclosing ``pmap`` / ``shard_map``, or ``None`` to
        declare that there is none (``jax.jit`` on one device or with a sharded batch, where
        XLA reduces over the global batch by itself and no ``pmean`` is needed).

    Yields:
      Nothing; the setting holds while the block runs, i.e. while the update is traced.

    Example:
      >>> import functools, jax, jax.numpy as jnp, jaxprecond
      >>> tx = jaxprecond.esgd(0.1)  # built without axis_name
      >>> @functools.partial(jax.pmap, axis_name="batch")
      ... def update(params, state, x):
      ...     obj_fn = lambda p: jnp.mean((x @ p) ** 2)
      ...     grads = jax.lax.pmean(jax.grad(obj_fn)(params), "batch")
      ...     with jaxprecond.data_parallel_axis("batch"):
      ...         return tx.update(grads, state, params, obj_fn=obj_fn)
    """
    token = _AXIS.set(axis_name)
    try:
        yield
    finally:
        _AXIS.reset(token)


def resolve_axis(axis_name: str | None) -> str | None:
    """The axis a curvature estimate is ``pmean``-ed over: the transform's own, else the
    enclosing :func:`data_parallel_axis`; ``None`` for none.

    Raises:
      ValueError: the transform's ``axis_name`` contradicts the enclosing setting (another
        axis, or an axis where the train step maps none), before any work is done.
    """
    outer = _AXIS.get()
    if outer is _UNSET:
        return axis_name
    if axis_name is None:
        return outer
    if outer is None:
        raise ValueError(
            f"the curvature transform was built with axis_name={axis_name!r}, but it runs where "
            "no axis is mapped (jax.jit, or make_train_step with parallel=None or 'sharded', "
            "where XLA reduces over the global batch and no pmean is needed); expected "
            "axis_name=None"
        )
    if axis_name != outer:
        raise ValueError(
            f"the curvature transform was built with axis_name={axis_name!r}, but the train step "
            f"maps the axis {outer!r}; expected axis_name={outer!r} (or None: "
            "make_train_step then averages over its own axis)"
        )
    return axis_name
