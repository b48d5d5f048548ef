"""jaxprecond: curvature-aware diagonal preconditioners for neural fields, as Optax transforms.

Reimplements "Preconditioners for the Stochastic Training of Neural Fields" (Chng,
Saratchandran and Lucey, arXiv:2402.08784) in JAX: ESGD, ESGD-max, AdaHessian (equilibrated,
Jacobi and the reference's ``|Hv|`` variant) and the paper's preconditioned SGD, the HVP-based
diagonal estimators behind them, exact diagnostics, and compiled train steps.
"""

from jaxprecond import diagnostics
from jaxprecond.adahessian import adahessian, scale_by_adahessian
from jaxprecond.curvature import (
    CurvatureDiagnostics,
    CurvatureState,
    curvature_diagnostics,
    curvature_due,
    refresh_due,
    scale_by_curvature,
)
from jaxprecond.data_parallel import data_parallel_axis
from jaxprecond.esgd import esgd, esgd_max, scale_by_esgd, scale_by_esgd_max
from jaxprecond.estimators import (
    EstimatorState,
    abs_hvp_diagonal,
    diagonal_estimator,
    equilibration_diagonal,
    estimate_diagonal,
    hutchinson_diagonal,
)
from jaxprecond.hvp import grad_and_hvp, hvp, linearized_hvp, sample_probes
from jaxprecond.masking import masked, multi_transform
from jaxprecond.preconditioned_sgd import preconditioned_sgd, scale_by_preconditioned_sgd
from jaxprecond.shampoo import ScaleByShampooState, scale_by_shampoo, shampoo
from jaxprecond.train_step import TrainStep, as_extra_args_transform, make_train_step

__version__ = "0.1.0"

__all__ = [
    "CurvatureDiagnostics",
    "CurvatureState",
    "EstimatorState",
    "ScaleByShampooState",
    "TrainStep",
    "abs_hvp_diagonal",
    "adahessian",
    "as_extra_args_transform",
    "curvature_diagnostics",
    "curvature_due",
    "data_parallel_axis",
    "diagnostics",
    "diagonal_estimator",
    "equilibration_diagonal",
    "esgd",
    "esgd_max",
    "estimate_diagonal",
    "grad_and_hvp",
    "hutchinson_diagonal",
    "hvp",
    "linearized_hvp",
    "make_train_step",
    "masked",
    "multi_transform",
    "preconditioned_sgd",
    "refresh_due",
    "sample_probes",
    "scale_by_adahessian",
    "scale_by_curvature",
    "scale_by_esgd",
    "scale_by_esgd_max",
    "scale_by_preconditioned_sgd",
    "scale_by_shampoo",
    "shampoo",
]
