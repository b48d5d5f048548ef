"""jaxprecond.flax_utils: curvature transforms through Flax's Linen TrainState and nnx.Optimizer.

Each path is compared with the same steps done by hand on a raw parameter pytree,
``tx.update(grads, opt_state, params, obj_fn=...)`` + ``optax.apply_updates``, and the tests show
how Flax's own helpers fail without this module.
"""

import doctest
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.linen.fp8_ops import OVERWRITE_WITH_GRADIENT
from flax.training import train_state as flax_train_state

import jaxprecond
from jaxprecond import flax_utils
from jaxprecond.flax_utils import TrainState, nnx_obj_fn

STEPS = 10
TXS = {"esgd": lambda: jaxprecond.esgd(0.05), "adahessian": lambda: jaxprecond.adahessian(0.05)}
# Same float32 operations in every path; only XLA's fusion choices may differ between them.
TOL = {"rtol": 1e-6, "atol": 1e-7}


def data():
    kx, ky = jax.random.split(jax.random.key(42))
    x = jax.random.uniform(kx, (64, 2), minval=-1, maxval=1)
    y = jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:]) + 0.05 * jax.random.normal(ky, (64, 1))
    return x, y


def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def hand_steps(tx, params, loss, steps=STEPS):
    """``steps`` jitted ``tx.update(..., obj_fn=loss)`` + ``optax.apply_updates`` on ``params``."""

    @jax.jit
    def step(params, opt_state):
        grads = jax.grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params, obj_fn=loss)
        return optax.apply_updates(params, updates), opt_state

    opt_state = tx.init(params)
    for _ in range(steps):
        params, opt_state = step(params, opt_state)
    return params


def assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), **TOL)


# --------------------------------------------------------------------------------------- linen


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(jnp.tanh(nn.Dense(16)(x)))


def linen_setup(state_cls, tx):
    x, y = data()
    model = LinenMLP()
    params = model.init(jax.random.key(0), x)["params"]
    state = state_cls.create(apply_fn=model.apply, params=params, tx=tx)

    def loss(params):
        return mse(model.apply({"params": params}, x), y)

    @jax.jit
    def train_step(state):
        grads = jax.grad(loss)(state.params)
        return state.apply_gradients(grads=grads, obj_fn=loss)

    return state, loss, train_step


@pytest.mark.parametrize("name", sorted(TXS))
def test_linen_train_state_matches_hand_steps_and_lowers_loss(name):
    state, loss, train_step = linen_setup(TrainState, TXS[name]())
    params0 = state.params
    for _ in range(STEPS):
        state = train_step(state)
    assert int(state.step) == STEPS
    assert float(loss(state.params)) < 0.9 * float(loss(params0))
    assert_trees_close(state.params, hand_steps(TXS[name](), params0, loss))


@pytest.mark.parametrize("name", sorted(TXS))
def test_flax_train_state_drops_obj_fn(name):
    """Why TrainState exists: Flax gives ``obj_fn`` to ``.replace``, never to ``tx.update``.

    ``tx.update`` runs first, without ``obj_fn``, and the curvature refresh due on the first step
    raises (at trace time under jit); Flax's ``.replace(obj_fn=...)`` would fail next anyway.
    """
    state, _, train_step = linen_setup(flax_train_state.TrainState, TXS[name]())
    with pytest.raises(ValueError, match="neither obj_fn nor hvp_fn was passed"):
        train_step(state)


def test_linen_without_extra_args_is_flax_train_state():
    """No extra arguments: the same result as Flax's TrainState, bit for bit."""
    x, y = data()
    model = LinenMLP()
    params = model.init(jax.random.key(0), x)["params"]
    grads = jax.grad(lambda p: mse(model.apply({"params": p}, x), y))(params)
    ours = TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-2))
    theirs = flax_train_state.TrainState.create(apply_fn=model.apply, params=params,
                                                tx=optax.adam(1e-2))
    ours, theirs = ours.apply_gradients(grads=grads), theirs.apply_gradients(grads=grads)
    for a, b in zip(jax.tree.leaves((ours.params, ours.opt_state, ours.step)),
                    jax.tree.leaves((theirs.params, theirs.opt_state, theirs.step)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_linen_fields_replaced_and_plain_tx_ignores_extra_args():
    """Field keywords still go to ``.replace``; a plain optax transform ignores ``obj_fn``."""

    class StateWithStats(TrainState):
        batch_stats: dict

    x, y = data()
    model = LinenMLP()
    params = model.init(jax.random.key(0), x)["params"]
    loss = lambda p: mse(model.apply({"params": p}, x), y)
    grads = jax.grad(loss)(params)
    state = StateWithStats.create(apply_fn=model.apply, params=params, tx=optax.sgd(0.1),
                                  batch_stats={"mean": jnp.zeros(3)})
    new = state.apply_gradients(grads=grads, obj_fn=loss, batch_stats={"mean": jnp.ones(3)})
    np.testing.assert_array_equal(new.batch_stats["mean"], jnp.ones(3))
    assert_trees_close(new.params, optax.apply_updates(params, jax.tree.map(lambda g: -0.1 * g,
                                                                            grads)))


def test_linen_overwrite_with_gradient_params():
    """Flax's OVERWRITE_WITH_GRADIENT handling: ``tx`` and ``obj_fn`` see ``params['params']``."""
    x, y = data()
    model = LinenMLP()
    inner = model.init(jax.random.key(0), x)["params"]
    loss = lambda p: mse(model.apply({"params": p}, x), y)
    owg = {"scale": jnp.ones(2)}
    params = {"params": inner, OVERWRITE_WITH_GRADIENT: owg}
    state = TrainState.create(apply_fn=model.apply, params=params, tx=jaxprecond.esgd(0.05))
    new_owg = {"scale": jnp.full(2, 3.0)}
    grads = {"params": jax.grad(loss)(inner), OVERWRITE_WITH_GRADIENT: new_owg}
    new = state.apply_gradients(grads=grads, obj_fn=loss)
    assert_trees_close(new.params["params"], hand_steps(jaxprecond.esgd(0.05), inner, loss, 1))
    np.testing.assert_array_equal(new.params[OVERWRITE_WITH_GRADIENT]["scale"], new_owg["scale"])


# ----------------------------------------------------------------------------------------- nnx


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(2, 16, rngs=rngs)
        self.out = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def raw_mlp_loss(p, x, y):
    """NnxMLP's loss on its ``nnx.to_pure_dict`` parameters, without nnx."""
    h = jnp.tanh(x @ p["hidden"]["kernel"] + p["hidden"]["bias"])
    return mse(h @ p["out"]["kernel"] + p["out"]["bias"], y)


@pytest.mark.parametrize("name", sorted(TXS))
def test_nnx_optimizer_matches_hand_steps_and_lowers_loss(name):
    x, y = data()
    model = NnxMLP(nnx.Rngs(0))
    params0 = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, TXS[name](), wrt=nnx.Param)
    loss_fn = lambda m: mse(m(x), y)

    @nnx.jit
    def train_step(model, optimizer):
        grads = nnx.grad(loss_fn)(model)
        optimizer.update(model, grads, obj_fn=nnx_obj_fn(model, loss_fn, wrt=nnx.Param))

    loss0 = float(loss_fn(model))
    for _ in range(STEPS):
        train_step(model, optimizer)
    assert int(optimizer.step[...]) == STEPS
    assert float(loss_fn(model)) < 0.9 * loss0
    hand = hand_steps(TXS[name](), params0, lambda p: raw_mlp_loss(p, x, y))
    assert_trees_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)), hand)


def test_nnx_obj_fn_is_the_loss_of_the_parameter_state():
    """Value, gradient and HVP at the model's State agree with the model's own loss."""
    x, y = data()
    model = NnxMLP(nnx.Rngs(0))
    loss_fn = lambda m: mse(m(x), y)
    obj_fn = jax.jit(nnx_obj_fn(model, loss_fn))
    state = nnx.as_pure(nnx.state(model, nnx.Param))
    raw = nnx.to_pure_dict(state)
    np.testing.assert_allclose(obj_fn(state), loss_fn(model), **TOL)
    np.testing.assert_allclose(obj_fn(nnx.state(model, nnx.Param)), loss_fn(model), **TOL)
    v = jax.tree.map(jnp.ones_like, state)
    g, hv = jaxprecond.grad_and_hvp(obj_fn, state, v)
    g_raw, hv_raw = jaxprecond.grad_and_hvp(lambda p: raw_mlp_loss(p, x, y), raw,
                                            jax.tree.map(jnp.ones_like, raw))
    assert_trees_close(nnx.to_pure_dict(g), g_raw)
    assert_trees_close(nnx.to_pure_dict(hv), hv_raw)


def test_nnx_model_loss_as_obj_fn_fails():
    """Why nnx_obj_fn exists: nnx.Optimizer calls ``obj_fn`` with a State, not the model."""
    x, y = data()
    model = NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, jaxprecond.esgd(0.05), wrt=nnx.Param)
    loss_fn = lambda m: mse(m(x), y)
    grads = nnx.grad(loss_fn)(model)
    with pytest.raises(TypeError, match="not callable"):
        optimizer.update(model, grads, obj_fn=loss_fn)


def test_nnx_obj_fn_with_batch_stats_and_dropout_leaves_model_alone():
    """``loss_fn`` may write BatchNorm statistics and RNG counts: only a discarded copy changes."""

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(2, 16, rngs=rngs)
            self.norm = nnx.BatchNorm(16, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(self.drop(jnp.tanh(self.norm(self.hidden(x)))))

    x, y = data()
    model = Net(nnx.Rngs(0, dropout=1))
    optimizer = nnx.Optimizer(model, jaxprecond.adahessian(0.05), wrt=nnx.Param)
    loss_fn = lambda m: mse(m(x), y)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads, obj_fn=nnx_obj_fn(model, loss_fn, wrt=nnx.Param))
        return loss

    losses = [float(train_step(model, optimizer)) for _ in range(3)]
    assert all(np.isfinite(losses))
    # An HVP through obj_fn (forward passes in train mode) leaves the running mean as it was.
    before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    obj_fn = nnx_obj_fn(model, loss_fn)
    jaxprecond.hvp(obj_fn, nnx.as_pure(nnx.state(model, nnx.Param)),
                   jax.tree.map(jnp.ones_like, nnx.as_pure(nnx.state(model, nnx.Param))))
    assert_trees_close(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)), before)


def test_nnx_tree_mode():
    """``graph=False`` (tree mode) on both sides."""
    x, y = data()
    model = NnxMLP(nnx.Rngs(0))
    params0 = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    optimizer = nnx.Optimizer(model, jaxprecond.esgd(0.05), wrt=nnx.Param, graph=False)
    loss_fn = lambda m: mse(m(x), y)
    for _ in range(2):
        grads = nnx.grad(loss_fn)(model)
        optimizer.update(model, grads, obj_fn=nnx_obj_fn(model, loss_fn, graph=False))
    hand = hand_steps(jaxprecond.esgd(0.05), params0, lambda p: raw_mlp_loss(p, x, y), 2)
    assert_trees_close(nnx.to_pure_dict(nnx.state(model, nnx.Param)), hand)


# -------------------------------------------------------------------------------------- module


def test_docstring_examples():
    result = doctest.testmod(flax_utils, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_import_jaxprecond_does_not_import_flax():
    code = "import sys, jaxprecond; print('flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
