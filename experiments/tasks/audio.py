"""Fit a neural field to a sound: ``python -m experiments.audio``.

Time in [-1, 1] -> amplitude (mono), MSE loss, shuffled mini-batches of samples (one epoch = one
pass over the clip), as SIREN's audio experiment (Sitzmann et al. 2020) and the companion
paper's audio task fit a clip. Without ``--audio`` the run fits a generated chirp (2 s at 8 kHz,
16,000 samples), so a first run needs no data; ``--audio`` takes any file soundfile reads (WAV,
FLAC, OGG, ...), e.g. the speech clips in ``../shared/data/audio``. Examples::

    python -m experiments.audio --activation sine --optimizer adam --epochs 20
    python -m experiments.audio --audio ../shared/data/audio/Front_Center.wav \\
        --activation sine --optimizer esgd --out runs/speech-esgd
    python -m experiments.audio --audio clip.flac --sample-rate 16000 --duration 1.5 \\
        --optimizer lbfgs                                 # full batch: all samples each step
    python -m experiments.compare --task audio --activations sine relu_pe \\
        --optimizers esgd adam --epochs 10

Data. A multichannel file is mixed to mono by averaging its channels (a note on stderr says
so); ``--duration`` keeps the first seconds, ``--sample-rate`` resamples (polyphase, with its
anti-aliasing filter). The amplitudes are divided by their peak absolute value, so the target
lies in [-1, 1] with the loudest sample at +-1.

Metrics. PSNR takes the peak-to-peak range of a [-1, 1] signal, 2, as the peak:
``PSNR = 10 log10(2^2 / MSE)`` over every sample of the reconstruction (``final_psnr``; the
training curve's PSNR is the same formula on the batch loss). SNR is
``10 log10(sum target^2 / sum (prediction - target)^2)`` (``final_eval_snr``), 0 dB for a silent
output whatever the clip: read it beside PSNR, because a silent output already scores
``10 log10(4 / mean target^2)`` dB of PSNR, 22.1 dB on ``Front_Center.wav`` (long pauses) and
13.8 dB on the chirp. Outputs: ``reconstruction.wav`` and ``target.wav`` (16-bit PCM at the
clip's rate, to listen to) and ``waveform.png`` (the waveform and its reconstruction, a zoom,
and the error).

Sine fields and ``--first-omega``. A SIREN layer computes ``sin(omega0 (W x + b))`` with
``omega0 = 30`` and a first-layer ``W ~ U(-1, 1)``: over t in [-1, 1] that is at most ~10 cycles,
far below a clip's thousands. SIREN's audio example (``explore_siren.ipynb``) raises the first
layer's frequency to ``first_omega_0 = 3000`` (hidden layers keep 30) and notes that scaling the
input coordinates is equivalent; that is what this task does, so the field itself stays
:func:`experiments.tasks.field_factory.make_field`'s sine field, unchanged: it is evaluated at
``t * first_omega / omega0`` (x100 by default). The first layer's pre-activation is then
``first_omega W t + omega0 b``: SIREN's ``first_omega (W t + b)`` except that the bias's phase is
scaled by ``omega0`` instead of ``first_omega`` (at initialisation both spread the phases over
many periods; in training the bias turns the phase 100x more slowly per unit step). The default
3000 is SIREN's; ``--first-omega 30`` gives the unscaled field. Other activations (Gaussian,
wavelet, sinc, ReLU, ReLU+PE) take the field factory's reference settings and unscaled time, as
the image task does; ``--first-omega`` does not apply to them (their config records none).
Measured on the default chirp (5x256 field, 10 epochs of batch 512, CPU): Gaussian and wavelet
fields at these settings stay at the silent-output level (13.7-14.0 dB against 13.8) under Adam
and ESGD, ReLU+PE reaches 20 dB, sine 34 dB (Adam, 5 epochs; 39 dB after 20). Scaling their
time by 10 or 100, or a Gaussian sigma of 0.01, did not lift them above 17 dB in a quick try, so
they are left at the reference settings. Why (issue 22, measured on the chirp, checked on
``Front_Center.wav``; 5x256 Gaussian field, Adam 1e-3, batch 512, 300 steps, seed 0): every
combination of sigma 0.05, 0.01, 0.005, 0.002 and time scale 1, 10, 100 tried stays at the
silent level on the 2 s chirp (13.8-14.0 dB against 13.85 silent, SNR <= 0.2 dB); the same field
on a *shorter* clip in the same [-1, 1] learns: 0.05 s of the chirp 32.1 dB (SNR 20.6 dB), 0.2 s
20.3 dB (SNR 8.6 dB), 0.05 s of ``Front_Center.wav`` at 16 kHz 29.3 dB (SNR 2.3 dB; silent
27.1). A Gaussian unit is local: a first-layer unit responds over about sigma / |w| of the input
around ``-b / w`` (w, b ~ U(-1, 1)), so a 256-wide first layer covers a clip with a few hundred
bumps and cannot follow the hundreds of periods of a 2 s clip; scaling time, SIREN's remedy for
a periodic unit, narrows the bumps but also packs their centres into the middle 1/scale of the
clip (at init with sigma 0.05: the fraction of the clip where some unit exceeds 0.1 falls from
1.0 at scale 1 to 0.96 at 10 and 0.32 at 100). No input scaling or sigma is therefore set for
Gaussian fields: what works is fewer periods per field, i.e. a short clip or the block split
(:mod:`experiments.tasks.patches`, one field per ~0.05 s block), not yet measured on audio.
On ``Front_Center.wav`` (68,545 samples at 48 kHz) the 5x256 sine field reaches 34.1 dB (SNR
12.0 dB) after 3 epochs (399 steps) of Adam at its reference rate, 34.7 dB (12.6 dB) with ESGD
(CPU, seed 0); the fricative is the part still missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from experiments.harness import cli, entry
from experiments.harness.config import RunConfig, check_positive
from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr
from experiments.harness.train import SUMMARY_KEYS as HARNESS_SUMMARY_KEYS
from experiments.tasks.audio_data import (
    DEFAULT_DURATION,
    DEFAULT_RATE,
    GENERATED,
    Clip,
    audio_fingerprint,
    load_audio,
    num_samples,
    time_coords,
    write_wav,
)
from experiments.tasks.field_factory import make_field
from experiments.tasks.signal_fit import SignalFitTask

NAME = "audio"
DEFAULT_OUT = "runs/audio"
#: SIREN's first-layer frequency for audio (``explore_siren.ipynb``: ``first_omega_0=3000``).
DEFAULT_FIRST_OMEGA = 3000.0
#: Peak-to-peak range of the peak-normalised signal, the "peak" of its PSNR.
PEAK_TO_PEAK = 2.0
#: Keys of an audio run's ``summary.json``: the harness's, the final PSNR and the SNR.
SUMMARY_KEYS = ("final_psnr", "final_eval_snr", *HARNESS_SUMMARY_KEYS)


def audio_psnr(mse: float) -> float:
    """PSNR of a [-1, 1] signal: ``10 log10(2^2 / mse)`` (inf when exact, NaN when ``mse`` is
    not a finite non-negative number)."""
    return psnr(float(mse) / PEAK_TO_PEAK**2)


def snr(prediction: np.ndarray, target: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: ``10 log10(sum target^2 / sum (prediction - target)^2)``
    (inf when exact, NaN when the prediction is not finite)."""
    target = np.asarray(target, np.float64)
    noise = float(np.sum((np.asarray(prediction, np.float64) - target) ** 2))
    if not math.isfinite(noise):
        return float("nan")
    signal = float(np.sum(target**2))
    return float("inf") if noise == 0 else 10.0 * math.log10(signal / noise)


@dataclasses.dataclass(frozen=True)
class AudioConfig(RunConfig):
    """A run of the audio task: the harness's settings plus the clip and the time scaling.

    Attributes:
      audio: an audio file; ``None`` for the generated chirp.
      sample_rate: resample to this rate (Hz); ``None``: the file's own (8000 for the chirp).
      duration: seconds kept from the start; ``None``: all of the file (2 s of chirp).
      first_omega: a sine field's first-layer frequency (``None`` for other activations).
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ("audio", "sample_rate", "duration", "first_omega")

    task: str = NAME
    out: str = DEFAULT_OUT
    audio: str | None = None
    sample_rate: int | None = None
    duration: float | None = None
    first_omega: float | None = None

    def check(self) -> None:
        check_positive("sample_rate", self.sample_rate, allow_none=True)
        check_positive("duration", self.duration, allow_none=True)
        if self.duration is not None and not math.isfinite(self.duration):
            raise UsageError(f"--duration {self.duration}: expected a finite number of seconds")
        check_positive("first_omega", self.first_omega, allow_none=True)


class AudioTask(SignalFitTask):
    """Fit ``model`` to a mono ``clip``; the examples are its samples, at times in [-1, 1].

    The field is evaluated at ``time_scale * t`` (a sine field's ``first_omega / omega0``,
    1 otherwise).
    """

    name = NAME
    values_key = "amplitudes"

    def __init__(self, clip: Clip, model: Any, *, time_scale: float = 1.0):
        self.clip = clip
        self.signal = np.asarray(clip.samples, np.float32)
        self.sample_rate = clip.sample_rate
        super().__init__(time_coords(self.signal.shape[0]), self.signal[:, None], model,
                         input_scale=time_scale)
        self.source = clip.source

    @property
    def time_scale(self) -> float:
        """The factor the field's time input is scaled by."""
        return self.input_scale

    @property
    def amplitudes(self) -> np.ndarray:
        """The clip's samples, (N, 1), in the order of ``coords``."""
        return self.values

    def fingerprint(self) -> dict[str, Any]:
        return {"audio_sha256": audio_fingerprint(self.signal), "samples": self.num_examples,
                "sample_rate": self.sample_rate, "channels": self.clip.channels}

    def metric_from_loss(self, loss: float) -> float:
        return audio_psnr(loss)

    def predict(self, params: Any) -> np.ndarray:
        """The reconstruction at every sample (N,), evaluated in fixed-size chunks."""
        return self.predict_values(params).reshape(-1)

    def evaluate(self, params: Any) -> dict[str, float]:
        prediction = self.predict(params)
        mse = float(np.mean((prediction.astype(np.float64) - self.signal) ** 2))
        return {"psnr": audio_psnr(mse), "snr": snr(prediction, self.signal), "mse": mse}

    def write_outputs(self, params: Any, out_dir: pathlib.Path) -> list[str]:
        prediction = self.predict(params)
        write_wav(out_dir / "reconstruction.wav", prediction, self.sample_rate)
        write_wav(out_dir / "target.wav", self.signal, self.sample_rate)
        save_waveform_plot(out_dir / "waveform.png", prediction, self.signal, self.sample_rate)
        return ["reconstruction.wav", "target.wav", "waveform.png"]


def save_waveform_plot(path: pathlib.Path, prediction: np.ndarray, target: np.ndarray,
                       sample_rate: int, zoom_s: float = 0.02) -> None:
    """Three panels: the target waveform with the reconstruction over it, the same over
    ``zoom_s`` seconds around the loudest sample, and the error (prediction - target).

    Args:
      path: the PNG to write.
      prediction, target: ``(N,)`` amplitudes.
      sample_rate: samples per second (the time axis).
      zoom_s: length of the zoomed window in seconds.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    prediction = np.nan_to_num(np.asarray(prediction, np.float64), nan=0.0)
    target = np.asarray(target, np.float64)
    t = np.arange(target.shape[0]) / sample_rate
    error = prediction - target
    mse = float(np.mean(error**2))
    half = max(1, round(zoom_s * sample_rate / 2))
    centre = int(np.argmax(np.abs(target)))
    lo, hi = max(0, centre - half), min(target.shape[0], centre + half)
    fig, (ax_all, ax_zoom, ax_err) = plt.subplots(3, 1, figsize=(10, 7.5))
    for ax, sl in ((ax_all, slice(None)), (ax_zoom, slice(lo, hi))):
        ax.plot(t[sl], target[sl], lw=0.6, label="target")
        ax.plot(t[sl], prediction[sl], lw=0.6, alpha=0.8, label="reconstruction")
        ax.set_ylabel("amplitude")
        ax.grid(True, alpha=0.3)
    ax_all.legend(loc="upper right", fontsize=8)
    ax_all.set_title(f"PSNR {audio_psnr(mse):.2f} dB (peak-to-peak 2), "
                     f"SNR {snr(prediction, target):.2f} dB")
    ax_zoom.set_title(f"{(hi - lo) / sample_rate * 1e3:.0f} ms around the loudest sample",
                      fontsize=9)
    ax_err.plot(t, error, lw=0.6, color="tab:red")
    ax_err.set_ylabel("error")
    ax_err.set_xlabel("time (s)")
    ax_err.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The audio task's data flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--audio", default=None,
                      help="audio file to fit (WAV, FLAC, OGG or another format soundfile "
                           "reads; several channels are averaged to mono); default: a "
                           f"generated chirp ({DEFAULT_DURATION:g} s at {DEFAULT_RATE} Hz)")
    data.add_argument("--sample-rate", type=int, default=None,
                      help="resample to this many Hz (default: the file's own rate, "
                           f"{DEFAULT_RATE} for the generated chirp)")
    data.add_argument("--duration", type=float, default=None,
                      help="seconds to keep from the start (default: the whole file, "
                           f"{DEFAULT_DURATION:g} for the generated chirp)")
    data.add_argument("--first-omega", type=float, default=None,
                      help="first-layer frequency of sine fields, realised by scaling time by "
                           f"FIRST_OMEGA/30 (default {DEFAULT_FIRST_OMEGA:g}, SIREN's audio "
                           "setting; 30 leaves time unscaled); other activations ignore it")


def parser(prog: str = "python -m experiments.audio", description: str | None = None,
           ) -> cli.OneLineParser:
    """The parser of ``python -m experiments.audio``."""
    return entry.task_parser(add_data_args, prog, description, default_out=DEFAULT_OUT)


def _first_omega(args: argparse.Namespace, activation: str) -> float | None:
    if args.first_omega is not None:
        check_positive("first_omega", args.first_omega)
    if activation != "sine":
        return None
    return DEFAULT_FIRST_OMEGA if args.first_omega is None else args.first_omega


def make_config(
    args: argparse.Namespace, *, activation: str | None = None, optimizer: str | None = None,
    out: str | None = None,
) -> AudioConfig:
    """Resolve parsed flags into an :class:`AudioConfig` (learning rate, batch size, out dir,
    first-layer frequency); full-batch optimizers get every sample as the batch (counted from
    the file's header)."""
    from experiments import optimizers

    activation = activation or args.activation
    name = optimizer or args.optimizer
    count = None
    if args.batch_size is None and name in optimizers.names() and \
            optimizers.get(name).full_batch_only:
        count = num_samples(args.audio, args.sample_rate, args.duration)
    settings = cli.run_settings(args, activation=activation, optimizer=optimizer, out=out,
                                default_out=DEFAULT_OUT, num_examples=count)
    return AudioConfig(audio=args.audio, sample_rate=args.sample_rate, duration=args.duration,
                       first_omega=_first_omega(args, settings["activation"]), **settings)


def report_settings(config: AudioConfig) -> dict[str, Any]:
    """The lines of a comparison report that describe the data."""
    if config.audio is None:
        source = (f"{GENERATED}, {config.duration or DEFAULT_DURATION:g} s at "
                  f"{config.sample_rate or DEFAULT_RATE} Hz")
    else:
        source = config.audio + "".join(
            [f", first {config.duration:g} s" if config.duration else "",
             f", resampled to {config.sample_rate} Hz" if config.sample_rate else ""])
    out = {"audio": source}
    if config.first_omega is not None:
        out["first omega (sine)"] = f"{config.first_omega:g}"
    return out


#: What a comparison report says about how the final PSNR is measured.
REPORT_NOTES = (
    "Amplitudes are peak-normalised to [-1, 1]; final PSNR is 10 log10(2^2 / MSE) over every "
    "sample of the reconstruction at the end of training (peak-to-peak range 2), and "
    "final_eval_snr in summary.json is 10 log10(sum target^2 / sum error^2).",
)


def time_scale(config: AudioConfig, model: Any) -> float:
    """How much the task stretches time before the field: ``first_omega / omega0`` for a sine
    field with a first-layer frequency, 1 otherwise."""
    if config.activation != "sine" or config.first_omega is None:
        return 1.0
    return config.first_omega / model.hyperparameters()["omega0"]


def prepare(config: AudioConfig) -> AudioTask:
    """Validate ``config`` and load its data; every bad input raises :class:`UsageError`."""
    entry.check_config(config, NAME)
    model = make_field(config.activation, config.depth, config.width, out_features=1)
    clip = load_audio(config.audio, config.sample_rate, config.duration)
    task = AudioTask(clip, model, time_scale=time_scale(config, model))
    if config.batch_size > task.num_examples:
        raise UsageError(
            f"--batch-size {config.batch_size}: larger than the {task.num_examples} samples of "
            f"{clip.source}; expected at most {task.num_examples}"
        )
    if clip.channels > 1:
        from experiments.harness.distributed import is_primary

        if is_primary():
            sys.stderr.write(f"note: --audio {clip.source} has {clip.channels} channels; "
                             "fitting their mean (mono)\n")
    return task


def run(config: AudioConfig, **kwargs: Any) -> dict[str, Any]:
    """Train an audio field as ``config`` says; returns the summary (see :func:`train.train`)."""
    return entry.run_task(prepare, config, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m experiments.audio``; returns the exit code."""
    return entry.task_main(argv, parser=parser, doc=__doc__, make_config=make_config, run=run)


if __name__ == "__main__":
    sys.exit(main())
