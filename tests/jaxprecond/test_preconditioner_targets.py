"""Every named preconditioner against its exact mathematical target.

One shared matrix, in the spirit of optax's test matrices: each curvature transform and each
estimator, on models whose Jacobi diagonal ``|diag H|`` and equilibration diagonal
``||H_i,:||`` differ, must (a) converge at fixed parameters to its own target computed exactly
(``jaxprecond.diagnostics``, i.e. ``jax.hessian``) and (b) divide the gradient by it (power -1).

The 2-parameter quadratic has ``H = [[1, 3], [3, 2]]``: ``|diag H| = (1, 2)``, row norms
``(3.16, 3.61)``, l1 row norms ``(4, 5)``. A diagonal ``H`` would make every target equal and
test nothing, and with Rademacher probes ``(v * Hv)**2 == (Hv)**2``, so a Jacobi that squares
each probe's estimate before averaging lands on the row norms: these tests catch exactly that.

Tolerances are statistical: the standard error of each estimate is computed exactly from ``H``
and every check allows 5 standard errors (or, for the moving averages, a relative bound several
times their computed spread), never a value fitted to the output.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprecond as jp
from jaxprecond import diagnostics
from tests.jaxprecond.helpers import gaussian, mlp_apply, mlp_init, regression_batch

H2 = jnp.array([[1.0, 3.0], [3.0, 2.0]])
X2 = jnp.array([0.3, -0.7])


def quad(x):
    return 0.5 * x @ H2 @ x


def exact_abs_hvp_mean(h):
    """``E|Hv|`` for Rademacher ``v``, by enumerating every sign pattern."""
    n = h.shape[0]
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n)))
    return np.mean(np.abs(signs @ np.asarray(h).T), axis=0)


def targets(h):
    h = np.asarray(h, np.float64)
    return {
        "jacobi": np.abs(np.diag(h)),
        "row_norm": np.sqrt(np.sum(h**2, axis=1)),
        "l1_row_norm": np.sum(np.abs(h), axis=1),
        "sqrt_abs_hvp": np.sqrt(exact_abs_hvp_mean(h)),
    }


def test_the_quadratic_separates_the_targets():
    t = targets(diagnostics.hessian(quad, X2))
    np.testing.assert_allclose(t["jacobi"], [1.0, 2.0])
    np.testing.assert_allclose(t["row_norm"], [np.sqrt(10), np.sqrt(13)])
    np.testing.assert_allclose(t["jacobi"], np.asarray(diagnostics.hessian_diagonal(quad, X2)))
    np.testing.assert_allclose(t["row_norm"], np.asarray(diagnostics.hessian_row_norms(quad, X2)),
                               rtol=1e-6)
    for a, b in itertools.combinations(t.values(), 2):
        assert np.min(np.abs(a - b) / np.maximum(a, b)) > 0.1


# (name, transform built with lr 1 and no momentum, its target D, relative tolerance).
# Relative spreads at 3000 refreshes with b2 = 0.999 and 8 probes, from the exact variance of
# one probe's estimate (9 for the Jacobi entry 0, whose target is 1): sqrt(9 / 8 * 5e-4) = 2.4%
# for Jacobi, < 1% for the others; 0.1 is > 4 such spreads and far below the gaps between the
# targets (> 10%).
EMA_CASES = [
    ("esgd", lambda: jp.scale_by_esgd(b1=0.0, clip=None, n_probes=8, warmup=0,
                                      update_interval=1), "row_norm"),
    ("esgd_reference_correction", lambda: jp.scale_by_esgd(
        b1=0.0, clip=None, n_probes=8, warmup=0, update_interval=1,
        bias_correction="reference"), "row_norm"),
    # One probe a refresh: the running max is over single probes' (Hv)^2.
    ("esgd_max", lambda: jp.scale_by_esgd_max(b1=0.0, lr_warmup=1e-9, warmup=0,
                                              update_interval=1), "l1_row_norm"),
    ("adahessian_equilibrated", lambda: jp.scale_by_adahessian(
        "equilibrated", b1=0.0, n_probes=8), "row_norm"),
    ("adahessian_jacobi", lambda: jp.scale_by_adahessian("jacobi", b1=0.0, n_probes=8),
     "jacobi"),
    ("adahessian_squared_hutchinson", lambda: jp.scale_by_adahessian(
        "squared_hutchinson", b1=0.0), "row_norm"),
    ("adahessian_abs_hvp", lambda: jp.scale_by_adahessian("abs_hvp", b1=0.0, n_probes=8),
     "sqrt_abs_hvp"),
    ("psgd_jacobi_alg2", lambda: jp.scale_by_preconditioned_sgd(
        "jacobi", accumulate=True, n_probes=8), "jacobi"),
    ("psgd_equilibrated_alg2", lambda: jp.scale_by_preconditioned_sgd(
        "equilibrated", accumulate=True, n_probes=8), "row_norm"),
    # Algorithm 1 keeps only the last estimate: 100k probes give a 1% standard error.
    ("psgd_jacobi_alg1", lambda: jp.scale_by_preconditioned_sgd(
        "jacobi", n_probes=100_000), "jacobi"),
    ("psgd_equilibrated_alg1", lambda: jp.scale_by_preconditioned_sgd(
        "equilibrated", n_probes=100_000), "row_norm"),
]


def effective_diagonal(tx, obj, x, refreshes):
    """``g / u`` after ``refreshes`` updates at fixed ``x``: the diagonal the step divides by."""
    g = jax.grad(obj)(x)

    @jax.jit
    def go(state):
        return jax.lax.fori_loop(
            0, refreshes, lambda _, s: tx.update(g, s, x, obj_fn=obj)[1], state)

    state = go(tx.init(x))
    u, state = tx.update(g, state, x, obj_fn=obj)
    assert int(state.hvp_count) >= refreshes
    return np.asarray(g / u, np.float64)


@pytest.mark.parametrize("name,make,target", EMA_CASES, ids=[c[0] for c in EMA_CASES])
def test_step_divides_the_gradient_by_the_exact_target(name, make, target):
    t = targets(diagnostics.hessian(quad, X2))
    refreshes = 1 if name.endswith("alg1") else 3000
    d = effective_diagonal(make(), quad, X2, refreshes) - 1e-4  # eps is added to D
    if name == "esgd_max":
        # A decayed running max of (Hv)^2 over probes: sqrt -> max_v |(Hv)_i| = l1 row norm
        # (every sign pattern recurs, so the decay costs at most b2^(gap/2) ~ 1%).
        np.testing.assert_allclose(d, t[target], rtol=0.02)
    else:
        np.testing.assert_allclose(d, t[target], rtol=0.1)
    others = [k for k in t if k != target]
    for other in others:  # and it is not any other preconditioner's diagonal
        assert np.max(np.abs(d - t[other]) / t[other]) > 0.1, other


def test_jacobi_and_equilibration_variants_differ():
    g = jax.grad(quad)(X2)

    def first_update(tx):
        return np.asarray(tx.update(g, tx.init(X2), X2, obj_fn=quad)[0])

    for jac, equi in [
        (jp.adahessian(1.0, preconditioner="jacobi", n_probes=512),
         jp.adahessian(1.0, preconditioner="equilibrated", n_probes=512)),
        (jp.preconditioned_sgd(1.0, preconditioner="jacobi", n_probes=512),
         jp.preconditioned_sgd(1.0, preconditioner="equilibrated", n_probes=512)),
    ]:
        u_j, u_e = first_update(jac), first_update(equi)
        # |diag H| = (1, 2) against row norms (3.16, 3.61): Jacobi's steps are 1.8-3.2x larger.
        assert np.all(np.abs(u_j) > 1.5 * np.abs(u_e))


@pytest.mark.parametrize("power", [0.5, 2.0])
def test_hessian_power_raises_the_jacobi_diagonal(power):
    t = targets(diagnostics.hessian(quad, X2))
    tx = jp.scale_by_adahessian("jacobi", b1=0.0, n_probes=8, hessian_power=power)
    d = effective_diagonal(tx, quad, X2, 3000) - 1e-4
    np.testing.assert_allclose(d, t["jacobi"] ** power, rtol=0.1 * max(power, 1))


# --- estimators against jax.hessian on a small Gaussian field -----------------------------

def field_problem():
    params = mlp_init(jax.random.PRNGKey(0), sizes=(2, 6, 5, 1))
    x, y = regression_batch(jax.random.PRNGKey(1))
    obj = lambda p: jnp.mean((mlp_apply(p, x, gaussian) - y) ** 2)
    return obj, params


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


def test_the_field_separates_jacobi_from_equilibration():
    obj, params = field_problem()
    jac = flat(diagnostics.hessian_diagonal(obj, params))
    rows = flat(diagnostics.hessian_row_norms(obj, params))
    # Off-diagonal curvature dominates many rows: the two diagonals differ by > 2x there.
    assert np.mean(rows > 2 * np.abs(jac)) > 0.3


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
@pytest.mark.parametrize("kind", ["hutchinson", "equilibration"])
def test_estimators_converge_to_exact_field_targets(kind, probe):
    obj, params = field_problem()
    h = np.asarray(diagnostics.hessian(obj, params), np.float64)
    n_probes = 4000
    est = {"hutchinson": jp.hutchinson_diagonal, "equilibration": jp.equilibration_diagonal}[
        kind](n_probes=n_probes, probe=probe, seed=3)
    value, _ = est.update(None, est.init(params), params, obj_fn=obj)
    value = flat(value)
    sq = h**2
    row_sq = sq.sum(axis=1)
    if kind == "hutchinson":
        target = np.diag(h)
        # Var[v_i (Hv)_i] = sum_{j != i} H_ij^2 (Rademacher); + 2 H_ii^2 for Gaussian v.
        var = row_sq - np.diag(sq) + (2 * np.diag(sq) if probe == "gaussian" else 0)
    else:
        target = row_sq
        # Var[(Hv)_i^2] = 2 (||H_i||^4 - sum_j H_ij^4) (Rademacher), 2 ||H_i||^4 (Gaussian).
        var = 2 * (row_sq**2 - (0 if probe == "gaussian" else np.sum(sq**2, axis=1)))
    se = np.sqrt(var / n_probes)
    assert np.all(np.abs(value - target) <= 5 * se + 1e-6 * np.max(np.abs(target)))
    # ...and the Jacobi estimate is not the squared row norms, nor the other way round.
    other = row_sq if kind == "hutchinson" else np.diag(h)
    assert np.linalg.norm(value - target) < 0.2 * np.linalg.norm(value - other)


@pytest.mark.parametrize("name,make,target", [
    ("adahessian_jacobi", lambda: jp.scale_by_adahessian("jacobi", b1=0.0, n_probes=64),
     "jacobi"),
    ("adahessian_equilibrated", lambda: jp.scale_by_adahessian(
        "equilibrated", b1=0.0, n_probes=64), "row_norm"),
    ("esgd", lambda: jp.scale_by_esgd(b1=0.0, clip=None, n_probes=64, warmup=0,
                                      update_interval=1), "row_norm"),
    ("psgd_jacobi", lambda: jp.scale_by_preconditioned_sgd(
        "jacobi", accumulate=True, n_probes=64), "jacobi"),
    ("psgd_equilibrated", lambda: jp.scale_by_preconditioned_sgd(
        "equilibrated", accumulate=True, n_probes=64), "row_norm"),
])
def test_transforms_divide_by_exact_field_targets(name, make, target):
    obj, params = field_problem()
    exact = {"jacobi": np.abs(flat(diagnostics.hessian_diagonal(obj, params))),
             "row_norm": flat(diagnostics.hessian_row_norms(obj, params))}
    g = jax.grad(obj)(params)
    tx = make()

    @jax.jit
    def go(state):
        return jax.lax.fori_loop(0, 300, lambda _, s: tx.update(g, s, params, obj_fn=obj)[1],
                                 state)

    state = go(tx.init(params))
    u, _ = tx.update(g, state, params, obj_fn=obj)
    gf, uf = flat(g), flat(u)
    ok = np.abs(gf) > 1e-6  # where the gradient vanishes the step says nothing about D
    d = gf[ok] / uf[ok] - 1e-4
    want, other = exact[target][ok], exact["row_norm" if target == "jacobi" else "jacobi"][ok]
    rel = np.linalg.norm(d - want) / np.linalg.norm(want)
    assert rel < 0.1, rel
    assert np.linalg.norm(d - want) < 0.2 * np.linalg.norm(d - other)


def test_one_rademacher_probe_makes_jacobi_and_equilibration_the_same_step():
    # |v_i (Hv)_i| = |(Hv)_i| = sqrt((Hv)_i^2) when |v_i| = 1: Algorithm 1 with one probe cannot
    # tell D^J from D^E (documented); averaging probes separates them.
    g = jax.grad(quad)(X2)

    def first_update(preconditioner, n_probes):
        tx = jp.preconditioned_sgd(1.0, preconditioner=preconditioner, n_probes=n_probes)
        return np.asarray(tx.update(g, tx.init(X2), X2, obj_fn=quad)[0])

    np.testing.assert_array_equal(first_update("jacobi", 1), first_update("equilibrated", 1))
    assert not np.allclose(first_update("jacobi", 64), first_update("equilibrated", 64))
