"""Fit a neural field to an image: ``python -m experiments.image``.

Pixel coordinates in [-1, 1] -> RGB, MSE loss, shuffled mini-batches (one epoch = one pass),
PSNR = -10 log10(MSE). The reference setting: DIV2K lion downsampled to 256x256, batch 512
(128 steps an epoch), 5x256 field, 200 epochs. Examples::

    python -m experiments.image --activation wavelet --optimizer esgd --epochs 10
    python -m experiments.image --image lion.jpg --optimizer adam --out runs/lion-adam
    python -m experiments.image --out runs/lion-adam --resume --epochs 20   # extend a run
"""

from __future__ import annotations

import functools
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments.config import RunConfig, validate
from experiments.data import BUNDLED_IMAGE, image_fingerprint, load_image, pixel_coords
from experiments.errors import UsageError
from experiments.metrics import psnr
from experiments.plots import save_error_map, save_rgb

ACTIVATIONS = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe")
EVAL_CHUNK = 65536


def make_field(activation: str, depth: int | None = None, width: int | None = None,
               out_features: int = 3) -> Any:
    """``fields.make`` with the image head; bad names or sizes raise :class:`UsageError`."""
    import fields

    names = tuple(getattr(fields, "FIELD_NAMES", ACTIVATIONS))
    if activation not in names:
        raise UsageError(f"--activation {activation!r}: expected one of {', '.join(names)}")
    overrides: dict[str, Any] = {"out_features": out_features}
    if depth is not None:
        overrides["depth"] = depth
    if width is not None:
        overrides["width"] = width
    try:
        return fields.make(activation, **overrides)
    except ValueError as exc:
        raise UsageError(
            f"--activation {activation} --depth {depth} --width {width}: {exc}"
        ) from None


class ImageTask:
    """Fit ``model`` to ``image`` (H, W, 3) in [0, 1]; the examples are its pixels."""

    name = "image"
    metric_name = "psnr"

    def __init__(self, image: np.ndarray, model: Any, *, source: str = BUNDLED_IMAGE):
        self.image = np.asarray(image, np.float32)
        self.height, self.width = self.image.shape[:2]
        self.coords = pixel_coords(self.height, self.width)
        self.pixels = self.image.reshape(-1, self.image.shape[-1])
        self.model = model
        self.source = source
        self.num_examples = self.coords.shape[0]
        self._collections: dict[str, Any] = {}

    def fingerprint(self) -> dict[str, Any]:
        return {"image_sha256": image_fingerprint(self.image),
                "shape": list(self.image.shape)}

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {"coords": self.coords[indices], "pixels": self.pixels[indices]}

    def init_params(self, key: jax.Array) -> Any:
        variables = self.model.init(key, jnp.zeros((1, 2), jnp.float32))
        self._collections = {k: v for k, v in variables.items() if k != "params"}
        return variables["params"]

    def apply(self, params: Any, coords: jax.Array) -> jax.Array:
        """Field values at ``coords`` (N, 2)."""
        return self.model.apply({"params": params, **self._collections}, coords)

    def loss_fn(self, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
        return jnp.mean((self.apply(params, batch["coords"]) - batch["pixels"]) ** 2)

    def metric_from_loss(self, loss: float) -> float:
        return psnr(loss)

    @functools.cached_property
    def _predict_chunk(self) -> Any:
        return jax.jit(self.apply)

    def predict(self, params: Any) -> np.ndarray:
        """The full-resolution reconstruction (H, W, 3), evaluated in fixed-size chunks."""
        n = self.num_examples
        chunk = min(EVAL_CHUNK, n)
        out = []
        for start in range(0, n, chunk):
            coords = self.coords[start:start + chunk]
            valid = coords.shape[0]
            if valid < chunk:
                coords = np.concatenate([coords, np.zeros((chunk - valid, 2), np.float32)])
            out.append(np.asarray(self._predict_chunk(params, coords))[:valid])
        return np.concatenate(out).reshape(self.image.shape)

    def evaluate(self, params: Any) -> dict[str, float]:
        mse = float(np.mean((self.predict(params) - self.image) ** 2))
        return {"psnr": psnr(mse), "mse": mse}

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        prediction = self.predict(params)
        save_rgb(out_dir / "reconstruction.png", prediction)
        save_rgb(out_dir / "target.png", self.image)
        save_error_map(out_dir / "error.png", prediction, self.image)
        return ["reconstruction.png", "target.png", "error.png"]


def prepare(config: RunConfig) -> ImageTask:
    """Validate ``config`` and load its data; every bad input raises :class:`UsageError`."""
    validate(config)
    if config.task != "image":
        raise UsageError(f"--task {config.task!r}: expected 'image'")
    from experiments import optimizers

    optimizers.get(config.optimizer)
    model = make_field(config.activation, config.depth, config.width)
    image = load_image(config.image, config.size)
    task = ImageTask(image, model, source=config.image or BUNDLED_IMAGE)
    if config.batch_size > task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: larger than the {task.num_examples} pixels of "
            f"the {config.size}x{config.size} image; expected at most {task.num_examples}"
        )
    return task


def run(config: RunConfig, **kwargs: Any) -> dict[str, Any]:
    """Train an image field as ``config`` says; returns the summary (see :func:`train.train`)."""
    from experiments.train import train

    return train(prepare(config), config, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.image``; returns the exit code."""
    return cli.run_main(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.image_parser(prog="python -m experiments.image", description=__doc__)
    args = parser.parse_args(argv)
    config = cli.image_config(args)
    cli.init_distributed(config)
    summary = run(config)
    if summary:
        cli.print_summary(summary, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
