"""The video task: the loader against a video the test encodes, the made pattern, coordinates,
the clip's and the frames' PSNRs by hand, a tiny CLI run and its outputs, SIGTERM and resume,
a sharded run against one device, compare --task video, and every bad input."""

from __future__ import annotations

import json
import math
import pathlib
import signal

import numpy as np
import pytest

from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.errors import UsageError
from experiments.harness.metrics import read_metrics
from experiments.tasks import video
from experiments.tasks import video_data as vd
from tests.experiments.conftest import assert_trees_equal, run_until_sigterm

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")

# imageio-ffmpeg runs FFmpeg with subprocess (fork, then exec at once), which JAX's fork hook
# warns about once its threads run; nothing is shared with the child.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")

# A tiny run on the made video: 4 frames of 16x16 = 1024 pixels, batch 128 (8 steps an epoch),
# a 2x16 field, ESGD refreshing on and off schedule.
TINY = ("--frames", "4", "--size", "16", "--depth", "2", "--width", "16", "--batch-size", "128",
        "--timing-steps", "2", "--eval-every", "1", "--no-progress", "--optimizer", "esgd",
        "--activation", "gaussian", "--opt-arg", "warmup=3", "--opt-arg", "update_interval=5")

# The test video: 6 frames of 16 rows x 32 columns, the left half of frame k LEFT[k] and the
# right half RIGHT[k] (8-bit RGB), at 10 frames a second.
LEFT = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30], [30, 230, 230],
                 [230, 30, 230]], np.uint8)
RIGHT = LEFT[::-1].copy()
# H.264 in 4:2:0 with the writer's best quality: flat areas come back within a few levels.
COLOUR_ATOL = 12 / 255


def run_cli(argv: list[str]) -> int:
    try:
        return video.main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


def _frames() -> np.ndarray:
    frames = np.empty((len(LEFT), 16, 32, 3), np.uint8)
    frames[:, :, :16] = LEFT[:, None, None]
    frames[:, :, 16:] = RIGHT[:, None, None]
    return frames


@pytest.fixture(scope="module")
def tiny_mp4(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    with imageio.get_writer(path, format="FFMPEG", fps=10, quality=10,
                            macro_block_size=16) as writer:
        for frame in _frames():
            writer.append_data(frame)
    return path


# ---------------------------------------------------------------------------------------------
# Data


def test_loader_reads_the_frames_it_was_given(tiny_mp4: pathlib.Path) -> None:
    clip = vd.load_video(str(tiny_mp4), 6, (16, 32))
    assert clip.frames.shape == (6, 16, 32, 3) and clip.frames.dtype == np.float32
    assert clip.indices == (0, 1, 2, 3, 4, 5)
    assert clip.source_size == (16, 32) and clip.fps == pytest.approx(10.0)
    # Away from the edge between the halves (chroma is subsampled 2x).
    np.testing.assert_allclose(clip.frames[:, 4:12, 2:12].mean(axis=(1, 2)), LEFT / 255,
                               atol=COLOUR_ATOL)
    np.testing.assert_allclose(clip.frames[:, 4:12, 20:30].mean(axis=(1, 2)), RIGHT / 255,
                               atol=COLOUR_ATOL)


def test_loader_strides_starts_and_resizes(tiny_mp4: pathlib.Path) -> None:
    clip = vd.load_video(str(tiny_mp4), 2, (4, 8), stride=3, start=1)
    assert clip.indices == (1, 4) and clip.frames.shape == (2, 4, 8, 3)
    # Rows x columns: the left two columns hold the left colour, the right two the right one.
    np.testing.assert_allclose(clip.frames[:, :, :2].mean(axis=(1, 2)), LEFT[[1, 4]] / 255,
                               atol=COLOUR_ATOL)
    np.testing.assert_allclose(clip.frames[:, :, 6:].mean(axis=(1, 2)), RIGHT[[1, 4]] / 255,
                               atol=COLOUR_ATOL)
    # The last frame of the source can be the clip's last.
    assert vd.load_video(str(tiny_mp4), 3, (16, 32), stride=2, start=1).indices == (1, 3, 5)


def test_made_video_moves_and_strides_consistently() -> None:
    clip = vd.load_video(None, 8, (12, 20), stride=2, start=3)
    assert clip.frames.shape == (8, 12, 20, 3) and clip.source_size is None
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0
    assert clip.indices == tuple(range(3, 19, 2))
    every = vd.made_video(range(3, 19), 12, 20)
    np.testing.assert_array_equal(clip.frames, every[::2])
    motion = np.abs(np.diff(clip.frames, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(motion > 0.01), motion  # every frame differs from the one before
    assert clip.frames.std() > 0.1  # not a flat field


def test_video_coords_line_up_with_the_frames() -> None:
    coords = vd.video_coords(3, 4, 5)
    assert coords.shape == (60, 3) and coords.dtype == np.float32
    grid = coords.reshape(3, 4, 5, 3)
    np.testing.assert_array_equal(grid[:, 0, 0, 0], [-1.0, 0.0, 1.0])  # t along frames
    np.testing.assert_array_equal(grid[0, :, 0, 1], np.linspace(-1, 1, 4, dtype=np.float32))
    np.testing.assert_array_equal(grid[0, 0, :, 2], np.linspace(-1, 1, 5, dtype=np.float32))
    assert coords.min() == -1.0 and coords.max() == 1.0


@pytest.mark.parametrize(("text", "size"), [("64", (64, 64)), ("48x112", (48, 112)),
                                            (" 8X4 ", (8, 4)), (16, (16, 16))])
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert vd.parse_size(text) == size


def test_bikes_clip_from_shared_data(shared_data: pathlib.Path) -> None:
    path = shared_data / "video" / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"real data not available: {path} does not exist")
    clip = vd.load_video(str(path), 3, (34, 80), stride=5, start=2)
    assert clip.frames.shape == (3, 34, 80, 3) and clip.indices == (2, 7, 12)
    assert clip.source_size == (272, 640) and clip.fps == pytest.approx(25.0)
    assert 0.0 <= clip.frames.min() < clip.frames.max() <= 1.0


# ---------------------------------------------------------------------------------------------
# Metrics


class _TwoLevels:
    """A stand-in field: 0.1 on the first frame (t = -1), 0.01 on the second (t = 1)."""

    def init(self, key, coords):
        return {"params": {}}

    def apply(self, variables, coords):
        import jax.numpy as jnp

        value = jnp.where(coords[:, :1] < 0, 0.1, 0.01)
        return jnp.broadcast_to(value, (coords.shape[0], 3))


def test_clip_and_frame_psnrs_by_hand(tmp_path: pathlib.Path) -> None:
    import jax

    task = video.VideoTask(np.zeros((2, 3, 4, 3), np.float32), _TwoLevels(), fps=5)
    params = task.init_params(jax.random.PRNGKey(0))
    scores = task.evaluate(params)
    # Frame MSEs 0.1^2 = 1e-2 (20 dB) and 0.01^2 = 1e-4 (40 dB); the clip's MSE is their mean.
    assert scores["min_frame_psnr"] == pytest.approx(20.0)
    assert scores["mean_frame_psnr"] == pytest.approx(30.0)
    assert scores["mse"] == pytest.approx((1e-2 + 1e-4) / 2, rel=1e-5)
    assert scores["psnr"] == pytest.approx(-10 * math.log10((1e-2 + 1e-4) / 2), rel=1e-5)
    np.testing.assert_allclose(video.per_frame_psnr(task.predict(params), task.video),
                               [20.0, 40.0], rtol=1e-5)
    names = task.write_outputs(params, tmp_path)
    table = json.loads((tmp_path / "per_frame_psnr.json").read_text())
    assert table["source_frames"] == [0, 1]
    np.testing.assert_allclose(table["psnr"], [20.0, 40.0], rtol=1e-5)
    assert table["clip_psnr"] == pytest.approx(scores["psnr"])
    assert set(names) == {"strip.png", "reconstruction.gif", "target.gif", "per_frame_psnr.json"}


def test_an_exact_frame_is_written_as_inf(tmp_path: pathlib.Path) -> None:
    import jax

    target = np.zeros((2, 3, 4, 3), np.float32)
    target[0] = 0.1
    task = video.VideoTask(target, _TwoLevels())
    task.write_outputs(task.init_params(jax.random.PRNGKey(0)), tmp_path)
    assert json.loads((tmp_path / "per_frame_psnr.json").read_text())["psnr"][0] == "inf"


def test_strip_puts_targets_above_reconstructions() -> None:
    target = np.zeros((6, 3, 5, 3), np.float32)
    prediction = np.ones_like(target) * 0.5
    target[5] = 0.25
    strip = video.make_strip(target, prediction, count=3, gap=2)
    assert video.strip_indices(6, 3) == [0, 2, 5] and video.strip_indices(2, 4) == [0, 1]
    assert strip.shape == (3 + 2 + 3, 3 * 5 + 2 * 2, 3)
    np.testing.assert_array_equal(strip[:3, :5], 0.0)
    np.testing.assert_array_equal(strip[:3, 14:], 0.25)  # frame 5, top right
    np.testing.assert_array_equal(strip[5:, :5], 0.5)
    np.testing.assert_array_equal(strip[3:5], 1.0)  # the white gap between the rows


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """An uninterrupted 2-epoch (16-step) ESGD run on the made video, on one device."""
    out = tmp_path_factory.mktemp("video-ref") / "run"
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_cli_run_writes_the_summary_and_outputs(reference: pathlib.Path) -> None:
    import jax

    summary = json.loads((reference / "summary.json").read_text())
    for key in video.SUMMARY_KEYS:
        assert key in summary, key
    assert summary["steps"] == 16 and summary["config"]["task"] == "video"
    assert summary["config"]["size"] == "16x16" and summary["config"]["frames"] == 4
    rows = read_metrics(reference / "metrics.csv")
    assert [r["step"] for r in rows] == [8, 16]
    assert summary["final_psnr"] == pytest.approx(rows[-1]["eval_psnr"])
    assert summary["final_eval_min_frame_psnr"] <= summary["final_psnr"] + 1e-9
    task = video.prepare(video.make_config(video.parser().parse_args(list(TINY))))
    initial = task.evaluate(task.init_params(jax.random.PRNGKey(0)))["psnr"]
    assert summary["final_psnr"] > initial + 0.5  # it learned

    for name in ("strip.png", "reconstruction.gif", "target.gif", "per_frame_psnr.json",
                 "convergence.png", "config.json"):
        assert (reference / name).is_file(), name
    assert set(summary["outputs"]) >= {"strip.png", "reconstruction.gif", "per_frame_psnr.json"}
    from PIL import Image

    with Image.open(reference / "strip.png") as strip:
        assert strip.size == (4 * 16 + 3 * 2, 2 * 16 + 2)
    gif = imageio.mimread(reference / "reconstruction.gif")
    assert len(gif) == 4 and gif[0].shape[:2] == (16, 16)
    table = json.loads((reference / "per_frame_psnr.json").read_text())
    assert table["source_frames"] == [0, 1, 2, 3] and len(table["psnr"]) == 4
    assert min(table["psnr"]) == pytest.approx(summary["final_eval_min_frame_psnr"])
    assert table["clip_psnr"] == pytest.approx(summary["final_psnr"])


def test_sigterm_mid_epoch_saves_a_checkpoint_and_resume_matches(
    tmp_path: pathlib.Path, reference: pathlib.Path
) -> None:
    out = tmp_path / "run"
    argv = [*TINY, "--epochs", "2", "--log-every", "3", "--out", str(out)]
    config = video.make_config(video.parser().parse_args(argv))

    code = run_until_sigterm(video.run, config, step=3)
    assert code == 128 + signal.SIGTERM
    assert not (out / "summary.json").exists()
    _, meta = read_checkpoint(out)
    assert 3 <= meta["step"] < 8  # stopped mid-epoch, right after the signal
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    state, meta = read_checkpoint(out)
    ref_state, ref_meta = read_checkpoint(reference)
    assert meta["step"] == ref_meta["step"] == 16
    assert_trees_equal(state, ref_state)
    a = json.loads((out / "summary.json").read_text())
    b = json.loads((reference / "summary.json").read_text())
    assert a["final_psnr"] == b["final_psnr"]
    assert a["final_eval_min_frame_psnr"] == b["final_eval_min_frame_psnr"]


def test_resume_refuses_another_clip(tmp_path: pathlib.Path, capsys) -> None:
    out = tmp_path / "run"
    assert run_cli([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--resume",
                    "--frame-stride", "2"]) == 2
    assert "frame_stride" in capsys.readouterr().err


def test_sharded_run_equals_one_device_run(tmp_path: pathlib.Path,
                                           reference: pathlib.Path) -> None:
    """Batches of 128 pixels split 32 per simulated device (tests/conftest.py asks for 4): the
    same run up to float32 summation order (see tests/experiments/test_parallel.py)."""
    import jax

    from tests.experiments.test_parallel import RUN_PSNR_DB, assert_parallel_run_matches

    if len(jax.devices()) < 2:
        pytest.skip("needs several (simulated) devices; tests/conftest.py asks for 4")
    out = tmp_path / "sharded"
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--parallel", "sharded"]) == 0
    got, want = assert_parallel_run_matches(out, reference, steps=16, rows=2)
    for key in ("final_psnr", "final_eval_min_frame_psnr"):
        assert got[key] == pytest.approx(want[key], abs=RUN_PSNR_DB), key


def test_full_batch_optimizers_get_every_pixel() -> None:
    config = video.make_config(video.parser().parse_args(
        ["--optimizer", "lbfgs", "--frames", "3", "--size", "8x5"]))
    assert config.batch_size == 3 * 8 * 5 and config.size == "8x5"
    default = video.make_config(video.parser().parse_args([]))
    assert (default.frames, default.frame_stride, default.start_frame, default.size,
            default.video, default.batch_size) == (16, 1, 0, "64x64", None, 512)


def test_compare_task_video(tmp_path: pathlib.Path) -> None:
    from experiments import compare

    out = tmp_path / "grid"
    flags = [f for f in TINY if f not in ("--optimizer", "esgd", "--opt-arg", "warmup=3",
                                          "update_interval=5", "--activation", "gaussian")]
    argv = ["--task", "video", "--optimizers", "adam", "--baseline", "none", "--epochs", "1",
            *flags, "--out", str(out)]
    assert compare.main(argv) == 0
    report = (out / "report.md").read_text()
    assert "PSNR" in report and "made moving pattern" in report and "16x16" in report
    summary = json.loads((out / "gaussian-adam" / "summary.json").read_text())
    assert summary["config"]["task"] == "video" and summary["final_psnr"] is not None
    assert (out / "gaussian-adam" / "strip.png").is_file()


# ---------------------------------------------------------------------------------------------
# Bad input: exit code 2, one line naming the value, nothing trained


def _empty_mp4(directory: pathlib.Path) -> pathlib.Path:
    """An MP4 whose video stream holds no frames (written by FFmpeg itself)."""
    import subprocess

    import imageio_ffmpeg

    path = directory / "empty.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", "color=c=red:s=16x16:r=10", "-frames:v", "0", "-c:v", "libx264",
                    str(path)], check=True, capture_output=True)
    return path


def _text(directory: pathlib.Path) -> pathlib.Path:
    path = directory / "notes.mp4"
    path.write_text("this is not a video")
    return path


def _truncated(directory: pathlib.Path, tiny: pathlib.Path) -> pathlib.Path:
    path = directory / "truncated.mp4"
    path.write_bytes(tiny.read_bytes()[:200])
    return path


@pytest.mark.parametrize(("extra", "needles"), [
    (lambda d, v: ["--video", str(d / "missing.mp4")], ["missing.mp4", "no such file"]),
    (lambda d, v: ["--video", str(d)], ["a directory", "expected a video file"]),
    (lambda d, v: ["--video", str(_text(d))], ["notes.mp4", "not a video"]),
    (lambda d, v: ["--video", str(_truncated(d, v))], ["truncated.mp4", "not a video"]),
    (lambda d, v: ["--video", str(_empty_mp4(d))], ["empty.mp4", "without video frames"]),
    (lambda d, v: ["--video", str(v), "--frames", "4", "--frame-stride", "2"],
     ["--frames 4 --frame-stride 2 --start-frame 0", "needs 7 frames", "which has 6"]),
    (lambda d, v: ["--video", str(v), "--frames", "6", "--start-frame", "1"],
     ["--start-frame 1", "needs 7 frames", "which has 6"]),
    (lambda d, v: ["--video", str(v), "--size", "32"],
     ["--size 32x32", "larger than the 16x32 frames", "at most 16x32"]),
    (lambda d, v: ["--video", str(v), "--size", "8x64"], ["--size 8x64", "at most 16x32"]),
    (lambda d, v: ["--frames", "300"], ["--frames 300", "the made video", "which has 256"]),
    (lambda d, v: ["--frames", "0"], ["--frames 0", "positive"]),
    (lambda d, v: ["--frames", "-3", "--optimizer", "lbfgs"], ["--frames -3", "positive"]),
    (lambda d, v: ["--frame-stride", "0"], ["--frame-stride 0", "positive"]),
    (lambda d, v: ["--frame-stride", "-2"], ["--frame-stride -2", "positive"]),
    (lambda d, v: ["--start-frame", "-1"], ["--start-frame -1", "0"]),
    (lambda d, v: ["--size", "0"], ["--size 0", "positive"]),
    (lambda d, v: ["--size", "16x"], ["--size 16x", "HxW"]),
    (lambda d, v: ["--size", "big"], ["--size big", "HxW"]),
    (lambda d, v: ["--frames", "two"], ["--frames", "two"]),
    (lambda d, v: ["--batch-size", "1025"], ["--batch-size 1025", "at most 1024"]),
])
def test_bad_input_exits_2_with_one_line_before_any_work(
    tmp_path: pathlib.Path, tiny_mp4: pathlib.Path, capsys, extra, needles
) -> None:
    out = tmp_path / "run"
    assert run_cli([*TINY, "--out", str(out), *extra(tmp_path, tiny_mp4)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_check_names_the_flag_for_configs_built_in_python() -> None:
    with pytest.raises(UsageError, match="--frame-stride 0"):
        video.VideoConfig(frame_stride=0).check()
    with pytest.raises(UsageError, match="--size 3y4"):
        video.VideoConfig(size="3y4").check()
