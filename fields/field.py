"""The coordinate MLP of the paper's image and occupancy experiments, as a ``flax.linen`` module."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from .activations import (
    ACTIVATIONS,
    complex_gabor,
    gaussian,
    real_gabor,
    relu,
    sinc,
    sine,
)
from .encoding import positional_encoding
from .initializers import INIT_SCHEMES, layer_initializers
from .mlp import DenseFactory, mlp

__all__ = [
    "ACTIVATION_DEFAULTS", "DEFAULT_DEPTH", "DEFAULT_WIDTH", "NeuralField", "check_field_config",
]

#: The paper's field size, "5 layers, 256 wide" (head included): what a ``None`` depth or width
#: in a run's settings stands for.
DEFAULT_DEPTH = 5
DEFAULT_WIDTH = 256

#: Reference settings of each activation (``../shared/DESIGN.md``, "Fields"): its own
#: hyperparameters and the initialiser the reference code uses with it. ``wire`` is WIRE's
#: complex Gabor field (its paper's image defaults, hidden width divided by sqrt(2) as WIRE does).
ACTIVATION_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "gaussian": {"sigma": 0.05, "init": "torch"},
    "sine": {"omega0": 30.0, "init": "siren"},
    "wavelet": {"omega0": 10.0, "s0": 10.0, "init": "torch"},
    "sinc": {"omega0": math.pi, "init": "torch"},
    "relu": {"init": "torch"},
    "relu_pe": {"num_frequencies": 8, "init": "torch"},
    "wire": {"omega0": 20.0, "s0": 10.0, "init": "torch", "width": int(256 / math.sqrt(2))},
}

_SIREN_DEFAULT_OMEGA0 = 30.0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _check_float_dtype(key: str, value: Any, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    try:
        ok = value is not None and jnp.issubdtype(jnp.dtype(value), jnp.floating)
    except TypeError:
        ok = False
    if not ok:
        allowed = "None or " if allow_none else ""
        raise ValueError(
            f"{key}={value!r} is not a floating dtype; allowed: {allowed}a floating dtype such "
            "as jnp.float32 or jnp.bfloat16"
        )


def check_field_config(
    *,
    activation: str,
    depth: Any,
    width: Any,
    out_features: Any,
    sigma: Any = None,
    omega0: Any = None,
    s0: Any = None,
    num_frequencies: Any = None,
    init: Any = None,
    dtype: Any = None,
    param_dtype: Any = jnp.float32,
) -> None:
    """Validate the hyperparameters of a :class:`NeuralField`.

    ``None`` for an activation parameter or ``init`` means "the activation's default".

    Raises:
        ValueError: naming the first bad value and saying what is allowed.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}"
        )
    if not _is_int(depth) or depth < 2:
        raise ValueError(
            f"depth={depth!r} is invalid; allowed: an int >= 2 (linear layers, head included)"
        )
    if not _is_int(width) or width < 1:
        raise ValueError(f"width={width!r} is invalid; allowed: an int >= 1")
    if not _is_int(out_features) or out_features < 1:
        raise ValueError(f"out_features={out_features!r} is invalid; allowed: an int >= 1")
    for key, value in (("sigma", sigma), ("omega0", omega0), ("s0", s0)):
        if value is not None and not _is_positive_number(value):
            raise ValueError(f"{key}={value!r} is invalid; allowed: a finite number > 0")
    if num_frequencies is not None and (not _is_int(num_frequencies) or num_frequencies < 0):
        raise ValueError(
            f"num_frequencies={num_frequencies!r} is invalid; allowed: an int >= 0"
        )
    _check_init_and_dtypes(init, dtype, param_dtype, allow_none_init=True)


def _check_init_and_dtypes(init: Any, dtype: Any, param_dtype: Any, *, allow_none_init: bool
                           ) -> None:
    """The init scheme and dtype checks every field shares."""
    if not (init is None and allow_none_init) and init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INIT_SCHEMES)}")
    _check_float_dtype("dtype", dtype, allow_none=True)
    _check_float_dtype("param_dtype", param_dtype, allow_none=False)


class NeuralField(nn.Module):
    """Coordinate MLP ``R^d -> R^out_features``: ``depth`` linear layers, the last one linear.

    ``depth=5, width=256`` is the paper's "5 layers, 256 wide": input -> 256, three 256 -> 256
    hidden layers, then the linear head. Each of the ``depth - 1`` non-head layers is followed by
    the activation; a ``wavelet`` layer has two linear maps (frequency ``dense_i`` and scale
    ``scale_i``) feeding :func:`fields.activations.real_gabor`, as WIRE's ``RealGaborLayer``;
    ``relu_pe`` applies ReLU layers to :func:`fields.encoding.positional_encoding` of the input;
    ``wire`` (an extra) is WIRE's complex Gabor field: a real first layer, then complex layers
    whose weights are stored as real and imaginary parts (``kernel``/``kernel_imag``,
    ``bias``/``bias_imag``, each part drawn independently from the init scheme), so every
    parameter and every HVP probe stays real; the output is the real part of the complex head.
    The input dimension is read from the first call.

    Parameters are named ``dense_0`` (reads the input) ... ``dense_{depth-1}`` (the head), each
    with a ``kernel`` ``(fan_in, fan_out)`` and a ``bias``.

    Prefer :func:`fields.make`, which fills every activation's reference settings and checks
    values; built directly, ``None`` fields take the activation's defaults from
    :data:`ACTIVATION_DEFAULTS`.

    Attributes:
        activation: one of ``gaussian, sine, wavelet, sinc, relu, relu_pe, wire``.
        depth: number of linear layers, head included (``>= 2``).
        width: hidden width (``None``: 256, or WIRE's 181 = 256 / sqrt(2)).
        out_features: output width (3 for RGB, 1 for occupancy logits).
        sigma: Gaussian width (``gaussian``).
        omega0: frequency (``sine``, ``wavelet``, ``sinc``, ``wire``; also SIREN's divisor).
        s0: envelope scale (``wavelet``, ``wire``).
        num_frequencies: octaves ``L`` of the positional encoding (``relu_pe``).
        init_scheme: ``"torch"``, ``"siren"`` or ``"flax"`` (see :mod:`fields.initializers`);
            called ``init`` in :func:`fields.make` (a Linen module cannot have an attribute
            ``init``, which is its initialisation method).
        dtype: computation dtype; ``None`` promotes the input and parameter dtypes as
            ``nn.Dense`` does. The output has this dtype.
        param_dtype: dtype of the parameters.

    Example:
        >>> model = NeuralField(activation="gaussian")
        >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 2)))
        >>> model.apply(variables, jnp.zeros((7, 2))).shape
        (7, 3)
    """

    activation: str = "gaussian"
    depth: int = DEFAULT_DEPTH
    width: int | None = None
    out_features: int = 3
    sigma: float | None = None
    omega0: float | None = None
    s0: float | None = None
    num_frequencies: int | None = None
    init_scheme: str | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_field_config(
            activation=self.activation,
            depth=self.depth,
            width=DEFAULT_WIDTH if self.width is None else self.width,
            out_features=self.out_features,
            sigma=self.sigma,
            omega0=self.omega0,
            s0=self.s0,
            num_frequencies=self.num_frequencies,
            init=self.init_scheme,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        super().__post_init__()

    def hyperparameters(self) -> dict[str, Any]:
        """The settings in effect, every ``None`` replaced by the activation's default."""
        defaults = ACTIVATION_DEFAULTS[self.activation]

        def pick(key: str, value: Any, fallback: Any = None) -> Any:
            return value if value is not None else defaults.get(key, fallback)

        return {
            "activation": self.activation,
            "depth": self.depth,
            "width": pick("width", self.width, DEFAULT_WIDTH),
            "out_features": self.out_features,
            "sigma": pick("sigma", self.sigma),
            "omega0": pick("omega0", self.omega0),
            "s0": pick("s0", self.s0),
            "num_frequencies": pick("num_frequencies", self.num_frequencies),
            "init": pick("init", self.init_scheme),
            "dtype": self.dtype,
            "param_dtype": self.param_dtype,
        }

    def _factory(self, hp: Mapping[str, Any]) -> DenseFactory:
        omega0 = hp["omega0"] if hp["omega0"] is not None else _SIREN_DEFAULT_OMEGA0
        return DenseFactory(hp["init"], omega0, self.dtype, self.param_dtype)

    @nn.compact
    def __call__(self, coords: jax.Array) -> jax.Array:
        """Evaluate the field.

        Args:
            coords: ``(..., d)`` coordinates (``(N, 2)`` pixels in ``[-1, 1]``, ``(N, 3)`` points).

        Returns:
            ``(..., out_features)``.
        """
        hp = self.hyperparameters()
        act = self.activation
        h = coords
        if act == "relu_pe":
            h = positional_encoding(h, hp["num_frequencies"])
        if act == "wire":
            return self._wire(h, hp)
        dense = self._factory(hp)
        width = hp["width"]

        def activate(z: jax.Array, h_in: jax.Array, i: int) -> jax.Array:
            if act == "gaussian":
                return gaussian(z, hp["sigma"])
            if act == "sine":
                return sine(z, hp["omega0"])
            if act == "sinc":
                return sinc(z, hp["omega0"])
            if act in ("relu", "relu_pe"):
                return relu(z)
            z_scale = dense(width, h_in.shape[-1], f"scale_{i}", is_first=i == 0)(h_in)
            return real_gabor(z, z_scale, hp["omega0"], hp["s0"])  # wavelet

        h = mlp(h, dense, [width] * (self.depth - 1), activate)
        last = self.depth - 1
        return dense(self.out_features, h.shape[-1], f"dense_{last}")(h)

    def _wire(self, x: jax.Array, hp: Mapping[str, Any]) -> jax.Array:
        """WIRE: a real first layer, complex hidden layers, real part of a complex head."""
        width, omega0, s0 = hp["width"], hp["omega0"], hp["s0"]
        z = self._factory(hp)(width, x.shape[-1], "dense_0", is_first=True)(x)
        h_re, h_im = complex_gabor(z, jnp.zeros_like(z), omega0, s0)
        last = self.depth - 1
        for i in range(1, self.depth):
            kernel_init, bias_init = layer_initializers(
                hp["init"], h_re.shape[-1], is_first=False, omega0=omega0
            )
            z_re, z_im = _ComplexDense(
                self.out_features if i == last else width,
                kernel_init=kernel_init,
                bias_init=bias_init,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                imag_bias=i != last,
                name=f"dense_{i}",
            )(h_re, h_im)
            if i == last:
                return z_re
            h_re, h_im = complex_gabor(z_re, z_im, omega0, s0)
        raise AssertionError("unreachable")  # pragma: no cover


class _ComplexDense(nn.Module):
    """``(h_re + i h_im) (W + i W_imag) + (b + i b_imag)`` on split real and imaginary parts.

    Parameters ``kernel``, ``bias`` (real parts) and ``kernel_imag``, ``bias_imag``, each part
    drawn from the given initialisers independently. Without ``imag_bias`` (the head, whose
    imaginary output is discarded) there is no ``bias_imag``, so no parameter is dead.
    """

    features: int
    kernel_init: Any
    bias_init: Any
    dtype: Any = None
    param_dtype: Any = jnp.float32
    imag_bias: bool = True

    @nn.compact
    def __call__(self, h_re: jax.Array, h_im: jax.Array) -> tuple[jax.Array, jax.Array]:
        shape = (h_re.shape[-1], self.features)
        w_re = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        w_im = self.param("kernel_imag", self.kernel_init, shape, self.param_dtype)
        b_re = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        if self.imag_bias:
            b_im = self.param("bias_imag", self.bias_init, (self.features,), self.param_dtype)
        else:
            b_im = jnp.zeros((self.features,), self.param_dtype)
        h_re, h_im, w_re, w_im, b_re, b_im = nn.dtypes.promote_dtype(
            h_re, h_im, w_re, w_im, b_re, b_im, dtype=self.dtype
        )
        z_re = h_re @ w_re - h_im @ w_im + b_re
        z_im = h_re @ w_im + h_im @ w_re + b_im
        return z_re, z_im
