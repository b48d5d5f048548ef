"""Activation functions of neural fields, as pure ``jax.numpy`` functions.

Each function is elementwise, keeps the dtype of its input (float32 or bfloat16) and is smooth
enough for forward-over-reverse Hessian-vector products, except :func:`relu`, whose second
derivative is zero almost everywhere (the source of the sparse HVPs of the paper's Theorem 4.3).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = [
    "ACTIVATIONS",
    "complex_gabor",
    "gaussian",
    "real_gabor",
    "relu",
    "sinc",
    "sine",
]

#: Names of the activations of :class:`fields.NeuralField` (``relu_pe`` is ReLU on a positional
#: encoding of the input, ``wire`` the complex Gabor wavelet of WIRE).
ACTIVATIONS: tuple[str, ...] = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe", "wire")


def gaussian(z: jax.Array, sigma: float) -> jax.Array:
    """Gaussian activation ``exp(-0.5 z^2 / sigma^2)`` (Ramasinghe and Lucey; GARF).

    Args:
        z: pre-activations.
        sigma: width of the bell, ``> 0`` (0.05 for the paper's image field, 0.09 occupancy,
            0.1 NeRF).

    Returns:
        ``exp(-0.5 (z / sigma)^2)``, same shape and dtype as ``z``, in ``[0, 1]``.

    Example:
        >>> float(gaussian(jnp.float32(0.0), 0.05))
        1.0
    """
    u = z / jnp.asarray(sigma, z.dtype)
    return jnp.exp(-0.5 * u * u)


def sine(z: jax.Array, omega0: float) -> jax.Array:
    """SIREN activation ``sin(omega0 z)`` (Sitzmann et al.).

    Args:
        z: pre-activations.
        omega0: frequency (30 in SIREN and the paper).

    Returns:
        ``sin(omega0 z)``, same shape and dtype as ``z``.

    Example:
        >>> float(sine(jnp.float32(0.0), 30.0))
        0.0
    """
    return jnp.sin(jnp.asarray(omega0, z.dtype) * z)


def sinc(z: jax.Array, omega0: float = math.pi) -> jax.Array:
    """Sinc activation ``sin(omega0 z) / (omega0 z)`` (Saratchandran et al.), 1 at ``z = 0``.

    The reference setting is ``omega0 = pi``, i.e. the normalised ``sin(pi z) / (pi z)``. Built on
    :func:`jax.numpy.sinc`, whose derivatives of every order are exact at ``z = 0``.

    Args:
        z: pre-activations.
        omega0: angular frequency, ``> 0`` (pi for the reference).

    Returns:
        ``sin(omega0 z) / (omega0 z)``, same shape and dtype as ``z``.

    Example:
        >>> float(sinc(jnp.float32(0.0)))
        1.0
    """
    return jnp.sinc(jnp.asarray(omega0 / math.pi, z.dtype) * z)


def relu(z: jax.Array) -> jax.Array:
    """ReLU ``max(z, 0)``.

    Args:
        z: pre-activations.

    Returns:
        ``max(z, 0)``, same shape and dtype as ``z``.

    Example:
        >>> float(relu(jnp.float32(-1.0)))
        0.0
    """
    return jax.nn.relu(z)


def real_gabor(z_freq: jax.Array, z_scale: jax.Array, omega0: float, s0: float) -> jax.Array:
    """Real Gabor wavelet ``cos(omega0 z_f) exp(-(s0 z_s)^2)`` (WIRE's ``RealGaborLayer``).

    The frequency and the envelope take two different pre-activations, the outputs of the two
    linear maps of a wavelet layer.

    Args:
        z_freq: pre-activations of the frequency map.
        z_scale: pre-activations of the scale map, same shape as ``z_freq``.
        omega0: frequency (10 in the paper).
        s0: envelope scale (10 in the paper).

    Returns:
        The wavelet, same shape and dtype as the inputs.

    Example:
        >>> float(real_gabor(jnp.float32(0.0), jnp.float32(0.0), 10.0, 10.0))
        1.0
    """
    freq = jnp.asarray(omega0, z_freq.dtype) * z_freq
    scale = jnp.asarray(s0, z_scale.dtype) * z_scale
    return jnp.cos(freq) * jnp.exp(-scale * scale)


def complex_gabor(
    z_re: jax.Array, z_im: jax.Array, omega0: float, s0: float
) -> tuple[jax.Array, jax.Array]:
    """Complex Gabor wavelet of WIRE, ``exp(i omega0 z - |s0 z|^2)``, on split real/imag parts.

    For ``z = a + ib`` this is ``exp(-omega0 b - s0^2 (a^2 + b^2)) (cos(omega0 a) + i sin(omega0
    a))``. Complex numbers are carried as pairs of real arrays so that every parameter and every
    probe of a Hessian-vector product stays real.

    Args:
        z_re: real part of the pre-activations.
        z_im: imaginary part, same shape.
        omega0: frequency (20 in WIRE).
        s0: envelope scale (10 in WIRE).

    Returns:
        ``(real, imag)`` of the activation, each like ``z_re``.

    Example:
        >>> re, im = complex_gabor(jnp.float32(0.0), jnp.float32(0.0), 20.0, 10.0)
        >>> float(re), float(im)
        (1.0, 0.0)
    """
    w = jnp.asarray(omega0, z_re.dtype)
    s2 = jnp.asarray(s0 * s0, z_re.dtype)
    envelope = jnp.exp(-w * z_im - s2 * (z_re * z_re + z_im * z_im))
    phase = w * z_re
    return envelope * jnp.cos(phase), envelope * jnp.sin(phase)
