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
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

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
from experiments.tasks.signal_fit import SignalFitTask

NAME = "image"
ACTIVATIONS = ("gaussian", "sine", "wavelet", "sinc", "relu", "relu_pe")
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


class ImageTask(SignalFitTask):
    """Fit ``model`` to ``image`` (H, W, 3) in [0, 1]; the examples are its pixels."""

    name = NAME

    def __init__(self, image: np.ndarray, model: Any, *, source: str = BUNDLED_IMAGE):
        self.image = np.asarray(image, np.float32)
        self.height, self.width = self.image.shape[:2]
        super().__init__(pixel_coords(self.height, self.width),
                         self.image.reshape(-1, self.image.shape[-1]), model)
        self.source = source

    @property
    def pixels(self) -> np.ndarray:
        """The image's pixels, (H * W, 3), in the order of ``coords``."""
        return self.values

    def fingerprint(self) -> dict[str, Any]:
        return {"image_sha256": image_fingerprint(self.image),
                "shape": list(self.image.shape)}

    def predict(self, params: Any) -> np.ndarray:
        """The full-resolution reconstruction (H, W, 3), evaluated in fixed-size chunks."""
        return self.predict_values(params).reshape(self.image.shape)

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
