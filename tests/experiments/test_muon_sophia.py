"""Muon and Sophia (issue 14): through the registry and the harness, resume, and Sophia with our
Hutchinson estimator against optax's own given the same probes."""

import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fields
from experiments import optimizers
from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.metrics import read_metrics
from experiments.optimizers.muon import muon_labels
from tests.experiments.conftest import assert_trees_equal, run_cli, tiny_args

hvp_lib = importlib.import_module("jaxprecond.hvp")  # the package re-exports the function hvp

# Full batch (all 256 pixels: one step an epoch, so the loss is deterministic and must fall);
# Sophia refreshes its Hessian every 3 steps here, on and off the resume point (step 8); its lr
# is raised so 16 steps move the loss.
FULL_BATCH = ("--log-every", "1", "--batch-size", "256")
RUNS = {
    "muon": ("--optimizer", "muon", "--activation", "gaussian", "--lr", "0.02", *FULL_BATCH),
    "sophia_h": ("--optimizer", "sophia_h", "--activation", "gaussian", "--lr", "3e-3",
                 "--opt-arg", "update_interval=3", *FULL_BATCH),
    "sophia_e": ("--optimizer", "sophia_e", "--activation", "gaussian", "--lr", "3e-3",
                 "--opt-arg", "update_interval=3", *FULL_BATCH),
}


def _field_and_batch(activation="gaussian"):
    model = fields.make(activation, depth=3, width=8, out_features=1)
    params = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 2)))["params"]
    x = jax.random.uniform(jax.random.PRNGKey(2), (64, 2), minval=-1, maxval=1)
    y = jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:])
    loss = lambda p: jnp.mean((model.apply({"params": p}, x) - y) ** 2)
    return params, loss


@pytest.mark.parametrize("name", list(RUNS))
def test_trains_through_harness_and_resume_equals_uninterrupted(tmp_path, name):
    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli(tiny_args(full, *RUNS[name], "--epochs", "16", esgd=False)) == 0
    losses = [r["loss"] for r in read_metrics(full / "metrics.csv")]
    assert len(losses) == 16 and all(np.isfinite(losses))
    assert losses[-1] < 0.95 * losses[0], losses
    # mostly monotone
    assert sum(b < a for a, b in zip(losses, losses[1:], strict=False)) >= 12, losses
    assert run_cli(tiny_args(part, *RUNS[name], "--epochs", "8", esgd=False)) == 0
    assert run_cli(tiny_args(part, *RUNS[name], "--epochs", "16", "--resume", esgd=False)) == 0
    state, meta = read_checkpoint(part)
    ref_state, ref_meta = read_checkpoint(full)
    assert meta["step"] == ref_meta["step"] == 16
    assert_trees_equal(state, ref_state)
    assert [r["loss"] for r in read_metrics(part / "metrics.csv")] == losses
    assert json.loads((part / "summary.json").read_text())["resumed_from_step"] == 8
    if name.startswith("sophia"):  # the harness's train step passed obj_fn: h was estimated
        nu = [v for k, v in jax.tree_util.tree_flatten_with_path(state["opt_state"])[0]
              if "'nu'" in jax.tree_util.keystr(k)]
        assert nu and all(np.all(np.isfinite(v)) for v in nu)
        assert any(np.abs(v).max() > 0 for v in nu)


def _run(tx, params, loss, steps):
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, obj_fn=loss))
    out = []
    for _ in range(steps):
        updates, state = step(params, state)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out, state


def _optax_hutchinson_with_our_probes(seed_key):
    """``optax.contrib.hutchinson_estimator_diag_hessian`` line for line, but for its probes: it
    draws each leaf from its own key, ours cut one draw of random bits into the leaves."""
    from optax.contrib._sophia import HutchinsonState

    def update_fn(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        key, subkey = jax.random.split(state.key)
        signs = hvp_lib.sample_probes(subkey, params)
        hv = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jax.tree.map(lambda h, r: h * r, hv, signs), HutchinsonState(key=key)

    return optax.GradientTransformationExtraArgs(lambda p: HutchinsonState(key=seed_key),
                                                 update_fn)


def test_sophia_with_our_hutchinson_equals_optax_sophia_given_the_same_probes():
    """Both split the state key once and draw the probes from the subkey: PRNGKey(seed) for
    ours, the estimator's key for optax's, which here uses our sampler so the probes match."""
    params, loss = _field_and_batch()
    key = jax.random.PRNGKey(7)
    kw = dict(update_interval=2, weight_decay=0.0)
    ref = optax.contrib.sophia(
        1e-2, hessian_diagonal_fn=_optax_hutchinson_with_our_probes(key), **kw)
    our, our_state = _run(optimizers.build("sophia_h", 1e-2, seed=7, update_interval=2),
                          params, loss, 4)
    theirs, _ = _run(ref, params, loss, 4)
    for u, v in zip(our, theirs, strict=True):
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    nu = our_state[0].nu
    assert any(float(jnp.abs(x).max()) > 0 for x in jax.tree.leaves(nu))
    # Guard: after the first refresh the curvature shapes the update (not all sign steps).
    assert any(float(jnp.abs(x).min()) < 0.99e-2 for x in jax.tree.leaves(our[-1]))


def test_sophia_e_curvature_is_the_root_of_the_ema_of_squared_hvps():
    params, loss = _field_and_batch()
    tx = optimizers.build("sophia_e", 1e-3, seed=3)
    _, state = _run(tx, params, loss, 1)  # count 0 refreshes
    _, sub = jax.random.split(jax.random.PRNGKey(3))
    hv = hvp_lib.hvp(loss, params, hvp_lib.sample_probes(sub, params))
    expected = jax.tree.map(lambda h: jnp.sqrt(0.01 * h**2), hv)
    for a, b in zip(jax.tree.leaves(state[0].nu), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max()))


def test_muon_partition_hidden_matrices_only():
    params, _ = _field_and_batch("wavelet")
    labels = muon_labels(params)
    assert labels["dense_1"]["kernel"] == labels["scale_1"]["kernel"] == "muon"
    assert labels["dense_0"]["kernel"] == labels["dense_2"]["kernel"] == "adam"
    assert all(labels[k]["bias"] == "adam" for k in labels)
    assert muon_labels(params, "all_2d")["dense_0"]["kernel"] == "muon"
    # The hidden kernel's update is orthogonalised (5 Newton-Schulz steps): its spectrum is
    # nearly flat where the gradient's spans orders of magnitude.
    grads = jax.grad(_field_and_batch("wavelet")[1])(params)
    tx = optimizers.build("muon", 0.02)
    updates, _ = tx.update(grads, tx.init(params), params)
    s = np.linalg.svd(np.asarray(updates["dense_1"]["kernel"]), compute_uv=False)
    g = np.linalg.svd(np.asarray(grads["dense_1"]["kernel"]), compute_uv=False)
    assert s.max() / s.min() < 0.01 * (g.max() / g.min())
