"""Build fields by name with the paper's reference settings: :func:`make`, :func:`make_radiance`."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .field import ACTIVATION_DEFAULTS, NeuralField, check_field_config
from .radiance import RadianceField, check_radiance_config

__all__ = ["FIELD_NAMES", "allowed_overrides", "make", "make_radiance"]

#: The names :func:`make` accepts: the paper's six fields, then the WIRE extra.
FIELD_NAMES: tuple[str, ...] = tuple(ACTIVATION_DEFAULTS)

_COMMON_KEYS: tuple[str, ...] = ("depth", "width", "out_features", "init", "dtype", "param_dtype")
_ACTIVATION_KEYS: dict[str, tuple[str, ...]] = {
    "gaussian": ("sigma",),
    "sine": ("omega0",),
    "wavelet": ("omega0", "s0"),
    "sinc": ("omega0",),
    "relu": (),
    "relu_pe": ("num_frequencies",),
    "wire": ("omega0", "s0"),
}
_RADIANCE_KEYS: tuple[str, ...] = (
    "depth", "width", "sigma", "skips", "color_width", "center_embedding", "init", "dtype",
    "param_dtype", "activation", "point_frequencies", "view_frequencies",
)


def allowed_overrides(name: str) -> tuple[str, ...]:
    """The keyword overrides :func:`make` accepts for the field ``name``, sorted.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    _check_name(name)
    return tuple(sorted(_COMMON_KEYS + _ACTIVATION_KEYS[name]))


def _check_name(name: Any) -> None:
    if name not in ACTIVATION_DEFAULTS:
        raise ValueError(f"unknown field {name!r}; expected one of {', '.join(FIELD_NAMES)}")


def make(name: str, **overrides: Any) -> NeuralField:
    """The neural field ``name`` at the paper's reference settings, with overrides.

    Defaults (``../shared/DESIGN.md``, "Fields"): ``depth=5`` linear layers (input -> 256, three
    256 -> 256, linear head), ``width=256``, ``out_features=3``, and per field:

    ============ ============================================== ===========
    name         activation                                     init
    ============ ============================================== ===========
    ``gaussian`` ``exp(-0.5 z^2 / sigma^2)``, ``sigma=0.05``     ``torch``
    ``sine``     ``sin(omega0 z)``, ``omega0=30``                ``siren``
    ``wavelet``  ``cos(omega0 z_f) exp(-(s0 z_s)^2)``, 10, 10    ``torch``
    ``sinc``     ``sin(omega0 z) / (omega0 z)``, ``omega0=pi``   ``torch``
    ``relu``     ``max(z, 0)``                                  ``torch``
    ``relu_pe``  ReLU on the encoding, ``num_frequencies=8``    ``torch``
    ``wire``     WIRE complex Gabor, 20, 10, ``width=181``       ``torch``
    ============ ============================================== ===========

    Args:
        name: one of :data:`FIELD_NAMES`.
        **overrides: any of :func:`allowed_overrides` for that name: ``depth``, ``width``,
            ``out_features``, ``init`` (``"torch"``, ``"siren"``, ``"flax"``), ``dtype``,
            ``param_dtype`` and the activation's own parameters (``sigma``; ``omega0``; ``s0``;
            ``num_frequencies``).

    Returns:
        An un-initialised :class:`fields.NeuralField`; every hyperparameter set explicitly.

    Raises:
        ValueError: for an unknown name, an override the field does not have, or a bad value
            (``sigma <= 0``, ``depth < 2``, ``width < 1``, an unknown ``init``, ...); the message
            names it and lists what is allowed.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = make("gaussian", out_features=1, sigma=0.09)
        >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 3)))
        >>> model.apply(variables, jnp.zeros((10, 3))).shape
        (10, 1)
    """
    _check_name(name)
    allowed = allowed_overrides(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"fields.make({name!r}) got unknown override(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}"
        )
    defaults = ACTIVATION_DEFAULTS[name]
    config: dict[str, Any] = {
        "depth": 5,
        "width": defaults.get("width", 256),
        "out_features": 3,
        "init": defaults["init"],
        "dtype": None,
        "param_dtype": jnp.float32,
    }
    config.update({k: defaults[k] for k in _ACTIVATION_KEYS[name]})
    config.update(overrides)
    try:
        check_field_config(activation=name, **config)
    except ValueError as exc:
        raise ValueError(f"fields.make({name!r}): {exc}") from None
    config["init_scheme"] = config.pop("init")
    return NeuralField(activation=name, **config)


def make_radiance(**overrides: Any) -> RadianceField:
    """The paper's NeRF field: GARF-style, 8 Gaussian layers 256 wide, ``sigma=0.1``.

    ``make_radiance(activation="relu_pe")`` is the ReLU+PE NeRF of the supplement (encoded
    points and directions, 10 and 4 octaves, skip after ``trunk_4``). See
    :class:`fields.RadianceField` for both architectures.

    Args:
        **overrides: ``activation`` (``"gaussian"``, ``"relu_pe"``), ``depth``, ``width``,
            ``sigma``, ``skips``, ``color_width``, ``center_embedding``, ``init``, ``dtype``,
            ``param_dtype``, ``point_frequencies``, ``view_frequencies``.

    Returns:
        An un-initialised :class:`fields.RadianceField`.

    Raises:
        ValueError: for an unknown override or a bad value, naming it and what is allowed.

    Example:
        >>> model = make_radiance(skips=())
        >>> model.depth, model.sigma
        (8, 0.1)
    """
    unknown = sorted(set(overrides) - set(_RADIANCE_KEYS))
    if unknown:
        raise ValueError(
            f"fields.make_radiance got unknown override(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_RADIANCE_KEYS))}"
        )
    relu_pe = overrides.get("activation") == "relu_pe"
    config: dict[str, Any] = {
        "activation": "gaussian",
        "point_frequencies": 10,
        "view_frequencies": 4,
        "depth": 8,
        "width": 256,
        "sigma": 0.1,
        "skips": (4,) if relu_pe else (5,),
        "color_width": None,
        "center_embedding": True,
        "init": "torch",
        "dtype": None,
        "param_dtype": jnp.float32,
    }
    config.update(overrides)
    if isinstance(config["skips"], list):
        config["skips"] = tuple(config["skips"])
    try:
        check_radiance_config(**config)
    except ValueError as exc:
        raise ValueError(f"fields.make_radiance: {exc}") from None
    config["init_scheme"] = config.pop("init")
    return RadianceField(**config)
