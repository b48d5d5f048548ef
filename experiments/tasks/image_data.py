"""Image data: loading (a file or scikit-image's astronaut), fingerprints, pixel coordinates."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from experiments.harness.errors import UsageError

BUNDLED_IMAGE = "skimage:astronaut"
#: RGB photographs shipped inside scikit-image (no download), selectable as ``skimage:NAME``:
#: images that are not in ``../shared/data`` for checking a claim beyond the paper's data.
BUNDLED_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def load_image(path: str | None, size: int) -> np.ndarray:
    """Load an RGB image as float32 in [0, 1], resized bilinearly to ``size x size``.

    Args:
      path: a PNG or JPEG file; ``skimage:NAME`` for one of scikit-image's bundled photographs
        (:data:`BUNDLED_IMAGES`); ``None`` for the astronaut (512x512).
      size: side of the square output, as the reference resizes DIV2K to 256x256 (other aspect
        ratios are resized to the square too).

    Raises:
      UsageError: the file is missing, unreadable, or not an image, or the bundled name unknown.
    """
    if path is None or path.startswith("skimage:"):
        from skimage import data as skdata

        name = (path or BUNDLED_IMAGE).removeprefix("skimage:")
        if name not in BUNDLED_IMAGES:
            raise UsageError(f"--image {path}: unknown bundled image; expected skimage:NAME with "
                             f"NAME one of {', '.join(BUNDLED_IMAGES)}")
        image = Image.fromarray(getattr(skdata, name)())
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
