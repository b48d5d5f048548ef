"""The Gaussian-activated radiance field of the paper's NeRF experiments (GARF-style)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from fields.activations import gaussian
from fields.field import _check_float_dtype, _is_int, _is_positive_number
from fields.initializers import INIT_SCHEMES, layer_initializers

__all__ = ["RadianceField", "check_radiance_config"]


def check_radiance_config(
    *,
    depth: Any,
    width: Any,
    sigma: Any,
    skips: Any,
    color_width: Any,
    center_embedding: Any,
    init: Any,
    dtype: Any = None,
    param_dtype: Any = jnp.float32,
) -> None:
    """Validate the hyperparameters of a :class:`RadianceField`.

    Raises:
        ValueError: naming the first bad value and saying what is allowed.
    """
    if not _is_int(depth) or depth < 2:
        raise ValueError(f"depth={depth!r} is invalid; allowed: an int >= 2 (trunk layers)")
    if not _is_int(width) or width < 1:
        raise ValueError(f"width={width!r} is invalid; allowed: an int >= 1")
    if not _is_positive_number(sigma):
        raise ValueError(f"sigma={sigma!r} is invalid; allowed: a finite number > 0")
    if (
        not isinstance(skips, tuple | list)
        or not all(_is_int(s) and 1 <= s <= depth - 2 for s in skips)
    ):
        raise ValueError(
            f"skips={skips!r} is invalid; allowed: a tuple of trunk layer indices in "
            f"[1, depth - 2] = [1, {depth - 2}]"
        )
    if color_width is not None and (not _is_int(color_width) or color_width < 1):
        raise ValueError(f"color_width={color_width!r} is invalid; allowed: None or an int >= 1")
    if not isinstance(center_embedding, bool):
        raise ValueError(f"center_embedding={center_embedding!r} is invalid; allowed: a bool")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INIT_SCHEMES)}")
    _check_float_dtype("dtype", dtype, allow_none=True)
    _check_float_dtype("param_dtype", param_dtype, allow_none=False)


class RadianceField(nn.Module):
    """Radiance field ``(points, view_dirs) -> (rgb, density)`` with Gaussian activations.

    The architecture follows GARF (Chng et al., ECCV 2022, the paper's reference [12]; its
    ``NeRF_Gaussian`` model), the Gaussian-activated NeRF the paper trains:

    - No positional encoding: points and view directions enter raw.
    - Trunk of ``depth`` Gaussian layers, ``width`` wide (the paper's "8-layer Gaussian field,
      sigma 0.1"): ``trunk_0`` embeds the 3D point, ``trunk_1 ... trunk_{depth-1}`` are
      ``width -> width``. With ``center_embedding`` (GARF's ``gaussian_init_d``) the embedding
      layer subtracts, per point, the mean of its pre-activations over the features before the
      Gaussian; hidden layers use the plain Gaussian.
    - Skip connection (optional): after each trunk layer listed in ``skips`` the point embedding
      is concatenated to the features, so the next layer reads ``2 width``. Indices count the
      embedding as layer 0, so the default ``(5,)`` is GARF's ``skip: [4]``; ``()`` disables it.
    - Density head from the trunk: ``density`` (``width -> 1``), then softplus (GARF's
      ``density_activ``), so the density is ``>= 0``.
    - Colour head: ``feature`` (``width -> width``, linear), concatenated with the embedding
      ``view_embed`` of the view direction (``3 -> width``, centred Gaussian like the points),
      then ``color_hidden`` (``2 width -> color_width``, Gaussian, ``color_width = width // 2`` by
      default) and ``color`` (``-> 3``) with a sigmoid, so the colour is in ``[0, 1]``.
    - Initialisation: PyTorch's default ``nn.Linear`` (``init="torch"``), as GARF.

    View directions are used as given (pass unit vectors, as GARF does). Their leading shape
    need only broadcast against the points', so ``(R, 1, 3)`` directions serve ``(R, S, 3)``
    samples, and the view embedding is computed once per ray.

    Attributes:
        depth: Gaussian trunk layers, the point embedding included (``>= 2``; 8).
        width: trunk width (256).
        sigma: Gaussian width of every layer (0.1).
        skips: trunk layers after which the point embedding is concatenated (``(5,)``).
        color_width: width of the colour hidden layer (``None``: ``width // 2``).
        center_embedding: GARF's mean-centred Gaussian on the point and view embeddings (True).
        init_scheme: ``"torch"``, ``"siren"`` or ``"flax"`` (``init`` in :func:`make_radiance`).
        dtype: computation dtype (``None`` promotes inputs and parameters); outputs have it.
        param_dtype: dtype of the parameters.

    Example:
        >>> model = RadianceField()
        >>> pts, dirs = jnp.zeros((4, 3)), jnp.ones((4, 3)) / jnp.sqrt(3.0)
        >>> variables = model.init(jax.random.key(0), pts, dirs)
        >>> rgb, density = model.apply(variables, pts, dirs)
        >>> rgb.shape, density.shape
        ((4, 3), (4,))
    """

    depth: int = 8
    width: int = 256
    sigma: float = 0.1
    skips: tuple[int, ...] = (5,)
    color_width: int | None = None
    center_embedding: bool = True
    init_scheme: str = "torch"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_radiance_config(
            depth=self.depth,
            width=self.width,
            sigma=self.sigma,
            skips=self.skips,
            color_width=self.color_width,
            center_embedding=self.center_embedding,
            init=self.init_scheme,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        super().__post_init__()

    def _dense(self, features: int, fan_in: int, name: str, is_first: bool = False) -> nn.Dense:
        kernel_init, bias_init = layer_initializers(self.init_scheme, fan_in, is_first=is_first)
        return nn.Dense(
            features,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            name=name,
        )

    def _embed(self, x: jax.Array, name: str) -> jax.Array:
        z = self._dense(self.width, x.shape[-1], name, is_first=True)(x)
        if self.center_embedding:
            z = z - jnp.mean(z, axis=-1, keepdims=True)
        return gaussian(z, self.sigma)

    @nn.compact
    def __call__(self, points: jax.Array, view_dirs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Colour and density at sample points seen from given directions.

        Args:
            points: ``(..., 3)`` sample positions.
            view_dirs: ``(..., 3)`` unit view directions, broadcastable against ``points``.

        Returns:
            ``(rgb, density)``: ``(..., 3)`` in ``[0, 1]`` and ``(...)`` ``>= 0``.
        """
        embedding = self._embed(points, "trunk_0")
        h = embedding
        for i in range(1, self.depth):
            h = gaussian(self._dense(self.width, h.shape[-1], f"trunk_{i}")(h), self.sigma)
            if i in self.skips:
                h = jnp.concatenate([embedding, h], axis=-1)
        density = nn.softplus(self._dense(1, h.shape[-1], "density")(h))[..., 0]
        feature = self._dense(self.width, h.shape[-1], "feature")(h)
        view = self._embed(view_dirs, "view_embed")
        lead = jnp.broadcast_shapes(feature.shape[:-1], view.shape[:-1])
        feature = jnp.broadcast_to(feature, lead + feature.shape[-1:])
        view = jnp.broadcast_to(view, lead + view.shape[-1:])
        color_width = max(1, self.width // 2) if self.color_width is None else self.color_width
        c = jnp.concatenate([feature, view], axis=-1)
        c = gaussian(self._dense(color_width, c.shape[-1], "color_hidden")(c), self.sigma)
        rgb = nn.sigmoid(self._dense(3, c.shape[-1], "color")(c))
        density = jnp.broadcast_to(density, lead)
        return rgb, density
