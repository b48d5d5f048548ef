"""Optimizers selectable by name: the registry and the wrappers that make optimizers of others.

- :mod:`~experiments.optimizers.registry`: ``name -> OptimizerSpec`` with the paper's reference
  learning rates, builders with one signature, learning-rate schedules. Re-exported here, so
  ``from experiments import optimizers; optimizers.build("esgd", 0.15)`` works.
- :mod:`~experiments.optimizers.kfac`: K-FAC as an Optax transform through kfac-jax, with its
  JAX-compatibility shim alone in :mod:`~experiments.optimizers.kfac_compat`.
- :mod:`~experiments.optimizers.lbfgs`: ``optax.lbfgs`` for full-batch tasks.

The curvature optimizers themselves (ESGD, AdaHessian, Shampoo, ...) live in :mod:`jaxprecond`.
"""

from experiments.optimizers.registry import (
    REGISTRY,
    Builder,
    OptimizerSpec,
    build,
    get,
    lazy_builder,
    lazy_function,
    learning_rate_schedule,
    make_step_fn,
    names,
    register,
    task_options,
)

__all__ = [
    "REGISTRY",
    "Builder",
    "OptimizerSpec",
    "build",
    "get",
    "lazy_builder",
    "lazy_function",
    "learning_rate_schedule",
    "make_step_fn",
    "names",
    "register",
    "task_options",
]
