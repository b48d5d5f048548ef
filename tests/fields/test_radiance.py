"""``fields.RadianceField``: the GARF-style 8-layer Gaussian NeRF field."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fields
from tests.fields.test_initializers import assert_uniform

RAYS, SAMPLES = 4, 8


def _unit(v):
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def nerf():
    model = fields.make_radiance()
    variables = model.init(jax.random.key(0), jnp.zeros((1, 3)), jnp.ones((1, 3)))
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.uniform(-1.0, 1.0, (RAYS, SAMPLES, 3)), jnp.float32)
    dirs = _unit(jnp.asarray(rng.normal(size=(RAYS, 1, 3)), jnp.float32))
    apply = jax.jit(model.apply)
    return model, variables, points, dirs, apply


def test_defaults_are_the_papers_nerf_field():
    model = fields.make_radiance()
    assert (model.depth, model.width, model.sigma, model.skips) == (8, 256, 0.1, (5,))
    assert model.init_scheme == "torch" and model.center_embedding
    assert isinstance(model, fields.RadianceField)


def test_parameter_layout(nerf):
    _, variables, _, _, _ = nerf
    shapes = jax.tree.map(lambda a: a.shape, variables["params"])
    assert [f"trunk_{i}" for i in range(8)] == sorted(k for k in shapes if k.startswith("trunk"))
    assert shapes["trunk_0"]["kernel"] == (3, 256)  # no positional encoding
    for i in (1, 2, 3, 4, 5, 7):
        assert shapes[f"trunk_{i}"]["kernel"] == (256, 256)
    assert shapes["trunk_6"]["kernel"] == (512, 256)  # skip: [embedding, features]
    assert shapes["density"]["kernel"] == (256, 1)
    assert shapes["feature"]["kernel"] == (256, 256)
    assert shapes["view_embed"]["kernel"] == (3, 256)
    assert shapes["color_hidden"]["kernel"] == (512, 128)
    assert shapes["color"]["kernel"] == (128, 3)
    no_skip = jax.eval_shape(fields.make_radiance(skips=()).init, jax.random.key(0),
                             jnp.zeros((1, 3)), jnp.zeros((1, 3)))
    assert no_skip["params"]["trunk_6"]["kernel"].shape == (256, 256)


def test_torch_default_init_with_the_real_fan_ins(nerf):
    params = nerf[1]["params"]
    for layer_name, layer in params.items():
        fan_in = layer["kernel"].shape[0]
        for leaf_name, leaf in layer.items():
            assert_uniform(leaf, 1 / math.sqrt(fan_in), f"{layer_name}/{leaf_name}")


def test_outputs(nerf):
    _, variables, points, dirs, apply = nerf
    rgb, density = apply(variables, points, dirs)
    assert rgb.shape == (RAYS, SAMPLES, 3) and density.shape == (RAYS, SAMPLES)
    assert rgb.dtype == jnp.float32 and density.dtype == jnp.float32
    assert bool(jnp.all((rgb >= 0) & (rgb <= 1))) and bool(jnp.all(density >= 0))
    assert float(jnp.std(rgb)) > 0 and float(jnp.std(density)) > 0
    # Flat (N, 3) inputs, directions repeated per sample, give the same values.
    flat_rgb, flat_density = apply(
        variables, points.reshape(-1, 3), jnp.broadcast_to(dirs, points.shape).reshape(-1, 3)
    )
    assert flat_rgb.shape == (RAYS * SAMPLES, 3) and flat_density.shape == (RAYS * SAMPLES,)
    np.testing.assert_allclose(flat_rgb.reshape(rgb.shape), rgb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat_density.reshape(density.shape), density, rtol=1e-5, atol=1e-6)


def test_density_ignores_the_view_direction_colour_does_not(nerf):
    _, variables, points, dirs, apply = nerf
    rgb, density = apply(variables, points, dirs)
    rgb2, density2 = apply(variables, points, -dirs)
    np.testing.assert_array_equal(density, density2)
    assert float(jnp.max(jnp.abs(rgb - rgb2))) > 1e-4


def _softplus(z):
    return np.logaddexp(0.0, z)


def test_matches_a_float64_numpy_reference(nerf):
    _, variables, points, dirs, apply = nerf
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    x = np.asarray(points, np.float64).reshape(-1, 3)
    d = np.repeat(np.asarray(dirs, np.float64), SAMPLES, axis=1).reshape(-1, 3)

    def dense(name, h):
        return h @ p[name]["kernel"] + p[name]["bias"]

    def gauss(z):
        return np.exp(-0.5 * z**2 / 0.1**2)

    def embed(name, h):
        z = dense(name, h)
        return gauss(z - z.mean(axis=-1, keepdims=True))

    e = embed("trunk_0", x)
    h = e
    for i in range(1, 8):
        h = gauss(dense(f"trunk_{i}", h))
        if i == 5:
            h = np.concatenate([e, h], axis=-1)
    density = _softplus(dense("density", h))[:, 0]
    c = np.concatenate([dense("feature", h), embed("view_embed", d)], axis=-1)
    rgb = 1 / (1 + np.exp(-dense("color", gauss(dense("color_hidden", c)))))
    got_rgb, got_density = apply(variables, points, dirs)
    np.testing.assert_allclose(got_rgb.reshape(-1, 3), rgb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_density.reshape(-1), density, rtol=1e-4, atol=1e-5)


def test_bfloat16(nerf):
    _, variables, points, dirs, _ = nerf
    model = fields.make_radiance(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    shapes = jax.eval_shape(model.init, jax.random.key(0), points[0], dirs[0])
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(shapes))
    v16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), variables)
    rgb, density = jax.jit(model.apply)(v16, points, dirs)
    assert rgb.dtype == jnp.bfloat16 and density.dtype == jnp.bfloat16
    assert rgb.shape == (RAYS, SAMPLES, 3) and density.shape == (RAYS, SAMPLES)
    assert bool(jnp.all((rgb >= 0) & (rgb <= 1))) and bool(jnp.all(density >= 0))


def test_vmap_over_two_fields(nerf):
    model, variables, points, dirs, apply = nerf
    other = jax.tree.map(lambda a: 0.5 * a, variables)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), variables, other)
    rgb, density = jax.jit(jax.vmap(model.apply, in_axes=(0, None, None)))(stacked, points, dirs)
    for i, single in enumerate((variables, other)):
        ref_rgb, ref_density = apply(single, points, dirs)
        np.testing.assert_allclose(rgb[i], ref_rgb, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(density[i], ref_density, rtol=1e-5, atol=1e-6)
