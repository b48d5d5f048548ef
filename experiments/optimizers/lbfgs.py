"""L-BFGS for full-batch tasks: ``optax.lbfgs`` with its zoom line search, made harness-ready."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["check_full_batch", "lbfgs"]


def check_full_batch(
    name: str, batch_size: int | None, num_examples: int | None, *, force: bool = False
) -> None:
    """Raise ``ValueError`` when a full-batch optimizer is asked for on a mini-batch run.

    ``batch_size`` or ``num_examples`` ``None`` means unknown (no check).
    """
    if batch_size is None or num_examples is None or force:
        return
    if batch_size < num_examples:
        raise ValueError(
            f"{name} needs the full batch: batch_size={batch_size} < num_examples="
            f"{num_examples} (its line search and curvature pairs compare losses and gradients "
            "of different mini-batches, which breaks L-BFGS); use batch_size="
            f"{num_examples}, or force=True to run it on mini-batches anyway"
        )


def lbfgs(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    memory_size: int = 10,
    max_linesearch_steps: int = 20,
    batch_size: int | None = None,
    num_examples: int | None = None,
    force: bool = False,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    """L-BFGS (``optax.lbfgs``) with the zoom (strong Wolfe) line search, for full-batch tasks.

    The update needs the extra arguments ``value``, ``grad`` and ``value_fn`` (the loss, its
    gradient at ``params`` and ``params -> loss`` on the *same* batch), which
    :func:`jaxprecond.make_train_step` passes.

    Args:
      learning_rate: ``None`` (default) or ``1.0``: the line search sets the step; another value
        or a schedule scales the direction before the line search.
      memory_size: number of curvature pairs kept.
      max_linesearch_steps: zoom line-search iterations per step.
      batch_size, num_examples: when both are given and ``batch_size < num_examples``, a
        ``ValueError`` (L-BFGS is a deterministic method) unless ``force=True``.
      force: run on mini-batches anyway.
      axis_name: must be ``None``: under ``pmap`` the line search would evaluate each replica's
        shard only and the replicas would diverge (use a sharded ``jit`` instead).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`.
    """
    check_full_batch("lbfgs", batch_size, num_examples, force=force)
    if axis_name is not None:
        raise ValueError(
            f"lbfgs does not support pmap (axis_name={axis_name!r}): its line search evaluates "
            "value_fn on each replica's shard; use parallel='sharded' or one device"
        )
    if not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"memory_size must be an int >= 1, got {memory_size!r}")
    if not isinstance(max_linesearch_steps, int) or max_linesearch_steps < 1:
        raise ValueError(f"max_linesearch_steps must be an int >= 1, got {max_linesearch_steps!r}")
    if isinstance(learning_rate, int | float) and float(learning_rate) == 1.0:
        learning_rate = None
    inner = optax.lbfgs(
        learning_rate=learning_rate,
        memory_size=memory_size,
        linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=max_linesearch_steps, initial_guess_strategy="one"
        ),
    )

    def update_fn(updates, state, params=None, **extra_args):
        # The zoom line search forwards every extra argument it does not know to value_fn and
        # rejects the rest, so drop the ones train steps pass for other transforms (obj_fn, ...).
        missing = [k for k in _LBFGS_EXTRA_ARGS if k not in extra_args]
        if missing:
            raise TypeError(
                f"lbfgs needs the extra arguments {_LBFGS_EXTRA_ARGS} (missing {missing}): "
                "tx.update(grads, state, params, value=loss, grad=grads, value_fn=loss_of_params)"
                " (jaxprecond.make_train_step passes them)"
            )
        kept = {k: extra_args[k] for k in _LBFGS_EXTRA_ARGS}
        return inner.update(updates, state, params, **kept)

    def init_fn(params):
        # optax's zoom line search starts with weakly typed scalars that its update returns
        # strongly typed: a jitted train step would compile twice. Start strongly typed.
        return jax.tree.map(
            lambda x: jnp.asarray(x, dtype=x.dtype) if isinstance(x, jax.Array) else x,
            inner.init(params),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


_LBFGS_EXTRA_ARGS = ("value", "grad", "value_fn")
