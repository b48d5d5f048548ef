"""The radiance field of the paper's NeRF experiments: GARF's Gaussian field, or ReLU+PE NeRF."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from .activations import gaussian
from .encoding import positional_encoding
from .field import _check_init_and_dtypes, _is_int, _is_positive_number
from .mlp import DenseFactory, mlp

__all__ = ["RADIANCE_ACTIVATIONS", "RadianceField", "check_radiance_config"]

#: The radiance fields: GARF's Gaussian field (the paper's Table 1) and the ReLU+PE NeRF
#: (supplement Tables 3-4).
RADIANCE_ACTIVATIONS: tuple[str, ...] = ("gaussian", "relu_pe")


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
    activation: Any = "gaussian",
    point_frequencies: Any = 10,
    view_frequencies: Any = 4,
) -> None:
    """Validate the hyperparameters of a :class:`RadianceField`.

    Raises:
        ValueError: naming the first bad value and saying what is allowed.
    """
    if activation not in RADIANCE_ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is invalid; allowed: {', '.join(RADIANCE_ACTIVATIONS)}"
        )
    for key, value in (("point_frequencies", point_frequencies),
                       ("view_frequencies", view_frequencies)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"{key}={value!r} is invalid; allowed: an int >= 0")
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
    _check_init_and_dtypes(init, dtype, param_dtype, allow_none_init=False)


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

    With ``activation="relu_pe"`` it is the ReLU+PE NeRF of Mildenhall et al. (the supplement's
    Tables 3-4): points and directions are positionally encoded (``point_frequencies`` = 10,
    ``view_frequencies`` = 4 octaves, NeRF's values), the trunk (``trunk_0 ...``) is ReLU, the
    skip concatenates the encoded point (NeRF's ``skips=[4]``: after ``trunk_4``), the encoded
    direction joins the feature directly (no ``view_embed``) and the colour hidden layer is ReLU;
    the output activations (softplus, sigmoid) are the same.

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
        activation: ``"gaussian"`` (GARF) or ``"relu_pe"`` (NeRF).
        point_frequencies: octaves of the point encoding (``relu_pe`` only).
        view_frequencies: octaves of the direction encoding (``relu_pe`` only).

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
    activation: str = "gaussian"
    point_frequencies: int = 10
    view_frequencies: int = 4

    def __post_init__(self) -> None:
        check_radiance_config(
            activation=self.activation,
            point_frequencies=self.point_frequencies,
            view_frequencies=self.view_frequencies,
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

    @property
    def _layers(self) -> DenseFactory:
        return DenseFactory(self.init_scheme, dtype=self.dtype, param_dtype=self.param_dtype)

    def _activate(self, z: jax.Array, h_in: jax.Array, i: int) -> jax.Array:
        del h_in
        if self.activation == "relu_pe":
            return nn.relu(z)
        if i == 0 and self.center_embedding:
            z = z - jnp.mean(z, axis=-1, keepdims=True)
        return gaussian(z, self.sigma)

    def _encode(self, x: jax.Array, num_frequencies: int) -> jax.Array:
        if self.activation == "relu_pe":
            return positional_encoding(x, num_frequencies)
        return x

    @nn.compact
    def __call__(self, points: jax.Array, view_dirs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Colour and density at sample points seen from given directions.

        Args:
            points: ``(..., 3)`` sample positions.
            view_dirs: ``(..., 3)`` unit view directions, broadcastable against ``points``.

        Returns:
            ``(rgb, density)``: ``(..., 3)`` in ``[0, 1]`` and ``(...)`` ``>= 0``.
        """
        dense = self._layers
        x = self._encode(points, self.point_frequencies)
        if self.activation == "relu_pe":  # NeRF: the skip re-reads the encoded input
            embedding = x
            h = mlp(x, dense, [self.width] * self.depth, self._activate, prefix="trunk",
                    skips=self.skips, skip_input=embedding)
        else:  # GARF: the skip re-reads the point embedding (trunk_0's output)
            embedding = mlp(x, dense, [self.width], self._activate, prefix="trunk")
            h = mlp(embedding, dense, [self.width] * (self.depth - 1), self._activate,
                    prefix="trunk", start=1, skips=self.skips, skip_input=embedding)
        density = nn.softplus(dense(1, h.shape[-1], "density")(h))[..., 0]
        feature = dense(self.width, h.shape[-1], "feature")(h)
        view = self._encode(view_dirs, self.view_frequencies)
        if self.activation != "relu_pe":
            view = mlp(view, dense, [self.width], self._activate, names=["view_embed"])
        lead = jnp.broadcast_shapes(feature.shape[:-1], view.shape[:-1])
        feature = jnp.broadcast_to(feature, lead + feature.shape[-1:])
        view = jnp.broadcast_to(view, lead + view.shape[-1:])
        color_width = max(1, self.width // 2) if self.color_width is None else self.color_width
        c = jnp.concatenate([feature, view], axis=-1)
        c = mlp(c, dense, [color_width], self._activate, start=1, names=["color_hidden"])
        rgb = nn.sigmoid(dense(3, c.shape[-1], "color")(c))
        density = jnp.broadcast_to(density, lead)
        return rgb, density
