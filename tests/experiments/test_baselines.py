"""Tests of the Shampoo, K-FAC and L-BFGS baselines (experiments/optimizers/)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fields
from experiments import optimizers
from experiments.optimizers.kfac import (
    kfac,
    kfac_loss,
    kfac_task_options,
    make_kfac_step,
    registered_layers,
    scale_by_kfac,
)
from experiments.optimizers.lbfgs import check_full_batch, lbfgs
from jaxprecond.train_step import make_train_step

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:kfac_jax", "ignore::DeprecationWarning:tensorflow_probability"
)


def small_field(name="gaussian", out=3, depth=3, width=8, **kw):
    model = fields.make(name, out_features=out, depth=depth, width=width, **kw)
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
    return model, params, (lambda p, x: model.apply({"params": p}, x))


def image_batch(key, n=64, out=3):
    x = jax.random.uniform(key, (n, 2), minval=-1, maxval=1)
    y = 0.5 + 0.4 * jnp.sin(3 * x[:, :1] + jnp.arange(out)) * jnp.cos(2 * x[:, 1:])
    return {"coords": x, "pixels": y}


def occupancy_batch(key, n=64):
    x = jax.random.uniform(key, (n, 2), minval=-1, maxval=1)
    inside = (jnp.sum(x**2, axis=1, keepdims=True) < 0.4).astype(jnp.float32)
    return {"coords": x, "pixels": inside}


def mse(apply):
    return lambda p, b: jnp.mean((apply(p, b["coords"]) - b["pixels"]) ** 2)


# ------------------------------------------------------------------------------------------------
# K-FAC: registration


@pytest.mark.parametrize("name", ["gaussian", "wavelet", "relu_pe"])
def test_kfac_registers_every_dense_layer(name):
    model, params, apply = small_field(name)
    layers = registered_layers(kfac_loss(apply, "mse"), params, image_batch(jax.random.key(1)))
    covered = [path for layer in layers for path in layer["paths"]]
    all_paths = [
        jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(params)[0]
    ]
    assert sorted(covered) == sorted(all_paths)  # every parameter, exactly once
    for layer in layers:  # one Kronecker block per Dense: its kernel and its bias
        assert layer["block"] == "DenseTwoKroneckerFactored", layer
        kernel, bias = layer["paths"]
        assert kernel.endswith("['kernel']") and bias == kernel.replace("kernel", "bias")
    n_dense = sum(1 for p in all_paths if p.endswith("['kernel']"))
    assert len(layers) == n_dense == (5 if name == "wavelet" else 3)


class ScaledField(nn.Module):
    """A Dense layer followed by an elementwise learned scale: not a dense layer for K-FAC."""

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(3)(x)
        return h * self.param("scale", nn.initializers.ones, (3,))


def test_registration_check_reports_non_dense_parameters():
    model = ScaledField()
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
    apply = lambda p, x: model.apply({"params": p}, x)
    layers = registered_layers(kfac_loss(apply, "mse"), params, image_batch(jax.random.key(1)))
    by_path = {path: layer["block"] for layer in layers for path in layer["paths"]}
    assert by_path["['scale']"] != "DenseTwoKroneckerFactored"
    assert by_path["['Dense_0']['kernel']"] == "DenseTwoKroneckerFactored"


# ------------------------------------------------------------------------------------------------
# K-FAC: the preconditioner against a direct computation of the reference's formulas


def dense_inputs_and_output_grads(model, params, batch):
    """Per Dense layer (in call order): inputs a (N, in) and d_i = dl_i/ds_i (N, out)."""
    inputs = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
            inputs[context.module.name] = args[0]
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        model.apply({"params": params}, batch["coords"])
    names = list(inputs)

    def total_loss(perturb):
        def add(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
                out = out + perturb[context.module.name]
            return out

        with nn.intercept_methods(add):
            pred = model.apply({"params": params}, batch["coords"])
        # sum over examples of l_i = mean over channels of the squared error
        return jnp.sum(jnp.mean((pred - batch["pixels"]) ** 2, axis=1))

    zeros = {n: jnp.zeros(inputs[n].shape[:1] + (params[n]["bias"].shape[0],)) for n in names}
    deltas = jax.grad(total_loss)(zeros)
    return [
        (n, np.asarray(inputs[n], np.float64), np.asarray(deltas[n], np.float64)) for n in names
    ]


def reference_kfac(layers, grads, damping):
    """A^-1 [gW; gb] G^-1 with pi-adjusted factored damping, in float64."""
    out = {}
    for name, a, d in layers:
        n = a.shape[0]
        a1 = np.concatenate([a, np.ones((n, 1))], axis=1)
        fa, fg = a1.T @ a1 / n, d.T @ d / n
        na, ng = np.trace(fa) / fa.shape[0], np.trace(fg) / fg.shape[0]
        fa_hat = np.sqrt(ng / na) * fa + np.sqrt(damping) * np.eye(fa.shape[0])
        fg_hat = np.sqrt(na / ng) * fg + np.sqrt(damping) * np.eye(fg.shape[0])
        g = np.concatenate(
            [np.asarray(grads[name]["kernel"]), np.asarray(grads[name]["bias"])[None]], axis=0
        )
        p = np.linalg.solve(fa_hat, g) @ np.linalg.inv(fg_hat)
        out[name] = {"kernel": p[:-1], "bias": p[-1]}
    return out


def test_kfac_matches_direct_computation_and_reuses_inverses():
    model, params, apply = small_field("gaussian", out=3)
    loss_fn = kfac_loss(apply, "mse")
    b0, b1 = image_batch(jax.random.key(1)), image_batch(jax.random.key(2))
    tx = scale_by_kfac(loss_fn, b0, damping=0.1, inverse_update_period=2)
    state = tx.init(params)
    update = jax.jit(lambda g, s, b: tx.update(g, s, params, batch=b))
    factors0 = dense_inputs_and_output_grads(model, params, b0)
    for step, batch in enumerate([b0, b1]):
        grads = jax.grad(loss_fn)(params, batch)
        out, state = update(grads, state, batch)
        # step 1 is not a refresh step: the inverses of step 0's batch are reused
        expected = reference_kfac(factors0, grads, damping=0.1)
        for name in expected:
            for leaf in ("kernel", "bias"):
                np.testing.assert_allclose(
                    np.asarray(out[name][leaf]),
                    expected[name][leaf],
                    rtol=2e-3,
                    atol=1e-6,
                    err_msg=f"step {step} {name}/{leaf}",
                )
    # step 2 refreshes on batch 1: no longer step 0's preconditioner
    grads = jax.grad(loss_fn)(params, b1)
    out, state = update(grads, state, b1)
    fresh = reference_kfac(dense_inputs_and_output_grads(model, params, b1), grads, 0.1)
    np.testing.assert_allclose(
        np.asarray(out["dense_1"]["kernel"]), fresh["dense_1"]["kernel"], rtol=2e-3, atol=1e-6
    )
    stale = reference_kfac(factors0, grads, 0.1)
    assert not np.allclose(fresh["dense_1"]["kernel"], stale["dense_1"]["kernel"], rtol=1e-2)


def test_kfac_loss_values_equal_the_plain_losses():
    _, params, apply = small_field("gaussian", out=3)
    b = image_batch(jax.random.key(3))
    np.testing.assert_allclose(kfac_loss(apply, "mse")(params, b), mse(apply)(params, b), rtol=1e-6)
    _, params1, apply1 = small_field("gaussian", out=1)
    o = occupancy_batch(jax.random.key(4))
    plain = jnp.mean(optax.sigmoid_binary_cross_entropy(apply1(params1, o["coords"]), o["pixels"]))
    np.testing.assert_allclose(kfac_loss(apply1, "bce")(params1, o), plain, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Each baseline lowers the loss on a small field


def image_task(depth=3, width=16, size=8):
    """A harness ImageTask on a smooth size x size RGB image (size^2 examples)."""
    from experiments.tasks.image import ImageTask

    u = np.linspace(-1, 1, size, dtype=np.float32)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    image = np.stack([0.5 + 0.4 * np.sin(3 * xx + c) * np.cos(2 * yy) for c in range(3)], -1)
    model = fields.make("gaussian", out_features=3, depth=depth, width=width)
    task = ImageTask(image, model)
    return task, task.init_params(jax.random.key(0)), task.batch(np.arange(task.num_examples))


def train(step, params, state, batch, steps):
    for _ in range(steps):
        params, state, metrics = step(params, state, batch)
        assert bool(metrics["finite"])
    assert step.fn._cache_size() == 1  # the state's types are stable: one compilation
    return params


def test_kfac_from_the_registry_lowers_mse_on_an_image_task():
    task, params, batch = image_task()
    tx = optimizers.build(
        "kfac", 1e-3, seed=0, inverse_update_period=10, **kfac_task_options(task, "mse")
    )
    step = make_kfac_step(task.loss_fn, tx)
    initial = float(task.loss_fn(params, batch))
    params = train(step, params, tx.init(params), batch, 60)
    assert float(task.loss_fn(params, batch)) < 0.7 * initial


def test_kfac_lowers_bce_on_an_occupancy_field():
    # the occupancy field's sigma (0.09); the bar is half the cross-entropy of the best constant
    # prediction (the inside fraction), so the field must have learned the shape, not the prior
    _, params, apply = small_field("gaussian", out=1, width=16, sigma=0.09)
    batch = occupancy_batch(jax.random.key(5))
    loss_fn = kfac_loss(apply, "bce")
    tx = kfac(1e-2, loss_fn=loss_fn, example_batch=batch, inverse_update_period=10)
    step = make_kfac_step(loss_fn, tx)
    params = train(step, params, tx.init(params), batch, 60)
    p = float(jnp.mean(batch["pixels"]))
    prior_bce = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert float(loss_fn(params, batch)) < 0.5 * prior_bce


def test_shampoo_from_the_registry_lowers_mse_on_an_image_task():
    # the reference's configuration (SGD grafting, Nesterov momentum 0.9, blocks of 128, vectors
    # unpreconditioned) with roots reused for 10 steps, at the registry's default lr
    task, params, batch = image_task()
    spec = optimizers.get("shampoo")
    assert spec.lr_for("gaussian") == 0.1 and spec.lr_for("sine") == 0.01
    tx = optimizers.build(
        "shampoo",
        spec.lr_for("gaussian"),
        preconditioning_interval=10,
        graft="sgd",
        momentum=0.9,
        nesterov=True,
        block_size=128,
        vector_preconditioner="none",
    )
    step = make_train_step(task.loss_fn, tx)
    initial = float(task.loss_fn(params, batch))
    params = train(step, params, tx.init(params), batch, 40)
    assert float(task.loss_fn(params, batch)) < 0.5 * initial


def test_lbfgs_from_the_registry_lowers_mse_full_batch():
    task, params, batch = image_task(depth=2)
    spec = optimizers.get("lbfgs")
    assert spec.full_batch_only
    tx = optimizers.build("lbfgs", spec.lr_for("gaussian"))
    step = make_train_step(task.loss_fn, tx)
    initial = float(task.loss_fn(params, batch))
    # optax's line search starts weakly typed; ours does not, so the step compiles once
    params = train(step, params, tx.init(params), batch, 40)
    assert float(task.loss_fn(params, batch)) < 0.2 * initial


# ------------------------------------------------------------------------------------------------
# L-BFGS converges on a convex quadratic


def test_lbfgs_converges_to_the_quadratic_minimum():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((12, 12))
    a = m @ m.T + 0.5 * np.eye(12)  # SPD, condition number ~ 100
    b = rng.standard_normal(12)
    x_star = np.linalg.solve(a, b)
    batch = (jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    loss_fn = lambda x, ab: 0.5 * x @ ab[0] @ x - ab[1] @ x
    tx = lbfgs()
    step = make_train_step(loss_fn, tx)
    x, state = jnp.zeros(12), tx.init(jnp.zeros(12))
    for _ in range(30):
        x, state, _ = step(x, state, batch)
    np.testing.assert_allclose(np.asarray(x), x_star, rtol=1e-3, atol=1e-3 * np.abs(x_star).max())
    f_star = -0.5 * b @ x_star
    assert float(loss_fn(x, batch)) - f_star < 1e-5 * abs(f_star)


# ------------------------------------------------------------------------------------------------
# Bad combinations


def test_lbfgs_refuses_mini_batches_unless_forced():
    with pytest.raises(
        ValueError,
        match=r"lbfgs needs the full batch: batch_size=512 < "
        r"num_examples=65536.*force=True",
    ):
        lbfgs(batch_size=512, num_examples=65536)
    lbfgs(batch_size=512, num_examples=65536, force=True)  # forced: builds
    lbfgs(batch_size=65536, num_examples=65536)
    with pytest.raises(ValueError, match="does not support pmap"):
        lbfgs(axis_name="batch")
    with pytest.raises(ValueError, match="memory_size must be an int >= 1, got 0"):
        lbfgs(memory_size=0)
    check_full_batch("x", None, 10)  # unknown sizes: no check


def test_kfac_bad_arguments_raise_clearly():
    _, params, apply = small_field("gaussian")
    loss_fn = kfac_loss(apply, "mse")
    batch = image_batch(jax.random.key(8), n=8)
    with pytest.raises(ValueError, match="kfac needs loss_fn"):
        kfac(1e-4)
    with pytest.raises(ValueError, match="loss must be one of"):
        kfac_loss(apply, "l1")
    with pytest.raises(ValueError, match="damping must be > 0, got 0"):
        scale_by_kfac(loss_fn, batch, damping=0.0)
    with pytest.raises(ValueError, match="inverse_update_period must be an int >= 1, got 0"):
        scale_by_kfac(loss_fn, batch, inverse_update_period=0)
    with pytest.raises(ValueError, match="estimation_mode must be one of"):
        scale_by_kfac(loss_fn, batch, estimation_mode="fisher_empirical_direct")
    with pytest.raises(ValueError, match="keys 'coords' and 'pixels'"):
        kfac_loss(apply, "mse")(params, {"x": batch["coords"], "y": batch["pixels"]})
    tx = kfac(1e-4, loss_fn=loss_fn, example_batch=batch)
    state = tx.init(params)
    grads = jax.grad(loss_fn)(params, batch)
    with pytest.raises(TypeError, match="K-FAC needs the params and the current batch"):
        tx.update(grads, state, params)  # e.g. jaxprecond.make_train_step: no batch
    with pytest.raises(ValueError, match="parallel='bogus' is unknown"):
        make_kfac_step(loss_fn, tx, parallel="bogus")
