"""Video data: decoding a clip (imageio's FFmpeg plugin), the made moving pattern, coordinates.

Conventions:

- **Frames.** A clip is ``--frames`` frames of the source, from ``--start-frame`` (0-based),
  taking every ``--frame-stride``-th one: source frames ``start, start + stride, ...``. The source
  must hold all of them; nothing is repeated or padded.
- **Size.** ``--size N`` is an N x N frame, ``--size HxW`` an H-row, W-column one. Every frame is
  resized bilinearly with PIL (antialiased when downsampling, as the image task's
  :func:`~experiments.tasks.image_data.load_image` does), to the square as well when the source's
  aspect ratio differs (``bikes.mp4`` is 272x640: ``--size 48x112`` keeps its shape). Frames are
  only ever made smaller: a size above the source's in either dimension is refused.
- **Values.** RGB as float32 in [0, 1] (8-bit frames / 255), shape ``(T, H, W, 3)``.
- **Coordinates.** ``(t, y, x)`` in [-1, 1]^3 on the grid of :func:`video_coords` (frame, row,
  column; the corners exactly -1 and 1 on each axis, as :func:`~experiments.tasks.image_data.
  pixel_coords` does for images). It takes ``(T, H, W)`` alone, so a block of frames fitted on
  its own (a per-block split like the companion paper's image patches) gets its local grid from
  the same function.
- **The made video.** With no file, :func:`made_video` draws three coloured Gaussian blobs
  circling over a drifting sinusoidal grating, evaluated exactly at any size (so no source size
  limits ``--size``): the first run and the tests need no data. It is :data:`MADE_FRAMES` frames
  long, at a nominal :data:`MADE_FPS` frames a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import re
from typing import NamedTuple

import numpy as np
from PIL import Image

from experiments.harness.errors import UsageError

MADE_VIDEO = "made moving pattern (coloured blobs over a drifting grating)"
#: Length of the made video in frames, and its nominal frame rate.
MADE_FRAMES = 256
MADE_FPS = 25.0
#: Frames per revolution of the made video's blobs and per period of its grating's drift.
MADE_PERIOD = 64.0

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$")


@dataclasses.dataclass(frozen=True)
class Clip:
    """Decoded frames and where they came from.

    Attributes:
      frames: (T, H, W, 3) float32 in [0, 1].
      indices: the source frame number of each frame.
      fps: the source's frame rate (frames a second; of the source, not of the strided clip).
      source_size: ``(height, width)`` of the source's frames; ``None`` for the made video.
    """

    frames: np.ndarray
    indices: tuple[int, ...]
    fps: float
    source_size: tuple[int, int] | None


def parse_size(text: str | int) -> tuple[int, int]:
    """``'64'`` -> (64, 64), ``'48x112'`` -> (48, 112): the ``--size`` flag as (height, width).

    Raises:
      UsageError: not ``N`` or ``HxW`` with positive integers; the message names the value.
    """
    match = _SIZE.match(str(text))
    if match is None:
        raise UsageError(f"--size {text}: expected N (an N x N frame) or HxW (H rows, W "
                         "columns), positive integers, e.g. 64 or 48x112")
    height = int(match.group(1))
    width = int(match.group(2)) if match.group(2) is not None else height
    if height < 1 or width < 1:
        raise UsageError(f"--size {text}: expected positive integers, e.g. 64 or 48x112")
    return height, width


def format_size(height: int, width: int) -> str:
    """``(48, 112)`` -> ``'48x112'`` (the form runs store, so ``64`` and ``64x64`` agree)."""
    return f"{height}x{width}"


def frame_indices(frames: int, stride: int = 1, start: int = 0) -> tuple[int, ...]:
    """The source frame numbers of a clip: ``start, start + stride, ...``, ``frames`` of them."""
    return tuple(range(start, start + frames * stride, stride))


def _selection(frames: int, stride: int, start: int) -> str:
    return f"--frames {frames} --frame-stride {stride} --start-frame {start}"


def _too_short(source: str, available: int, frames: int, stride: int, start: int) -> UsageError:
    need = start + (frames - 1) * stride + 1
    return UsageError(
        f"{_selection(frames, stride, start)}: needs {need} frames of {source}, which has "
        f"{available}; expected --start-frame + (--frames - 1) x --frame-stride below {available}"
    )


def load_video(path: str | None, frames: int, size: tuple[int, int], *, stride: int = 1,
               start: int = 0) -> Clip:
    """Load ``frames`` frames of a video (or the made one) resized to ``size``.

    Args:
      path: a video file FFmpeg decodes (MP4, WebM, AVI, GIF, ...); ``None`` for
        :func:`made_video`.
      frames: how many frames.
      size: ``(height, width)`` of the output frames.
      stride: take every ``stride``-th source frame.
      start: the first source frame (0-based).

    Raises:
      UsageError: a bad count, stride or start; a missing file, one that is not a video or has
        no frames, a clip longer than the video, or a size larger than its frames. The message
        names the flag, the value and what was expected.
    """
    check_selection(frames, stride, start)
    height, width = size
    indices = frame_indices(frames, stride, start)
    if path is None:
        if indices[-1] >= MADE_FRAMES:
            raise _too_short("the made video", MADE_FRAMES, frames, stride, start)
        return Clip(made_video(indices, height, width), indices, MADE_FPS, None)
    decoded = read_frames(path, indices, size)
    if decoded.count == 0:
        raise UsageError(f"--video {path}: has no frames; expected a video with at least "
                         f"{indices[-1] + 1} frames")
    if len(decoded.frames) < frames:
        raise _too_short(path, decoded.count, frames, stride, start)
    return Clip(resize_frames(decoded.frames, height, width), indices, decoded.fps,
                decoded.size)


def check_selection(frames: int, stride: int, start: int) -> None:
    """:class:`UsageError` naming the flag unless ``frames`` and ``stride`` are positive and
    ``start`` is 0 or more."""
    if not frames > 0:
        raise UsageError(f"--frames {frames}: expected a positive number of frames")
    if not stride > 0:
        raise UsageError(f"--frame-stride {stride}: expected a positive integer (1: every "
                         "frame, 2: every other frame, ...)")
    if not start >= 0:
        raise UsageError(f"--start-frame {start}: expected 0 (the first frame) or more")


class Decoded(NamedTuple):
    """What :func:`read_frames` decoded.

    Attributes:
      frames: (n, H, W, 3) uint8 at the source's size: the frames asked for that the source
        has (all of them unless it is too short).
      fps: the source's frame rate.
      size: ``(height, width)`` of the source's frames.
      count: frames decoded: the last index asked for + 1, or the source's length if shorter.
    """

    frames: np.ndarray
    fps: float
    size: tuple[int, int]
    count: int


def read_frames(path: str, indices: tuple[int, ...], size: tuple[int, int] | None = None,
                ) -> Decoded:
    """Decode the source frames at ``indices`` (increasing) of the video at ``path``.

    Decoding stops after the last frame asked for. ``size`` (height, width), when given, is
    checked against the source's frame size before any frame is decoded.

    Raises:
      UsageError: a missing file, one FFmpeg cannot read, a ``size`` larger than its frames
        (a source shorter than ``indices`` is not an error here: see ``count``).
    """
    import imageio.v2 as imageio

    file = pathlib.Path(path)
    if not file.is_file():
        what = "a directory" if file.is_dir() else "no such file"
        raise UsageError(f"--video {path}: {what}; expected a video file (MP4, WebM, ...)")
    try:
        reader = imageio.get_reader(file, format="FFMPEG")
    except (OSError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"--video {path}: not a video FFmpeg can read, or one without video frames "
            f"({_first_line(exc)}); expected a video file (MP4, WebM, ...)"
        ) from None
    wanted = set(indices)
    out: list[np.ndarray] = []
    count = 0
    with reader:
        meta = reader.get_meta_data()
        src_w, src_h = (int(v) for v in meta["size"])
        fps = float(meta.get("fps") or 0.0)
        if size is not None and (size[0] > src_h or size[1] > src_w):
            raise UsageError(
                f"--size {format_size(*size)}: larger than the {src_h}x{src_w} frames of "
                f"{path}; expected at most {src_h}x{src_w} (frames are only made smaller)"
            )
        try:
            for frame in reader:
                if count in wanted:
                    out.append(np.asarray(frame, np.uint8)[..., :3])
                count += 1
                if count > indices[-1]:
                    break
        except (OSError, RuntimeError, ValueError) as exc:
            raise UsageError(f"--video {path}: unreadable after {count} frames "
                             f"({_first_line(exc)}); expected a video FFmpeg decodes") from None
    stacked = np.stack(out) if out else np.zeros((0, src_h, src_w, 3), np.uint8)
    return Decoded(stacked, fps, (src_h, src_w), count)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H0, W0, 3) uint8 -> (T, height, width, 3) float32 in [0, 1], each frame resized
    bilinearly with PIL (the image task's resize)."""
    out = np.empty((len(frames), height, width, 3), np.float32)
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.ascontiguousarray(frame, np.uint8))
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        out[i] = np.asarray(image, np.float32) / 255.0
    return out


def made_video(indices: tuple[int, ...] | np.ndarray, height: int, width: int) -> np.ndarray:
    """The made video at source frames ``indices``: (T, height, width, 3) float32 in [0, 1].

    A grey sinusoidal grating drifting by one period every :data:`MADE_PERIOD` frames, under
    three Gaussian blobs (red, green, blue; standard deviation 0.2) that circle the centre on
    Lissajous paths, each a third of a turn apart. Drawn from the formula on the
    :func:`video_coords` grid, so any size is exact.
    """
    t = np.asarray(indices, np.float64)[:, None, None]
    y = np.linspace(-1.0, 1.0, height)[None, :, None]
    x = np.linspace(-1.0, 1.0, width)[None, None, :]
    phase = 2 * np.pi * t / MADE_PERIOD
    grating = 0.45 + 0.2 * np.sin(2 * np.pi * (1.5 * x + 1.0 * y) - phase)
    video = np.broadcast_to(grating[..., None], (len(t), height, width, 3)).copy()
    colours = ((0.95, 0.15, 0.1), (0.1, 0.85, 0.25), (0.15, 0.3, 0.95))
    for k, colour in enumerate(colours):
        angle = phase + 2 * np.pi * k / 3
        cy, cx = 0.5 * np.sin(angle), 0.55 * np.cos(2 * angle)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 0.2 ** 2))[..., None]
        video = video * (1 - blob) + np.asarray(colour) * blob
    return np.clip(video, 0.0, 1.0).astype(np.float32)


def video_coords(frames: int, height: int, width: int) -> np.ndarray:
    """Grid coordinates ``(t, y, x)`` in [-1, 1], shape ``(frames * height * width, 3)``.

    Ordered as a C-order ``(T, H, W)`` array flattens (frame-major, then row-major), so
    ``video.reshape(-1, 3)`` lines up with it. Each axis is ``linspace(-1, 1, n)``: the corners
    are exactly -1 and 1 (a single frame sits at t = -1, as a 1-pixel axis does in
    :func:`~experiments.tasks.image_data.pixel_coords`).
    """
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in (frames, height, width)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def video_fingerprint(frames: np.ndarray) -> str:
    """A short hash of the frames' values, to tell runs on different clips apart."""
    data = np.ascontiguousarray(frames, dtype=np.float32).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]
