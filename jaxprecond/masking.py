"""Frozen and grouped parameters: ``optax.masked`` and ``optax.multi_transform`` for curvature.

``optax.masked(tx, mask)`` hands ``tx`` the *masked* parameters (``optax.MaskedNode`` in place of
the masked-out subtrees) but passes the extra arguments through as they are: a curvature
transform then receives the caller's ``obj_fn`` (a function of the *full* parameters) and, from
:func:`jaxprecond.make_train_step`, an ``hvp_fn`` of full tangents, and its Hessian-vector
product fails (``unsupported operand type(s) for +: 'LinearizeTracer' and 'MaskedNode'`` or a
``dot_general`` shape error).

:func:`masked` and :func:`multi_transform` wrap optax's own (the states are optax's
``MaskedState`` and ``MultiTransformState``) and restrict the extra arguments to the parameters
the inner transform sees, the others held fixed at their current values:

- ``obj_fn`` and ``value_fn`` become functions of the masked parameters: the masked parameters
  are merged into the current full parameters and the original function is called;
- ``hvp_fn`` becomes ``v -> mask(H embed(v))`` with zeros at the frozen leaves: the Hessian
  block of the trained parameters, so the fused gradient-and-HVP path of the train step works;
- ``grad`` (a full-parameters tree) is masked like the parameters; other extra arguments pass
  through.

The restricted functions are :class:`RestrictedFn` instances; the estimators of
:mod:`jaxprecond.estimators` refuse masked parameters with any other ``obj_fn`` or ``hvp_fn``
(:func:`check_restricted`), so ``optax.masked`` around a curvature transform fails with a
message that points here instead of a shape error.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

MaskOrFn = Any | Callable[[optax.Params], Any]

# Extra arguments that are functions of the parameters and are restricted to the masked ones.
PARAMS_FNS: tuple[str, ...] = ("obj_fn", "value_fn")


class RestrictedFn:
    """A function of the masked parameters, built by :func:`masked` from a full-params one.

    Calling it calls ``fn``; the class only marks the function as one that takes the masked
    parameters tree (with ``optax.MaskedNode`` at the frozen subtrees), which
    :func:`check_restricted` looks for.

    Attributes:
      fn: the function of the masked parameters (or tangents, for ``'hvp_fn'``).
      kind: which extra argument it restricts: ``'obj_fn'``, ``'value_fn'`` or ``'hvp_fn'``.
    """

    __slots__ = ("fn", "kind")

    def __init__(self, fn: Callable[..., Any], kind: str):
        self.fn = fn
        self.kind = kind

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"RestrictedFn({self.kind})"


def _is_masked_node(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def has_masked_nodes(tree: Any) -> bool:
    """Whether ``tree`` contains an ``optax.MaskedNode`` (i.e. it was masked by optax)."""
    return any(_is_masked_node(x) for x in jax.tree.leaves(tree, is_leaf=_is_masked_node))


def check_restricted(params: Any, **fns: Callable[..., Any] | None) -> None:
    """Raises ``ValueError`` if ``params`` are masked but a function of them is not restricted.

    Runs at trace time (it inspects the tree structure only), before any work is done.

    Args:
      params: the parameters a transform received.
      **fns: the functions it received, by name (e.g. ``obj_fn=..., hvp_fn=...``); ``None``
        entries are ignored.
    """
    if not has_masked_nodes(params):
        return
    for name, fn in fns.items():
        if fn is None or isinstance(fn, RestrictedFn):
            continue
        raise ValueError(
            f"the parameters contain optax.MaskedNode but the {name} passed is a function of the "
            f"full parameters: optax.masked and optax.multi_transform (optax.partition) hand "
            f"curvature transforms the masked parameters with the caller's full-params obj_fn "
            f"(and hvp_fn), whose Hessian-vector products cannot be taken at the masked "
            f"parameters. Use jaxprecond.masked(tx, mask) or "
            f"jaxprecond.multi_transform(transforms, param_labels) instead: they restrict "
            f"obj_fn and hvp_fn to the masked parameters, the others held fixed."
        )


def _mask_callable(mask: MaskOrFn) -> bool:
    """As optax.masked: a mask is callable when all its leaves are callable."""
    callable_leaves = jax.tree.leaves(jax.tree.map(callable, mask))
    return len(callable_leaves) > 0 and all(callable_leaves)


def _mask_pytree(tree: Any, mask_tree: Any) -> Any:
    return jax.tree.map(lambda m, p: p if m else optax.MaskedNode(), mask_tree, tree)


def _merge(mask_tree: Any, full: Any, part: Any) -> Any:
    """``full`` with the subtrees selected by ``mask_tree`` taken from the masked ``part``."""
    return jax.tree.map(lambda m, f, p: p if m else f, mask_tree, full, part)


def _embed(mask_tree: Any, full: Any, part: Any) -> Any:
    """The masked tangent ``part`` as a full tangent, zero at the masked-out subtrees."""
    return jax.tree.map(
        lambda m, f, p: p if m else jax.tree.map(jnp.zeros_like, f), mask_tree, full, part
    )


def restrict_extra_args(
    extra_args: dict[str, Any], mask_tree: Any, params: Any, updates: Any
) -> dict[str, Any]:
    """The extra arguments of a masked transform, restricted to the masked parameters.

    Args:
      extra_args: the extra arguments given to the wrapper.
      mask_tree: the (static, boolean) mask, a prefix of the parameters tree.
      params: the current full parameters (``None``: the functions cannot be restricted and
        pass through).
      updates: the full updates; a ``grad`` with their structure is masked.

    Returns:
      A new dict: ``obj_fn``, ``value_fn`` and ``hvp_fn`` restricted (:class:`RestrictedFn`),
      ``grad`` masked, the rest unchanged.
    """
    out = dict(extra_args)
    if params is not None:
        # Masked parameters of an enclosing optax.masked are not the full parameters that
        # these functions take: refuse them here as the estimators would.
        check_restricted(params, **{k: out.get(k) for k in (*PARAMS_FNS, "hvp_fn")})
        for name in PARAMS_FNS:
            fn = out.get(name)
            if fn is not None:
                out[name] = RestrictedFn(
                    lambda p, *a, _fn=fn, **kw: _fn(_merge(mask_tree, params, p), *a, **kw), name
                )
        hvp_fn = out.get("hvp_fn")
        if hvp_fn is not None:
            out["hvp_fn"] = RestrictedFn(
                lambda v: _mask_pytree(hvp_fn(_embed(mask_tree, params, v)), mask_tree),
                "hvp_fn",
            )
    grad = out.get("grad")
    if grad is not None and jax.tree.structure(grad) == jax.tree.structure(updates):
        out["grad"] = _mask_pytree(grad, mask_tree)
    return out


def masked(
    inner: optax.GradientTransformation,
    mask: MaskOrFn,
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """``optax.masked`` for transforms that take ``obj_fn`` / ``hvp_fn`` (curvature transforms).

    Transforms only the parameters where ``mask`` is ``True``; the others' updates pass through
    unchanged, exactly as ``optax.masked`` (chain ``optax.set_to_zero`` on them, or use
    :func:`multi_transform`, to freeze them). The inner transform sees the masked parameters and
    extra arguments restricted to them, the masked-out parameters held fixed at their current
    values: ``obj_fn`` and ``value_fn`` as functions of the masked parameters, ``hvp_fn`` as the
    Hessian block of the trained parameters, ``grad`` masked (see the module docstring). A
    curvature transform then estimates the curvature of the trained parameters exactly as if
    the frozen ones were constants of the loss.

    Args:
      inner: the transform to apply to the masked parameters, e.g. :func:`jaxprecond.esgd`.
      mask: a pytree with the structure of the parameters (or a prefix of it) whose leaves are
        Python booleans, ``True`` where ``inner`` applies; or a callable returning one from the
        parameters / updates. The mask must be static (jit).
      mask_compatible_extra_args: as in ``optax.masked``: also mask the other extra arguments
        that have the structure of the updates.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its state is optax's ``MaskedState``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxprecond
      >>> params = {"w": jnp.ones(3), "frozen": jnp.ones(2)}
      >>> loss = lambda p: jnp.sum(p["w"] ** 4 * p["frozen"][0])
      >>> tx = optax.chain(
      ...     jaxprecond.masked(jaxprecond.esgd(0.1), {"w": True, "frozen": False}),
      ...     optax.masked(optax.set_to_zero(), {"w": False, "frozen": True}))
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss)
      >>> new_params = optax.apply_updates(params, updates)
      >>> bool(jnp.all(new_params["frozen"] == params["frozen"]))
      True

    References:
      ``optax.masked`` (`optax documentation
      <https://optax.readthedocs.io/en/latest/api/optimizer_wrappers.html#optax.masked>`_),
      whose state and semantics this keeps.
    """
    inner = optax.with_extra_args_support(inner)
    base = optax.masked(inner, mask, mask_compatible_extra_args=mask_compatible_extra_args)

    def init_fn(params):
        return base.init(params)

    def update_fn(updates, state, params=None, **extra_args):
        mask_tree = mask(updates) if _mask_callable(mask) else mask
        extra_args = restrict_extra_args(extra_args, mask_tree, params, updates)
        static = optax.masked(
            inner, mask_tree, mask_compatible_extra_args=mask_compatible_extra_args
        )
        return static.update(updates, state, params, **extra_args)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def multi_transform(
    transforms: Mapping[Hashable, optax.GradientTransformation],
    param_labels: Any | Callable[[optax.Params], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """``optax.multi_transform`` (``optax.partition``) for curvature transforms.

    Applies ``transforms[label]`` to the parameters labelled ``label``, each through
    :func:`masked`: every group's transform sees its own parameters and an ``obj_fn`` /
    ``hvp_fn`` restricted to them, the other groups' parameters held at their current values.
    Each curvature group thus preconditions with its own Hessian block. Freeze parameters with
    ``optax.set_to_zero()`` as their group's transform.

    Args:
      transforms: mapping from labels to transforms.
      param_labels: a pytree with the structure of the parameters (or a prefix of it) whose
        leaves are keys of ``transforms``, or a callable returning one from the parameters /
        updates.
      mask_compatible_extra_args: as in ``optax.multi_transform``.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its state is optax's
      ``MultiTransformState`` (``PartitionState``) of ``MaskedState`` s.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxprecond
      >>> params = {"w": jnp.ones(3), "b": jnp.ones(2), "frozen": jnp.ones(2)}
      >>> loss = lambda p: jnp.sum(p["w"] ** 4) + jnp.sum(p["b"] ** 2 * p["frozen"])
      >>> tx = jaxprecond.multi_transform(
      ...     {"esgd": jaxprecond.esgd(0.1), "ada": jaxprecond.adahessian(0.1),
      ...      "freeze": optax.set_to_zero()},
      ...     {"w": "esgd", "b": "ada", "frozen": "freeze"})
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss)
      >>> updates["frozen"]
      Array([0., 0.], dtype=float32)

    References:
      ``optax.multi_transform`` / ``optax.partition`` (`optax documentation
      <https://optax.readthedocs.io/en/latest/api/combining_optimizers.html#optax.partition>`_),
      whose state and semantics this keeps.
    """
    transforms = {k: optax.with_extra_args_support(v) for k, v in transforms.items()}
    base = optax.multi_transform(
        transforms, param_labels, mask_compatible_extra_args=mask_compatible_extra_args
    )

    def make_mask(labels, group):
        return jax.tree.map(lambda label: label == group, labels)

    def init_fn(params):
        return base.init(params)

    def update_fn(updates, state, params=None, **extra_args):
        labels = param_labels(updates) if callable(param_labels) else param_labels
        new_inner_states = {}
        for group, tx in transforms.items():
            masked_tx = masked(
                tx, make_mask(labels, group), mask_compatible_extra_args=mask_compatible_extra_args
            )
            updates, new_inner_states[group] = masked_tx.update(
                updates, state.inner_states[group], params, **extra_args
            )
        return updates, optax.MultiTransformState(new_inner_states)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
