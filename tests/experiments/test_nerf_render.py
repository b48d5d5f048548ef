"""NeRF rendering against closed forms: camera rays, stratified depths, compositing of slabs."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.tasks.nerf_data import look_at
from experiments.tasks.nerf_render import (
    Rays,
    camera_rays,
    composite,
    ndc_rays,
    render_image,
    render_rays,
    sample_depths,
)


def test_rays_of_the_identity_camera_go_through_pixel_centres():
    rays = camera_rays(np.eye(4), height=2, width=4, focal=2.0)
    assert rays.origins.shape == rays.directions.shape == (2, 4, 3)
    np.testing.assert_array_equal(rays.origins, 0.0)
    # Row 0 is the top (+y), column 0 the left (-x); the camera looks down -z.
    np.testing.assert_allclose(rays.directions[0, 0], [-0.75, 0.25, -1.0])
    np.testing.assert_allclose(rays.directions[1, 3], [0.75, -0.25, -1.0])


def test_rays_of_a_posed_camera():
    eye = np.array([1.0, -3.0, 2.0])
    c2w = look_at(eye)
    rays = camera_rays(c2w, height=3, width=3, focal=5.0)
    np.testing.assert_allclose(rays.origins[1, 1], eye, rtol=1e-6)
    centre = rays.directions[1, 1]
    np.testing.assert_allclose(centre / np.linalg.norm(centre), -eye / np.linalg.norm(eye),
                               atol=1e-6)
    assert np.linalg.norm(centre) == pytest.approx(1.0, rel=1e-6)  # unit depth on the axis
    # The top row looks up (world +z is the camera's up here), the right column to its right.
    assert rays.directions[0, 1, 2] > centre[2] and rays.directions[2, 1, 2] < centre[2]
    right = c2w[:3, 0]
    assert rays.directions[1, 2] @ right > 0 > rays.directions[1, 0] @ right


def test_stratified_depths_one_per_bin_and_inverse_depth():
    jitter = np.random.default_rng(0).random((5, 8), dtype=np.float32)
    t = np.asarray(sample_depths(2.0, 6.0, 8, jnp.asarray(jitter)))
    bins = 2.0 + 0.5 * np.arange(8)
    assert np.all(t >= bins) and np.all(t < bins + 0.5)
    np.testing.assert_allclose(t, bins + 0.5 * jitter, rtol=1e-6)
    centres = np.asarray(sample_depths(1.0, 1e10, 4, None, inverse_depth=True))[0]
    np.testing.assert_allclose(1 / centres, 1 - (np.arange(4) + 0.5) / 4, rtol=1e-5)


def _constant_field(density, colour):
    def field(params, points, dirs):
        del params, dirs
        shape = points.shape[:-1]
        return jnp.broadcast_to(jnp.asarray(colour, jnp.float32), (*shape, 3)), \
            jnp.full(shape, density, jnp.float32)
    return field


@pytest.mark.parametrize("background", [1.0, 0.0])
def test_constant_density_slab_in_closed_form(background):
    sigma, colour, near, far = 0.7, (0.2, 0.5, 0.9), 2.0, 6.0
    directions = np.array([[0.0, 0.0, -1.0], [0.6, 0.0, -0.8], [0.0, 1.0, -1.0]], np.float32)
    rays = Rays(np.zeros_like(directions), directions)
    jitter = jnp.asarray(np.random.default_rng(1).random((3, 16), dtype=np.float32))
    out = render_rays(_constant_field(sigma, colour), None, rays, jitter, num_samples=16,
                      near=near, far=far, background=background)
    # The intervals tile [t_0, far]; in world length they scale with |d|.
    t0 = np.asarray(sample_depths(near, far, 16, jitter))[:, 0]
    length = (far - t0) * np.linalg.norm(directions, axis=-1)
    transmittance = np.exp(-sigma * length)
    expected = np.asarray(colour) * (1 - transmittance)[:, None] \
        + background * transmittance[:, None]
    np.testing.assert_allclose(out["rgb"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["opacity"], 1 - transmittance, rtol=1e-5)


def test_two_slabs_composite_front_to_back():
    """Density s1 / colour c1 on [2, 4), s2 / c2 on [4, 6]: samples at bin starts (jitter 0)."""
    s1, s2, c1, c2 = 0.3, 2.0, np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])

    def field(params, points, dirs):
        depth = -points[..., 2]
        front = depth < 4.0 - 1e-4
        rgb = jnp.where(front[..., None], jnp.asarray(c1), jnp.asarray(c2))
        return rgb.astype(jnp.float32), jnp.where(front, s1, s2).astype(jnp.float32)

    rays = Rays(np.zeros((1, 3), np.float32), np.array([[0.0, 0.0, -1.0]], np.float32))
    out = render_rays(field, None, rays, jnp.zeros((1, 8)), num_samples=8, near=2.0, far=6.0,
                      background=1.0)
    t1, t2 = math.exp(-s1 * 2), math.exp(-s2 * 2)
    expected = c1 * (1 - t1) + t1 * c2 * (1 - t2) + t1 * t2 * np.ones(3)
    np.testing.assert_allclose(out["rgb"][0], expected, rtol=1e-5, atol=1e-6)
    # The expected depth weights the front slab's samples by their own weights.
    assert float(out["depth"][0]) < 4.0


def test_chunked_renderer_equals_one_batch_with_bin_centres():
    def field(params, points, dirs):
        d = jnp.exp(-jnp.sum((points - params) ** 2, -1))
        return jnp.abs(jnp.sin(points + dirs)), 3.0 * d

    rays = camera_rays(look_at(np.array([0.0, -4.0, 1.0])), 5, 7, 6.0)
    centre = jnp.asarray([0.2, 0.1, 0.0])
    chunked = render_image(field, centre, rays, num_samples=12, near=2.0, far=6.0, chunk=8)
    flat = Rays(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3))
    whole = render_rays(field, centre, flat, None, num_samples=12, near=2.0, far=6.0)
    assert chunked["rgb"].shape == (5, 7, 3)
    np.testing.assert_allclose(chunked["rgb"].reshape(-1, 3), whole["rgb"], rtol=1e-5,
                               atol=1e-6)
    assert float(np.std(chunked["rgb"])) > 0.01  # not a trivial image


def test_ndc_maps_the_near_plane_to_minus_one_and_infinity_to_one():
    rays = camera_rays(np.eye(4), 4, 4, 3.0)
    ndc = ndc_rays(rays, 4, 4, 3.0, near=1.0)
    np.testing.assert_allclose(ndc.origins[..., 2], -1.0, atol=1e-6)
    np.testing.assert_allclose((ndc.origins + ndc.directions)[..., 2], 1.0, atol=1e-6)


def test_composite_weights_sum_to_opacity():
    rgb = jnp.ones((2, 4, 3)) * 0.5
    density = jnp.asarray([[0.0, 1.0, 2.0, 0.5], [3.0, 0.0, 0.0, 0.0]])
    t = jnp.asarray([[1.0, 2.0, 3.0, 4.0]])
    out = composite(rgb, density, t, jnp.asarray([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]), far=5.0,
                    background=0.0)
    np.testing.assert_allclose(out["weights"].sum(-1), out["opacity"], rtol=1e-6)
    np.testing.assert_allclose(out["opacity"][1], 1 - math.exp(-3.0 * 2.0), rtol=1e-6)
