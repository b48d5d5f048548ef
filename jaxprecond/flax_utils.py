"""Training with the jaxprecond transforms through Flax's two APIs (Linen and NNX).

The curvature transforms need the extra argument ``obj_fn`` (parameters -> loss on the current
batch) in ``tx.update``. Flax's two training helpers hand extra arguments on differently:

- Linen: ``flax.training.train_state.TrainState.apply_gradients(grads=g, **kwargs)`` gives
  ``kwargs`` to ``.replace``, never to ``tx.update``: ``obj_fn=...`` is lost and the update
  fails with "neither obj_fn nor hvp_fn was passed". :class:`TrainState` here sends the keywords
  that are not fields of the state to ``tx.update``.
- NNX: ``nnx.Optimizer(model, tx, wrt=nnx.Param).update(model, grads, **kwargs)`` does pass
  ``kwargs`` to ``tx.update``, but with ``params = nnx.as_pure(nnx.state(model, wrt))``, a
  pure :class:`flax.nnx.State` of arrays, so ``obj_fn`` must be a function of that State, not of
  the model. :func:`nnx_obj_fn` builds it from the model and a loss of the model.

This module imports Flax; ``import jaxprecond`` does not, so import it explicitly::

    from jaxprecond.flax_utils import TrainState, nnx_obj_fn
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Self

import jax
import optax
from flax import nnx
from flax.linen.fp8_ops import OVERWRITE_WITH_GRADIENT
from flax.nnx import filterlib
from flax.training import train_state

from jaxprecond.train_step import as_extra_args_transform

__all__ = ["TrainState", "nnx_obj_fn"]


class TrainState(train_state.TrainState):
    """Flax's Linen ``TrainState`` whose ``apply_gradients`` forwards extra arguments to ``tx``.

    Why it exists: Flax's ``TrainState.apply_gradients(grads=g, **kwargs)`` hands ``kwargs`` to
    ``.replace``, so ``apply_gradients(grads=g, obj_fn=f)`` calls ``tx.update`` without ``obj_fn``
    and a curvature transform fails with "neither obj_fn nor hvp_fn was passed". Here the
    keywords that name a field of the state (``step``, ``params``, ..., and those of
    subclasses) still go to ``.replace``; every other keyword (``obj_fn``, ``hvp_fn``, ``value``,
    ``grad``, ``value_fn``, ...) goes to ``tx.update`` as an extra argument. Everything else is
    Flax 0.12's ``apply_gradients``, ``OVERWRITE_WITH_GRADIENT`` handling included (there
    ``tx.update`` and ``obj_fn`` see ``params['params']``). When extra arguments are given,
    ``tx`` is wrapped as :func:`jaxprecond.make_train_step` wraps it
    (:func:`jaxprecond.as_extra_args_transform`), so a plain transform such as ``optax.adam``
    ignores them, ``optax.MultiSteps`` keeps them, and one training loop serves every
    optimizer. A misspelt field name is thus not an error: it reaches ``tx.update`` (which
    ignores it).

    Example:
      >>> import jax, jax.numpy as jnp, optax, flax.linen as nn, jaxprecond
      >>> from jaxprecond.flax_utils import TrainState
      >>> x = jnp.linspace(-1, 1, 32)[:, None]
      >>> y = jnp.sin(3 * x)
      >>> model = nn.Sequential([nn.Dense(16), nn.tanh, nn.Dense(1)])
      >>> state = TrainState.create(apply_fn=model.apply,
      ...                           params=model.init(jax.random.key(0), x)["params"],
      ...                           tx=jaxprecond.esgd(0.05))
      >>> def loss_fn(params, x, y):
      ...     return jnp.mean((state.apply_fn({"params": params}, x) - y) ** 2)
      >>> @jax.jit
      ... def train_step(state, x, y):
      ...     obj_fn = lambda p: loss_fn(p, x, y)
      ...     loss, grads = jax.value_and_grad(obj_fn)(state.params)
      ...     return state.apply_gradients(grads=grads, obj_fn=obj_fn), loss
      >>> initial_loss = loss_fn(state.params, x, y)
      >>> for _ in range(10):
      ...     state, loss = train_step(state, x, y)
      >>> bool(loss_fn(state.params, x, y) < initial_loss), int(state.step)
      (True, 10)
    """

    def apply_gradients(self, *, grads: Any, **kwargs: Any) -> Self:
        """Updates ``step``, ``params`` and ``opt_state``, passing extra arguments to ``tx``.

        Args:
          grads: gradients with the pytree structure of ``.params``.
          **kwargs: keywords naming a field of the state are ``.replace()``-ed, as in Flax;
            all others are passed to ``tx.update`` as extra arguments (e.g. ``obj_fn``, the
            loss on the current batch as a function of the parameters).

        Returns:
          A copy of ``self`` with ``step`` incremented by one, ``params`` and ``opt_state``
          updated by applying ``grads``, and the field keywords replaced.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        replace_kwargs = {k: v for k, v in kwargs.items() if k in fields}
        extra_args = {k: v for k, v in kwargs.items() if k not in fields}

        if OVERWRITE_WITH_GRADIENT in grads:
            grads_with_opt = grads["params"]
            params_with_opt = self.params["params"]
        else:
            grads_with_opt = grads
            params_with_opt = self.params

        if extra_args:
            # Keeps the extra arguments of wrappers such as optax.MultiSteps, as make_train_step.
            updates, new_opt_state = as_extra_args_transform(self.tx).update(
                grads_with_opt, self.opt_state, params_with_opt, **extra_args
            )
        else:
            updates, new_opt_state = self.tx.update(grads_with_opt, self.opt_state,
                                                    params_with_opt)
        new_params_with_opt = optax.apply_updates(params_with_opt, updates)

        # As in Flax: the OVERWRITE_WITH_GRADIENT collection takes the gradients as new values.
        if OVERWRITE_WITH_GRADIENT in grads:
            new_params = {
                "params": new_params_with_opt,
                OVERWRITE_WITH_GRADIENT: grads[OVERWRITE_WITH_GRADIENT],
            }
        else:
            new_params = new_params_with_opt
        return self.replace(
            step=self.step + 1,
            params=new_params,
            opt_state=new_opt_state,
            **replace_kwargs,
        )


def nnx_obj_fn(
    model: nnx.Module,
    loss_fn: Callable[[Any], jax.Array],
    wrt: filterlib.Filter = nnx.Param,
    *,
    graph: bool | None = None,
) -> Callable[[nnx.State], jax.Array]:
    """The ``obj_fn`` that ``nnx.Optimizer.update`` needs: ``loss_fn`` as a function of a State.

    ``nnx.Optimizer(model, tx, wrt=wrt).update(model, grads, obj_fn=...)`` calls
    ``tx.update(grads, opt_state, params, obj_fn=...)`` with
    ``params = nnx.as_pure(nnx.state(model, wrt))``, a pure :class:`flax.nnx.State` of arrays,
    and the curvature transforms differentiate ``obj_fn`` twice at ``params``
    (``jax.jvp`` of ``jax.grad``). The returned function rebuilds a copy of ``model`` with
    ``nnx.merge`` from its argument and the model's other state, and returns ``loss_fn`` of that
    copy. It is pure: it never changes ``model`` (a ``BatchNorm`` or ``Dropout`` inside
    ``loss_fn`` updates the copy's statistics and RNG counts, which are discarded; every call
    starts from the state ``model`` had when ``nnx_obj_fn`` was called). Build it inside the
    jitted train step, from the model being trained, so that it sees the current state.

    Args:
      model: the NNX module being trained.
      loss_fn: the loss on the current batch as a function of a module like ``model``, e.g.
        ``lambda m: jnp.mean((m(x) - y) ** 2)``.
      wrt: the filter given to ``nnx.Optimizer`` (and ``nnx.grad``): the returned function
        takes the State of these variables.
      graph: the ``graph`` argument given to ``nnx.Optimizer`` (``None``: the current
        ``nnx.set_graph_mode`` setting).

    Returns:
      ``obj_fn(state) -> loss``, where ``state`` has the structure of
      ``nnx.state(model, wrt)``, pure (arrays) or of Variables.

    Example:
      >>> import jax, jax.numpy as jnp, jaxprecond
      >>> from flax import nnx
      >>> from jaxprecond.flax_utils import nnx_obj_fn
      >>> x = jnp.linspace(-1, 1, 32)[:, None]
      >>> y = jnp.sin(3 * x)
      >>> model = nnx.Sequential(nnx.Linear(1, 16, rngs=nnx.Rngs(0)), nnx.tanh,
      ...                        nnx.Linear(16, 1, rngs=nnx.Rngs(1)))
      >>> optimizer = nnx.Optimizer(model, jaxprecond.esgd(0.05), wrt=nnx.Param)
      >>> def loss_fn(model, x, y):
      ...     return jnp.mean((model(x) - y) ** 2)
      >>> @nnx.jit
      ... def train_step(model, optimizer, x, y):
      ...     loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
      ...     obj_fn = nnx_obj_fn(model, lambda m: loss_fn(m, x, y), wrt=nnx.Param)
      ...     optimizer.update(model, grads, obj_fn=obj_fn)
      ...     return loss
      >>> initial_loss = loss_fn(model, x, y)
      >>> for _ in range(10):
      ...     _ = train_step(model, optimizer, x, y)
      >>> bool(loss_fn(model, x, y) < initial_loss), int(optimizer.step[...])
      (True, 10)
    """
    graphdef, _, rest = nnx.split(model, wrt, ..., graph=graph)
    # Pure arrays, so that ``nnx.merge`` builds fresh Variables: ``loss_fn`` may then write to
    # them (batch statistics, RNG counts) inside jax.grad / jax.jvp without touching ``model``.
    rest = nnx.as_pure(rest)

    def obj_fn(state: nnx.State) -> jax.Array:
        return loss_fn(nnx.merge(graphdef, nnx.as_pure(state), rest))

    return obj_fn
