"""``python -m experiments.nerf`` end to end: a tiny synthetic scene is learned, resuming equals
an uninterrupted run, the NeRF summary keys, and bad input exits 2 with one line."""

import json

import pytest

from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.metrics import read_metrics
from experiments.tasks import nerf
from tests.experiments.conftest import assert_trees_equal

# 16x16 synthetic views (24 train, 4 test), a 3x32 Gaussian radiance field.
SMALL = ("--image-scale", "0.0625", "--rays", "256", "--samples", "16", "--depth", "3",
         "--width", "32", "--test-views", "2", "--timing-steps", "5", "--no-progress")
# 8x8 views, 2x8 field, Adam (the harness's own resume tests cover ESGD's state; here the
# NeRF batches, their stratified jitter included, must repeat), no timing replay.
TINY = ("--image-scale", "0.03125", "--rays", "32", "--samples", "4", "--depth", "2",
        "--width", "8", "--test-views", "1", "--timing-steps", "0", "--no-progress",
        "--optimizer", "adam", "--checkpoint-every", "4", "--log-every", "2")


def run_cli(argv):
    try:
        return nerf.main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


def test_a_tiny_synthetic_scene_is_learned(tmp_path):
    out = tmp_path / "run"
    argv = [*SMALL, "--optimizer", "adam", "--lr", "5e-3", "--iterations", "250",
            "--target-psnr", "11", "--out", str(out)]
    assert run_cli(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in nerf.SUMMARY_KEYS:
        assert key in summary, key
    # The best constant colour scores 10.7 dB on these test views (white alone 9.7 dB).
    assert summary["test_psnr"] > 12.5, summary["test_psnr"]
    assert 0 < summary["test_ssim"] <= 1 and summary["steps"] == 250
    assert summary["train_psnr"] > 12.5
    reached = summary["iterations_to_target"]
    assert reached is not None and 0 < reached <= 250
    assert summary["optimizer_seconds_to_target"] > 0
    rows = [r for r in read_metrics(out / "metrics.csv") if r.get("train_psnr") is not None]
    smooth = nerf.smoothed([r["train_psnr"] for r in rows])
    assert max(s for r, s in zip(rows, smooth, strict=True) if r["step"] < reached) < 11
    assert (out / "test_000.png").exists() and (out / "convergence.png").exists()
    from PIL import Image

    with Image.open(out / "orbit.gif") as gif:
        assert gif.n_frames == 12 and gif.size == (16, 16)


def test_smoothing_is_tensorboards_debiased_ema():
    assert nerf.smoothed([10.0, 10.0, 10.0]) == pytest.approx([10.0, 10.0, 10.0])
    w = nerf.SMOOTHING
    two = nerf.smoothed([10.0, 20.0])
    assert two[1] == pytest.approx((w * (1 - w) * 10 + (1 - w) * 20) / (1 - w**2))
    assert nerf.first_reach([{"step": 5, "train_psnr": 30.0}], 40.0)[0] is None


def test_resume_equals_an_uninterrupted_run(tmp_path):
    # A constant --lr: the default decay spans --iterations, so extending a run changes it.
    ref, out = tmp_path / "ref", tmp_path / "run"
    constant = ("--lr", "0.01")
    assert run_cli([*TINY, *constant, "--iterations", "12", "--out", str(ref)]) == 0
    assert run_cli([*TINY, *constant, "--iterations", "6", "--out", str(out)]) == 0
    assert run_cli([*TINY, *constant, "--iterations", "12", "--out", str(out), "--resume"]) == 0
    state, meta = read_checkpoint(out)
    ref_state, ref_meta = read_checkpoint(ref)
    assert meta["step"] == ref_meta["step"] == 12
    assert_trees_equal(state, ref_state)
    assert [r["loss"] for r in read_metrics(out / "metrics.csv")] == \
        [r["loss"] for r in read_metrics(ref / "metrics.csv")]
    summary = json.loads((out / "summary.json").read_text())
    reference = json.loads((ref / "summary.json").read_text())
    assert summary["resumed_from_step"] == 6
    assert summary["test_psnr"] == reference["test_psnr"]


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--scene", "/nonexistent/scene"], "--scene /nonexistent/scene: no such directory"),
    (["--preset", "gpu"], "--preset 'gpu'"),
    (["--activation", "sine"], "--activation 'sine'"),
    (["--image-scale", "2"], "--image-scale 2"),
    (["--rays", "0"], "--rays 0"),
    (["--batch-size", "64"], "--batch-size"),
    (["--rays", "100000"], "--rays 100000: more than"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, fragment):
    code = run_cli([*TINY, "--iterations", "2", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "r" / "checkpoints").exists()
