"""Optimizers against their update rules computed by hand on quadratics.

With a diagonal ``A`` and Rademacher probes the HVP statistics are deterministic:
``(Av)**2 = a**2``, ``v * Av = a`` and ``|Av| = |a|`` whatever the signs, so every update can be
written down in closed form with NumPy. (On a diagonal ``A`` the Jacobi and equilibration
diagonals coincide; ``test_preconditioner_targets.py`` separates them on a non-diagonal ``H``.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprecond as jp

# Iterates are compared with a float64 NumPy run: the float32 library drifts by ~1e-5 over
# tens of steps, far below what an off-by-one refresh or a wrong correction changes (> 1e-2).
A_DIAG = np.array([0.5, 2.0, 10.0, 40.0], np.float32)
X0 = np.array([1.0, -2.0, 0.5, 0.25], np.float32)


def quad(x):
    return 0.5 * jnp.sum(jnp.asarray(A_DIAG) * x**2)


def run(tx, steps, x0=X0, obj=quad):
    """Runs ``steps`` jitted updates, returning the list of iterates and the final state."""
    state = tx.init(jnp.asarray(x0))

    @jax.jit
    def step(x, state):
        updates, state = tx.update(jax.grad(obj)(x), state, x, obj_fn=obj)
        return optax.apply_updates(x, updates), state

    xs, x = [np.asarray(x0)], jnp.asarray(x0)
    for _ in range(steps):
        x, state = step(x, state)
        xs.append(np.asarray(x))
    return xs, state


def reference_adam_like(steps, lr, *, stat, b1=0.9, b2=0.999, eps=1e-4, refresh, correction,
                        accumulation="ema", nesterov=False, lr_warmup=None, power=1.0,
                        floor=0.0, clip=None, ramp=0, diag_fn=np.sqrt, nesterov_correction=True):
    """NumPy reimplementation of the documented rules, written independently of the library.

    ``floor``, ``clip`` and ``ramp`` are the safeguards: root floored at ``floor`` times its
    mean, the ratio clipped to ``[-clip, clip]``, the step ramped over the first ``ramp`` steps.
    """
    x = X0.astype(np.float64).copy()
    m = np.zeros_like(x)
    d = np.zeros_like(x)
    n_hvp = 0
    xs = [x.copy()]
    for t in range(1, steps + 1):
        g = A_DIAG * x
        if refresh(t - 1):
            n_hvp += 1
            if accumulation == "ema":
                d = b2 * d + (1 - b2) * stat
            elif accumulation == "max":
                d = np.maximum(b2 * d, stat)
            else:
                d = d + stat
        m = b1 * m + (1 - b1) * g
        if correction == "per_refresh":
            c, mhat = 1 - b2**n_hvp, m / (1 - b1**t)
        elif correction == "reference":
            c, mhat = 1 - b2**t, m / (1 - b1**t)
        else:
            c, mhat = 1.0, m
        if nesterov:  # the reference esgd_max.py: divided by 1 - b1^(t+1)
            mhat = (b1 * m + (1 - b1) * g) / ((1 - b1 ** (t + 1)) if nesterov_correction else 1)
        scale = 1.0 if lr_warmup is None else 1 - lr_warmup**n_hvp
        if ramp:
            scale *= min(t / ramp, 1.0)
        root = diag_fn(d / c) ** power
        root = np.maximum(root, floor * root.mean())
        ratio = mhat / (root + eps)
        if clip is not None:
            ratio = np.clip(ratio, -clip, clip)
        x = x - lr * scale * ratio
        xs.append(x.copy())
    return xs


def esgd_refresh(t):
    return t < 50 or (t - 50 + 1) % 100 == 0


@pytest.mark.parametrize("bias_correction", ["per_refresh", "reference"])
@pytest.mark.parametrize("clip", ["default", None])
def test_esgd_matches_hand_computed_updates(bias_correction, clip):
    # The default clips the ratio to [-1, 1]; clip=None is the papers' method.
    steps = 160
    options = {} if clip == "default" else {"clip": clip}
    bound = 1.0 if clip == "default" else None
    ours, _ = run(jp.esgd(0.05, bias_correction=bias_correction, **options), steps)
    ref = reference_adam_like(steps, 0.05, stat=A_DIAG**2, refresh=esgd_refresh,
                              correction=bias_correction, clip=bound)
    # First update by hand: m_hat = g, sqrt(D / c) = |a|, ratio ~ X0 = [1, -2, 0.5, 0.25].
    g0 = A_DIAG * X0
    ratio = g0 / (np.abs(A_DIAG) + 1e-4)
    if bound is not None:
        ratio = np.clip(ratio, -bound, bound)  # the -2 entry is clipped to -1
    np.testing.assert_allclose(ours[1], X0 - 0.05 * ratio, rtol=1e-5)
    np.testing.assert_allclose(np.stack(ours), np.stack(ref), rtol=1e-3, atol=1e-4)


def test_reference_bias_correction_inflates_steps_between_refreshes():
    # Between refreshes the reference divides sqrt(D) by sqrt(1 - b2^t) with t > refreshes, so
    # after the warm-up its denominator is smaller than the per-refresh one: larger steps
    # (unclipped, so that the bound does not hide the difference).
    _, s_ref = run(jp.scale_by_esgd(bias_correction="reference", clip=None), 120)
    _, s_cor = run(jp.scale_by_esgd(bias_correction="per_refresh", clip=None), 120)
    b2, t, n = 0.999, 121, 50
    ratio = np.sqrt((1 - b2**n) / (1 - b2**t))  # denominator ratio reference / correct
    assert ratio < 0.7  # the reference takes > 1.4x larger steps here
    g = jnp.asarray(A_DIAG * X0)
    x = jnp.asarray(X0)
    u_ref, _ = jp.scale_by_esgd(bias_correction="reference", clip=None).update(
        g, s_ref, x, obj_fn=quad)
    u_cor, _ = jp.scale_by_esgd(bias_correction="per_refresh", clip=None).update(
        g, s_cor, x, obj_fn=quad)
    assert np.all(np.abs(np.asarray(u_ref)) > np.abs(np.asarray(u_cor)))


def test_esgd_refreshes_exactly_at_documented_steps():
    tx = jp.scale_by_esgd()  # warmup 50, every 100 after
    state = tx.init(jnp.asarray(X0))
    update = jax.jit(lambda s: tx.update(jnp.asarray(X0), s, jnp.asarray(X0), obj_fn=quad)[1])
    refreshed = []
    for t in range(260):
        before = int(state.hvp_count)
        assert bool(state.hvp_due) == (t < 50 or t in (149, 249))
        state = update(state)
        if int(state.hvp_count) > before:
            refreshed.append(t)
    assert refreshed == list(range(50)) + [149, 249]


@pytest.mark.parametrize("correct", [True, False])
def test_esgd_max_matches_hand_computed_updates(correct):
    steps = 60
    ours, _ = run(jp.esgd_max(0.5, momentum_bias_correction=correct), steps)
    ref = reference_adam_like(steps, 0.5, stat=A_DIAG**2, refresh=esgd_refresh,
                              correction="none", accumulation="max", nesterov=True,
                              lr_warmup=0.99, nesterov_correction=correct)
    # First step by hand: nu = a^2, direction b1 (1-b1) g + (1-b1) g = 0.19 g, which the
    # reference divides by 1 - b1^2 = 0.19 (its "1 - bias * beta1"); lr scale 1 - 0.99.
    g0 = A_DIAG * X0
    direction = g0 if correct else 0.19 * g0
    first = X0 - 0.5 * 0.01 * direction / (A_DIAG + 1e-4)
    np.testing.assert_allclose(ours[1], first, rtol=1e-5)
    np.testing.assert_allclose(np.stack(ours), np.stack(ref), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("preconditioner,stat,diag_fn", [
    ("equilibrated", A_DIAG**2, np.sqrt), ("jacobi", A_DIAG, np.abs),
    ("squared_hutchinson", A_DIAG**2, np.sqrt), ("abs_hvp", np.abs(A_DIAG), np.sqrt)])
def test_adahessian_variants_match_hand_computed_updates(preconditioner, stat, diag_fn):
    steps = 40
    ours, _ = run(jp.adahessian(0.05, preconditioner=preconditioner, hessian_power=0.5), steps)
    ref = reference_adam_like(steps, 0.05, stat=stat, refresh=lambda t: True,
                              correction="per_refresh", power=0.5, diag_fn=diag_fn)
    np.testing.assert_allclose(np.stack(ours), np.stack(ref), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("preconditioner", ["jacobi", "equilibrated"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_preconditioned_sgd_algorithms_1_and_2(preconditioner, accumulate):
    steps = 5
    ours, _ = run(jp.preconditioned_sgd(0.1, preconditioner=preconditioner,
                                        accumulate=accumulate), steps)
    x = X0.astype(np.float64)
    for t in range(steps):
        # D^J = |diag A| = D^E = ||A_i,:|| for a diagonal A, whether one estimate or the average
        # of all so far (every estimate is exact here); the step divides by D itself.
        denom = np.abs(A_DIAG) + 1e-4
        x = x - 0.1 * A_DIAG * x / denom
        np.testing.assert_allclose(ours[t + 1], x, rtol=1e-5)


def test_nonfinite_hvp_never_reaches_the_state():
    tx = jp.scale_by_esgd()
    x = jnp.asarray(X0)
    state = tx.init(x)
    _, state = tx.update(x, state, x, obj_fn=quad)
    nan_hvp = lambda v: jax.tree.map(lambda a: a * jnp.nan, v)
    updates, new_state = tx.update(x, state, x, obj_fn=quad, hvp_fn=nan_hvp)
    np.testing.assert_array_equal(new_state.nu, state.nu)
    assert int(new_state.hvp_count) == int(state.hvp_count)
    assert np.all(np.isfinite(np.asarray(updates)))


def test_esgd_beats_best_fixed_sgd_on_ill_conditioned_quadratic():
    a = jnp.logspace(0, 4, 12)  # condition number 1e4
    obj = lambda x: 0.5 * jnp.sum(a * x**2)
    x0 = np.ones(12, np.float32)
    steps = 200

    def final_loss(tx):
        xs, _ = run(tx, steps, x0=x0, obj=obj)
        return float(obj(jnp.asarray(xs[-1])))

    # SGD diverges above 2 / lambda_max; sweep every stable rate on a fine grid.
    sgd_best = min(final_loss(optax.sgd(lr)) for lr in np.linspace(0.02, 1.99, 50) / 1e4)
    esgd_loss = final_loss(jp.esgd(0.05))
    assert esgd_loss < 1e-3 * sgd_best, (esgd_loss, sgd_best)


@pytest.mark.parametrize("kwargs,match", [
    ({"b1": 1.0}, "b1=1.0"), ({"b2": -0.1}, "b2=-0.1"), ({"eps": -1.0}, "eps=-1.0"),
    ({"update_interval": 0}, "update_interval=0"), ({"warmup": -1}, "warmup=-1"),
    ({"bias_correction": "total"}, "bias_correction='total'"),
])
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jp.esgd(0.1, **kwargs)


def test_bad_names_raise():
    with pytest.raises(ValueError, match="preconditioner='newton'"):
        jp.adahessian(0.1, preconditioner="newton")
    with pytest.raises(ValueError, match="preconditioner='abs_hvp'"):
        jp.preconditioned_sgd(0.1, preconditioner="abs_hvp")
    with pytest.raises(ValueError, match="learning_rate=0"):
        jp.esgd(0)
    with pytest.raises(ValueError, match="probe='sphere'"):
        jp.esgd(0.1, probe="sphere")
