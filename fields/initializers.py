"""Weight initialisers of neural fields, as Flax-style ``init(key, shape, dtype)`` functions.

Three schemes, named by :data:`INIT_SCHEMES`:

- ``"torch"``: PyTorch's default ``nn.Linear`` initialisation, weights *and* biases
  ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``kaiming_uniform_(a=sqrt(5))`` for the weight). The
  paper's reference code keeps it for its Gaussian, wavelet and ReLU fields.
- ``"siren"``: Sitzmann et al.'s scheme for sine fields: first-layer weights
  ``U(-1/fan_in, 1/fan_in)``, every later weight (head included) ``U(-sqrt(6/fan_in)/omega0,
  sqrt(6/fan_in)/omega0)``; SIREN's code leaves biases at PyTorch's default, and so do we.
- ``"flax"``: Flax's ``nn.Dense`` default, LeCun-normal weights (truncated normal, variance
  ``1/fan_in``) and zero biases.

Kernels are laid out ``(fan_in, fan_out)`` as in Flax.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

__all__ = [
    "INIT_SCHEMES",
    "Initializer",
    "layer_initializers",
    "siren_bound",
    "torch_bound",
    "uniform",
]

Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]

#: Names accepted for ``init`` by :func:`fields.make` and :class:`fields.NeuralField`.
INIT_SCHEMES: tuple[str, ...] = ("torch", "siren", "flax")


def uniform(bound: float) -> Initializer:
    """Initialiser drawing i.i.d. ``U(-bound, bound)``.

    Args:
        bound: half-width of the interval, ``> 0``.

    Returns:
        ``init(key, shape, dtype=jnp.float32)``.

    Example:
        >>> w = uniform(0.5)(jax.random.key(0), (3, 4))
        >>> bool(jnp.all(jnp.abs(w) <= 0.5))
        True
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

    return init


def torch_bound(fan_in: int) -> float:
    """Half-width ``1/sqrt(fan_in)`` of PyTorch's default ``nn.Linear`` weights and biases."""
    return 1.0 / math.sqrt(fan_in)


def siren_bound(fan_in: int, omega0: float, is_first: bool) -> float:
    """Half-width of SIREN's weights: ``1/fan_in`` first, ``sqrt(6/fan_in)/omega0`` after."""
    return 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega0


def layer_initializers(
    scheme: str, fan_in: int, *, is_first: bool, omega0: float = 30.0
) -> tuple[Initializer, Initializer]:
    """Kernel and bias initialisers of one linear layer under a scheme.

    Args:
        scheme: one of :data:`INIT_SCHEMES`.
        fan_in: input width of the layer (the bias bound of ``"torch"`` and ``"siren"`` needs it).
        is_first: whether the layer reads the field's input (SIREN treats it differently).
        omega0: the frequency SIREN divides the later layers' bound by.

    Returns:
        ``(kernel_init, bias_init)``.

    Raises:
        ValueError: for an unknown scheme, naming it and the allowed ones.

    Example:
        >>> k_init, b_init = layer_initializers("torch", 256, is_first=False)
        >>> k_init(jax.random.key(0), (256, 256)).shape
        (256, 256)
    """
    if scheme == "torch":
        return uniform(torch_bound(fan_in)), uniform(torch_bound(fan_in))
    if scheme == "siren":
        return uniform(siren_bound(fan_in, omega0, is_first)), uniform(torch_bound(fan_in))
    if scheme == "flax":
        return nn.initializers.lecun_normal(), nn.initializers.zeros_init()
    raise ValueError(f"unknown init {scheme!r}; expected one of {', '.join(INIT_SCHEMES)}")
