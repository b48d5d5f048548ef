"""The paper's experiments and the training harness they share.

Layout (what depends on what: ``paper`` and the entry points -> ``tasks`` -> ``harness`` ->
``optimizers`` -> ``jaxprecond``; the harness knows no task by name):

- :mod:`experiments.harness`: the training loop, orbax checkpoints, run configuration, CLI
  building blocks, metrics (CSV, TensorBoard), ``jax.distributed`` set-up, optimizer timing,
  errors, the :class:`~experiments.harness.task.Task` protocol, comparison grids, reports, plots.
- :mod:`experiments.optimizers`: the optimizer registry with reference learning rates, and the
  wrappers that make optimizers of other libraries (K-FAC through kfac-jax, with its JAX shim
  alone in ``kfac_compat``; L-BFGS).
- :mod:`experiments.tasks`: one module per task (``image``), each with its data module beside it.
- :mod:`experiments.paper`: the paper's analyses and drivers (``condition``, ``sparsity``,
  ``adam_vs_sgd``, ``lion``, ``reproduction``), run as ``python -m experiments.paper.<name>``.

Entry points: ``python -m experiments.image`` (and every task by its name), ``python -m
experiments.compare --task NAME`` (a grid of optimizers x activations with ``report.md``),
``python -m experiments.demo`` (the README's ESGD vs Adam demo).
"""
