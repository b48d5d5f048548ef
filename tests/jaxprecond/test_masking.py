"""Frozen and grouped parameters: jaxprecond.masked and jaxprecond.multi_transform.

The reference for every masked run is the *reduced problem*: an unmasked transform on the
trained parameters only, with the frozen ones closed over by the loss as constants. The masked
run must follow it. Probes line up because ``sample_probes`` fills the leaves in leaf order
from one key, and a masked tree (``optax.MaskedNode`` at the frozen subtrees, which have no leaves)
has the same leaves in the same order as the reduced tree; ``test_probe_keys_line_up`` checks it.
"""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jaxprecond
from jaxprecond import masking
from tests.jaxprecond import helpers

LOSS = helpers.mse_loss(helpers.gaussian)
FROZEN = 1  # the middle layer of the (2, 6, 5, 1) MLP
STEPS = 8
# Masked and reduced runs do the same float32 arithmetic up to XLA's fusion choices.
RTOL, ATOL = 1e-6, 1e-7

PREFIX_MASK = [True, False, True]
FULL_MASK = [{"b": True, "w": True}, {"b": False, "w": False}, {"b": True, "w": True}]


def callable_mask(p):
    return [jax.tree.map(lambda _, i=i: i != FROZEN, layer) for i, layer in enumerate(p)]


MASKS = {"prefix": PREFIX_MASK, "full": FULL_MASK, "callable": callable_mask}


def inverted(mask):
    return lambda p: jax.tree.map(lambda m: not m, mask(p) if callable(mask) else mask)


def make_esgd():
    return jaxprecond.esgd(0.05, warmup=3, update_interval=2)  # refreshes at 0, 1, 2, 4, 6


def init_params():
    return helpers.mlp_init(jax.random.PRNGKey(0))


def batches(n=STEPS):
    return [helpers.regression_batch(jax.random.PRNGKey(100 + t)) for t in range(n)]


def reduce(params):
    return [params[0], params[2]]


def expand(trained, frozen):
    return [trained[0], frozen, trained[1]]


def reduced_loss(frozen):
    return lambda trained, batch: LOSS(expand(trained, frozen), batch)


def assert_trees_close(a, b, rtol=RTOL, atol=ATOL):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_probe_keys_line_up():
    params = init_params()
    masked_params = jax.tree.map(
        lambda m, p: p if m else optax.MaskedNode(), PREFIX_MASK, params
    )
    key = jax.random.PRNGKey(3)
    assert_trees_equal(
        jax.tree.leaves(jaxprecond.sample_probes(key, masked_params)),
        jax.tree.leaves(jaxprecond.sample_probes(key, reduce(params))),
    )


def test_restricted_extra_args_are_the_trained_block():
    """obj_fn, hvp_fn and grad restricted to the masked params: the Hessian block, exactly."""
    params = {"a": jnp.array([0.3, -1.2, 0.7]), "b": jnp.array([1.5, -0.4]),
              "c": jnp.array([0.2, 0.9])}
    mask = {"a": True, "b": False, "c": True}

    def loss(p):
        x = jnp.concatenate([p["a"], p["b"], p["c"]])
        return jnp.sum(jnp.sin(x) * jnp.roll(x, 1) ** 2) + jnp.sum(x**4) * x[3]

    grad = jax.grad(loss)(params)
    _, _, full_hvp = jaxprecond.linearized_hvp(loss, params)
    extra = masking.restrict_extra_args(
        {"obj_fn": loss, "value_fn": loss, "hvp_fn": full_hvp, "grad": grad, "value": 1.5,
         "batch": "untouched"},
        mask, params, grad,
    )
    assert extra["value"] == 1.5 and extra["batch"] == "untouched"
    for name in ("obj_fn", "value_fn", "hvp_fn"):
        assert isinstance(extra[name], masking.RestrictedFn)
    masked_params = {"a": params["a"], "b": optax.MaskedNode(), "c": params["c"]}
    assert_trees_equal(extra["grad"], {"a": grad["a"], "b": optax.MaskedNode(), "c": grad["c"]})
    assert float(extra["obj_fn"](masked_params)) == float(loss(params))
    assert_trees_equal(jax.grad(extra["obj_fn"])(masked_params), extra["grad"])

    flat, unravel = ravel_pytree(params)
    hess = jax.hessian(lambda x: loss(unravel(x)))(flat)
    trained = np.r_[0:3, 5:7]  # a, then c, in flat (sorted-key) order
    block = np.asarray(hess)[np.ix_(trained, trained)]
    v = {"a": jnp.array([1.0, -1.0, 2.0]), "b": optax.MaskedNode(), "c": jnp.array([0.5, 3.0])}
    v_flat = np.r_[np.asarray(v["a"]), np.asarray(v["c"])]
    expected = block @ v_flat
    for hv in (extra["hvp_fn"](v), jaxprecond.hvp(extra["obj_fn"], masked_params, v)):
        assert isinstance(hv["b"], optax.MaskedNode)
        got = np.r_[np.asarray(hv["a"]), np.asarray(hv["c"])]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_kind", list(MASKS))
def test_masked_esgd_by_hand_equals_reduced_problem(mask_kind):
    mask = MASKS[mask_kind]
    params0 = init_params()
    frozen = params0[FROZEN]
    tx = jaxprecond.masked(make_esgd(), mask)

    state = tx.init(params0)
    assert isinstance(state, optax.MaskedState)
    step = jax.jit(lambda p, s, b: _masked_step(tx, p, s, b))
    ref_tx = make_esgd()
    ref_state = ref_tx.init(reduce(params0))
    ref_step = jax.jit(lambda p, s, b: _plain_step(ref_tx, reduced_loss(frozen), p, s, b))

    params, ref_params = params0, reduce(params0)
    for batch in batches():
        g, u, state = step(params, state, batch)
        # optax.masked semantics: the frozen leaves' updates are the incoming ones, untouched.
        assert_trees_equal(u[FROZEN], g[FROZEN])
        u = [u[0], jax.tree.map(jnp.zeros_like, u[FROZEN]), u[2]]  # freeze them
        params = optax.apply_updates(params, u)
        ref_u, ref_state = ref_step(ref_params, ref_state, batch)
        ref_params = optax.apply_updates(ref_params, ref_u)
        assert_trees_close(reduce(u), ref_u)
    assert_trees_equal(params[FROZEN], frozen)
    assert_trees_close(reduce(params), ref_params)
    assert int(optax.tree.get(state, "hvp_count")) == 5  # steps 0, 1, 2, 4, 6 refreshed
    assert_trees_close(jax.tree.leaves(state.inner_state), jax.tree.leaves(ref_state))
    # The run moved: the comparison is not between two unchanged trees.
    assert float(jnp.max(jnp.abs(params[0]["w"] - params0[0]["w"]))) > 1e-3


def _masked_step(tx, p, s, batch, fused=False):
    """``tx.update`` with ``obj_fn``; with ``fused``, also the full-params ``hvp_fn`` of one
    linearisation, as make_train_step passes on refresh steps."""
    obj = lambda q: LOSS(q, batch)
    if fused:
        _, g, hvp_fn = jaxprecond.linearized_hvp(obj, p)
        u, s = tx.update(g, s, p, obj_fn=obj, hvp_fn=hvp_fn)
    else:
        g = jax.grad(obj)(p)
        u, s = tx.update(g, s, p, obj_fn=obj)
    return g, u, s


def _plain_step(tx, loss_fn, p, s, batch, fused=False):
    obj = lambda q: loss_fn(q, batch)
    if fused:
        _, g, hvp_fn = jaxprecond.linearized_hvp(obj, p)
        return tx.update(g, s, p, obj_fn=obj, hvp_fn=hvp_fn)
    return tx.update(jax.grad(obj)(p), s, p, obj_fn=obj)


def _train(loss_fn, tx, params, batch_list):
    step = jaxprecond.make_train_step(loss_fn, tx)
    state = tx.init(params)
    for batch in batch_list:
        params, state, metrics = step(params, state, batch)
        assert bool(metrics["finite"])
    return params, state


@pytest.mark.parametrize("mask_kind", ["prefix", "callable"])
def test_masked_esgd_train_step_equals_reduced_problem(mask_kind):
    """Through make_train_step, whose refresh steps pass a full-params hvp_fn (fused path)."""
    mask = MASKS[mask_kind]
    params0 = init_params()
    frozen = params0[FROZEN]
    tx = optax.chain(
        jaxprecond.masked(make_esgd(), mask), optax.masked(optax.set_to_zero(), inverted(mask))
    )
    params, state = _train(LOSS, tx, params0, batches())
    ref_params, ref_state = _train(reduced_loss(frozen), make_esgd(), reduce(params0), batches())
    assert_trees_equal(params[FROZEN], frozen)
    assert_trees_close(reduce(params), ref_params)
    assert_trees_close(jax.tree.leaves(state[0].inner_state), jax.tree.leaves(ref_state))


def test_train_step_hands_the_inner_transform_a_restricted_hvp_fn():
    seen = []

    def spy_update(updates, state, params=None, **extra):
        seen.append({k: type(v) for k, v in extra.items()})
        return updates, state

    spy = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), spy_update)
    tx = jaxprecond.masked(optax.chain(spy, make_esgd()), PREFIX_MASK)
    _train(LOSS, tx, init_params(), batches(1))
    fused = [s for s in seen if "hvp_fn" in s]
    assert fused, seen
    for s in fused:
        assert s["hvp_fn"] is masking.RestrictedFn and s["obj_fn"] is masking.RestrictedFn


@pytest.mark.parametrize("labels", [["train", "freeze", "train"],
                                    lambda p: ["freeze" if i == FROZEN else "train"
                                               for i in range(len(p))]],
                         ids=["prefix", "callable"])
def test_multi_transform_freeze_equals_reduced_problem(labels):
    params0 = init_params()
    frozen = params0[FROZEN]
    tx = jaxprecond.multi_transform({"train": make_esgd(), "freeze": optax.set_to_zero()}, labels)
    assert isinstance(tx.init(params0), optax.MultiTransformState)
    params, state = _train(LOSS, tx, params0, batches())
    ref_params, ref_state = _train(reduced_loss(frozen), make_esgd(), reduce(params0), batches())
    assert_trees_equal(params[FROZEN], frozen)
    assert_trees_close(reduce(params), ref_params)
    train_state = state.inner_states["train"]
    assert isinstance(train_state, optax.MaskedState)
    assert_trees_close(jax.tree.leaves(train_state.inner_state), jax.tree.leaves(ref_state))
    assert bool(jaxprecond.curvature_due(state)) == bool(jaxprecond.curvature_due(ref_state))


def test_multi_transform_two_curvature_groups_follow_their_blocks():
    """ESGD on layers 0 and 2, AdaHessian on layer 1, both moving at once under jit, given the
    full-params ``hvp_fn`` of one linearisation every step (the fused path).

    Each group's run equals its reduced run in which the other group's parameters are the
    constants they are at that step of the joint run: group ``a`` at step t minimises
    ``loss(a, b_t)`` with its own state, and likewise ``b``. Optimizer states (moments,
    curvature ``nu``, probe keys, counters) are compared leaf by leaf after every step.
    The reduced runs take the fused path too: a linearised HVP and a jvp-of-grad HVP round
    differently (~1e-5 on ``nu`` here), which is not what this test is about.
    """
    params0 = init_params()
    make_a = make_esgd
    make_b = lambda: jaxprecond.adahessian(0.05, warmup=2, update_interval=3)
    tx = jaxprecond.multi_transform({"a": make_a(), "b": make_b()}, ["a", "b", "a"])
    state = tx.init(params0)
    step = jax.jit(lambda p, s, b: _masked_step(tx, p, s, b, fused=True))

    tx_a, tx_b = make_a(), make_b()
    state_a, state_b = tx_a.init(reduce(params0)), tx_b.init(params0[1])

    @jax.jit
    def step_a(a, s, b_now, batch):
        loss_a = lambda q, bt: LOSS(expand(q, b_now), bt)
        return _plain_step(tx_a, loss_a, a, s, batch, fused=True)

    @jax.jit
    def step_b(b, s, a_now, batch):
        loss_b = lambda q, bt: LOSS(expand(a_now, q), bt)
        return _plain_step(tx_b, loss_b, b, s, batch, fused=True)

    params = params0
    for batch in batches():
        _, u, state = step(params, state, batch)
        u_a, state_a = step_a(reduce(params), state_a, params[1], batch)
        u_b, state_b = step_b(params[1], state_b, reduce(params), batch)
        assert_trees_close(reduce(u), u_a)
        assert_trees_close(u[1], u_b)
        assert_trees_close(jax.tree.leaves(state.inner_states["a"].inner_state),
                           jax.tree.leaves(state_a))
        assert_trees_close(jax.tree.leaves(state.inner_states["b"].inner_state),
                           jax.tree.leaves(state_b))
        params = optax.apply_updates(params, u)
    assert int(optax.tree.get(state_b, "hvp_count")) == 4  # steps 0, 1, 4, 7
    assert float(jnp.max(jnp.abs(params[1]["w"] - params0[1]["w"]))) > 1e-3


def _optax_masked_esgd():
    return optax.masked(make_esgd(), PREFIX_MASK)


def _optax_masked_adahessian():
    return optax.masked(jaxprecond.adahessian(0.05), PREFIX_MASK)


def _optax_masked_psgd():
    return optax.masked(jaxprecond.preconditioned_sgd(0.05), PREFIX_MASK)


def _optax_multi_transform():
    return optax.multi_transform(
        {"a": make_esgd(), "b": optax.set_to_zero()}, ["a", "b", "a"]
    )


OPTAX_WRAPPED = [_optax_masked_esgd, _optax_masked_adahessian, _optax_masked_psgd,
                 _optax_multi_transform]


@pytest.mark.parametrize("make_tx", OPTAX_WRAPPED, ids=lambda f: f.__name__[1:])
def test_optax_wrappers_raise_a_pointed_error_at_trace_time(make_tx):
    tx = make_tx()
    params = init_params()
    state = tx.init(params)
    batch = batches(1)[0]
    obj = lambda q: LOSS(q, batch)
    grads = jax.grad(obj)(params)
    # At trace time: eval_shape runs no computation.
    with pytest.raises(ValueError, match=r"jaxprecond\.masked.*jaxprecond\.multi_transform"):
        jax.eval_shape(lambda: tx.update(grads, state, params, obj_fn=obj))
    # Through the train step (fused path, full-params hvp_fn) on its first call.
    step = jaxprecond.make_train_step(LOSS, tx)
    with pytest.raises(ValueError, match=r"optax\.masked and optax\.multi_transform"):
        step(params, state, batch)


def test_optax_masked_around_jaxprecond_masked_raises():
    inner = jaxprecond.masked(make_esgd(), [True, True, True])  # over the outer masked tree
    tx = optax.masked(inner, [True, False, False])
    params = init_params()
    batch = batches(1)[0]
    obj = lambda q: LOSS(q, batch)
    with pytest.raises(ValueError, match=r"jaxprecond\.masked"):
        tx.update(jax.grad(obj)(params), tx.init(params), params, obj_fn=obj)


def test_unmasked_params_with_plain_obj_fn_are_accepted():
    """The check looks for MaskedNode only: an all-True mask needs no restriction."""
    params = init_params()
    masking.check_restricted(params, obj_fn=lambda p: 0.0, hvp_fn=lambda v: v)
    tx = optax.masked(make_esgd(), [True, True, True])
    batch = batches(1)[0]
    obj = lambda q: LOSS(q, batch)
    tx.update(jax.grad(obj)(params), tx.init(params), params, obj_fn=obj)


def test_docstring_examples_run():
    result = doctest.testmod(masking, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0
