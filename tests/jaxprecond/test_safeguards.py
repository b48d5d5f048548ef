"""ESGD's safeguards against a collapse and the diagnostics that warn of one.

Updates are checked against the NumPy rules of ``test_optimizers.reference_adam_like`` on the
diagonal quadratic (deterministic curvature), and against bounds when the HVP is made tiny on
purpose, the failure mode of a single Rademacher probe.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprecond as jp
from tests.jaxprecond.helpers import gaussian, mlp_init, mse_loss, regression_batch
from tests.jaxprecond.test_optimizers import (
    A_DIAG,
    X0,
    esgd_refresh,
    quad,
    reference_adam_like,
    run,
)

LR = 0.05
# |a| = [0.5, 2, 10, 40], mean 13.125: a floor at 0.1 x mean (1.3125) lifts the first root only.
FLOOR = 0.1


@pytest.mark.parametrize("options,reference", [
    ({"curvature_floor": FLOOR}, {"floor": FLOOR}),
    ({"clip": 0.6}, {"clip": 0.6}),
    ({"lr_warmup_steps": 30}, {"ramp": 30}),
    ({"curvature_floor": FLOOR, "clip": 0.6, "lr_warmup_steps": 30},
     {"floor": FLOOR, "clip": 0.6, "ramp": 30}),
])
def test_safeguards_match_hand_computed_updates(options, reference):
    steps = 160
    ours, _ = run(jp.esgd(LR, **{"clip": None, **options}), steps)
    ref = reference_adam_like(steps, LR, stat=A_DIAG**2, refresh=esgd_refresh,
                              correction="per_refresh", **reference)
    np.testing.assert_allclose(np.stack(ours), np.stack(ref), rtol=1e-3, atol=1e-4)
    plain = reference_adam_like(steps, LR, stat=A_DIAG**2, refresh=esgd_refresh,
                                correction="per_refresh")
    assert np.max(np.abs(np.stack(ref) - np.stack(plain))) > 1e-2  # each one changes the path


def test_first_steps_by_hand():
    g0 = A_DIAG * X0  # ratio g / |a| = X0 = [1, -2, 0.5, 0.25]
    floored = np.maximum(A_DIAG, FLOOR * A_DIAG.mean())
    ours, _ = run(jp.esgd(LR, curvature_floor=FLOOR, clip=None), 1)
    np.testing.assert_allclose(ours[1], X0 - LR * g0 / (floored + 1e-4), rtol=1e-5)
    ours, _ = run(jp.esgd(LR, clip=0.6), 1)
    np.testing.assert_allclose(ours[1], X0 - LR * np.clip(g0 / (A_DIAG + 1e-4), -0.6, 0.6),
                               rtol=1e-5)
    ours, _ = run(jp.esgd(LR, lr_warmup_steps=4, clip=None), 2)
    np.testing.assert_allclose(ours[1], X0 - LR / 4 * g0 / (A_DIAG + 1e-4), rtol=1e-5)


@pytest.mark.parametrize("options", [{"curvature_floor": 0.01}, {"clip": 10.0},
                                     {"curvature_floor": 0.01, "clip": 10.0}])
def test_safeguards_never_trigger_when_curvature_is_well_scaled(options):
    # Floor 0.01 x mean = 0.13 < min |a|; every |ratio| <= 2 < 10: the path is plain ESGD's.
    plain, _ = run(jp.esgd(LR, clip=None), 160)
    options = {"clip": None, **options}
    guarded, _ = run(jp.esgd(LR, **options), 160)
    np.testing.assert_array_equal(np.stack(guarded), np.stack(plain))


def _tiny_first_hvp(v):
    """An HVP whose first coordinate is ~0, as when one probe's terms cancel."""
    return v * jnp.asarray([1e-9, 2.0, 10.0, 40.0], v.dtype)


@pytest.mark.parametrize("options", [{"clip": None}, {"clip": 0.5}, {},
                                     {"clip": None, "curvature_floor": FLOOR}])
def test_a_tiny_hvp_gives_no_step_beyond_the_bound(options):
    tx = jp.scale_by_esgd(**options)  # {}: the default, clip=1
    x = jnp.asarray(X0)
    g = np.asarray(A_DIAG * X0)
    updates, state = tx.update(jnp.asarray(g), tx.init(x), x, obj_fn=quad,
                               hvp_fn=_tiny_first_hvp)
    step = np.abs(np.asarray(updates))
    roots = np.asarray([1e-9, 2.0, 10.0, 40.0])
    if "curvature_floor" in options:  # 0.1 x mean(roots) = 1.3 bounds the first coordinate
        roots = np.maximum(roots, FLOOR * roots.mean())
        assert step[0] <= abs(g[0]) / 1.3 * (1 + 1e-5), step
    elif options.get("clip", 1.0) is not None:
        assert step.max() <= options.get("clip", 1.0) * (1 + 1e-6), step
    else:  # unguarded: g_0 / eps = 0.5 / 1e-4, a step of 5000 on one coordinate
        assert step[0] > 1e3
    diagnostics = jp.curvature_diagnostics(state)
    # The diagnostics see the ratio before clipping, and the roots below eps.
    np.testing.assert_allclose(float(diagnostics["max_update"]),
                               np.max(np.abs(g) / (roots + 1e-4)), rtol=1e-4)
    expected_small = 0.0 if "curvature_floor" in options else 0.25
    assert float(diagnostics["small_curvature_fraction"]) == expected_small


def test_warmup_probes_average_many_probes_then_one():
    # A non-diagonal H: one Rademacher probe gives (Hv)_i^2 with a relative spread of ~1;
    # 4096 probes give D^E_i = sum_j H_ij^2 within ~1% (the root within ~0.6%).
    h = jnp.asarray([[2.0, 1.0, -1.0], [1.0, 3.0, 0.5], [-1.0, 0.5, 1.0]])
    obj = lambda x: 0.5 * x @ h @ x
    x = jnp.asarray([1.0, -1.0, 0.5])
    exact = np.sqrt(np.sum(np.asarray(h) ** 2, axis=1))
    tx = jp.scale_by_esgd(warmup=1, warmup_probes=4096, b1=0.0, clip=None)
    state = tx.init(x)
    g = jax.grad(obj)(x)
    u1, state = tx.update(g, state, x, obj_fn=obj)
    np.testing.assert_allclose(np.asarray(u1), np.asarray(g) / (exact + 1e-4), rtol=0.05)
    # After the warm-up one probe is used: per coordinate the refreshed D_i is one (Hv)_i^2.
    forced = tx.init(x)._replace(count=jnp.asarray(5), hvp_count=jnp.asarray(0))
    _, single = tx.update(g, forced, x, obj_fn=obj)
    one_probe = np.asarray(single.nu) / (1 - 0.999)
    hv_sq = np.asarray([(np.asarray(h) @ np.asarray(v)) ** 2
                        for v in np.array(np.meshgrid(*[[-1, 1]] * 3)).T.reshape(-1, 3)])
    assert any(np.allclose(one_probe, row, rtol=1e-4) for row in hv_sq), one_probe


def test_bad_safeguard_values_raise():
    with pytest.raises(ValueError, match="curvature_floor=-0.1"):
        jp.esgd(0.1, curvature_floor=-0.1)
    with pytest.raises(ValueError, match="clip=0"):
        jp.esgd(0.1, clip=0)
    with pytest.raises(ValueError, match="lr_warmup_steps=-1"):
        jp.esgd(0.1, lr_warmup_steps=-1)


def test_train_step_reports_curvature_diagnostics_only_for_curvature_optimizers():
    loss = mse_loss(gaussian)
    params, batch = mlp_init(jax.random.PRNGKey(0)), regression_batch(jax.random.PRNGKey(1))
    for tx, expected in [(jp.esgd(0.05, warmup=3, update_interval=4), True),
                         (optax.adam(1e-2), False)]:
        step = jp.make_train_step(loss, tx)
        _, state, metrics = step(params, tx.init(params), batch)
        assert ("max_update" in metrics) == expected
        assert ("small_curvature_fraction" in metrics) == expected
        if expected:
            assert float(metrics["max_update"]) > 0
            assert float(metrics["max_update"]) == float(
                jp.curvature_diagnostics(state)["max_update"])


@pytest.mark.parametrize("clip", [0.5, None])
def test_clip_under_inject_hyperparams_gives_identical_numbers(clip):
    # inject_hyperparams turns a numeric clip into an array; None stays a static choice.
    direct = jp.esgd(LR, clip=clip)
    injected = optax.inject_hyperparams(jp.esgd)(learning_rate=LR, clip=clip)
    ours, _ = run(direct, 20)
    theirs, _ = run(injected, 20)
    np.testing.assert_allclose(np.stack(theirs), np.stack(ours), rtol=1e-6)
    assert (np.stack(ours)[1] != np.stack(run(jp.esgd(LR, clip=None), 1)[0])[1]).any() == (
        clip is not None)  # 0.5 binds on the first step (ratio up to 2); None does not


def test_no_update_and_no_reported_update_before_a_first_successful_refresh():
    tx = jp.scale_by_esgd()
    x = jnp.asarray(X0)
    nan_hvp = lambda v: jax.tree.map(lambda a: a * jnp.nan, v)
    updates, state = tx.update(jnp.asarray(A_DIAG * X0), tx.init(x), x, obj_fn=quad,
                               hvp_fn=nan_hvp)
    np.testing.assert_array_equal(np.asarray(updates), 0.0)
    assert int(state.hvp_count) == 0
    assert float(jp.curvature_diagnostics(state)["max_update"]) == 0.0


def test_diagnostics_are_measured_on_refresh_steps_and_held_between():
    # warmup=2: steps 0 and 1 refresh, 2 and 3 do not (the next refresh is at step 100).
    tx = jp.scale_by_esgd(warmup=2, update_interval=100, clip=None)
    x = jnp.asarray(X0)
    state = tx.init(x)
    seen = []
    for _ in range(4):
        g = jax.grad(quad)(x)
        u, state = tx.update(g, state, x, obj_fn=quad)
        x = x + u
        seen.append(float(jp.curvature_diagnostics(state)["max_update"]))
    assert seen[0] != seen[1]  # measured on both refresh steps
    assert seen[2] == seen[3] == seen[1]  # held: no pass over the parameters on other steps
