"""What the training harness needs from a task (image fitting, occupancy, NeRF, ...)."""

from __future__ import annotations

import pathlib
from typing import Any, Protocol

import jax
import numpy as np


class Task(Protocol):
    """A supervised task over a fixed set of examples, trained by mini-batches of indices.

    Attributes:
      name: short name used in logs and summaries (e.g. ``'image'``).
      metric_name: name of the quality metric derived from the loss (e.g. ``'psnr'``).
      num_examples: size of the training set; one epoch is one pass over it.
    """

    name: str
    metric_name: str
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

    def metric_from_loss(self, loss: float) -> float:
        """The quality metric implied by a mean training loss (e.g. PSNR of an MSE)."""
        ...

    def evaluate(self, params: Any) -> dict[str, float]:
        """Full evaluation (e.g. PSNR of the full-resolution reconstruction); includes
        ``metric_name``."""
        ...

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        """Write the task's artefacts (images, meshes, ...); return the file names."""
        ...
