"""Shuffled mini-batches of example indices with a checkpointable order (any task)."""

from __future__ import annotations

from typing import Any

import numpy as np


class ShuffledBatches:
    """Indices of shuffled mini-batches; one epoch is one pass over a fresh permutation.

    Every epoch draws a permutation of ``num_examples`` from a NumPy ``PCG64`` generator seeded
    with ``seed``; step ``s`` of the run takes batch ``s % steps_per_epoch`` of epoch
    ``s // steps_per_epoch``. When ``num_examples`` is not a multiple of ``batch_size`` the last
    ``num_examples % batch_size`` examples of each permutation are left out of that epoch (a
    different set each epoch), so every step has the same shape and compiles once.

    :meth:`state_dict` holds the generator state before the current epoch's permutation and the
    epoch number; restoring it and asking for any step of that epoch or later reproduces the
    uninterrupted order exactly. Steps must be requested in non-decreasing order.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        if batch_size > num_examples:
            raise ValueError(f"batch_size {batch_size} exceeds the {num_examples} examples")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.steps_per_epoch = num_examples // batch_size
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._epoch = -1
        self._epoch_state: dict[str, Any] = self._rng.bit_generator.state
        self._perm = np.empty(0, dtype=np.int64)

    def _advance_to(self, epoch: int) -> None:
        if epoch < self._epoch:
            raise ValueError(f"epoch {epoch} precedes the current epoch {self._epoch}")
        while self._epoch < epoch:
            self._epoch_state = self._rng.bit_generator.state
            self._perm = self._rng.permutation(self.num_examples)
            self._epoch += 1

    def indices(self, step: int) -> np.ndarray:
        """Example indices of global step ``step`` (shape ``(batch_size,)``)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        self._advance_to(epoch)
        return self._perm[k * self.batch_size : (k + 1) * self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable order state (generator state at the start of the current epoch)."""
        return {"epoch": self._epoch, "bit_generator": self._epoch_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the current epoch's permutation is drawn again."""
        epoch = int(state["epoch"])
        self._rng.bit_generator.state = state["bit_generator"]
        self._epoch_state = state["bit_generator"]
        self._epoch = max(epoch, 0) - 1
        if epoch >= 0:
            self._advance_to(epoch)
