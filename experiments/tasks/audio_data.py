"""Audio data: a clip read with soundfile (WAV, FLAC, OGG, ...) or the generated chirp, mixed to
mono, optionally cut and resampled, peak-normalised to [-1, 1]; time coordinates; 16-bit WAVs.

The field's target is always peak-normalised: the samples are divided by their largest absolute
value, so the loudest sample is exactly +-1 and every amplitude lies in [-1, 1] (as SIREN's
audio experiment does). A multichannel file is mixed to mono by averaging its channels (SIREN
does the same for stereo); :attr:`Clip.channels` keeps the file's count so the task can say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib

import numpy as np

from experiments.harness.errors import UsageError

#: What runs on the generated chirp call their data (``--audio`` not given).
GENERATED = "generated chirp"
#: Sample rate (Hz) and length (s) of the generated chirp unless ``--sample-rate`` and
#: ``--duration`` say otherwise: 16,000 samples, small enough for quick CPU runs.
DEFAULT_RATE = 8000
DEFAULT_DURATION = 2.0
#: The chirp's fundamental sweeps exponentially from ``CHIRP_START`` to ``CHIRP_END`` Hz; each
#: ``(harmonic, amplitude)`` pair adds that multiple of it.
CHIRP_START = 110.0
CHIRP_END = 440.0
CHIRP_HARMONICS = ((1, 1.0), (2, 0.5), (3, 0.25))
#: The chirp's highest frequency (Hz): its sample rate must be more than twice this.
CHIRP_TOP = CHIRP_END * max(h for h, _ in CHIRP_HARMONICS)
#: Fewest samples a clip may have (a field through one point is no fit).
MIN_SAMPLES = 2
FORMATS = "a WAV, FLAC or OGG audio file"


@dataclasses.dataclass(frozen=True)
class Clip:
    """A mono clip ready to fit.

    Attributes:
      samples: ``(N,)`` float32 amplitudes divided by ``peak``: in [-1, 1], the loudest exactly
        +-1.
      sample_rate: samples per second of ``samples`` (after any resampling).
      source: the file's path, or :data:`GENERATED`.
      channels: channels of the file before mixing to mono (1 for the chirp).
      source_rate: the file's own sample rate (the chirp's: ``sample_rate``).
      peak: the largest absolute amplitude before normalising (soundfile's scale, where PCM
        full scale is 1).
    """

    samples: np.ndarray
    sample_rate: int
    source: str
    channels: int = 1
    source_rate: int = 0
    peak: float = 1.0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sample_rate


def _flag(path: str) -> str:
    return f"--audio {path}"


def audio_info(path: str) -> tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` from the header of an audio file.

    Raises:
      UsageError: the file is missing or soundfile cannot read it as audio; the message names
        the path and what was expected.
    """
    import soundfile as sf

    file = pathlib.Path(path)
    if not file.exists():
        raise UsageError(f"{_flag(path)}: no such file; expected {FORMATS}")
    if not file.is_file():
        raise UsageError(f"{_flag(path)}: not a file; expected {FORMATS}")
    try:
        info = sf.info(str(file))
    except (sf.SoundFileError, RuntimeError) as exc:
        raise UsageError(f"{_flag(path)}: not an audio file soundfile can read ({exc}); "
                         f"expected {FORMATS}") from None
    return int(info.frames), int(info.samplerate), int(info.channels)


def _check_duration(duration: float | None) -> None:
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UsageError(f"--duration {duration}: expected a positive number of seconds")


def _check_rate(sample_rate: int | None) -> None:
    if sample_rate is not None and not sample_rate > 0:
        raise UsageError(f"--sample-rate {sample_rate}: expected a positive number of Hz")


def _resample_ratio(rate: int, source_rate: int) -> tuple[int, int]:
    g = math.gcd(rate, source_rate)
    return rate // g, source_rate // g


def _frames_kept(path: str, frames: int, source_rate: int, duration: float | None) -> int:
    """Frames of the file the clip uses: all, or the first ``duration`` seconds."""
    if duration is None:
        return frames
    kept = round(duration * source_rate)
    if kept > frames:
        raise UsageError(f"--duration {duration:g}: longer than the {frames / source_rate:.3f} s "
                         f"of {path}; expected at most {frames / source_rate:.3f}")
    return kept


def _check_count(count: int, what: str) -> None:
    if count < MIN_SAMPLES:
        plural = "" if count == 1 else "s"
        raise UsageError(f"{what}: {count} sample{plural}; expected at least {MIN_SAMPLES}")


def num_samples(path: str | None, sample_rate: int | None = None,
                duration: float | None = None) -> int:
    """Samples of the clip :func:`load_audio` returns for the same arguments, from the file's
    header only (a full-batch optimizer's batch size is known before the data is loaded).

    Raises:
      UsageError: as :func:`load_audio` for the same arguments (a bad file, rate or duration).
    """
    _check_rate(sample_rate)
    _check_duration(duration)
    if path is None:
        rate = sample_rate or DEFAULT_RATE
        count = round((duration or DEFAULT_DURATION) * rate)
        _check_count(count, f"--duration {duration or DEFAULT_DURATION:g} at --sample-rate {rate}")
        return count
    frames, source_rate, _ = audio_info(path)
    if frames == 0:
        raise UsageError(f"{_flag(path)}: holds no samples; expected a non-empty audio file")
    kept = _frames_kept(path, frames, source_rate, duration)
    count = kept
    if sample_rate is not None and sample_rate != source_rate:
        up, down = _resample_ratio(sample_rate, source_rate)
        count = -(-kept * up // down)  # scipy's resample_poly: ceil(n * up / down)
    _check_count(count, _what(path, sample_rate, duration))
    return count


def _what(path: str, sample_rate: int | None, duration: float | None) -> str:
    flags = [_flag(path)]
    if duration is not None:
        flags.append(f"--duration {duration:g}")
    if sample_rate is not None:
        flags.append(f"--sample-rate {sample_rate}")
    return " ".join(flags)


def chirp(sample_rate: int = DEFAULT_RATE, duration: float = DEFAULT_DURATION) -> np.ndarray:
    """The generated test signal: an exponential chirp with harmonics under a slow envelope.

    The fundamental sweeps from :data:`CHIRP_START` to :data:`CHIRP_END` Hz; harmonics 2 and 3
    (amplitudes 1/2 and 1/4) reach :data:`CHIRP_TOP` Hz; a 1.5 Hz amplitude modulation between
    0.3 and 1 gives it loud and quiet parts, as speech has. Not yet normalised.

    Args:
      sample_rate: samples per second, more than ``2 * CHIRP_TOP`` (no aliasing).
      duration: seconds.

    Returns:
      ``(round(duration * sample_rate),)`` float64 samples.
    """
    n = round(duration * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    ratio = CHIRP_END / CHIRP_START
    # phase of f(t) = f0 * ratio ** (t / T): 2 pi f0 T / ln(ratio) * (ratio ** (t / T) - 1)
    phase = 2 * np.pi * CHIRP_START * duration / np.log(ratio) * (ratio ** (t / duration) - 1)
    tone = sum(a * np.sin(h * phase) for h, a in CHIRP_HARMONICS)
    envelope = 0.65 + 0.35 * np.sin(2 * np.pi * 1.5 * t)
    return envelope * tone


def _normalise(samples: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    if not np.all(np.isfinite(samples)):
        raise UsageError(f"{what}: holds non-finite samples (NaN or inf); expected finite "
                         "amplitudes")
    peak = float(np.max(np.abs(samples)))
    if peak == 0:
        raise UsageError(f"{what}: is silent (every sample is 0); expected a signal to fit")
    return (samples / peak).astype(np.float32), peak


def load_audio(path: str | None, sample_rate: int | None = None,
               duration: float | None = None) -> Clip:
    """Load a clip (or make the chirp), mono, peak-normalised to [-1, 1].

    Args:
      path: an audio file soundfile reads (WAV, FLAC, OGG, ...); ``None`` for :func:`chirp`.
      sample_rate: resample to this many Hz (scipy's polyphase ``resample_poly``, which filters
        out what the new rate cannot hold); ``None``: the file's own rate, or
        :data:`DEFAULT_RATE` for the chirp.
      duration: keep the first ``duration`` seconds; ``None``: the whole file, or
        :data:`DEFAULT_DURATION` for the chirp.

    Returns:
      The :class:`Clip`; several channels are averaged into one (``channels`` keeps the count).

    Raises:
      UsageError: a missing file, one that is not audio, an empty or silent one, non-finite
        samples, a ``duration`` longer than the file, fewer than :data:`MIN_SAMPLES` samples,
        or a chirp rate that would alias; the message names the value.
    """
    count = num_samples(path, sample_rate, duration)  # every check the header allows
    if path is None:
        rate = sample_rate or DEFAULT_RATE
        if rate <= 2 * CHIRP_TOP:
            raise UsageError(f"--sample-rate {rate}: the generated chirp reaches {CHIRP_TOP:g} "
                             f"Hz; expected more than {2 * CHIRP_TOP:g} Hz (or an --audio file)")
        samples, peak = _normalise(chirp(rate, duration or DEFAULT_DURATION), GENERATED)
        return Clip(samples, rate, GENERATED, channels=1, source_rate=rate, peak=peak)

    import soundfile as sf

    frames, source_rate, channels = audio_info(path)
    kept = _frames_kept(path, frames, source_rate, duration)
    try:
        data, _ = sf.read(path, frames=kept, dtype="float64", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise UsageError(f"{_flag(path)}: unreadable ({exc}); expected {FORMATS}") from None
    if data.shape[0] == 0:
        raise UsageError(f"{_flag(path)}: holds no samples; expected a non-empty audio file")
    mono = data.mean(axis=1)
    rate = source_rate
    if sample_rate is not None and sample_rate != source_rate:
        from scipy.signal import resample_poly

        mono = resample_poly(mono, *_resample_ratio(sample_rate, source_rate))
        rate = sample_rate
    samples, peak = _normalise(mono, _flag(path))
    if samples.shape[0] != count:  # a header that promised more frames than the file holds
        _check_count(samples.shape[0], _what(path, sample_rate, duration))
    return Clip(samples, rate, path, channels=channels, source_rate=source_rate, peak=peak)


def time_coords(n: int) -> np.ndarray:
    """Sample times in [-1, 1], shape ``(n, 1)``: ``linspace(-1, 1, n)``, the first sample at
    -1 and the last at 1, as the image task's pixel grid and SIREN's ``get_mgrid``."""
    return np.linspace(-1.0, 1.0, n, dtype=np.float32)[:, None]


def audio_fingerprint(samples: np.ndarray) -> str:
    """A short hash of the amplitudes, to tell runs on different clips apart."""
    data = np.ascontiguousarray(samples, dtype=np.float32).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def write_wav(path: pathlib.Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono amplitudes in [-1, 1] (clipped; NaN as 0) as a 16-bit PCM WAV."""
    import soundfile as sf

    data = np.clip(np.nan_to_num(np.asarray(samples, np.float64).reshape(-1)), -1.0, 1.0)
    sf.write(str(path), data, int(sample_rate), subtype="PCM_16", format="WAV")
