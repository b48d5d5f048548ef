"""The audio task: the loader against WAVs written here (values, rate, mono mixing, cutting,
resampling), PSNR and SNR by hand, the sine field's time scaling, a tiny run end to end (summary,
WAVs, plot), SIGTERM and resume, data parallelism, bad input, ``compare --task audio``, and the
speech clips of ``../shared/data/audio`` when present."""

from __future__ import annotations

import json
import math
import pathlib
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.metrics import read_metrics
from experiments.tasks import audio
from experiments.tasks.audio_data import (
    CHIRP_TOP,
    DEFAULT_DURATION,
    DEFAULT_RATE,
    GENERATED,
    load_audio,
    num_samples,
    time_coords,
)
from tests.experiments.conftest import assert_trees_equal, run_until_sigterm

# A tiny run: 0.25 s of the chirp at 4 kHz (1000 samples), batch 100 (10 steps an epoch), a
# 2x16 sine field, ESGD refreshing on and off schedule.
TINY = ("--sample-rate", "4000", "--duration", "0.25", "--batch-size", "100", "--depth", "2",
        "--width", "16", "--activation", "sine", "--timing-steps", "0", "--eval-every", "1",
        "--no-progress", "--optimizer", "esgd", "--opt-arg", "warmup=3",
        "--opt-arg", "update_interval=5")


def run_cli(argv: list[str]) -> int:
    """``python -m experiments.audio ARGV`` in this process; returns the exit code."""
    try:
        return audio.main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


def _config(*argv: str) -> audio.AudioConfig:
    return audio.make_config(audio.parser().parse_args(list(argv)))


# ---- the loader -----------------------------------------------------------------------------


def test_a_written_pcm16_wav_reads_back_peak_normalised(tmp_path: pathlib.Path) -> None:
    values = np.array([0, 1000, -2000, 16000, -8000, 3], np.int16)
    path = tmp_path / "clip.wav"
    sf.write(path, values, 11025, subtype="PCM_16")
    clip = load_audio(str(path))
    assert clip.sample_rate == clip.source_rate == 11025 and clip.channels == 1
    assert clip.source == str(path) and clip.samples.dtype == np.float32
    assert clip.peak == pytest.approx(16000 / 32768)
    np.testing.assert_allclose(clip.samples, values / 16000, rtol=0, atol=1e-7)
    assert clip.samples.max() == 1.0 and clip.duration == pytest.approx(6 / 11025)


def test_stereo_is_the_mean_of_its_channels(tmp_path: pathlib.Path, capsys) -> None:
    left = np.array([0.5, -0.25, 0.1, 0.0], np.float32)
    right = np.array([0.1, 0.25, -0.5, 0.2], np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    clip = load_audio(str(path))
    mono = (left + right) / 2
    assert clip.channels == 2 and clip.peak == pytest.approx(0.3)
    np.testing.assert_allclose(clip.samples, mono / 0.3, atol=1e-6)
    # prepare says so, on one line of stderr
    audio.prepare(_config("--audio", str(path), "--batch-size", "2", "--depth", "2",
                          "--width", "4"))
    err = capsys.readouterr().err
    assert "2 channels" in err and "mean" in err and err.count("\n") == 1


def test_duration_keeps_the_first_seconds_and_resampling_keeps_the_tone(
        tmp_path: pathlib.Path) -> None:
    rate = 8000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 100 * t)
    path = tmp_path / "tone.wav"
    sf.write(path, tone, rate, subtype="FLOAT")
    half = load_audio(str(path), duration=0.5)
    assert half.samples.shape == (4000,)
    np.testing.assert_allclose(half.samples, tone[:4000] / np.abs(tone[:4000]).max(), atol=1e-6)
    low = load_audio(str(path), sample_rate=3000)
    assert low.sample_rate == 3000 and low.source_rate == rate
    assert low.samples.shape == (3000,)
    t3 = np.arange(3000) / 3000
    inner = slice(100, -100)  # away from the filter's edge effects
    np.testing.assert_allclose(low.samples[inner], np.sin(2 * np.pi * 100 * t3)[inner],
                               atol=0.01)


@pytest.mark.parametrize("rate,duration", [
    (None, None), (None, 0.3), (3000, None), (44100, 0.2), (7919, 0.77), (16000, None),
])
def test_the_header_count_is_the_loaded_count(tmp_path: pathlib.Path, rate, duration) -> None:
    path = tmp_path / "noise.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 8001), 8000, subtype="PCM_16")
    expected = load_audio(str(path), rate, duration).samples.shape[0]
    assert num_samples(str(path), rate, duration) == expected
    assert num_samples(None, rate, duration) == load_audio(None, rate or 8000,
                                                           duration).samples.shape[0]


def test_the_generated_chirp() -> None:
    clip = load_audio(None)
    assert clip.source == GENERATED and clip.sample_rate == DEFAULT_RATE
    assert clip.samples.shape == (round(DEFAULT_RATE * DEFAULT_DURATION),)
    assert np.abs(clip.samples).max() == 1.0
    spectrum = np.abs(np.fft.rfft(clip.samples))
    freqs = np.fft.rfftfreq(clip.samples.shape[0], 1 / DEFAULT_RATE)
    assert freqs[spectrum > 0.01 * spectrum.max()].max() < CHIRP_TOP * 1.05  # band-limited
    coords = time_coords(5)
    np.testing.assert_array_equal(coords[:, 0], [-1, -0.5, 0, 0.5, 1])


# ---- metrics and the field ------------------------------------------------------------------


def test_psnr_and_snr_by_hand() -> None:
    target = np.array([1.0, -1.0, 0.5, 0.0])
    prediction = target + np.array([0.1, -0.1, 0.1, -0.1])  # MSE 0.01
    assert audio.audio_psnr(0.01) == pytest.approx(10 * math.log10(4 / 0.01))  # 26.02 dB
    assert audio.snr(prediction, target) == pytest.approx(10 * math.log10(2.25 / 0.04))
    assert audio.audio_psnr(0.0) == math.inf and math.isnan(audio.audio_psnr(float("nan")))
    assert audio.snr(target, target) == math.inf


class _Silent:
    """A 'field' that outputs 0 everywhere (no parameters)."""

    def init(self, key, coords):
        return {"params": {}}

    def apply(self, variables, coords):
        return jnp.zeros((coords.shape[0], 1))


def test_evaluate_of_a_silent_field(tmp_path: pathlib.Path) -> None:
    clip = load_audio(None, 4000, 0.25)
    task = audio.AudioTask(clip, _Silent())
    got = task.evaluate(task.init_params(jax.random.PRNGKey(0)))
    power = float(np.mean(clip.samples.astype(np.float64) ** 2))
    assert got["mse"] == pytest.approx(power)
    assert got["psnr"] == pytest.approx(10 * math.log10(4 / power))
    assert got["snr"] == pytest.approx(0.0, abs=1e-9)  # the error is the whole signal
    assert task.metric_from_loss(power) == pytest.approx(got["psnr"])


def test_sine_fields_see_time_scaled_by_first_omega_over_omega0() -> None:
    t = time_coords(7)
    config = _config("--activation", "sine", "--depth", "2", "--width", "8",
                     "--sample-rate", "4000", "--duration", "0.01", "--batch-size", "4")
    assert config.first_omega == audio.DEFAULT_FIRST_OMEGA == 3000
    task = audio.prepare(config)
    assert task.time_scale == 100  # 3000 / the sine field's omega0 = 30
    params = task.init_params(jax.random.PRNGKey(0))
    np.testing.assert_allclose(task.apply(params, t),
                               task.model.apply({"params": params}, 100 * t), rtol=1e-6)
    unscaled = _config("--activation", "sine", "--first-omega", "30", "--sample-rate", "4000")
    assert audio.time_scale(unscaled, task.model) == 1
    gaussian = _config("--activation", "gaussian", "--first-omega", "3000")
    assert gaussian.first_omega is None and audio.time_scale(gaussian, task.model) == 1


def test_full_batch_optimizers_get_every_sample(tmp_path: pathlib.Path) -> None:
    assert _config("--optimizer", "lbfgs").batch_size == 16000
    assert _config("--optimizer", "lbfgs", "--sample-rate", "4000",
                   "--duration", "0.25").batch_size == 1000
    path = tmp_path / "clip.wav"
    sf.write(path, np.linspace(-1, 1, 4410), 44100, subtype="PCM_16")
    assert _config("--optimizer", "lbfgs", "--audio", str(path)).batch_size == 4410
    assert _config("--optimizer", "lbfgs", "--audio", str(path),
                   "--sample-rate", "22050").batch_size == 2205
    assert _config("--optimizer", "adam").batch_size == 512  # the harness's mini-batch


# ---- the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A 2-epoch (20-step) ESGD run on one device, with the optimizer timed."""
    out = tmp_path_factory.mktemp("audio-one") / "run"
    argv = [*TINY, "--epochs", "2", "--out", str(out)]
    argv[argv.index("--timing-steps") + 1] = "3"
    assert run_cli(argv) == 0
    return out


def test_a_tiny_run_writes_its_summary_wavs_and_plots(one_device_run: pathlib.Path) -> None:
    out = one_device_run
    summary = json.loads((out / "summary.json").read_text())
    for key in audio.SUMMARY_KEYS:
        assert key in summary, key
    assert summary["steps"] == 20 and summary["metric"] == "psnr"
    assert summary["config"]["task"] == "audio" and summary["config"]["first_omega"] == 3000
    assert summary["optimizer_time_s"] is not None
    rows = read_metrics(out / "metrics.csv")
    assert [r["step"] for r in rows] == [10, 20]
    assert summary["final_psnr"] == pytest.approx(rows[-1]["eval_psnr"])
    task = audio.prepare(_config(*TINY))
    heard_snr = summary["final_eval_snr"]
    assert heard_snr == pytest.approx(audio.snr(task.predict(_final_params(out)), task.signal))
    # the WAVs: 16-bit PCM at the clip's rate; the target is the normalised clip
    for name in ("reconstruction.wav", "target.wav"):
        info = sf.info(out / name)
        assert (info.samplerate, info.frames, info.channels, info.subtype) == \
            (4000, 1000, 1, "PCM_16"), name
    target, _ = sf.read(out / "target.wav")
    np.testing.assert_allclose(target, task.signal, atol=1 / 32767)
    heard, _ = sf.read(out / "reconstruction.wav")
    mse = float(np.mean((heard - task.signal) ** 2))
    assert audio.audio_psnr(mse) == pytest.approx(summary["final_psnr"], abs=0.05)
    for name in ("waveform.png", "convergence.png"):
        assert (out / name).stat().st_size > 1000, name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def _final_params(out: pathlib.Path):
    state, _ = read_checkpoint(out)
    return state["params"]


def test_first_omega_lets_a_sine_field_learn_the_chirp(tmp_path: pathlib.Path) -> None:
    """150 full-batch Adam steps (lr 1e-3) of a 3x32 sine field on 0.25 s of the chirp: with
    SIREN's first-layer frequency 3000 it reaches ~28 dB; unscaled (30) it stays near ~19 dB,
    its first layer too slow for hundreds of Hz. A task that lost the scaling fails here."""
    psnrs = {}
    for first_omega in ("3000", "30"):
        config = _config("--sample-rate", "4000", "--duration", "0.25", "--batch-size", "1000",
                         "--depth", "3", "--width", "32", "--activation", "sine",
                         "--optimizer", "adam", "--lr", "1e-3", "--epochs", "150",
                         "--first-omega", first_omega, "--timing-steps", "0",
                         "--eval-every", "0", "--no-progress",
                         "--out", str(tmp_path / first_omega))
        psnrs[first_omega] = audio.run(config)["final_psnr"]
    silent = audio.audio_psnr(float(np.mean(load_audio(None, 4000, 0.25).samples ** 2.0)))
    assert psnrs["3000"] > 24 and psnrs["3000"] > psnrs["30"] + 5, (psnrs, silent)
    assert psnrs["30"] > silent  # it learns something, only slower


def test_sigterm_mid_epoch_and_resume_equal_an_uninterrupted_run(
        tmp_path: pathlib.Path, one_device_run: pathlib.Path) -> None:
    out = tmp_path / "run"
    argv = [*TINY, "--epochs", "2", "--log-every", "3", "--out", str(out)]
    config = _config(*argv)
    assert run_until_sigterm(audio.run, config, step=3) == 128 + signal.SIGTERM
    assert not (out / "summary.json").exists()
    _, meta = read_checkpoint(out)
    assert 3 <= meta["step"] < 10  # mid-epoch, right after the signal
    assert run_cli([*argv, "--resume"]) == 0
    state, meta = read_checkpoint(out)
    ref_state, ref_meta = read_checkpoint(one_device_run)
    assert meta["step"] == ref_meta["step"] == 20
    assert_trees_equal(state, ref_state)
    summary = json.loads((out / "summary.json").read_text())
    reference = json.loads((one_device_run / "summary.json").read_text())
    assert summary["final_psnr"] == reference["final_psnr"]
    assert summary["final_eval_snr"] == reference["final_eval_snr"]


def test_resume_refuses_another_clip(tmp_path: pathlib.Path, one_device_run, capsys) -> None:
    argv = [*TINY, "--epochs", "3", "--resume", "--out", str(one_device_run)]
    argv[argv.index("--duration") + 1] = "0.3"
    assert run_cli(argv) == 2
    assert "duration" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["sharded"])
def test_parallel_run_equals_one_device_run(tmp_path: pathlib.Path,
                                            one_device_run: pathlib.Path, mode: str) -> None:
    """Batches of 100 samples split 25 per simulated device (tests/conftest.py asks for 4):
    the same run up to float32 summation order (the image task's tolerances). Sharded ``jit``
    only: pmap runs the same harness code, tested on the image and occupancy tasks."""
    from tests.experiments.test_parallel import assert_parallel_run_matches

    if len(jax.devices()) < 2:
        pytest.skip("needs several (simulated) devices; tests/conftest.py asks for 4")
    out = tmp_path / mode
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--parallel", mode]) == 0
    got, want = assert_parallel_run_matches(out, one_device_run, steps=20, rows=2)
    assert got["final_psnr"] == pytest.approx(want["final_psnr"], abs=0.01)


def _write(path: pathlib.Path, data: np.ndarray, subtype: str = "PCM_16") -> pathlib.Path:
    sf.write(path, data, 8000, subtype=subtype)
    return path


def _text(path: pathlib.Path) -> pathlib.Path:
    path.write_text("these are notes, not sound")
    return path


def _folder(path: pathlib.Path) -> pathlib.Path:
    path.mkdir()
    return path


def _header_only(path: pathlib.Path) -> pathlib.Path:
    _write(path, np.full(100, 0.5))
    path.write_bytes(path.read_bytes()[:30])
    return path


@pytest.mark.parametrize(("extra", "needles"), [
    (lambda d: ["--audio", str(d / "missing.wav")], ["missing.wav", "no such file"]),
    (lambda d: ["--audio", str(_text(d / "notes.wav"))], ["notes.wav", "not an audio file"]),
    (lambda d: ["--audio", str(_header_only(d / "cut.wav"))], ["cut.wav", "expected"]),
    (lambda d: ["--audio", str(_folder(d / "folder.wav"))], ["folder.wav", "not a file"]),
    (lambda d: ["--audio", str(_write(d / "empty.wav", np.zeros(0)))],
     ["empty.wav", "no samples"]),
    (lambda d: ["--audio", str(_write(d / "quiet.wav", np.zeros(2500)))],
     ["quiet.wav", "silent"]),
    (lambda d: ["--audio", str(_write(d / "nan.wav", np.full(2500, np.nan), "FLOAT"))],
     ["nan.wav", "non-finite"]),
    (lambda d: ["--audio", str(_write(d / "short.wav", np.full(800, 0.5)))],
     ["--duration 0.25", "0.100 s", "short.wav"]),
    (lambda d: ["--audio", str(_write(d / "one.wav", np.full(1, 0.5))), "--duration", "0.0001"],
     ["one.wav --duration 0.0001 --sample-rate 4000", "1 sample;", "at least 2"]),
    (lambda d: ["--duration", "0"], ["--duration 0", "positive"]),
    (lambda d: ["--duration", "-1"], ["--duration -1", "positive"]),
    (lambda d: ["--duration", "inf"], ["--duration inf", "finite"]),
    (lambda d: ["--duration", "0.0001"], ["--duration 0.0001", "0 samples"]),
    (lambda d: ["--sample-rate", "0"], ["--sample-rate 0", "positive"]),
    (lambda d: ["--sample-rate", "2000"], ["--sample-rate 2000", "1320 Hz"]),
    (lambda d: ["--sample-rate", "fast"], ["--sample-rate", "fast"]),
    (lambda d: ["--batch-size", "1001"], ["--batch-size 1001", "1000 samples"]),
    (lambda d: ["--first-omega", "0"], ["--first-omega 0", "positive"]),
    (lambda d: ["--first-omega", "-3", "--activation", "gaussian"], ["--first-omega -3"]),
])
def test_bad_input_exits_2_with_one_line_before_any_work(tmp_path: pathlib.Path, capsys,
                                                         extra, needles) -> None:
    out = tmp_path / "run"
    assert run_cli([*TINY, "--out", str(out), *extra(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


@pytest.mark.parametrize(("name", "needle"), [("x.flac", "not an audio file"),
                                               ("absent.ogg", "no such file")])
def test_full_batch_header_errors_come_before_any_work(tmp_path: pathlib.Path, capsys,
                                                       name, needle) -> None:
    """A full-batch optimizer counts the samples from the header in make_config: a bad file
    is a one-line error there too."""
    path = _text(tmp_path / name) if name == "x.flac" else tmp_path / name
    out = tmp_path / "run"
    assert run_cli(["--optimizer", "lbfgs", "--audio", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert name in err and needle in err and err.count("\n") == 1, err
    assert not out.exists()


def test_compare_task_audio(tmp_path: pathlib.Path) -> None:
    from experiments import compare

    out = tmp_path / "grid"
    flags = [f for f in TINY[:TINY.index("--optimizer")] if f not in ("--activation", "sine")]
    argv = ["--task", "audio", "--optimizers", "adam", "--activations", "sine",
            "--baseline", "none", "--epochs", "1", *flags, "--out", str(out)]
    assert compare.main(argv) == 0
    report = (out / "report.md").read_text()
    assert "PSNR" in report and "generated chirp" in report and "10 log10(2^2 / MSE)" in report
    for cell in ("sine-adam",):
        summary = json.loads((out / cell / "summary.json").read_text())
        assert summary["config"]["task"] == "audio" and summary["final_psnr"] is not None
        assert (out / cell / "reconstruction.wav").is_file()


def test_the_module_entry_point() -> None:
    import experiments.audio as entry_point
    from experiments import tasks

    assert entry_point.main is audio.main
    assert tasks.get("audio") is audio


# ---- the speech clips of ../shared/data/audio -----------------------------------------------


def test_the_shared_speech_clips_load(shared_data: pathlib.Path) -> None:
    folder = shared_data / "audio"
    if not (folder / "Front_Center.wav").is_file():
        pytest.skip(f"{folder / 'Front_Center.wav'} is absent")
    path = str(folder / "Front_Center.wav")
    clip = load_audio(path)
    assert (clip.sample_rate, clip.channels, clip.samples.shape) == (48000, 1, (68545,))
    assert np.abs(clip.samples).max() == 1.0
    assert num_samples(path) == 68545
    assert load_audio(path, 16000).samples.shape == (num_samples(path, 16000),)
    for other in sorted(folder.glob("*.wav")):
        assert load_audio(str(other)).sample_rate == 48000, other
