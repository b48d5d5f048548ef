"""The optimizer registry: names, reference learning rates, extension, building, schedules."""

import jax
import jax.numpy as jnp
import optax
import pytest

from experiments import optimizers
from experiments.harness.errors import UsageError

NAMES = ["adam", "sgd", "esgd", "esgd_reference", "esgd_max", "adahessian_e", "adahessian_j",
         "adahessian_jacobi", "preconditioned_sgd", "preconditioned_sgd_e"]


@pytest.mark.parametrize("name,kwargs", [
    ("adahessian_e", {"preconditioner": "equilibrated"}),
    ("adahessian_j", {"preconditioner": "abs_hvp"}),
    ("adahessian_jacobi", {"preconditioner": "jacobi"}),
    ("preconditioned_sgd", {"preconditioner": "jacobi"}),
    ("preconditioned_sgd_e", {"preconditioner": "equilibrated"}),
])
def test_registry_names_build_the_preconditioner_they_name(name, kwargs):
    # On H = [[1, 3], [3, 2]] |diag H| and the row norms differ, so a name bound to the wrong
    # preconditioner gives another first update.
    import jaxprecond

    h = jnp.array([[1.0, 3.0], [3.0, 2.0]])
    obj = lambda x: 0.5 * x @ h @ x
    x = jnp.array([0.3, -0.7])
    direct = (jaxprecond.adahessian if name.startswith("adahessian")
              else jaxprecond.preconditioned_sgd)(0.1, n_probes=64, **kwargs)
    built = optimizers.build(name, 0.1, n_probes=64)

    def first(tx):
        return tx.update(jax.grad(obj)(x), tx.init(x), x, obj_fn=obj)[0]

    assert jnp.allclose(first(built), first(direct))


def test_all_issue_names_are_registered():
    assert set(NAMES) <= set(optimizers.names())


@pytest.mark.parametrize("name,activation,lr", [
    ("esgd", "gaussian", 0.15), ("esgd", "sine", 0.15), ("esgd", "wavelet", 0.15),
    ("esgd", "relu_pe", 0.1), ("adam", "gaussian", 1e-4), ("adam", "wavelet", 1e-4),
    ("adam", "relu_pe", 1e-3), ("adam", "sine", 5e-5), ("adahessian_e", "gaussian", 0.15),
    ("adahessian_j", "wavelet", 0.15), ("esgd_reference", "gaussian", 0.15),
    ("esgd_reference", "relu_pe", 0.1),
])
def test_reference_learning_rates(name, activation, lr):
    assert optimizers.get(name).lr_for(activation) == lr


def test_every_optimizer_has_a_rate_for_every_activation():
    for name in NAMES:
        for act in ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe"):
            assert optimizers.get(name).lr_for(act) > 0


def test_unknown_name_lists_the_choices():
    with pytest.raises(UsageError, match="'nadam'.*esgd"):
        optimizers.get("nadam")


def test_register_a_new_optimizer_and_refuse_duplicates():
    spec = optimizers.OptimizerSpec(
        "test_lion", lambda lr, seed=0, axis_name=None: optax.lion(lr), {"*": 1e-4},
        full_batch_only=True,
    )
    try:
        optimizers.register(spec)
        assert optimizers.get("test_lion").full_batch_only
        with pytest.raises(ValueError, match="already registered"):
            optimizers.register(spec)
    finally:
        optimizers.REGISTRY.pop("test_lion", None)


@pytest.mark.parametrize("name", NAMES)
def test_each_builds_and_descends_on_a_quadratic(name):
    tx = optimizers.build(name, 0.01, seed=0)
    params = {"w": jnp.array([1.0, -2.0])}
    obj = lambda p: jnp.sum(jnp.array([1.0, 3.0]) * p["w"] ** 2)
    updates, _ = tx.update(jax.grad(obj)(params), tx.init(params), params, obj_fn=obj)
    assert float(obj(optax.apply_updates(params, updates))) < float(obj(params))


def test_optimizer_options_pass_through_and_bad_ones_are_usage_errors():
    optimizers.build("esgd", 0.1, bias_correction="reference")
    with pytest.raises(UsageError, match="no_such_option"):
        optimizers.build("esgd", 0.1, no_such_option=1)
    with pytest.raises(UsageError, match="bias_correction"):
        optimizers.build("esgd", 0.1, bias_correction="sometimes")


def test_schedules():
    assert optimizers.learning_rate_schedule(0.1, "constant", steps_per_epoch=4,
                                             decay_epochs=2) == 0.1
    cos = optimizers.learning_rate_schedule(1.0, "cosine", steps_per_epoch=4, decay_epochs=2,
                                            final_lr=0.01)
    assert float(cos(0)) == pytest.approx(1.0) and float(cos(8)) == pytest.approx(0.01)
    exp = optimizers.learning_rate_schedule(1.0, "exponential", steps_per_epoch=4,
                                            decay_epochs=2, final_lr=0.01)
    assert float(exp(4)) == pytest.approx(0.1) and float(exp(8)) == pytest.approx(0.01)
    assert float(exp(100)) == pytest.approx(0.01)


def test_esgd_reference_is_the_unclipped_reference_rule():
    """``esgd_reference`` is ``jaxprecond.esgd(clip=None, bias_correction="reference")``; on a
    quadratic with one tiny curvature its first step is far beyond the default's clip of 1."""
    import jaxprecond

    params = {"w": jnp.array([1.0, -2.0])}
    obj = lambda p: jnp.sum(jnp.array([1e-6, 3.0]) * p["w"] ** 2)
    grads = jax.grad(obj)(params)

    def first_update(tx):
        return tx.update(grads, tx.init(params), params, obj_fn=obj)[0]["w"]

    ref = first_update(optimizers.build("esgd_reference", 1.0, seed=0))
    explicit = first_update(jaxprecond.esgd(1.0, bias_correction="reference", clip=None, seed=0))
    clipped = first_update(optimizers.build("esgd", 1.0, seed=0))
    assert jnp.allclose(ref, explicit, rtol=1e-6)
    assert float(jnp.max(jnp.abs(clipped))) <= 1.0 + 1e-6
    assert float(jnp.max(jnp.abs(ref))) > 1.0
