"""NeRF rendering: camera rays, stratified samples, volume rendering, a chunked jitted renderer.

Conventions (those of google/mipnerf and google-research/multinerf): cameras are OpenGL
camera-to-world matrices (x right, y up, the camera looks down -z); a ray leaves the camera
centre through the *centre* of its pixel (``i + 0.5``, ``j + 0.5``); directions are not
normalised, so a sample distance ``t`` along them is a depth along the optical axis, and the
field gets the unit direction. Volume rendering is the quadrature of Max (1995) as in NeRF:
``alpha_k = 1 - exp(-sigma_k delta_k)``, ``T_k = prod_{j<k} (1 - alpha_j)``,
``C = sum_k T_k alpha_k c_k + (1 - sum_k T_k alpha_k) background``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: ``field(params, points (R, S, 3), unit_dirs (R, 1, 3)) -> (rgb (R, S, 3), density (R, S))``.
FieldFn = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


class Rays(NamedTuple):
    """A batch of rays (NumPy or JAX arrays, leading shape ``(...)``).

    Attributes:
      origins: ``(..., 3)`` camera centres in world coordinates.
      directions: ``(..., 3)`` directions, unit depth along the optical axis (not normalised).
    """

    origins: Any
    directions: Any


def camera_rays(c2w: np.ndarray, height: int, width: int, focal: float) -> Rays:
    """Rays through the pixel centres of a pinhole camera.

    Args:
      c2w: ``(3, 4)`` or ``(4, 4)`` OpenGL camera-to-world matrix.
      height: image rows.
      width: image columns.
      focal: focal length in pixels (principal point at the image centre).

    Returns:
      :class:`Rays` of shape ``(height, width, 3)`` (float32); pixel ``(row j, column i)`` has
      camera-space direction ``((i + 0.5 - W/2) / f, -(j + 0.5 - H/2) / f, -1)``.
    """
    c2w = np.asarray(c2w, np.float64)
    i, j = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5, indexing="xy")
    cam = np.stack([(i - 0.5 * width) / focal, -(j - 0.5 * height) / focal,
                    -np.ones_like(i)], axis=-1)
    directions = cam @ c2w[:3, :3].T
    origins = np.broadcast_to(c2w[:3, 3], directions.shape)
    return Rays(origins.astype(np.float32), directions.astype(np.float32))


def ndc_rays(rays: Rays, height: int, width: int, focal: float, near: float = 1.0) -> Rays:
    """Rays in normalised device coordinates (NeRF's forward-facing parametrisation).

    Origins are first moved to the plane ``z = -near``; in NDC the scene's depth range
    ``[near, inf)`` maps to ``t`` in ``[0, 1]``. Use with ``near=0, far=1`` sampling.
    """
    o, d = np.asarray(rays.origins, np.float64), np.asarray(rays.directions, np.float64)
    t = -(near + o[..., 2]) / d[..., 2]
    o = o + t[..., None] * d
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    ax, ay = -2.0 * focal / width, -2.0 * focal / height
    origins = np.stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], axis=-1)
    directions = np.stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz),
                           -2.0 * near / oz], axis=-1)
    return Rays(origins.astype(np.float32), directions.astype(np.float32))


def sample_depths(near: float, far: float, num_samples: int, jitter: jax.Array | None, *,
                  inverse_depth: bool = False) -> jax.Array:
    """Stratified sample distances along rays.

    The interval is cut into ``num_samples`` equal bins (in depth, or in inverse depth
    ``1/t`` as the paper's LLFF code does without NDC) and one sample is taken in each: at
    the bin's start plus ``jitter`` times its width (``jitter`` in ``[0, 1)``), or at the bin
    centre when ``jitter`` is ``None`` (evaluation).

    Args:
      near: first distance (``> 0`` with ``inverse_depth``).
      far: last distance.
      num_samples: samples per ray ``S``.
      jitter: ``(R, S)`` uniform numbers, or ``None``.
      inverse_depth: bins uniform in ``1/t`` instead of ``t``.

    Returns:
      ``(R, S)`` distances (``(1, S)`` without jitter), increasing along each ray.
    """
    u = (jnp.arange(num_samples, dtype=jnp.float32)[None]
         + (0.5 if jitter is None else jitter)) / num_samples
    if inverse_depth:
        return 1.0 / (1.0 / near * (1.0 - u) + 1.0 / far * u)
    return near + (far - near) * u


def composite(rgb: jax.Array, density: jax.Array, t: jax.Array, directions: jax.Array, *,
              far: float, background: float) -> dict[str, jax.Array]:
    """Alpha-composite samples along rays.

    The interval of sample ``k`` is ``delta_k = (t_{k+1} - t_k) |d|`` (the last one runs to
    ``far``), so densities are per unit world length.

    Args:
      rgb: ``(R, S, 3)`` sample colours.
      density: ``(R, S)`` sample densities ``>= 0``.
      t: ``(R, S)`` (or ``(1, S)``) sample distances.
      directions: ``(R, 3)`` ray directions.
      far: end of the last interval.
      background: grey level behind the scene (1 white, 0 black).

    Returns:
      ``rgb`` ``(R, 3)``, ``depth`` ``(R,)`` (expected ``t``), ``opacity`` ``(R,)`` and
      ``weights`` ``(R, S)``.
    """
    t = jnp.broadcast_to(t, density.shape)
    t_next = jnp.concatenate([t[:, 1:], jnp.full_like(t[:, :1], far)], axis=-1)
    delta = (t_next - t) * jnp.linalg.norm(directions, axis=-1, keepdims=True)
    optical = density * delta
    alpha = 1.0 - jnp.exp(-optical)
    # T_k = exp(-sum_{j<k} sigma_j delta_j), the exclusive cumulative sum (stable, no products).
    transmittance = jnp.exp(-jnp.concatenate(
        [jnp.zeros_like(optical[:, :1]), jnp.cumsum(optical[:, :-1], axis=-1)], axis=-1))
    weights = transmittance * alpha
    opacity = jnp.sum(weights, axis=-1)
    color = jnp.sum(weights[..., None] * rgb, axis=-2) + (1.0 - opacity[..., None]) * background
    depth = jnp.sum(weights * t, axis=-1)
    return {"rgb": color, "depth": depth, "opacity": opacity, "weights": weights}


@functools.partial(jax.jit, static_argnames=("field", "num_samples", "near", "far",
                                             "inverse_depth", "background"))
def _render_rays(field: FieldFn, params: Any, origins: jax.Array, directions: jax.Array,
                 jitter: jax.Array | None, *, num_samples: int, near: float, far: float,
                 inverse_depth: bool, background: float) -> dict[str, jax.Array]:
    return render_rays(field, params, Rays(origins, directions), jitter, num_samples=num_samples,
                       near=near, far=far, inverse_depth=inverse_depth, background=background)


def render_rays(field: FieldFn, params: Any, rays: Rays, jitter: jax.Array | None, *,
                num_samples: int, near: float, far: float, inverse_depth: bool = False,
                background: float = 1.0) -> dict[str, jax.Array]:
    """Render a batch of rays through ``field`` (traceable; the training loss calls it).

    Args:
      field: see :data:`FieldFn`.
      params: the field's parameters (its first argument).
      rays: ``(R, 3)`` origins and directions.
      jitter: ``(R, S)`` uniform numbers for stratified sampling, ``None`` for bin centres.
      num_samples: samples per ray.
      near: first sample distance.
      far: last distance.
      inverse_depth: sample uniformly in inverse depth.
      background: grey level of the background.

    Returns:
      :func:`composite`'s dict.
    """
    origins, directions = jnp.asarray(rays.origins), jnp.asarray(rays.directions)
    t = sample_depths(near, far, num_samples, jitter, inverse_depth=inverse_depth)
    t = jnp.broadcast_to(t, (origins.shape[0], num_samples))
    points = origins[:, None, :] + t[..., None] * directions[:, None, :]
    unit = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)
    rgb, density = field(params, points, unit[:, None, :])
    return composite(rgb, density, t, directions, far=far, background=background)


def render_image(field: FieldFn, params: Any, rays: Rays, *, num_samples: int, near: float,
                 far: float, inverse_depth: bool = False, background: float = 1.0,
                 chunk: int = 4096) -> dict[str, np.ndarray]:
    """Render rays of any leading shape in fixed-size jitted chunks (bin-centre samples).

    Every chunk has the same shape (the last one padded), so the renderer compiles once; inside
    a chunk all rays are rendered together (no Python loop over rays). ``field`` must be
    hashable (a function, or a module's bound ``apply``), since it is a static argument.

    Returns:
      ``rgb`` ``(..., 3)``, ``depth`` and ``opacity`` ``(...)`` as NumPy arrays.
    """
    shape = np.shape(rays.origins)[:-1]
    origins = np.asarray(rays.origins, np.float32).reshape(-1, 3)
    directions = np.asarray(rays.directions, np.float32).reshape(-1, 3)
    n = origins.shape[0]
    chunk = min(chunk, n)
    outs: dict[str, list[np.ndarray]] = {"rgb": [], "depth": [], "opacity": []}
    for start in range(0, n, chunk):
        o, d = origins[start:start + chunk], directions[start:start + chunk]
        valid = o.shape[0]
        if valid < chunk:
            pad = ((0, chunk - valid), (0, 0))
            o, d = np.pad(o, pad), np.pad(d, pad, constant_values=1.0)
        out = _render_rays(field, params, o, d, None, num_samples=num_samples, near=near, far=far,
                           inverse_depth=inverse_depth, background=background)
        for key in outs:
            outs[key].append(np.asarray(out[key])[:valid])
    return {key: np.concatenate(v).reshape(shape + v[0].shape[1:]) for key, v in outs.items()}
