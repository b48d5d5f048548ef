"""Tests of jaxprecond.shampoo against a direct NumPy computation of Shampoo (Algorithm 4)."""

import itertools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxprecond.shampoo import ScaleByShampooState, scale_by_shampoo, shampoo
from jaxprecond.train_step import make_train_step


def mlp_init(key, sizes):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True):
        kw, kb = jax.random.split(k)
        params.append(
            {
                "w": jax.random.normal(kw, (m, n)) / np.sqrt(m),
                "b": 0.1 * jax.random.normal(kb, (n,)),
            }
        )
    return params


def gaussian(z):
    return jnp.exp(-0.5 * z**2 / 0.5**2)


def mlp_apply(params, x, act=gaussian):
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def mse(params, batch):
    x, y = batch
    return jnp.mean((mlp_apply(params, x) - y) ** 2)


def regression_batch(key, n):
    x = jax.random.uniform(key, (n, 2), minval=-1, maxval=1)
    return x, jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:2])


# ----------------------------------------------------------------------------------------------
# A direct NumPy (float64) Shampoo, written from Algorithm 4 / Gupta et al. independently of the
# implementation: explicit L, R (or H for vectors), eigh-based roots, explicit block loops.


def np_inv_root(mat, p, eps, rel):
    w, q = np.linalg.eigh(mat)
    w = np.maximum(w, 0.0)
    d = eps + rel * w.max()
    return (q * (w + d) ** (-1.0 / p)) @ q.T


def np_blocks(n, bs):
    if bs is None or n <= bs:
        return [(0, n)]
    return [(s, min(s + bs, n)) for s in range(0, n, bs)]


class NumpyShampoo:
    """Shampoo for one leaf: matrices (m, n) with n > 1 and m > 1, or vectors."""

    def __init__(self, shape, *, eps, rel, interval, block_size=None, vector="full"):
        self.shape, self.eps, self.rel, self.k = shape, eps, rel, interval
        core = tuple(d for d in shape if d != 1) or (1,)
        self.core, self.vector, self.t = core, vector, 0
        if len(core) == 2:
            rows, cols = np_blocks(core[0], block_size), np_blocks(core[1], block_size)
            self.blocks = list(itertools.product(rows, cols))
            self.L = {b: np.zeros((b[0][1] - b[0][0],) * 2) for b in self.blocks}
            self.R = {b: np.zeros((b[1][1] - b[1][0],) * 2) for b in self.blocks}
            self.Lr, self.Rr = {}, {}
        else:
            self.H = np.zeros((core[0], core[0]))
            self.d = np.zeros(core[0])

    def step(self, g):
        g = np.asarray(g, np.float64).reshape(self.core)
        refresh = self.t % self.k == 0
        self.t += 1
        if len(self.core) == 2:
            out = np.zeros_like(g)
            for b in self.blocks:
                (r0, r1), (c0, c1) = b
                gb = g[r0:r1, c0:c1]
                self.L[b] += gb @ gb.T  # L += G G^T
                self.R[b] += gb.T @ gb  # R += G^T G
                if refresh:
                    self.Lr[b] = np_inv_root(self.L[b], 4, self.eps, self.rel)
                    self.Rr[b] = np_inv_root(self.R[b], 4, self.eps, self.rel)
                out[r0:r1, c0:c1] = self.Lr[b] @ gb @ self.Rr[b]  # L^-1/4 G R^-1/4
            return out.reshape(self.shape)
        if self.vector == "none":
            return g.reshape(self.shape)
        if self.vector == "diagonal":
            self.d += g * g
            return (g / np.sqrt(self.d + self.eps)).reshape(self.shape)
        self.H += np.outer(g, g)
        if refresh:
            self.Hr = np_inv_root(self.H, 2, self.eps, self.rel)
        return (self.Hr @ g).reshape(self.shape)


SHAPES = {"w": (5, 4), "b": (4,), "head": (4, 1), "w2": (3, 6)}


def random_grads(key, steps):
    out = []
    for k in jax.random.split(key, steps):
        ks = jax.random.split(k, len(SHAPES))
        out.append(
            {n: jax.random.normal(kk, s) for kk, (n, s) in zip(ks, SHAPES.items(), strict=True)}
        )
    return out


def run_both(grads, **kw):
    np_kw = {
        "eps": kw.get("eps", 1e-6),
        "rel": kw.get("relative_eps", 1e-6),
        "interval": kw.get("preconditioning_interval", 1),
        "block_size": kw.get("block_size"),
        "vector": kw.get("vector_preconditioner", "full"),
    }
    refs = {n: NumpyShampoo(s, **np_kw) for n, s in SHAPES.items()}
    tx = scale_by_shampoo(**kw)
    params = {n: jnp.zeros(s) for n, s in SHAPES.items()}
    state = tx.init(params)
    update = jax.jit(tx.update)
    states = []
    for t, g in enumerate(grads):
        u, state = update(g, state, params)
        states.append(state)
        for n in SHAPES:
            expected = refs[n].step(g[n])
            np.testing.assert_allclose(
                np.asarray(u[n]), expected, rtol=2e-3, atol=2e-4, err_msg=f"leaf {n} step {t}"
            )
    return states


@pytest.mark.parametrize(
    "kw",
    [
        dict(eps=1e-3, relative_eps=0.0),  # Algorithm 4 exactly
        dict(eps=1e-3, relative_eps=1e-3, block_size=3, vector_preconditioner="diagonal"),
    ],
    ids=["alg4", "blocks3_diag"],
)
def test_matches_numpy(kw):
    run_both(random_grads(jax.random.key(0), 5), **kw)


def test_first_matrix_step_is_polar_factor():
    """With L = G G^T and R = G^T G, L^-1/4 G R^-1/4 = U V^T for G = U S V^T (full rank)."""
    g = jax.random.normal(jax.random.key(1), (4, 6))
    tx = scale_by_shampoo(eps=1e-9, relative_eps=0.0)
    u, _ = tx.update({"w": g}, tx.init({"w": g}), None)
    uu, _, vt = np.linalg.svd(np.asarray(g, np.float64), full_matrices=False)
    np.testing.assert_allclose(np.asarray(u["w"]), uu @ vt, atol=2e-3)
    # and it is not the identity preconditioner
    assert np.abs(np.asarray(u["w"]) - np.asarray(g)).max() > 0.1


def test_interval_matches_numpy_and_refreshes_only_every_interval():
    grads = random_grads(jax.random.key(2), 7)
    states = run_both(
        grads,
        eps=1e-4,
        relative_eps=1e-4,
        preconditioning_interval=3,
        block_size=3,
        vector_preconditioner="none",
    )
    state = states[-1]
    roots = [s.preconditioners["w"][0][0] for s in states]
    same = [bool(jnp.array_equal(roots[i], roots[i - 1])) for i in range(1, len(roots))]
    # refreshed at counts 0, 3, 6: roots change entering steps 3 and 6 only
    assert same == [True, True, False, True, True, False]
    assert int(state.count) == 7
    # the statistics, unlike the roots, grow every step (first 3x3 block of w, its L)
    w_stats = state.stats["w"][0][0]
    blocks = [np.asarray(g["w"], np.float64)[:3, :3] for g in grads]
    expected = sum(b @ b.T for b in blocks)
    np.testing.assert_allclose(np.asarray(w_stats), expected, rtol=1e-5)


def primitives(jaxpr, skip_cond=False):
    """Names of all primitives in ``jaxpr``, recursing into sub-jaxprs (not into cond if asked)."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        if skip_cond and eqn.primitive.name == "cond":
            continue
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            names |= primitives(sub, skip_cond)
    return names


def test_refresh_is_a_cond_inside_jit():
    tx = scale_by_shampoo(preconditioning_interval=10)
    params = {"w": jnp.zeros((3, 4))}
    jaxpr = jax.make_jaxpr(tx.update)(params, tx.init(params), params)
    conds = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
    assert len(conds) == 1
    branch_prims = [primitives(b.jaxpr) for b in conds[0].params["branches"]]
    assert sorted("eigh" in p for p in branch_prims) == [False, True]  # only one decomposes
    assert "eigh" not in primitives(jaxpr.jaxpr, skip_cond=True)  # none outside the cond


def test_sgd_graft_has_gradient_norm_per_leaf():
    g = {n: v for n, v in random_grads(jax.random.key(3), 1)[0].items() if n in ("w", "b")}
    tx = scale_by_shampoo(graft="sgd")
    u, _ = tx.update(g, tx.init(g), None)
    for n in g:
        np.testing.assert_allclose(
            float(jnp.linalg.norm(u[n])), float(jnp.linalg.norm(g[n])), rtol=1e-5
        )
    tx0 = scale_by_shampoo()
    u0, _ = tx0.update(g, tx0.init(g), None)
    # same direction as ungrafted Shampoo
    for n in g:
        cos = jnp.vdot(u[n], u0[n]) / (jnp.linalg.norm(u[n]) * jnp.linalg.norm(u0[n]))
        assert float(cos) > 1 - 1e-5


def test_alias_in_chain_with_schedule_and_inject_hyperparams():
    grads = [{"w": g["w"], "b": g["b"]} for g in random_grads(jax.random.key(4), 3)]
    params = jax.tree.map(jnp.zeros_like, grads[0])

    def updates_of(tx):
        state, out = tx.init(params), []
        # extra arguments as make_train_step passes them are accepted and ignored
        update = jax.jit(lambda g, s: tx.update(g, s, params, obj_fn=lambda p: 0.0, value=0.0))
        for g in grads:
            u, state = update(g, state)
            out.append(u)
        return out, state

    base, _ = updates_of(optax.chain(scale_by_shampoo(), optax.scale(-1.0)))
    # alias: -lr * direction; learning rate as a schedule
    sched = lambda count: 0.1 / (1.0 + count)
    sched_out, _ = updates_of(shampoo(sched))
    for t in range(3):
        for n in params:
            np.testing.assert_allclose(sched_out[t][n], base[t][n] * sched(t), rtol=1e-5)
    # inject_hyperparams: the learning rate lives in the state and can be changed
    tx = optax.inject_hyperparams(shampoo, static_args=("block_size",))(
        learning_rate=0.1, block_size=3
    )
    state = tx.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(0.5)
    u, state = jax.jit(tx.update)(grads[0], state, params)
    ref = NumpyShampoo(SHAPES["w"], eps=1e-6, rel=1e-6, interval=1, block_size=3).step(
        grads[0]["w"]
    )
    np.testing.assert_allclose(u["w"], -0.5 * ref, rtol=2e-3, atol=2e-4)
    assert isinstance(state.inner_state[0], ScaleByShampooState)


def test_momentum_and_weight_decay_chain():
    grads = [{"w": g["w"], "b": g["b"]} for g in random_grads(jax.random.key(5), 2)]
    params = jax.tree.map(jnp.ones_like, grads[0])
    plain = scale_by_shampoo()
    full = shampoo(0.1, momentum=0.9, weight_decay=0.01)
    sp, sf = plain.init(params), full.init(params)
    trace = None
    for g in grads:
        d, sp = plain.update(g, sp, params)
        u, sf = full.update(g, sf, params)
        d = jax.tree.map(lambda a, p: a + 0.01 * p, d, params)
        trace = d if trace is None else jax.tree.map(lambda a, t: a + 0.9 * t, d, trace)
        for n in params:
            np.testing.assert_allclose(u[n], -0.1 * trace[n], rtol=1e-5, atol=1e-7)


def test_lowers_loss_on_gaussian_regression():
    # Algorithm 4 as written, lr 0.1 (tests/experiments/test_baselines.py trains a field with the
    # reference's grafted configuration and roots reused for 10 steps)
    params = mlp_init(jax.random.key(6), sizes=(2, 16, 16, 1))
    batch = regression_batch(jax.random.key(7), n=64)
    tx = shampoo(0.1)
    step = make_train_step(mse, tx)
    state = tx.init(params)
    initial = float(mse(params, batch))
    for _ in range(40):
        params, state, metrics = step(params, state, batch)
        assert bool(metrics["finite"])
    final = float(jnp.mean((mlp_apply(params, batch[0], gaussian) - batch[1]) ** 2))
    assert final < 0.1 * initial, (initial, final)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(eps=0.0), "eps must be a finite number > 0"),
        (dict(eps=-1e-3), "got -0.001"),
        (dict(relative_eps=-1.0), "relative_eps must be"),
        (dict(preconditioning_interval=0), "preconditioning_interval must be >= 1, got 0"),
        (dict(block_size=0), "block_size must be a positive int or None, got 0"),
        (dict(vector_preconditioner="kron"), "vector_preconditioner must be one of"),
        (dict(graft="adam"), "graft must be one of .* got 'adam'"),
    ],
)
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        scale_by_shampoo(**kw)


def test_nesterov_without_momentum_and_traced_block_size_raise():
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        shampoo(0.1, nesterov=True)
    tx = optax.inject_hyperparams(shampoo)(learning_rate=0.1, block_size=3)
    params = {"w": jnp.zeros((4, 4))}
    state = tx.init(params)
    with pytest.raises(TypeError, match="static_args=\\('block_size',\\)"):
        jax.jit(tx.update)(params, state, params)
