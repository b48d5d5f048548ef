"""What the training harness needs from a task (image fitting, occupancy, NeRF, ...)."""

from __future__ import annotations

import pathlib
from typing import Any, Protocol

import jax
import numpy as np


class Task(Protocol):
    """A supervised task over a fixed set of examples, trained by mini-batches of indices.

    The harness knows no task by name: it logs ``train_<metric_name>`` and
    ``eval_<metric_name>`` in ``metrics.csv``, writes ``final_<metric_name>`` (and
    ``final_eval_<key>`` for the evaluation's other values) in ``summary.json``, and labels
    reports and plots with ``metric_label`` and ``metric_unit``. Metrics are higher-is-better.

    Attributes:
      name: short name used in logs and summaries (e.g. ``'image'``).
      metric_name: name of the task's quality metric (e.g. ``'psnr'``, ``'iou'``).
      metric_label: how reports name it (e.g. ``'PSNR'``, ``'IoU'``).
      metric_unit: its unit in reports (e.g. ``'dB'``; ``''`` for none).
      num_examples: size of the training set; one epoch is one pass over it.
    """

    name: str
    metric_name: str
    metric_label: str
    metric_unit: str
    num_examples: int

    def fingerprint(self) -> dict[str, Any]:
        """Values that identify the data (e.g. an image hash); a resumed run must match them."""
        ...

    def batch(self, indices: np.ndarray) -> Any:
        """Host (NumPy) pytree of the examples at ``indices``, leading axis = examples."""
        ...

    def init_params(self, key: jax.Array) -> Any:
        """Initial parameters for the model."""
        ...

    def loss_fn(self, params: Any, batch: Any) -> jax.Array:
        """Scalar mean loss of ``params`` on ``batch`` (traceable)."""
        ...

    def metric_from_loss(self, loss: float) -> float | None:
        """The quality metric implied by a mean training loss (e.g. PSNR of an MSE); ``None``
        when the loss does not determine it."""
        ...

    def evaluate(self, params: Any) -> dict[str, float]:
        """Full evaluation (e.g. PSNR of the full-resolution reconstruction); includes
        ``metric_name``."""
        ...

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        """Write the task's artefacts (images, meshes, ...); return the file names."""
        ...
