"""What the signal-fitting tasks share: a field regressing a signal's values at fixed
coordinates with an MSE loss, trained by mini-batches of those coordinates.

The image (``(y, x) -> RGB``), video (``(t, y, x) -> RGB``) and audio (``t -> amplitude``) tasks
subclass :class:`SignalFitTask`; each keeps only its data, its metric and its outputs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.harness.metrics import psnr

#: Coordinates per compiled evaluation call (the last chunk is padded to this size, so one
#: compilation serves every chunk).
EVAL_CHUNK = 65536


class SignalFitTask:
    """Fit ``model`` to ``values`` (N, C) at ``coords`` (N, D); the examples are the N points.

    Subclasses set ``name`` and, if their batches name the values otherwise, ``values_key``
    (``'pixels'`` by default); a batch is ``{'coords': ..., values_key: ...}``. The field sees
    ``coords * input_scale`` (e.g. a sine field's first-layer frequency on audio).

    Args:
      coords: (N, D) float32 coordinates in [-1, 1].
      values: (N, C) float32 targets.
      model: a Flax module mapping (B, D) to (B, C).
      input_scale: factor applied to the coordinates before the field.
    """

    name = "signal"
    metric_name = "psnr"
    metric_label = "PSNR"
    metric_unit = "dB"
    values_key = "pixels"

    def __init__(self, coords: np.ndarray, values: np.ndarray, model: Any, *,
                 input_scale: float = 1.0):
        self.coords = np.asarray(coords, np.float32)
        self.values = np.asarray(values, np.float32)
        self.model = model
        self.input_scale = float(input_scale)
        self.num_examples = self.coords.shape[0]
        self._collections: dict[str, Any] = {}

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {"coords": self.coords[indices], self.values_key: self.values[indices]}

    def init_params(self, key: jax.Array) -> Any:
        variables = self.model.init(key, jnp.zeros((1, self.coords.shape[1]), jnp.float32))
        self._collections = {k: v for k, v in variables.items() if k != "params"}
        return variables["params"]

    def apply(self, params: Any, coords: jax.Array) -> jax.Array:
        """Field values at ``coords`` (N, D)."""
        if self.input_scale != 1.0:
            coords = coords * self.input_scale
        return self.model.apply({"params": params, **self._collections}, coords)

    def loss_fn(self, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        return jnp.mean((self.apply(params, batch["coords"]) - batch[self.values_key]) ** 2)

    def metric_from_loss(self, loss: float) -> float:
        return psnr(loss)

    @functools.cached_property
    def _predict_chunk(self) -> Any:
        return jax.jit(self.apply)

    def predict_values(self, params: Any) -> np.ndarray:
        """The field at every coordinate, (N, C), evaluated in fixed-size chunks."""
        n = self.num_examples
        chunk = min(EVAL_CHUNK, n)
        out = []
        for start in range(0, n, chunk):
            coords = self.coords[start:start + chunk]
            valid = coords.shape[0]
            if valid < chunk:
                pad = np.zeros((chunk - valid, coords.shape[1]), np.float32)
                coords = np.concatenate([coords, pad])
            out.append(np.asarray(self._predict_chunk(params, coords))[:valid])
        return np.concatenate(out)
