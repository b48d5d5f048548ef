"""Image data: loading, pixel coordinates and shuffled mini-batches with a checkpointable order."""

from __future__ import annotations

import hashlib
import pathlib
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from experiments.errors import UsageError

BUNDLED_IMAGE = "skimage:astronaut"


def load_image(path: str | None, size: int) -> np.ndarray:
    """Load an RGB image as float32 in [0, 1], resized bilinearly to ``size x size``.

    Args:
      path: a PNG or JPEG file, or ``None`` for scikit-image's bundled astronaut (512x512).
      size: side of the square output, as the reference resizes DIV2K to 256x256.

    Raises:
      UsageError: the file is missing, unreadable, or not an image.
    """
    if path is None or path == BUNDLED_IMAGE:
        from skimage import data as skdata

        image = Image.fromarray(skdata.astronaut())
    else:
        file = pathlib.Path(path)
        if not file.is_file():
            raise UsageError(f"--image {path}: no such file; expected a PNG or JPEG image")
        try:
            with Image.open(file) as opened:
                opened.load()
                image = opened.convert("RGB")
        except UnidentifiedImageError:
            raise UsageError(f"--image {path}: not an image; expected a PNG or JPEG file") from None
        except OSError as exc:
            raise UsageError(
                f"--image {path}: unreadable ({exc}); expected a PNG or JPEG image"
            ) from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def image_fingerprint(image: np.ndarray) -> str:
    """A short hash of the pixel values, to tell runs on different images apart."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()[:16]


def pixel_coords(height: int, width: int) -> np.ndarray:
    """Pixel grid coordinates in [-1, 1], shape ``(height * width, 2)``, row-major.

    Column 0 is the row (y) coordinate and column 1 the column (x) coordinate; the corners are
    exactly -1 and 1, as ``torch.linspace(-1, 1, n)`` grids in the reference code.
    """
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)
    return grid.reshape(-1, 2)


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
