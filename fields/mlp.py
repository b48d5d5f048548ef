"""The one MLP builder behind :class:`fields.NeuralField` and :class:`fields.RadianceField`.

Both fields are stacks of initialised ``nn.Dense`` layers, each followed by an activation, some
with a skip connection. :class:`DenseFactory` makes one layer under an init scheme (the fan-in
decides the PyTorch and SIREN bounds), and :func:`mlp` applies a stack of them inside a
``nn.compact`` method, so the layers become submodules of the calling field under the names it
chooses (``dense_i`` for the coordinate field, ``trunk_i`` for the radiance field).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from .initializers import layer_initializers

__all__ = ["Activate", "DenseFactory", "mlp"]

#: ``activate(z, h_in, index) -> h``: the activation of layer ``index`` applied to its
#: pre-activation ``z``; ``h_in`` (the layer's input) lets a layer add a second linear map
#: (the wavelet field's scale branch).
Activate = Callable[[jax.Array, jax.Array, int], jax.Array]


@dataclasses.dataclass(frozen=True)
class DenseFactory:
    """Makes the ``nn.Dense`` layers of a field under one init scheme and dtype policy.

    Attributes:
        init_scheme: ``"torch"``, ``"siren"`` or ``"flax"`` (:mod:`fields.initializers`).
        omega0: SIREN's frequency, which divides the bound of its non-first layers.
        dtype: computation dtype (``None`` promotes as ``nn.Dense`` does).
        param_dtype: dtype of the parameters.
    """

    init_scheme: str
    omega0: float = 30.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __call__(self, features: int, fan_in: int, name: str, *, is_first: bool = False
                 ) -> nn.Dense:
        """One layer ``fan_in -> features`` named ``name`` (call inside a compact method).

        Args:
            features: output width.
            fan_in: input width (sets the init bounds).
            name: the parameter scope of the layer.
            is_first: whether the layer reads the field's input (SIREN's first-layer bound).

        Returns:
            The un-applied ``nn.Dense``.
        """
        kernel_init, bias_init = layer_initializers(
            self.init_scheme, fan_in, is_first=is_first, omega0=self.omega0
        )
        return nn.Dense(
            features,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=kernel_init,
            bias_init=bias_init,
            name=name,
        )


def mlp(
    h: jax.Array,
    dense: DenseFactory,
    widths: Sequence[int],
    activate: Activate,
    *,
    prefix: str = "dense",
    start: int = 0,
    skips: Container[int] = (),
    skip_input: jax.Array | None = None,
    names: Sequence[str] | None = None,
) -> jax.Array:
    """Apply a stack of dense layers, each followed by ``activate``; call inside ``nn.compact``.

    Layer ``i`` (counting from ``start``) is named ``f"{prefix}_{i}"``; layer 0 gets the
    first-layer init. After each layer whose index is in ``skips``, ``skip_input`` is
    concatenated in front of the features (NeRF's skip connection), so the next layer reads both.

    Args:
        h: ``(..., fan_in)`` input of the first layer.
        dense: the layer factory.
        widths: output width of each layer.
        activate: ``activate(z, h_in, i)``, see :data:`Activate`.
        prefix: parameter-name prefix.
        start: index of the first layer (names and the first-layer init).
        skips: layer indices after which ``skip_input`` is concatenated.
        skip_input: the features to concatenate (required when ``skips`` is non-empty).
        names: the layers' names, replacing ``f"{prefix}_{i}"``.

    Returns:
        ``(..., widths[-1])``, or wider when the last layer is a skip layer.
    """
    for k, features in enumerate(widths):
        i = start + k
        name = names[k] if names is not None else f"{prefix}_{i}"
        z = dense(features, h.shape[-1], name, is_first=i == 0)(h)
        h = activate(z, h, i)
        if i in skips:
            if skip_input is None:
                raise ValueError(f"layer {i} is a skip layer but no skip_input was given")
            h = jnp.concatenate([skip_input, h], axis=-1)
    return h
