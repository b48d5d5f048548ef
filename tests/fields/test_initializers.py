"""Initial weights follow their formulas: bounds, mean and variance within statistical tolerance.

The keys are fixed, so each check is deterministic; the tolerances are five standard errors of
the statistic under the claimed distribution, wide enough never to reject the right
distribution by chance and tight enough to reject a wrong scale (a bound off by 10% moves the
variance of a 256x256 kernel by about 40 standard errors).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fields


def assert_uniform(w, bound, what=""):
    """``w`` looks like i.i.d. ``U(-bound, bound)``."""
    w = np.asarray(w, np.float64).ravel()
    n = w.size
    top = np.max(np.abs(w))
    assert top <= bound * (1 + 1e-6), (what, top, bound)
    # P(max |w| < (1 - t) bound) = (1 - t)^n ~ exp(-15) for t = 15 / n.
    assert top >= bound * (1 - 15 / n), (what, top, bound)
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * n), (what, w.mean())
    var, var_se = bound**2 / 3, math.sqrt(4 / 45) * bound**2 / math.sqrt(n)
    assert abs(w.var() - var) < 5 * var_se, (what, w.var(), var)
    # Flat, not bell-shaped: half the mass within half the bound.
    inner = np.mean(np.abs(w) < bound / 2)
    assert abs(inner - 0.5) < 5 * math.sqrt(0.25 / n) + 1e-9, (what, inner)


def assert_lecun_normal(w, fan_in, what=""):
    """Flax's default kernel: truncated normal (at 2 sd) rescaled to variance ``1 / fan_in``."""
    w = np.asarray(w, np.float64).ravel()
    n, var = w.size, 1.0 / fan_in
    assert np.max(np.abs(w)) <= 2 * math.sqrt(var) / 0.87962566103423978 * (1 + 1e-6), what
    assert abs(w.mean()) < 5 * math.sqrt(var / n), what
    assert abs(w.var() - var) < 5 * math.sqrt(2 / n) * var, (what, w.var(), var)
    # Bell-shaped: far more than half the mass within half the uniform bound of that variance.
    assert np.mean(np.abs(w) < math.sqrt(3 * var) / 2) > 0.55, what


def _params(model, in_dim=2, seed=0):
    return model.init(jax.random.key(seed), jnp.zeros((1, in_dim)))["params"]


@pytest.fixture(scope="module")
def reference_params():
    # WIRE at width 256 rather than its 181: the formulas do not depend on it, and the shapes
    # (hence the compiled PRNG kernels) are shared with the other fields.
    return {
        name: _params(fields.make(name, **({"width": 256} if name == "wire" else {})))
        for name in fields.FIELD_NAMES
    }


@pytest.mark.parametrize("name", ["gaussian", "wavelet", "sinc", "relu", "relu_pe", "wire"])
def test_torch_default_for_weights_and_biases(reference_params, name):
    # PyTorch nn.Linear: weight and bias U(+-1/sqrt(fan_in)), fan_in the layer's input width.
    params = reference_params[name]
    assert fields.make(name).hyperparameters()["init"] == "torch"
    checked = 0
    for layer_name, layer in params.items():
        fan_in = layer["kernel"].shape[0]
        for leaf_name, leaf in layer.items():
            assert_uniform(leaf, 1 / math.sqrt(fan_in), f"{name}/{layer_name}/{leaf_name}")
            checked += 1
    assert checked >= 10


def test_torch_default_fan_in_of_each_layer(reference_params):
    # The fan-ins the bounds above came from are the real input widths.
    assert reference_params["relu_pe"]["dense_0"]["kernel"].shape[0] == 34  # 2 * (1 + 2 * 8)
    assert reference_params["gaussian"]["dense_0"]["kernel"].shape[0] == 2
    assert_uniform(reference_params["relu_pe"]["dense_0"]["bias"], 1 / math.sqrt(34))
    assert_uniform(reference_params["gaussian"]["dense_0"]["bias"], 1 / math.sqrt(2))


def test_siren_for_sine(reference_params):
    params = reference_params["sine"]
    omega0 = 30.0
    # First layer U(+-1/fan_in), later layers (head included) U(+-sqrt(6/fan_in)/omega0).
    assert_uniform(params["dense_0"]["kernel"], 1 / 2, "dense_0")
    for i in range(1, 5):
        assert_uniform(params[f"dense_{i}"]["kernel"], math.sqrt(6 / 256) / omega0, f"dense_{i}")
    # Biases keep PyTorch's default, as in SIREN's code.
    assert_uniform(params["dense_0"]["bias"], 1 / math.sqrt(2), "dense_0/bias")
    for i in range(1, 5):
        assert_uniform(params[f"dense_{i}"]["bias"], 1 / 16, f"dense_{i}/bias")


def test_siren_divides_by_the_fields_omega0():
    params = _params(fields.make("sine", omega0=10.0, depth=3))
    assert_uniform(params["dense_1"]["kernel"], math.sqrt(6 / 256) / 10.0)


def test_flax_default():
    params = _params(fields.make("relu", init="flax", depth=3))
    for i in range(3):
        layer = params[f"dense_{i}"]
        assert_lecun_normal(layer["kernel"], layer["kernel"].shape[0], f"dense_{i}")
        assert not np.any(np.asarray(layer["bias"]))


def test_layers_and_leaves_are_drawn_independently(reference_params):
    p = reference_params["gaussian"]
    assert not np.allclose(p["dense_1"]["kernel"], p["dense_2"]["kernel"])
    assert not np.allclose(p["dense_1"]["kernel"][0], p["dense_1"]["bias"])
    corr = np.corrcoef(np.ravel(p["dense_1"]["kernel"]), np.ravel(p["dense_2"]["kernel"]))[0, 1]
    assert abs(corr) < 5 / math.sqrt(256 * 256)
    w = reference_params["wavelet"]
    assert not np.allclose(w["dense_0"]["kernel"], w["scale_0"]["kernel"])
    other_seed = _params(fields.make("gaussian", depth=2, width=256), seed=1)
    assert not np.allclose(p["dense_0"]["kernel"], other_seed["dense_0"]["kernel"])


def test_layer_initializers_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="'orthogonal'.*torch, siren, flax"):
        fields.layer_initializers("orthogonal", 4, is_first=True)
