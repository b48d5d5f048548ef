"""``fields.mlp`` (the shared layer builder) and the ReLU+PE radiance field built with it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import fields


class _Stack(nn.Module):
    @nn.compact
    def __call__(self, x):
        dense = fields.DenseFactory("torch")
        return fields.mlp(x, dense, [4, 5, 6], lambda z, h, i: nn.relu(z), skips=(1,),
                          skip_input=x)


def test_mlp_names_widths_and_skip():
    x = jnp.ones((2, 3))
    variables = _Stack().init(jax.random.key(0), x)
    shapes = jax.tree.map(lambda a: a.shape, variables["params"])
    assert shapes == {"dense_0": {"kernel": (3, 4), "bias": (4,)},
                      "dense_1": {"kernel": (4, 5), "bias": (5,)},
                      "dense_2": {"kernel": (8, 6), "bias": (6,)}}  # 3 skipped + 5
    p = variables["params"]
    h = np.maximum(np.asarray(x) @ p["dense_0"]["kernel"] + p["dense_0"]["bias"], 0)
    h = np.maximum(h @ p["dense_1"]["kernel"] + p["dense_1"]["bias"], 0)
    h = np.concatenate([np.asarray(x), h], axis=-1)
    h = np.maximum(h @ p["dense_2"]["kernel"] + p["dense_2"]["bias"], 0)
    np.testing.assert_allclose(_Stack().apply(variables, x), h, rtol=1e-5, atol=1e-6)


def test_relu_pe_radiance_field_is_nerf():
    model = fields.make_radiance(activation="relu_pe", depth=8, width=32)
    assert model.skips == (4,)
    pts, dirs = jnp.zeros((5, 3)), jnp.ones((5, 3)) / jnp.sqrt(3.0)
    variables = model.init(jax.random.key(0), pts, dirs)
    shapes = jax.tree.map(lambda a: a.shape, variables["params"])
    assert shapes["trunk_0"]["kernel"] == (63, 32)  # 3 (1 + 2*10)
    assert shapes["trunk_5"]["kernel"] == (63 + 32, 32)  # skip after trunk_4
    assert "view_embed" not in shapes
    assert shapes["color_hidden"]["kernel"] == (32 + 27, 16)  # feature + 3 (1 + 2*4)
    rgb, density = model.apply(variables, pts, dirs)
    assert rgb.shape == (5, 3) and density.shape == (5,)
    assert bool(jnp.all(density >= 0)) and bool(jnp.all((rgb >= 0) & (rgb <= 1)))


def test_radiance_activation_is_checked():
    with pytest.raises(ValueError, match="activation='sine'"):
        fields.make_radiance(activation="sine")
