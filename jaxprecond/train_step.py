"""Compiled train steps for any optax transform: one device, ``pmap``, or sharded ``jit``.

:func:`make_train_step` builds ``step(params, opt_state, batch) -> (params, opt_state, metrics)``.
It passes the transform the extra arguments ``obj_fn`` (params -> loss on this batch), ``value``,
``grad`` and ``value_fn`` (so ``optax.lbfgs`` works too), and, on steps where a jaxprecond
curvature transform refreshes its preconditioner, obtains the gradient and the HVP from one
linearisation of ``value_and_grad`` instead of computing the gradient twice.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxprecond.curvature import curvature_diagnostics, curvature_due
from jaxprecond.data_parallel import data_parallel_axis
from jaxprecond.hvp import linearized_hvp, no_refresh_hvp, tree_all_finite

Parallel = Literal["pmap", "sharded"] | None
PARALLEL_MODES: tuple[Any, ...] = (None, "none", "pmap", "sharded")
LossFn = Callable[[Any, Any], jax.Array]


def as_extra_args_transform(tx: Any) -> optax.GradientTransformationExtraArgs:
    """``tx`` as a transform whose ``update`` receives the extra arguments (``obj_fn``, ...).

    ``optax.with_extra_args_support`` drops the extra arguments of any plain
    ``GradientTransformation``, even one whose ``update`` takes and forwards them, such as
    ``optax.MultiSteps`` (an object, not a ``GradientTransformation``) and its
    ``gradient_transformation()``; those keep them here.
    """
    if isinstance(tx, optax.GradientTransformationExtraArgs):
        return tx
    if isinstance(tx, optax.MultiSteps):
        return optax.GradientTransformationExtraArgs(tx.init, tx.update)
    if not isinstance(tx, optax.GradientTransformation):
        raise ValueError(
            f"tx={tx!r} is not an optax transform; expected an optax.GradientTransformation "
            "(e.g. jaxprecond.esgd(0.15)) or an optax.MultiSteps"
        )
    try:
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD
                           for p in inspect.signature(tx.update).parameters.values())
    except (TypeError, ValueError):
        takes_kwargs = False
    if takes_kwargs:
        return optax.GradientTransformationExtraArgs(tx.init, tx.update)
    return optax.with_extra_args_support(tx)


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


EXTRA_ARGS: tuple[str, ...] = ("obj_fn", "value", "grad", "value_fn")
OPTIONAL_EXTRA_ARGS: tuple[str, ...] = ("batch",)


def _build_step(
    loss_fn: LossFn, tx: optax.GradientTransformationExtraArgs, axis_name: str | None,
    skip_nonfinite: bool, extra_args: tuple[str, ...],
) -> Callable:
    """The per-replica step; ``axis_name`` is the pmap axis (``None`` when not mapped)."""

    def reduce(x):
        return x if axis_name is None else jax.lax.pmean(x, axis_name)

    def update(params, opt_state, obj, batch, loss, grads, hvp_fn=None):
        loss, grads = reduce(loss), reduce(grads)
        available = dict(obj_fn=obj, value=loss, grad=grads, value_fn=obj, batch=batch)
        extra = {k: available[k] for k in extra_args}
        if hvp_fn is not None:
            extra["hvp_fn"] = hvp_fn
        updates, new_state = tx.update(grads, opt_state, params, **extra)
        return loss, updates, new_state

    def step(params, opt_state, batch):
        # The curvature is averaged over the pmap axis whatever axis_name the transform got.
        with data_parallel_axis(axis_name):
            return _step(params, opt_state, batch)

    def _step(params, opt_state, batch):
        obj = lambda p: loss_fn(p, batch)
        due = curvature_due(opt_state)

        def plain(_):
            loss, grads = jax.value_and_grad(obj)(params)
            # No curvature transform refreshes on this branch: the stub HVP tells them so, and
            # each leaves its refresh out of this branch (see no_refresh_hvp).
            stub = None if due is None else no_refresh_hvp
            return update(params, opt_state, obj, batch, loss, grads, stub)

        def fused(_):
            loss, grads, hvp_fn = linearized_hvp(obj, params)
            return update(params, opt_state, obj, batch, loss, grads, hvp_fn)

        if due is None:
            loss, updates, new_state = plain(None)
        else:
            loss, updates, new_state = jax.lax.cond(due, fused, plain, None)
        new_params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(loss) & tree_all_finite(updates)
        if skip_nonfinite:
            new_params = _select(finite, new_params, params)
            new_state = _select(finite, new_state, opt_state)
        return new_params, new_state, {"loss": loss, "finite": finite,
                                       **curvature_diagnostics(new_state)}

    return step


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """A compiled train step and the helpers that place data for it.

    Attributes:
      parallel: ``None``, ``'pmap'`` or ``'sharded'``.
      n_devices: number of devices the step runs on.
      mesh: the device mesh (``'sharded'`` only).

    Usage::

      params, opt_state = step.place(params), step.place(opt_state)
      params, opt_state, metrics = step(params, opt_state, step.shard(batch))
      host_params = step.fetch(params)
    """

    fn: Callable
    parallel: Parallel
    axis_name: str
    devices: tuple[Any, ...]
    mesh: Mesh | None = None

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, dict]:
        params, opt_state, metrics = self.fn(params, opt_state, batch)
        if self.parallel == "pmap":
            metrics = jax.tree.map(lambda m: m[0], metrics)
        return params, opt_state, metrics

    def _local_devices(self) -> list[Any]:
        return [d for d in self.devices if d.process_index == jax.process_index()]

    def place(self, tree: Any) -> Any:
        """Puts params or optimizer state where the step wants them (replicated if parallel).

        Works for arrays committed to any device (e.g. restored from a checkpoint).
        """
        if self.parallel == "pmap":
            devices = self._local_devices()
            mesh = Mesh(np.array(devices), (self.axis_name,))
            sharding = NamedSharding(mesh, P(self.axis_name))
            n = len(devices)

            def replicate(x):
                if jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
                    data = replicate(jax.random.key_data(x))
                    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
                host = np.asarray(jax.device_get(x))
                return jax.device_put(np.broadcast_to(host, (n,) + host.shape), sharding)

            return jax.tree.map(replicate, tree)
        if self.parallel == "sharded":
            return jax.device_put(tree, NamedSharding(self.mesh, P()))
        return jax.device_put(tree, self.devices[0])

    def shard(self, batch: Any) -> Any:
        """Splits a batch (leading axis = examples) across the devices.

        Under ``'pmap'`` the batch is this process's and is split over its local devices; under
        ``'sharded'`` in a multi-process run, ``batch`` is this process's part and the result is
        the global array.
        """
        if self.parallel == "pmap":
            n = len(self._local_devices())

            def split(x):
                if x.shape[0] % n:
                    raise ValueError(
                        f"batch size {x.shape[0]} is not divisible by the {n} devices of pmap"
                    )
                return x.reshape((n, x.shape[0] // n) + x.shape[1:])

            return jax.tree.map(split, batch)
        if self.parallel == "sharded":
            sharding = NamedSharding(self.mesh, P(self.axis_name))
            if jax.process_count() > 1:
                return jax.tree.map(
                    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                    batch,
                )
            return jax.device_put(batch, sharding)
        return jax.device_put(batch, self.devices[0])

    def fetch(self, tree: Any) -> Any:
        """Brings params (or state) back as one un-replicated copy of NumPy arrays."""
        if self.parallel == "pmap":
            tree = jax.tree.map(lambda x: x[0], tree)
        return jax.tree.map(np.asarray, jax.device_get(tree))


def make_train_step(
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    *,
    parallel: Parallel | Literal["none"] = None,
    axis_name: str = "batch",
    devices: Sequence[Any] | None = None,
    skip_nonfinite: bool = True,
    donate: bool = False,
    extra_args: Sequence[str] = EXTRA_ARGS,
) -> TrainStep:
    """Builds a compiled ``step(params, opt_state, batch) -> (params, opt_state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` mean loss over the batch.
      tx: any optax transform (jaxprecond's or optax's own, e.g. ``optax.adam``), or an
        ``optax.MultiSteps`` (its extra arguments are kept; its inner refresh schedule counts
        emitted steps, see :mod:`jaxprecond.curvature`).
      parallel: ``None`` (one device, ``jax.jit``), ``'pmap'`` (one replica per device; the
        curvature of every jaxprecond transform is ``pmean``-ed over ``axis_name`` whether or
        not the transform was built with it, see :func:`jaxprecond.data_parallel_axis`), or
        ``'sharded'`` (``jax.jit`` with params replicated and the batch split over a 1-D mesh,
        no ``pmean`` needed; works across processes after ``jax.distributed.initialize``). A
        transform built with an ``axis_name`` other than this step's mapped axis (or with one
        under ``None``/``'sharded'``) is refused with a ``ValueError`` when the step is first
        traced, before any update.
      axis_name: name of the mapped / mesh axis.
      devices: devices to use (default: all devices; the first one when ``parallel`` is None).
      skip_nonfinite: when the loss or the update is not finite, keep the old params and state
        (``metrics['finite']`` is then ``False``).
      donate: donate the params and state buffers to the step (saves memory on accelerators;
        the arrays passed in must not be used afterwards).
      extra_args: which extra arguments ``tx.update`` receives, among ``'obj_fn'`` (what
        jaxprecond and ``optax.contrib.sophia`` read), ``'value'``, ``'grad'`` and
        ``'value_fn'`` (what ``optax.lbfgs`` reads), and ``'batch'`` (the local batch, for
        transforms such as K-FAC that need the data). ``optax.lbfgs`` rejects any argument its
        line search does not consume, so give it ``('value', 'grad', 'value_fn')``.

    Returns:
      A :class:`TrainStep`. ``metrics`` holds ``'loss'`` (averaged over devices) and
      ``'finite'``.

    Example:
      >>> import jax.numpy as jnp, optax, jaxprecond
      >>> loss_fn = lambda p, b: jnp.mean((b["x"] @ p - b["y"]) ** 2)
      >>> step = jaxprecond.make_train_step(loss_fn, jaxprecond.esgd(0.1))
      >>> params = jnp.zeros(2)
      >>> opt_state = jaxprecond.esgd(0.1).init(params)
      >>> batch = {"x": jnp.eye(2), "y": jnp.ones(2)}
      >>> params, opt_state, metrics = step(params, opt_state, step.shard(batch))
    """
    if parallel == "none":
        parallel = None
    if parallel not in PARALLEL_MODES:
        raise ValueError(f"parallel={parallel!r} is unknown; expected one of {PARALLEL_MODES}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn={loss_fn!r} is not callable; expected loss_fn(params, batch)")
    extra_args = tuple(extra_args)
    allowed = EXTRA_ARGS + OPTIONAL_EXTRA_ARGS
    unknown = sorted(set(extra_args) - set(allowed))
    if unknown:
        raise ValueError(f"extra_args {unknown} are unknown; expected names from {allowed}")
    tx = as_extra_args_transform(tx)
    all_devices = tuple(devices) if devices is not None else tuple(jax.devices())
    if not all_devices:
        raise ValueError("devices is empty; expected at least one device")
    donate_argnums = (0, 1) if donate else ()

    if parallel == "pmap":
        fn = jax.pmap(
            _build_step(loss_fn, tx, axis_name, skip_nonfinite, extra_args), axis_name=axis_name,
            devices=list(all_devices), donate_argnums=donate_argnums,
        )
        return TrainStep(fn, parallel, axis_name, all_devices)
    if parallel == "sharded":
        mesh = Mesh(np.array(all_devices), (axis_name,))
        replicated = NamedSharding(mesh, P())
        fn = jax.jit(
            _build_step(loss_fn, tx, None, skip_nonfinite, extra_args),
            in_shardings=(replicated, replicated, NamedSharding(mesh, P(axis_name))),
            out_shardings=(replicated, replicated, replicated),
            donate_argnums=donate_argnums,
        )
        return TrainStep(fn, parallel, axis_name, all_devices, mesh)
    fn = jax.jit(
        _build_step(loss_fn, tx, None, skip_nonfinite, extra_args), donate_argnums=donate_argnums
    )
    return TrainStep(fn, None, axis_name, all_devices[:1])
