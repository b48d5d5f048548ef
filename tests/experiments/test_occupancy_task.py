"""The occupancy task end to end: a sphere field learns (IoU > 0.95), outputs and summary keys,
resume equals an uninterrupted run, bad input exits 2 with one line, compare --task occupancy."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.metrics import read_metrics
from experiments.tasks import occupancy
from tests.experiments.conftest import assert_trees_equal, run_until_sigterm

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("igl")

# A tiny run on the made torus+sphere: 3000 points, batch 500 (6 steps an epoch), a 2x16 field,
# ESGD refreshing on and off schedule.
TINY = ("--points", "3000", "--eval-points", "1000", "--batch-size", "500", "--depth", "2",
        "--width", "16", "--mesh-resolution", "16", "--timing-steps", "0", "--no-progress",
        "--no-cache", "--optimizer", "esgd", "--opt-arg", "warmup=3",
        "--opt-arg", "update_interval=5")


def run_cli(argv: list[str]) -> int:
    try:
        return occupancy.main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def sphere_obj(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("mesh") / "sphere.obj"
    trimesh.creation.icosphere(subdivisions=3, radius=0.6).export(path)
    return path


def test_a_small_sphere_field_reaches_iou_095(tmp_path: pathlib.Path,
                                              sphere_obj: pathlib.Path) -> None:
    out = tmp_path / "run"
    code = run_cli(["--mesh", str(sphere_obj), "--points", "20000", "--eval-points", "5000",
                    "--batch-size", "1000", "--depth", "3", "--width", "32",
                    "--optimizer", "adam", "--lr", "1e-2", "--epochs", "10",
                    "--mesh-resolution", "32", "--timing-steps", "3", "--no-progress",
                    "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_iou"] > 0.95
    first = read_metrics(out / "metrics.csv")[0]
    assert first["eval_iou"] < 0.9  # it learned in this run
    for key in ("final_iou", "final_iou_surface", "final_train_batch_iou", "final_loss",
                "time_per_step_s", "optimizer_time_s", "compile_time_s"):
        assert summary[key] is not None, key
    assert 0 < summary["final_iou_surface"] < 1
    mesh = trimesh.load(out / "mesh.ply")
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(np.median(radius) - 0.95) < 0.05  # the sphere fills 0.95 of the frame
    info = json.loads((out / "mesh.json").read_text())
    assert info["chamfer"] < 0.05
    assert (out / "mesh.png").stat().st_size > 1000
    assert list((tmp_path / "cache").glob("*.npz"))


def test_resume_equals_an_uninterrupted_run(tmp_path: pathlib.Path) -> None:
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert run_cli([*TINY, "--epochs", "2", "--out", str(ref)]) == 0
    assert run_cli([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    state, meta = read_checkpoint(out)
    ref_state, ref_meta = read_checkpoint(ref)
    assert meta["step"] == ref_meta["step"] == 12
    assert_trees_equal(state, ref_state)
    a = json.loads((out / "summary.json").read_text())
    b = json.loads((ref / "summary.json").read_text())
    assert a["resumed_from_step"] == 6
    assert a["final_iou"] == b["final_iou"] and a["final_iou_surface"] == b["final_iou_surface"]
    assert [r["loss"] for r in read_metrics(out / "metrics.csv")] == \
        [r["loss"] for r in read_metrics(ref / "metrics.csv")]


def test_resume_refuses_other_data(tmp_path: pathlib.Path, capsys) -> None:
    out = tmp_path / "run"
    assert run_cli([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    argv = [*TINY, "--epochs", "2", "--out", str(out), "--resume", "--data-seed", "1"]
    assert run_cli(argv) == 2
    assert "data_seed" in capsys.readouterr().err


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("extra", "expected"), [
    (lambda d: ["--mesh", str(d / "missing.obj")], "no such file"),
    (lambda d: ["--mesh", str(_write(d / "notes.txt", "hello"))], "not a mesh"),
    (lambda d: ["--mesh", str(_write(d / "v.obj", "v 0 0 0\nv 1 0 0\n"))], "has no faces"),
    (lambda d: ["--points", "0"], "--points 0: expected a positive integer"),
    (lambda d: ["--points", "-5"], "--points -5: expected a positive integer"),
    (lambda d: ["--points", "400"], "--batch-size 500: larger than the 400 training points"),
    (lambda d: ["--mesh-resolution", "1"], "--mesh-resolution 1"),
    (lambda d: ["--points", "ten"], "--points"),
])
def test_bad_input_exits_2_with_one_line_before_any_work(tmp_path: pathlib.Path, capsys,
                                                         extra, expected) -> None:
    out = tmp_path / "run"
    assert run_cli([*TINY, "--out", str(out), *extra(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err
    assert not out.exists()


def test_compare_task_occupancy(tmp_path: pathlib.Path) -> None:
    from experiments import compare

    out = tmp_path / "grid"
    argv = ["--task", "occupancy", "--optimizers", "esgd", "adam", "--epochs", "1",
            *TINY[:TINY.index("--optimizer")], "--out", str(out)]
    assert compare.main(argv) == 0
    report = (out / "report.md").read_text()
    assert "IoU" in report and "gaussian" in report and "made torus+sphere" in report
    # Fig. 6's curves (BCE against iterations and time, IoU against epochs); Fig. 7's meshes.
    for plot in ("loss_vs_steps.png", "loss_vs_time.png", "iou_vs_epoch.png",
                 "gaussian-esgd/mesh.png", "gaussian-adam/mesh.png"):
        assert (out / plot).stat().st_size > 1000, plot
    summaries = {}
    for cell in ("gaussian-esgd", "gaussian-adam"):
        summary = json.loads((out / cell / "summary.json").read_text())
        assert summary["config"]["task"] == "occupancy" and summary["final_iou"] is not None
        summaries[cell] = summary
    # --resume reuses the finished runs: nothing is trained again.
    assert compare.main([*argv, "--resume"]) == 0
    for cell, before in summaries.items():
        after = json.loads((out / cell / "summary.json").read_text())
        assert after == before and after["resumed_from_step"] is None


def test_muon_and_sophia_in_the_occupancy_comparison(tmp_path: pathlib.Path) -> None:
    """Issue 14: the optimizers optax ships now run in the occupancy grid too (registry,
    harness, BCE task); each lowers the training loss in a short run."""
    from experiments import compare

    out = tmp_path / "grid"
    argv = ["--task", "occupancy", "--optimizers", "muon", "sophia_h", "sophia_e",
            "--baseline", "none", "--epochs", "3", *TINY[:TINY.index("--optimizer")],
            "--out", str(out)]
    assert compare.main(argv) == 0
    for name in ("muon", "sophia_h", "sophia_e"):
        run = out / f"gaussian-{name}"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["config"]["optimizer"] == name and summary["steps"] == 18
        losses = [r["loss"] for r in read_metrics(run / "metrics.csv")]
        assert len(losses) == 3 and losses[-1] < losses[0], (name, losses)
        assert 0 <= summary["final_iou"] <= 1
    assert "sophia_e" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A 2-epoch (12-step) ESGD run on one device (the parallel runs' reference)."""
    out = tmp_path_factory.mktemp("occupancy-one") / "run"
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("mode", ["sharded", "pmap"])
def test_parallel_run_equals_one_device_run(tmp_path: pathlib.Path, one_device_run: pathlib.Path,
                                            mode: str) -> None:
    """Batches of 500 points split 125 per simulated device (tests/conftest.py asks for 4):
    the same run up to float32 summation order (integer state exact, float state within a
    relative L2 of 1e-4, epoch losses within 1e-3, IoUs within 0.01)."""
    import jax

    from tests.experiments.test_parallel import assert_parallel_run_matches

    if len(jax.devices()) < 2:
        pytest.skip("needs several (simulated) devices; tests/conftest.py asks for 4")
    out = tmp_path / mode
    assert run_cli([*TINY, "--epochs", "2", "--out", str(out), "--parallel", mode]) == 0
    b, a = assert_parallel_run_matches(out, one_device_run, steps=12, rows=2)
    for key in ("final_iou", "final_iou_surface"):
        assert b[key] == pytest.approx(a[key], abs=0.01), key


def test_sigterm_mid_epoch_saves_a_checkpoint_and_resume_matches(
    tmp_path: pathlib.Path, one_device_run: pathlib.Path
) -> None:
    """The image task's signal guarantee on the occupancy task: SIGTERM at step 2 of a 6-step
    epoch exits 128 + 15 with a checkpoint; resuming ends bit for bit where the uninterrupted
    run does."""
    import signal


    out = tmp_path / "run"
    argv = [*TINY, "--epochs", "2", "--log-every", "2", "--out", str(out)]
    config = occupancy.make_config(occupancy.parser().parse_args(argv))

    code = run_until_sigterm(occupancy.run, config, step=2)
    assert code == 128 + signal.SIGTERM
    assert not (out / "summary.json").exists()
    _, meta = read_checkpoint(out)
    assert 2 <= meta["step"] < 6  # mid-epoch, right after the signal
    assert run_cli([*argv, "--resume"]) == 0
    state, meta = read_checkpoint(out)
    ref_state, _ = read_checkpoint(one_device_run)
    assert meta["step"] == 12
    assert_trees_equal(state, ref_state)


def test_the_step_compiles_once(tmp_path: pathlib.Path) -> None:
    """The training points stay on the device and each step gathers its batch there: no tracing
    or compilation after the first step (ESGD refreshing on and off schedule included)."""
    from jax import monitoring

    from tests.experiments.test_image_cli import COMPILE_EVENT, TRACE_EVENT

    events: list[tuple[str, int]] = []
    current = {"step": 0}

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if event in (TRACE_EVENT, COMPILE_EVENT):
            events.append((event, current["step"]))

    def on_log(row: dict) -> None:
        current["step"] = row["step"]

    argv = [*TINY, "--epochs", "3", "--log-every", "1", "--eval-every", "0",
            "--checkpoint-every", "5", "--out", str(tmp_path / "run")]
    config = occupancy.make_config(occupancy.parser().parse_args(argv))
    monitoring.register_event_duration_secs_listener(listener)
    try:
        occupancy.run(config, on_log=on_log)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    late = [e for e in events if 1 <= e[1] < 17]  # between step 1 and the final evaluation
    assert not late, late
    assert any(step == 0 for _, step in events)  # the listener does see the first compilation


def test_defaults_are_the_papers_setting() -> None:
    """Issue 12's defaults: a 5x256 Gaussian field with sigma 0.09 and one logit, 1M points,
    batch 50,000, 100k held-out points per set, a 256^3 marching-cubes grid, one fixed set; a
    full-batch optimizer gets every point."""
    config = occupancy.make_config(occupancy.parser().parse_args([]))
    assert (config.activation, config.batch_size, config.points, config.eval_points,
            config.mesh_resolution, config.pool, config.mesh) == \
        ("gaussian", 50_000, 1_000_000, 100_000, 256, 1, None)
    hp = occupancy.make_model(config.activation).hyperparameters()
    assert (hp["depth"], hp["width"], hp["out_features"], hp["sigma"]) == (5, 256, 1, 0.09)
    full = occupancy.make_config(occupancy.parser().parse_args(
        ["--optimizer", "lbfgs", "--points", "3000", "--pool", "2"]))
    assert full.batch_size == 6000
