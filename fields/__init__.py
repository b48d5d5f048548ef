"""Flax neural fields: the models of "Preconditioners for the Stochastic Training of Neural Fields".

``fields.make(name, **overrides)`` builds the paper's coordinate MLPs (``gaussian``, ``sine``,
``wavelet``, ``sinc``, ``relu``, ``relu_pe``, plus the ``wire`` extra) at their reference
settings; ``fields.RadianceField`` / ``fields.make_radiance`` the GARF-style NeRF field.

``pip install jaxprecond`` installs this folder as the package ``jaxprecond_fields`` (``import
jaxprecond_fields as fields``); from the repository root it is also importable as ``fields``, the
name the experiments and tests use. Its modules import each other relatively, so both work.

Example:
    >>> import jax, jax.numpy as jnp, fields
    >>> model = fields.make("gaussian")
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    >>> model.apply(variables, jnp.zeros((16, 2))).shape
    (16, 3)
"""

from .activations import (
    ACTIVATIONS,
    complex_gabor,
    gaussian,
    real_gabor,
    relu,
    sinc,
    sine,
)
from .encoding import encoded_dim, positional_encoding
from .field import ACTIVATION_DEFAULTS, NeuralField
from .initializers import INIT_SCHEMES, layer_initializers, siren_bound, torch_bound, uniform
from .mlp import DenseFactory, mlp
from .radiance import RADIANCE_ACTIVATIONS, RadianceField
from .registry import FIELD_NAMES, allowed_overrides, make, make_radiance

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_DEFAULTS",
    "DenseFactory",
    "FIELD_NAMES",
    "INIT_SCHEMES",
    "RADIANCE_ACTIVATIONS",
    "NeuralField",
    "RadianceField",
    "allowed_overrides",
    "complex_gabor",
    "encoded_dim",
    "gaussian",
    "layer_initializers",
    "make",
    "make_radiance",
    "mlp",
    "positional_encoding",
    "real_gabor",
    "relu",
    "sinc",
    "sine",
    "siren_bound",
    "torch_bound",
    "uniform",
]
