"""HVPs and diagonal estimators against exact Hessians from jax.hessian."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import jaxprecond as jp
from jaxprecond import diagnostics
from tests.jaxprecond.helpers import gaussian, mlp_init, mse_loss, regression_batch

ACTIVATIONS = {"smooth": gaussian, "relu": jax.nn.relu}


@functools.cache
def _problem(act_name):
    params = mlp_init(jax.random.PRNGKey(0))
    batch = regression_batch(jax.random.PRNGKey(1))
    obj = lambda p: mse_loss(ACTIVATIONS[act_name])(p, batch)
    return obj, params


@pytest.mark.parametrize("act", ["smooth", "relu"])
def test_hvp_and_grad_match_exact(act):
    obj, params = _problem(act)
    h = _hessian(act)
    v = jp.sample_probes(jax.random.PRNGKey(2), params, "gaussian")
    g, hv = jp.grad_and_hvp(obj, params, v)
    np.testing.assert_allclose(ravel_pytree(hv)[0], h @ ravel_pytree(v)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ravel_pytree(g)[0], ravel_pytree(jax.grad(obj)(params))[0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ravel_pytree(jp.hvp(obj, params, v))[0], ravel_pytree(hv)[0])
    loss, g2, hvp_fn = jp.linearized_hvp(obj, params)
    np.testing.assert_allclose(loss, obj(params), rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(hvp_fn(v))[0], ravel_pytree(hv)[0], rtol=1e-5,
                               atol=1e-6)


def test_probes_independent_per_leaf_and_distributed():
    params = {"a": jnp.zeros((50, 40)), "b": jnp.zeros((50, 40)), "c": jnp.zeros(3, jnp.bfloat16)}
    v = jp.sample_probes(jax.random.PRNGKey(0), params, "rademacher")
    assert set(np.unique(v["a"])) == {-1.0, 1.0}
    assert v["c"].dtype == jnp.bfloat16
    # Same shape, different leaves: independent draws, so they agree on about half the entries.
    agree = float(jnp.mean(v["a"] == v["b"]))
    assert 0.4 < agree < 0.6
    # Rademacher signs come 32 to a random word: no lag (within a word, across words, across
    # leaves) and no two probes of a batch may be correlated.
    flat = ravel_pytree(jp.sample_probes(jax.random.PRNGKey(1), params))[0].astype(jnp.float32)
    assert abs(float(jnp.mean(flat))) < 0.05
    for lag in (1, 2, 16, 31, 32, 33, 64, 2000):
        assert abs(float(jnp.mean(flat[:-lag] * flat[lag:]))) < 0.05, lag
    batch = jp.sample_probes(jax.random.PRNGKey(0), params, n_probes=4)
    assert batch["a"].shape == (4, 50, 40) and batch["c"].shape == (4, 3)
    rows = batch["a"].reshape(4, -1)
    for i in range(4):
        for j in range(i):
            assert 0.4 < float(jnp.mean(rows[i] == rows[j])) < 0.6
    empty = {"a": jnp.zeros((0, 3)), "b": jnp.zeros((2, 0))}
    for n in (None, 4):
        out = jp.sample_probes(jax.random.PRNGKey(0), empty, n_probes=n)
        assert out["a"].shape == ((4,) if n else ()) + (0, 3)
    g = jp.sample_probes(jax.random.PRNGKey(0), params, "gaussian", n_probes=4)
    assert g["a"].shape == (4, 50, 40)
    assert abs(float(jnp.std(g["a"])) - 1.0) < 0.05
    with pytest.raises(ValueError, match="probe='uniform'"):
        jp.sample_probes(jax.random.PRNGKey(0), params, "uniform")


@functools.cache
def _hessian(act_name):
    obj, params = _problem(act_name)
    return diagnostics.hessian(obj, params)


def _exact(kind, act_name):
    h = _hessian(act_name)
    if kind == "hutchinson":
        return jnp.diag(h)
    return jnp.sum(h**2, axis=1)


@pytest.mark.parametrize("act", ["smooth", "relu"])
@pytest.mark.parametrize("kind", ["hutchinson", "equilibration"])
def test_estimators_exact_with_standard_basis_probes(kind, act):
    obj, params = _problem(act)
    flat, unravel = ravel_pytree(params)
    n = flat.size
    basis = jax.vmap(unravel)(jnp.sqrt(n) * jnp.eye(n))  # E[v v^T] = I over the n probes
    est = jax.jit(lambda b: jp.estimators.diagonal_from_probes(
        kind, lambda v: jp.hvp(obj, params, v), b))(basis)
    np.testing.assert_allclose(ravel_pytree(est)[0], _exact(kind, act), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("act", ["smooth", "relu"])
@pytest.mark.parametrize("kind", ["hutchinson", "equilibration"])
@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_estimators_converge_as_probes_grow(kind, probe, act):
    obj, params = _problem(act)
    exact = _exact(kind, act)
    scale = jnp.linalg.norm(exact)

    @jax.jit
    def squared_errors(keys, n_probes_arr):
        n_probes = n_probes_arr.shape[0]
        est = jax.vmap(lambda k: jp.estimate_diagonal(kind, k, params, obj_fn=obj,
                                                      n_probes=n_probes, probe=probe))(keys)
        flat = jax.vmap(lambda e: ravel_pytree(e)[0])(est)
        return jnp.sum((flat - exact) ** 2, axis=1) / scale**2

    # 64 independent estimates per size: the relative mean squared error of a mean of n
    # independent probes falls exactly like 1/n (64x from 4 to 256 probes); ask for 32x.
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    rel_mse = lambda n: float(jnp.mean(squared_errors(keys, jnp.zeros(n))))

    few, many = rel_mse(4), rel_mse(256)
    assert many < few / 32, (few, many)
    assert many < 0.25**2


def test_estimator_transforms_return_estimate_and_advance_key():
    obj, params = _problem("smooth")
    for est_tx, kind in [(jp.hutchinson_diagonal(), "hutchinson"),
                         (jp.equilibration_diagonal(), "equilibration"),
                         (jp.abs_hvp_diagonal(), "abs_hvp")]:
        state = est_tx.init(params)
        e1, state1 = est_tx.update(None, state, params, obj_fn=obj)
        e2, _ = est_tx.update(None, state1, params, obj_fn=obj)
        assert jax.tree.structure(e1) == jax.tree.structure(params)
        assert not np.allclose(ravel_pytree(e1)[0], ravel_pytree(e2)[0])  # fresh probes
        if kind != "hutchinson":
            assert float(jnp.min(ravel_pytree(e1)[0])) >= 0
    with pytest.raises(ValueError, match="obj_fn"):
        jp.hutchinson_diagonal().update(None, est_tx.init(params), params)
    with pytest.raises(ValueError, match="n_probes=0"):
        jp.equilibration_diagonal(n_probes=0)


def test_estimators_plug_into_optax_sophia():
    obj, params = _problem("smooth")
    for est in (jp.hutchinson_diagonal(), jp.equilibration_diagonal()):
        tx = optax.contrib.sophia(1e-2, hessian_diagonal_fn=est)
        state = tx.init(params)

        @jax.jit
        def step(params, state):
            updates, state = tx.update(jax.grad(obj)(params), state, params, obj_fn=obj)
            return optax.apply_updates(params, updates), state

        p = params
        for _ in range(30):
            p, state = step(p, state)
        assert obj(p) < 0.9 * obj(params)


@pytest.mark.parametrize("kind", ["hutchinson", "equilibration", "abs_hvp"])
def test_estimator_under_pmap_equals_full_batch(kind):
    n_dev = 4
    params = mlp_init(jax.random.PRNGKey(0))
    x, y = regression_batch(jax.random.PRNGKey(1), n=32)
    loss = mse_loss(gaussian)
    key = jax.random.PRNGKey(5)

    def local(xs, ys):
        return jp.estimate_diagonal(kind, key, params, obj_fn=lambda p: loss(p, (xs, ys)),
                                    axis_name="d")

    shards = jax.pmap(local, axis_name="d", devices=jax.devices()[:n_dev])(
        x.reshape(n_dev, -1, 2), y.reshape(n_dev, -1, 1))
    ref = jp.estimate_diagonal(kind, key, params, obj_fn=lambda p: loss(p, (x, y)))
    for a, b in zip(jax.tree.leaves(shards), jax.tree.leaves(ref), strict=False):
        np.testing.assert_allclose(a[0], b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(a[0], a[-1])  # replicas agree
