"""Fit a neural field to a video: ``python -m experiments.video``.

Coordinates ``(t, y, x)`` in [-1, 1]^3 -> RGB in [0, 1] (the companion paper's video task, as
SIREN fits ``bikes.mp4``), MSE loss, shuffled mini-batches of pixels drawn from every frame (one
epoch = one pass over all the clip's pixels), PSNR = -10 log10(MSE). The task's metric
(``final_psnr``) is the PSNR of the whole reconstructed clip (the MSE over all its pixels);
``min_frame_psnr`` and ``mean_frame_psnr`` (``final_eval_*`` in ``summary.json``) summarise
the per-frame PSNRs, which ``per_frame_psnr.json`` lists.

Data (:mod:`experiments.tasks.video_data`): ``--video PATH`` (any video FFmpeg decodes; with
none, a made moving pattern), ``--frames`` (default 16) from ``--start-frame`` (default 0) taking
every ``--frame-stride``-th (default 1), resized to ``--size`` (``N`` for N x N or ``HxW``;
default 64). The defaults, 16 frames of 64x64 = 65,536 pixels, are the image task's reference
256x256 in pixels: 128 steps an epoch at batch 512, trainable on a 2-core CPU. Outputs:
``strip.png`` (a few frames, target above reconstruction), ``reconstruction.gif``,
``target.gif`` and ``per_frame_psnr.json``. ``../shared/data/video/bikes.mp4`` (SIREN's clip)
is 250 frames of 272x640 at 25 fps whose shot changes at frames 30, 76, 135, 187 and 242: the
default 16 frames are the first shot's. Examples::

    python -m experiments.video --activation sine --optimizer adam --epochs 5
    python -m experiments.video --video ../shared/data/video/bikes.mp4 --size 48x112 \\
        --activation sine --optimizer adam --epochs 5
    python -m experiments.video --out runs/video/sine-adam --resume --epochs 20  # extend a run
    python -m experiments.compare --task video --activations sine --optimizers esgd adam
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from experiments.harness import cli, entry
from experiments.harness.config import RunConfig
from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr
from experiments.harness.plots import save_rgb
from experiments.harness.train import SUMMARY_KEYS as HARNESS_SUMMARY_KEYS
from experiments.tasks.field_factory import make_field
from experiments.tasks.signal_fit import SignalFitTask
from experiments.tasks.video_data import (
    MADE_VIDEO,
    check_selection,
    format_size,
    load_video,
    parse_size,
    video_coords,
    video_fingerprint,
)

NAME = "video"
DEFAULT_OUT = "runs/video"
DEFAULT_FRAMES = 16
DEFAULT_SIZE = 64
#: Frames the strip image shows (evenly spaced over the clip, first and last included).
STRIP_FRAMES = 4
#: Keys of a video run's ``summary.json``: the harness's, the clip's PSNR and the per-frame ones.
SUMMARY_KEYS = ("final_psnr", "final_eval_min_frame_psnr", "final_eval_mean_frame_psnr",
                *HARNESS_SUMMARY_KEYS)


@dataclasses.dataclass(frozen=True)
class VideoConfig(RunConfig):
    """A run of the video task: the harness's settings plus the clip.

    Attributes:
      video: a video file; ``None`` for the made moving pattern.
      frames: frames in the clip.
      frame_stride: take every ``frame_stride``-th source frame.
      start_frame: the first source frame (0-based).
      size: frame size as ``'HxW'`` (:func:`make_config` writes ``--size 64`` as ``'64x64'``).
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("video", "frames", "frame_stride", "start_frame",
                                            "size")

    task: str = NAME
    out: str = DEFAULT_OUT
    video: str | None = None
    frames: int = DEFAULT_FRAMES
    frame_stride: int = 1
    start_frame: int = 0
    size: str = format_size(DEFAULT_SIZE, DEFAULT_SIZE)

    def frame_size(self) -> tuple[int, int]:
        """``(height, width)`` of the clip's frames."""
        return parse_size(self.size)

    def check(self) -> None:
        check_selection(self.frames, self.frame_stride, self.start_frame)
        self.frame_size()


def per_frame_psnr(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PSNR of each frame of (T, H, W, C) ``prediction`` against ``target``: (T,) float64."""
    err = (np.asarray(prediction, np.float64) - np.asarray(target, np.float64)) ** 2
    return np.array([psnr(m) for m in err.reshape(len(err), -1).mean(axis=1)])


def strip_indices(frames: int, count: int = STRIP_FRAMES) -> list[int]:
    """Up to ``count`` frame indices evenly spaced over ``frames``, first and last included."""
    return sorted({round(i) for i in np.linspace(0, frames - 1, min(count, frames))})


def make_strip(target: np.ndarray, prediction: np.ndarray, count: int = STRIP_FRAMES,
               gap: int = 2) -> np.ndarray:
    """A two-row (H, W, 3) image: frames of ``target`` above the same frames of ``prediction``,
    side by side with ``gap`` white pixels between them (see :func:`strip_indices`)."""
    picks = strip_indices(len(target), count)
    _, h, w, c = target.shape
    out = np.ones((2 * h + gap, len(picks) * (w + gap) - gap, c), np.float32)
    for col, i in enumerate(picks):
        x = col * (w + gap)
        out[:h, x:x + w] = target[i]
        out[h + gap:, x:x + w] = prediction[i]
    return out


def save_gif(path: pathlib.Path, frames: np.ndarray, fps: float) -> None:
    """Write (T, H, W, 3) frames in [0, 1] (clipped) as a looping GIF at ``fps``."""
    import imageio.v3 as iio

    pixels = np.clip(np.nan_to_num(np.asarray(frames, np.float32)), 0.0, 1.0)
    # GIF delays are in hundredths of a second: at least 2 (browsers slow down shorter ones).
    duration = 10 * max(2, round(100 / fps)) if fps > 0 else 100
    iio.imwrite(path, np.round(pixels * 255).astype(np.uint8), plugin="pillow",
                duration=duration, loop=0)


class VideoTask(SignalFitTask):
    """Fit ``model`` to ``video`` (T, H, W, 3) in [0, 1]; the examples are its pixels.

    Args:
      video: the clip.
      model: the Flax field, 3 inputs ``(t, y, x)``, 3 outputs.
      source: what the clip is (a path, or the made pattern), for reports.
      indices: source frame number of each frame (default ``0..T-1``).
      fps: frame rate of the GIFs written (default 10).
    """

    name = NAME

    def __init__(self, video: np.ndarray, model: Any, *, source: str = MADE_VIDEO,
                 indices: Sequence[int] | None = None, fps: float = 10.0):
        self.video = np.asarray(video, np.float32)
        self.frames, self.height, self.width = self.video.shape[:3]
        super().__init__(video_coords(self.frames, self.height, self.width),
                         self.video.reshape(-1, self.video.shape[-1]), model)
        self.source = source
        self.indices = list(range(self.frames)) if indices is None else [int(i) for i in indices]
        self.fps = fps

    @property
    def pixels(self) -> np.ndarray:
        """The clip's pixels, (T * H * W, 3), in the order of ``coords``."""
        return self.values

    def fingerprint(self) -> dict[str, Any]:
        return {"video_sha256": video_fingerprint(self.video), "shape": list(self.video.shape)}

    def predict(self, params: Any) -> np.ndarray:
        """The reconstructed clip (T, H, W, 3), evaluated in fixed-size chunks."""
        return self.predict_values(params).reshape(self.video.shape)

    def evaluate(self, params: Any) -> dict[str, float]:
        """The clip's PSNR (``psnr``, from the MSE over all pixels: not the mean of the frames'
        PSNRs), its ``mse``, and the lowest and mean per-frame PSNR."""
        prediction = self.predict(params)
        return self._scores(prediction)[0]

    def _scores(self, prediction: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        mse = float(np.mean((prediction.astype(np.float64) - self.video) ** 2))
        frames = per_frame_psnr(prediction, self.video)
        return {"psnr": psnr(mse), "mse": mse, "min_frame_psnr": float(np.min(frames)),
                "mean_frame_psnr": float(np.mean(frames))}, frames

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        prediction = self.predict(params)
        scores, frames = self._scores(prediction)
        save_rgb(out_dir / "strip.png", make_strip(self.video, prediction))
        save_gif(out_dir / "reconstruction.gif", prediction, self.fps)
        save_gif(out_dir / "target.gif", self.video, self.fps)
        table = {
            "source_frames": self.indices,
            "psnr": [_json_float(v) for v in frames],
            "clip_psnr": _json_float(scores["psnr"]),
            "strip_frames": [self.indices[i] for i in strip_indices(self.frames)],
        }
        (out_dir / "per_frame_psnr.json").write_text(json.dumps(table, indent=1) + "\n")
        return ["strip.png", "reconstruction.gif", "target.gif", "per_frame_psnr.json"]


def _json_float(value: float) -> float | str:
    """``value``, or its name for a non-finite one (``'inf'`` for an exact frame)."""
    return float(value) if math.isfinite(value) else str(value)


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The video task's data flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--video", default=None,
                      help="video file to fit (anything FFmpeg decodes: MP4, WebM, AVI, GIF, "
                           "...; default: a made moving pattern, no file needed)")
    data.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                      help="frames in the clip (default %(default)s)")
    data.add_argument("--frame-stride", type=int, default=1,
                      help="take every k-th source frame (default %(default)s: every frame)")
    data.add_argument("--start-frame", type=int, default=0,
                      help="first source frame, 0-based (default %(default)s)")
    data.add_argument("--size", default=str(DEFAULT_SIZE),
                      help="frame size: N for N x N or HxW (rows x columns), resized "
                           "bilinearly, never larger than the source (default %(default)s; "
                           "bikes.mp4 is 272x640, e.g. 48x112 keeps its shape)")


def parser(prog: str = "python -m experiments.video", description: str | None = None,
           ) -> cli.OneLineParser:
    """The parser of ``python -m experiments.video``."""
    return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT)


def make_config(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None,
) -> VideoConfig:
    """Resolve parsed flags into a :class:`VideoConfig` (learning rate, batch size, out dir);
    full-batch optimizers get all ``frames * height * width`` pixels as the batch. A malformed
    ``--size``, ``--frames``, ``--frame-stride`` or ``--start-frame`` raises
    :class:`UsageError`."""
    check_selection(args.frames, args.frame_stride, args.start_frame)
    height, width = parse_size(args.size)
    settings = cli.run_settings(args, activation=activation, optimizer=optimizer, out=out,
                                default_out=DEFAULT_OUT,
                                num_examples=args.frames * height * width)
    return VideoConfig(video=args.video, frames=args.frames, frame_stride=args.frame_stride,
                       start_frame=args.start_frame, size=format_size(height, width),
                       **settings)


def report_settings(config: VideoConfig) -> dict[str, Any]:
    """The lines of a comparison report that describe the data."""
    return {
        "video": config.video or MADE_VIDEO,
        "frames": (f"{config.frames}, from frame {config.start_frame}, every "
                   f"{config.frame_stride}"),
        "size": config.size,
    }


#: What a comparison report says about how the final PSNR is measured.
REPORT_NOTES = ("Final PSNR is that of the whole reconstructed clip (the MSE over all its "
                "pixels) at the end of training; each run's per_frame_psnr.json lists the "
                "frames' own PSNRs.",)


def prepare(config: VideoConfig) -> VideoTask:
    """Validate ``config`` and load its clip; every bad input raises :class:`UsageError`."""
    entry.check_config(config, NAME)
    model = make_field(config.activation, config.depth, config.width)
    clip = load_video(config.video, config.frames, config.frame_size(),
                      stride=config.frame_stride, start=config.start_frame)
    fps = clip.fps / config.frame_stride if clip.fps > 0 else 10.0
    task = VideoTask(clip.frames, model, source=config.video or MADE_VIDEO,
                     indices=clip.indices, fps=fps)
    if config.batch_size > task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: larger than the {task.num_examples} pixels of "
            f"the {config.frames} frames of {config.size}; expected at most {task.num_examples}"
        )
    return task


def run(config: VideoConfig, **kwargs: Any) -> dict[str, Any]:
    """Train a video field as ``config`` says; returns the summary (see :func:`train.train`)."""
    return entry.run_task(prepare, config, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.video``; returns the exit code."""
    return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config, run=run)


if __name__ == "__main__":
    sys.exit(main())
