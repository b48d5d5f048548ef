"""Positional encoding of coordinates (NeRF's frequency encoding), used by ReLU+PE fields."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["encoded_dim", "positional_encoding"]


def positional_encoding(x: jax.Array, num_frequencies: int) -> jax.Array:
    """``[x, sin(2^0 pi x), cos(2^0 pi x), ..., sin(2^(L-1) pi x), cos(2^(L-1) pi x)]``.

    The features are computed in at least float32 whatever the input dtype (``sin(2^7 pi x)`` in
    bfloat16 would lose every significant bit) and returned in the input's dtype.

    Args:
        x: coordinates ``(..., d)``.
        num_frequencies: ``L >= 0``, the number of octaves ``k = 0, ..., L-1``.

    Returns:
        ``(..., d * (1 + 2L))``: the input, then for each ``k`` the ``d`` sines and ``d`` cosines.

    Example:
        >>> positional_encoding(jnp.zeros((5, 2)), 8).shape
        (5, 34)
    """
    dtype = x.dtype
    wide = x.astype(jnp.promote_types(dtype, jnp.float32))
    parts = [wide]
    for k in range(num_frequencies):
        scaled = (2.0**k * math.pi) * wide
        parts += [jnp.sin(scaled), jnp.cos(scaled)]
    return jnp.concatenate(parts, axis=-1).astype(dtype)


def encoded_dim(in_dim: int, num_frequencies: int) -> int:
    """Width ``d (1 + 2L)`` of :func:`positional_encoding` for ``d`` input coordinates."""
    return in_dim * (1 + 2 * num_frequencies)
