"""The paper's experiments and the training harness they share.

Entry points (``python -m experiments.<name>``): ``image`` (fit a field to an image),
``compare`` (a grid of optimizers x activations with ``report.md``), ``demo`` (the README's
ESGD vs Adam demo).

Harness modules: ``optimizers`` (registry and reference learning rates), ``data`` (images,
coordinates, checkpointable batch order), ``task`` (what a task provides), ``train`` (a run:
checks, build, restore, loop, summary), ``loop`` (the inner loop, logging, signals),
``checkpoint`` (orbax), ``metrics`` (PSNR, CSV and TensorBoard), ``timing`` (optimizer time),
``distributed`` (``jax.distributed``), ``plots``, ``report``, ``config``, ``cli``, ``errors``;
``baselines`` holds Shampoo, K-FAC and L-BFGS.
"""
