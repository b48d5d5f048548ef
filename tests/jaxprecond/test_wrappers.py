"""optax wrappers that take extra arguments keep ``obj_fn`` through ``make_train_step``."""

import jax
import numpy as np
import optax
import pytest

import jaxprecond as jp
from tests.jaxprecond.helpers import gaussian, mlp_init, mse_loss, regression_batch

LOSS = mse_loss(gaussian)
K = 3


def _batches(n):
    return [regression_batch(jax.random.PRNGKey(20 + i), n=16) for i in range(n)]


def _hand_multisteps(ms, params, batches):
    """The same micro-steps through ``MultiSteps.update`` by hand, ``obj_fn`` passed."""
    state = ms.init(params)

    @jax.jit
    def micro(p, s, batch):
        obj = lambda q: LOSS(q, batch)
        updates, s = ms.update(jax.grad(obj)(p), s, p, obj_fn=obj)
        return optax.apply_updates(p, updates), s

    for b in batches:
        params, state = micro(params, state, b)
    return params, state


@pytest.mark.parametrize("as_object", [True, False])
def test_multisteps_through_make_train_step_keeps_obj_fn(as_object):
    inner = jp.esgd(0.05, warmup=2, update_interval=2)
    ms = optax.MultiSteps(inner, every_k_schedule=K)
    tx = ms if as_object else ms.gradient_transformation()
    step = jp.make_train_step(LOSS, tx)
    params = mlp_init(jax.random.PRNGKey(0))
    batches = _batches(4 * K)
    p, s = params, ms.init(params)
    losses = []
    for b in batches:
        p, s, metrics = step(p, s, b)
        losses.append(float(metrics["loss"]))
    ref_p, ref_s = _hand_multisteps(ms, params, batches)
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(ref_p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # The refresh schedule counts emitted steps: 4 emitted updates, warm-up 2, then every 2
    # (0-based emitted steps 0, 1, 3) -> 3 refreshes, not one per micro-step.
    inner_state = s.inner_opt_state[0]
    assert int(inner_state.count) == 4
    assert int(inner_state.hvp_count) == 3
    assert int(ref_s.inner_opt_state[0].hvp_count) == 3
    assert losses[-1] < losses[0]


def test_a_dropped_obj_fn_names_the_way_that_works():
    # optax.chain wraps a plain GradientTransformation with with_extra_args_support, which
    # drops obj_fn: the error says so and names what works.
    ms = optax.MultiSteps(jp.esgd(0.05), every_k_schedule=2)
    tx = optax.chain(ms.gradient_transformation())
    params = mlp_init(jax.random.PRNGKey(0))
    batch = _batches(1)[0]
    obj = lambda q: LOSS(q, batch)
    with pytest.raises(ValueError, match="MultiSteps"):
        tx.update(jax.grad(obj)(params), tx.init(params), params, obj_fn=obj)


def test_as_extra_args_transform_refuses_what_is_not_a_transform():
    with pytest.raises(ValueError, match="tx=.*not an optax transform"):
        jp.make_train_step(LOSS, "esgd")
    # A plain transform whose update takes no extra arguments gets them dropped, as optax does.
    wrapped = jp.as_extra_args_transform(optax.GradientTransformation(
        lambda p: (), lambda u, s, p=None: (u, s)))
    assert isinstance(wrapped, optax.GradientTransformationExtraArgs)
    assert wrapped.update(1.0, (), None, obj_fn=None) == (1.0, ())
