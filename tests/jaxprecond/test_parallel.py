"""pmap over 2 and 4 simulated devices, and sharded jit, against one device on the whole batch.

tests/conftest.py simulates 4 host devices. Every replica draws identical probes (the key is in
the replicated state) and the HVP is pmean-ed, so the runs must agree to rounding. They run in
float64: the Jacobi AdaHessian divides by ``|mean_k v_k * Hv_k|`` over 2 probes, which can cancel
to near zero for a coordinate, and then float32's different summation orders across devices
move single parameters by up to 16% in 8 steps (measured); in float64 every run agrees with one
device to ~1e-14, while leaving out the curvature ``pmean`` drifts by more than 1e-4.
"""

import jax
import numpy as np
import optax
import pytest

import jaxprecond as jp
from tests.jaxprecond.helpers import gaussian, mlp_init, mse_loss, regression_batch

LOSS = mse_loss(gaussian)
STEPS = 8
RTOL, ATOL = 1e-10, 1e-12  # float64 rounding: ~1e-14


@pytest.fixture(scope="module", autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _f64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def _tx(name, axis_name=None):
    if name == "esgd":  # refreshes on steps 0, 1, 5 (warm-up 2, interval 4)
        return jp.esgd(0.05, warmup=2, update_interval=4, axis_name=axis_name)
    return jp.adahessian(0.05, preconditioner="jacobi", axis_name=axis_name, n_probes=2)


def _run(tx, parallel, devices, batches):
    step = jp.make_train_step(LOSS, tx, parallel=parallel, devices=devices)
    # Committed to the last device, as arrays restored from a checkpoint can be.
    params = jax.device_put(_f64(mlp_init(jax.random.PRNGKey(0))), jax.devices()[-1])
    p, s = step.place(params), step.place(tx.init(params))
    losses = []
    for b in batches:
        p, s, metrics = step(p, s, step.shard(b))
        losses.append(float(metrics["loss"]))
    return step.fetch(p), losses


@pytest.fixture(scope="module")
def batches():
    return [_f64(regression_batch(jax.random.PRNGKey(10 + i), n=32)) for i in range(STEPS)]


@pytest.fixture(scope="module")
def single(batches):
    return {name: _run(_tx(name), None, None, batches) for name in ("esgd", "adahessian")}


@pytest.mark.parametrize("name", ["esgd", "adahessian"])
@pytest.mark.parametrize("parallel,n_dev", [("pmap", 2), ("pmap", 4), ("sharded", 4)])
def test_parallel_equals_single_device(name, parallel, n_dev, batches, single):
    assert len(jax.devices()) >= 4, "tests/conftest.py should simulate 4 CPU devices"
    axis = "batch" if parallel == "pmap" else None  # sharded jit needs no pmean
    params, losses = _run(_tx(name, axis), parallel, jax.devices()[:n_dev], batches)
    ref_params, ref_losses = single[name]
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    # Not vacuous: the parameters moved. ESGD also descends; the Jacobi AdaHessian with 2 probes
    # need not in 8 steps (a near-cancelled |diag| estimate gives a huge step; with these probes
    # its loss rises), which is the estimator's fragility, not the parallel step's.
    init = _f64(mlp_init(jax.random.PRNGKey(0)))
    assert max(float(np.max(np.abs(a - b))) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(init), strict=True)) > 1e-2
    if name == "esgd":
        assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["esgd", "adahessian"])
def test_pmap_without_axis_name_still_averages_the_curvature(name, batches, single):
    # make_train_step(parallel='pmap') averages the curvature over its axis whatever the
    # transform was built with: a transform without axis_name matches one device too.
    params, losses = _run(_tx(name, None), "pmap", jax.devices()[:4], batches)
    ref_params, ref_losses = single[name]
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def _hand_pmap_run(tx, batches, *, context):
    """A hand-written pmap train loop over 4 devices (no make_train_step)."""
    n = 4

    def body(params, state, batch):
        obj = lambda p: LOSS(p, batch)
        grads = jax.lax.pmean(jax.grad(obj)(params), "i")
        if context:
            with jp.data_parallel_axis("i"):
                updates, state = tx.update(grads, state, params, obj_fn=obj)
        else:
            updates, state = tx.update(grads, state, params, obj_fn=obj)
        return optax.apply_updates(params, updates), state

    step = jax.pmap(body, axis_name="i", devices=jax.devices()[:n])
    rep = lambda t: jax.tree.map(lambda x: np.broadcast_to(x, (n,) + np.shape(x)), t)
    params = _f64(mlp_init(jax.random.PRNGKey(0)))
    p, s = rep(params), rep(tx.init(params))
    for x, y in batches:
        p, s = step(p, s, (x.reshape(n, -1, x.shape[-1]), y.reshape(n, -1, y.shape[-1])))
    return jax.tree.map(lambda v: np.asarray(v[0]), p)


def test_hand_written_pmap_needs_axis_name_or_the_context(batches, single):
    # The failure the documentation warns about: without axis_name (and outside
    # make_train_step) each replica keeps its own curvature and drifts from one device...
    ref = single["esgd"][0]
    drift = _hand_pmap_run(_tx("esgd", None), batches, context=False)
    diffs = [np.max(np.abs(a - b)) for a, b in
             zip(jax.tree.leaves(drift), jax.tree.leaves(ref), strict=True)]
    assert max(diffs) > 1e-4
    # ...and either fix gives the single-device result.
    for tx, context in [(_tx("esgd", "i"), False), (_tx("esgd", None), True)]:
        fixed = _hand_pmap_run(tx, batches, context=context)
        for a, b in zip(jax.tree.leaves(fixed), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("parallel,axis,match", [
    ("pmap", "other", "axis_name='other'.*maps the axis 'batch'"),
    ("sharded", "batch", "axis_name='batch'.*no axis is mapped"),
    (None, "batch", "axis_name='batch'.*no axis is mapped"),
])
def test_a_contradicting_axis_name_is_refused_before_any_update(parallel, axis, match, batches):
    tx = _tx("esgd", axis)
    devices = None if parallel is None else jax.devices()[:2]
    step = jp.make_train_step(LOSS, tx, parallel=parallel, devices=devices)
    params = mlp_init(jax.random.PRNGKey(0))
    p, s = step.place(params), step.place(tx.init(params))
    with pytest.raises(ValueError, match=match):
        step(p, s, step.shard(batches[0]))


def test_pmap_batch_must_divide():
    step = jp.make_train_step(LOSS, _tx("esgd", "batch"), parallel="pmap",
                              devices=jax.devices()[:4])
    with pytest.raises(ValueError, match="batch size 30"):
        step.shard(regression_batch(jax.random.PRNGKey(0), n=30))
