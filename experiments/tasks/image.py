"""Fit a neural field to an image: ``python -m experiments.image``.

Pixel coordinates in [-1, 1] -> RGB, MSE loss, shuffled mini-batches (one epoch = one pass),
PSNR = -10 log10(MSE). The reference setting: DIV2K lion downsampled to 256x256, batch 512
(128 steps an epoch), 5x256 field, 200 epochs. Examples::

    python -m experiments.image --activation wavelet --optimizer esgd --epochs 10
    python -m experiments.image --image lion.jpg --optimizer adam --out runs/lion-adam
    python -m experiments.image --out runs/lion-adam --resume --epochs 20   # extend a run
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from experiments.harness import cli, entry
from experiments.harness.config import RunConfig, check_positive
from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr
from experiments.harness.plots import save_error_map, save_rgb
from experiments.harness.train import SUMMARY_KEYS as HARNESS_SUMMARY_KEYS
from experiments.tasks.field_factory import make_field
from experiments.tasks.image_data import (
    BUNDLED_IMAGE,
    image_fingerprint,
    load_image,
    pixel_coords,
)

NAME = "image"
ACTIVATIONS = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe")
EVAL_CHUNK = 65536
DEFAULT_OUT = "runs/image"
#: Keys of an image run's ``summary.json``: the harness's and the final PSNR.
SUMMARY_KEYS = ("final_psnr", *HARNESS_SUMMARY_KEYS)


@dataclasses.dataclass(frozen=True)
class ImageConfig(RunConfig):
    """A run of the image task: the harness's settings plus the image and its size.

    Attributes:
      image: a PNG or JPEG file; ``None`` for scikit-image's bundled astronaut.
      size: side of the square the image is bilinearly resized to.
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("image", "size")

    task: str = NAME
    out: str = DEFAULT_OUT
    image: str | None = None
    size: int = 256

    def check(self) -> None:
        check_positive("size", self.size)


class ImageTask:
    """Fit ``model`` to ``image`` (H, W, 3) in [0, 1]; the examples are its pixels."""

    name = NAME
    metric_name = "psnr"
    metric_label = "PSNR"
    metric_unit = "dB"

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


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The image task's data flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--image", default=None,
                      help="PNG or JPEG to fit, or skimage:NAME for a photograph bundled with "
                           "scikit-image (astronaut, chelsea, coffee, rocket; default "
                           "skimage:astronaut)")
    data.add_argument("--size", type=int, default=256,
                      help="side of the square the image is bilinearly resized to (default 256)")


def parser(prog: str = "python -m experiments.image", description: str | None = None,
           ) -> cli.OneLineParser:
    """The parser of ``python -m experiments.image``."""
    return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT)


def make_config(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None,
) -> ImageConfig:
    """Resolve parsed flags into an :class:`ImageConfig` (learning rate, batch size, out dir);
    full-batch optimizers get all ``size * size`` pixels as the batch."""
    settings = cli.run_settings(args, activation=activation, optimizer=optimizer, out=out,
                                default_out=DEFAULT_OUT, num_examples=args.size * args.size)
    return ImageConfig(image=args.image, size=args.size, **settings)


def report_settings(config: ImageConfig) -> dict[str, Any]:
    """The lines of a comparison report that describe the data."""
    return {
        "image": config.image or "scikit-image astronaut (bundled)",
        "size": f"{config.size}x{config.size}",
    }


#: What a comparison report says about how the final PSNR is measured.
REPORT_NOTES = ("Final PSNR is that of the full-resolution reconstruction at the end of "
                "training.",)


def prepare(config: ImageConfig) -> ImageTask:
    """Validate ``config`` and load its data; every bad input raises :class:`UsageError`."""
    entry.check_config(config, NAME)
    model = make_field(config.activation, config.depth, config.width)
    image = load_image(config.image, config.size)
    task = ImageTask(image, model, source=config.image or BUNDLED_IMAGE)
    if config.batch_size > task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: larger than the {task.num_examples} pixels of "
            f"the {config.size}x{config.size} image; expected at most {task.num_examples}"
        )
    return task


def run(config: ImageConfig, **kwargs: Any) -> dict[str, Any]:
    """Train an image field as ``config`` says; returns the summary (see :func:`train.train`)."""
    return entry.run_task(prepare, config, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.image``; returns the exit code."""
    return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config, run=run)


if __name__ == "__main__":
    sys.exit(main())
