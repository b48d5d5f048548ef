"""``fields.make``: reference defaults, overrides, parameter layout and errors."""

import math

import jax
import jax.numpy as jnp
import pytest

import fields

PAPER_FIELDS = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe")


def _shapes(model, in_dim=2):
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, in_dim)))
    return jax.tree.map(lambda a: a.shape, variables["params"])


def test_names_include_the_papers_six_fields():
    assert set(PAPER_FIELDS) <= set(fields.FIELD_NAMES)
    for name in PAPER_FIELDS:
        assert isinstance(fields.make(name), fields.NeuralField)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gaussian", {"sigma": 0.05, "init": "torch"}),
        ("sine", {"omega0": 30.0, "init": "siren"}),
        ("wavelet", {"omega0": 10.0, "s0": 10.0, "init": "torch"}),
        ("sinc", {"omega0": math.pi, "init": "torch"}),
        ("relu", {"init": "torch"}),
        ("relu_pe", {"num_frequencies": 8, "init": "torch"}),
    ],
)
def test_reference_defaults(name, expected):
    hp = fields.make(name).hyperparameters()
    assert (hp["depth"], hp["width"], hp["out_features"]) == (5, 256, 3)
    for key, value in expected.items():
        assert hp[key] == value, key


def test_image_field_is_five_layers_256_wide():
    # input -> 256, three 256 -> 256, linear head 256 -> 3.
    shapes = _shapes(fields.make("gaussian"))
    assert shapes == {
        "dense_0": {"kernel": (2, 256), "bias": (256,)},
        "dense_1": {"kernel": (256, 256), "bias": (256,)},
        "dense_2": {"kernel": (256, 256), "bias": (256,)},
        "dense_3": {"kernel": (256, 256), "bias": (256,)},
        "dense_4": {"kernel": (256, 3), "bias": (3,)},
    }


def test_wavelet_has_two_linear_maps_per_layer():
    shapes = _shapes(fields.make("wavelet"))
    for i in range(4):
        assert shapes[f"scale_{i}"] == shapes[f"dense_{i}"]
    assert "scale_4" not in shapes and shapes["dense_4"]["kernel"] == (256, 3)


def test_relu_pe_reads_the_encoding():
    # [x, sin(2^k pi x), cos(2^k pi x)], k < 8, of 2D input: 2 * (1 + 16) = 34 features.
    assert _shapes(fields.make("relu_pe"))["dense_0"]["kernel"] == (34, 256)
    assert _shapes(fields.make("relu_pe", num_frequencies=4), 3)["dense_0"]["kernel"] == (27, 256)


def test_overrides():
    model = fields.make("gaussian", out_features=1, sigma=0.09, depth=3, width=16, init="flax")
    hp = model.hyperparameters()
    assert (hp["sigma"], hp["depth"], hp["width"], hp["out_features"], hp["init"]) == (
        0.09, 3, 16, 1, "flax"
    )
    shapes = _shapes(model, in_dim=3)
    assert sorted(shapes) == ["dense_0", "dense_1", "dense_2"]
    assert shapes["dense_0"]["kernel"] == (3, 16) and shapes["dense_2"]["kernel"] == (16, 1)


@pytest.mark.parametrize(
    ("name", "overrides", "must_mention"),
    [
        ("tanh", {}, ["'tanh'", "gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe"]),
        ("gaussian", {"sigma": 0.0}, ["sigma=0.0", "> 0"]),
        ("gaussian", {"sigma": -0.05}, ["sigma=-0.05", "> 0"]),
        ("gaussian", {"sigma": float("nan")}, ["sigma=nan"]),
        ("sine", {"omega0": 0}, ["omega0=0", "> 0"]),
        ("wavelet", {"s0": -1.0}, ["s0=-1.0"]),
        ("gaussian", {"depth": 1}, ["depth=1", ">= 2"]),
        ("gaussian", {"depth": 5.0}, ["depth=5.0"]),
        ("gaussian", {"depth": True}, ["depth=True"]),
        ("relu", {"width": 0}, ["width=0", ">= 1"]),
        ("relu", {"out_features": 0}, ["out_features=0"]),
        ("relu_pe", {"num_frequencies": -1}, ["num_frequencies=-1"]),
        ("gaussian", {"init": "xavier"}, ["'xavier'", "torch", "siren", "flax"]),
        ("gaussian", {"dtype": jnp.int32}, ["dtype", "floating"]),
        ("gaussian", {"param_dtype": None}, ["param_dtype"]),
        ("gaussian", {"sigmaa": 0.1}, ["sigmaa", "sigma", "depth", "width", "out_features"]),
        # A parameter of another activation is unknown to this one (no silent no-op).
        ("sine", {"sigma": 0.1}, ["sigma", "omega0"]),
        ("relu", {"num_frequencies": 8}, ["num_frequencies"]),
    ],
)
def test_make_errors_name_the_bad_value_and_what_is_allowed(name, overrides, must_mention):
    with pytest.raises(ValueError) as info:
        fields.make(name, **overrides)
    message = str(info.value)
    for fragment in must_mention:
        assert fragment in message, (fragment, message)


def test_direct_construction_is_validated_too():
    with pytest.raises(ValueError, match="sigma"):
        fields.NeuralField(activation="gaussian", sigma=-1.0)
    with pytest.raises(ValueError, match="'swish'"):
        fields.NeuralField(activation="swish")


def test_direct_construction_takes_the_activation_defaults():
    hp = fields.NeuralField(activation="wavelet").hyperparameters()
    assert (hp["omega0"], hp["s0"], hp["init"], hp["width"]) == (10.0, 10.0, "torch", 256)
    assert fields.NeuralField(activation="sine").hyperparameters()["init"] == "siren"


@pytest.mark.parametrize(
    ("overrides", "must_mention"),
    [
        ({"sigma": 0}, ["sigma=0"]),
        ({"depth": 1}, ["depth=1"]),
        ({"skips": (7,)}, ["skips=(7,)", "[1, 6]"]),
        ({"init": "he"}, ["'he'", "torch"]),
        ({"colour": 3}, ["colour", "color_width"]),
    ],
)
def test_make_radiance_errors(overrides, must_mention):
    with pytest.raises(ValueError) as info:
        fields.make_radiance(**overrides)
    for fragment in must_mention:
        assert fragment in str(info.value), (fragment, str(info.value))
