"""Forward passes of ``fields.NeuralField``: shapes, dtypes, formulas, jit and vmap.

Compilations dominate the cost of these tests on a shared CPU, so the small fields of every
activation are initialised and evaluated together inside one ``jax.jit`` (module fixture) and the
individual tests check its results.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fields

ALL_FIELDS = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe", "wire")
# Three layers, but the reference width: initialisation compiles its PRNG kernels once per
# parameter shape, and these shapes are shared with the reference fields of the other tests.
SMALL = {"depth": 3, "width": 256}
# One input dimension per field keeps the number of compilations small; together they cover 1-3.
IN_DIMS = {"gaussian": 2, "sine": 3, "wavelet": 2, "sinc": 1, "relu": 3, "relu_pe": 2, "wire": 2}
N = 12
MIXED = ("gaussian", "wavelet", "relu", "relu_pe")  # float32 parameters, bfloat16 arithmetic


def _coords(n, d=2, seed=1):
    # NumPy, not jax.random: no PRNG kernel to compile for every new shape.
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (n, d)), jnp.float32)


def _models(**overrides):
    return {name: fields.make(name, **SMALL, **overrides) for name in ALL_FIELDS}


@pytest.fixture(scope="module")
def small():
    """Variables and outputs of every small field: float32, bfloat16 and mixed precision.

    Initialisation runs eagerly (its PRNG primitives are compiled once per shape and shared by
    the fields), the forward passes of all fields inside one ``jax.jit``.
    """
    f32, bf16 = _models(), _models(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    mixed = _models(dtype=jnp.bfloat16)  # float32 parameters, bfloat16 arithmetic
    xs = {name: _coords(N, IN_DIMS[name]) for name in ALL_FIELDS}
    key = jax.random.key(0)
    v32 = {name: f32[name].init(key, xs[name][:1]) for name in ALL_FIELDS}
    v16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), v32)

    @jax.jit
    def run(v32, v16, xs):
        out = {}
        for name in ALL_FIELDS:
            x = xs[name]
            out[name] = {
                "vars": v32[name],
                "f32": f32[name].apply(v32[name], x),
                "bf16": bf16[name].apply(v16[name], x),
            }
            if name in MIXED:
                out[name]["mixed"] = mixed[name].apply(v32[name], x)
        return out

    return run(v32, v16, xs), xs, f32


@pytest.mark.parametrize("name", ALL_FIELDS)
def test_shapes_and_dtypes(small, name):
    res, xs, models = small
    r = res[name]
    assert r["f32"].shape == (N, 3) and r["f32"].dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(r["f32"])))
    assert float(jnp.std(r["f32"])) > 0
    # Leading batch dimensions are kept.
    batched = jax.eval_shape(models[name].apply, r["vars"], xs[name].reshape(3, 4, -1))
    assert batched.shape == (3, 4, 3) and batched.dtype == jnp.float32
    # The input dimension was inferred.
    in_dim = IN_DIMS[name]
    expected_fan_in = fields.encoded_dim(in_dim, 8) if name == "relu_pe" else in_dim
    assert r["vars"]["params"]["dense_0"]["kernel"].shape[0] == expected_fan_in
    # bfloat16 parameters and arithmetic: bfloat16 everywhere, finite.
    model16 = fields.make(name, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16, **SMALL)
    shapes16 = jax.eval_shape(model16.init, jax.random.key(0), xs[name][:1])
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(shapes16))
    assert r["bf16"].dtype == jnp.bfloat16 and r["bf16"].shape == (N, 3)
    assert bool(jnp.all(jnp.isfinite(r["bf16"].astype(jnp.float32))))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(r["vars"]))
    if name in MIXED:
        assert r["mixed"].dtype == jnp.bfloat16


@pytest.mark.parametrize("name", MIXED)
def test_bfloat16_arithmetic_tracks_float32(small, name):
    # Same float32 parameters, bfloat16 arithmetic: close to float32 (8-bit mantissa). Sine
    # (omega0 = 30) and WIRE amplify rounding of their pre-activations and are left out.
    r = small[0][name]
    out32, out16 = r["f32"], r["mixed"].astype(jnp.float32)
    scale = float(jnp.max(jnp.abs(out32)))
    assert float(jnp.max(jnp.abs(out32 - out16))) < 0.05 * scale + 0.02


def _numpy_mlp(p, x, act, depth):
    h = x
    for i in range(depth - 1):
        h = act(h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"])
    return h @ p[f"dense_{depth - 1}"]["kernel"] + p[f"dense_{depth - 1}"]["bias"]


def _encode(x, num_frequencies):
    parts = [x]
    for k in range(num_frequencies):
        parts += [np.sin(2**k * np.pi * x), np.cos(2**k * np.pi * x)]
    return np.concatenate(parts, axis=-1)


def _numpy_wavelet(p, x, depth):
    h = x
    for i in range(depth - 1):
        zf = h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"]
        zs = h @ p[f"scale_{i}"]["kernel"] + p[f"scale_{i}"]["bias"]
        h = np.cos(10.0 * zf) * np.exp(-((10.0 * zs) ** 2))
    return h @ p[f"dense_{depth - 1}"]["kernel"] + p[f"dense_{depth - 1}"]["bias"]


def _numpy_wire(p, x, depth):
    def gabor(z):
        return np.exp(1j * 20.0 * z - np.abs(10.0 * z) ** 2)

    h = gabor(x @ p["dense_0"]["kernel"] + p["dense_0"]["bias"])
    for i in range(1, depth):
        d = p[f"dense_{i}"]
        z = h @ (d["kernel"] + 1j * d["kernel_imag"]) + d["bias"] + 1j * d.get("bias_imag", 0.0)
        h = gabor(z) if i < depth - 1 else z.real
    return h


NUMPY_REFERENCE = {
    "gaussian": lambda p, x, d: _numpy_mlp(p, x, lambda z: np.exp(-0.5 * z**2 / 0.05**2), d),
    "sine": lambda p, x, d: _numpy_mlp(p, x, lambda z: np.sin(30.0 * z), d),
    "sinc": lambda p, x, d: _numpy_mlp(p, x, np.sinc, d),  # numpy's sinc: sin(pi z) / (pi z)
    "relu": lambda p, x, d: _numpy_mlp(p, x, lambda z: np.maximum(z, 0.0), d),
    "relu_pe": lambda p, x, d: _numpy_mlp(p, _encode(x, 8), lambda z: np.maximum(z, 0.0), d),
    "wavelet": _numpy_wavelet,
    "wire": _numpy_wire,
}


@pytest.mark.parametrize("name", ALL_FIELDS)
def test_matches_a_float64_numpy_reference(small, name):
    res, xs, _ = small
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), res[name]["vars"]["params"])
    expected = NUMPY_REFERENCE[name](p, np.asarray(xs[name], np.float64), SMALL["depth"])
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(res[name]["f32"], expected, rtol=1e-3, atol=1e-4 * scale)


def test_eager_equals_jit(small):
    res, xs, models = small
    np.testing.assert_allclose(models["relu"].apply(res["relu"]["vars"], xs["relu"]),
                               res["relu"]["f32"], rtol=1e-5, atol=1e-6)


def test_positional_encoding_layout():
    x = jnp.array([[0.25, -0.5]])
    enc = fields.positional_encoding(x, 3)
    expected = [0.25, -0.5]
    for k in range(3):
        expected += [math.sin(2**k * math.pi * v) for v in (0.25, -0.5)]
        expected += [math.cos(2**k * math.pi * v) for v in (0.25, -0.5)]
    np.testing.assert_allclose(enc[0], expected, atol=1e-6)
    assert fields.encoded_dim(2, 3) == 14
    # Computed in float32 even for bfloat16 input, then cast.
    x16 = jnp.full((1, 1), 0.3, jnp.bfloat16)
    enc16 = fields.positional_encoding(x16, 8)
    assert enc16.dtype == jnp.bfloat16
    ref = fields.positional_encoding(x16.astype(jnp.float32), 8)
    np.testing.assert_allclose(enc16.astype(jnp.float32), ref, atol=1e-2)


def test_sinc_is_one_at_zero_with_finite_derivatives():
    assert float(fields.sinc(jnp.float32(0.0))) == 1.0
    d2 = jax.grad(jax.grad(fields.sinc))(jnp.float32(0.0))
    np.testing.assert_allclose(d2, -(math.pi**2) / 3, rtol=1e-5)


def test_vmap_over_parameter_stacks_equals_a_loop(small):
    res, xs, models = small
    names = ("sine", "wavelet", "relu_pe", "wire")
    x = {name: xs[name] for name in names}

    @jax.jit
    def apply_all(variables):
        return {name: models[name].apply(variables[name], x[name]) for name in names}

    base = {name: res[name]["vars"] for name in names}
    singles = [base, jax.tree.map(lambda a: 0.9 * a + 0.01, base),
               jax.tree.map(lambda a: a[..., ::-1], base)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *singles)
    batched = jax.jit(jax.vmap(apply_all))(stacked)
    for name in names:
        assert batched[name].shape == (3, N, 3)
        for i, single in enumerate(singles):
            np.testing.assert_allclose(batched[name][i], apply_all(single)[name],
                                       rtol=1e-5, atol=1e-6)
        assert not np.allclose(batched[name][0], batched[name][1])


def test_vmap_init_over_keys_equals_a_loop():
    # A two-layer field: vmapped PRNG is slow to compile, and the layer count does not matter.
    model = fields.make("sine", depth=2, width=8)
    init = jax.jit(lambda k: model.init(k, jnp.zeros((1, 2))))
    keys = jax.random.split(jax.random.key(7), 3)
    vmapped = jax.jit(jax.vmap(init))(keys)
    for i, key in enumerate(keys):
        jax.tree.map(lambda a, b, i=i: np.testing.assert_array_equal(a[i], b), vmapped, init(key))
    assert not np.allclose(vmapped["params"]["dense_0"]["kernel"][0],
                           vmapped["params"]["dense_0"]["kernel"][1])


def test_vmap_gradients_of_many_fields(small):
    res, xs, models = small
    model, x = models["gaussian"], xs["gaussian"]
    y = jnp.zeros((N, 3))
    stacked = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a]), res["gaussian"]["vars"])

    def loss(variables):
        return jnp.mean((model.apply(variables, x) - y) ** 2)

    grads = jax.jit(jax.vmap(jax.grad(loss)))(stacked)
    grad = jax.jit(jax.grad(loss))
    for i in range(2):
        single = jax.tree.map(lambda a, i=i: a[i], stacked)
        jax.tree.map(
            lambda g, e, i=i: np.testing.assert_allclose(g[i], e, rtol=1e-4, atol=1e-7),
            grads,
            grad(single),
        )
