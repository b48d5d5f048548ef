"""The image CLI end to end: outputs, the documented summary, PSNR rising, one compilation."""

import json

import jax
import pytest
from jax import monitoring

from experiments.harness.metrics import read_metrics
from experiments.tasks import image
from experiments.tasks.image import SUMMARY_KEYS

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
DOCUMENTED = ("final_psnr", "steps", "wall_time_s", "optimizer_time_s", "config")


def test_summary_has_the_documented_keys(esgd_reference):
    summary = json.loads((esgd_reference / "summary.json").read_text())
    for key in (*DOCUMENTED, *SUMMARY_KEYS):
        assert key in summary, key
    assert summary["steps"] == 16 and summary["epochs"] == 2
    assert summary["config"]["optimizer"] == "esgd" and summary["config"]["size"] == 16
    assert summary["config"]["learning_rate"] == 0.15  # ESGD's reference rate, not given
    assert summary["wall_time_s"] > summary["train_time_s"] > 0
    assert summary["optimizer_time_s"] is not None and summary["optimizer_time_s"] >= 0
    assert summary["optimizer_state_bytes"] > 0


def test_outputs_exist(esgd_reference):
    for name in ("config.json", "metrics.csv", "reconstruction.png", "target.png", "error.png",
                 "convergence.png"):
        assert (esgd_reference / name).is_file(), name
    assert list((esgd_reference / "tensorboard").glob("events.out.tfevents.*"))
    assert (esgd_reference / "checkpoints" / "16").is_dir()


def test_psnr_rises(esgd_reference):
    rows = read_metrics(esgd_reference / "metrics.csv")
    assert [r["step"] for r in rows] == [8, 16]
    assert rows[-1]["train_psnr"] > rows[0]["train_psnr"]
    assert rows[-1]["eval_psnr"] > rows[0]["eval_psnr"]
    summary = json.loads((esgd_reference / "summary.json").read_text())
    assert summary["final_psnr"] == pytest.approx(rows[-1]["eval_psnr"])
    task = image.prepare(image.make_config(image.parser("t").parse_args(
        ["--size", "16", "--depth", "2", "--width", "16", "--batch-size", "32"])))
    initial = task.evaluate(task.init_params(jax.random.PRNGKey(0)))["psnr"]
    assert summary["final_psnr"] > initial + 0.5


def test_the_step_compiles_once(tmp_path):
    """No tracing or compilation after the first step (shapes and placements never change)."""
    events: list[tuple[str, int]] = []
    current = {"step": 0}

    def listener(event: str, duration: float, **kwargs) -> None:
        if event in (TRACE_EVENT, COMPILE_EVENT):
            events.append((event, current["step"]))

    def on_log(row):
        current["step"] = row["step"]

    args = image.parser("t").parse_args([
        "--size", "16", "--depth", "2", "--width", "16", "--batch-size", "32", "--epochs", "3",
        "--optimizer", "adam", "--log-every", "1", "--eval-every", "0", "--timing-steps", "0",
        "--checkpoint-every", "5", "--no-progress", "--out", str(tmp_path / "run")])
    monitoring.register_event_duration_secs_listener(listener)
    try:
        image.run(image.make_config(args), on_log=on_log)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    late = [e for e in events if 1 <= e[1] < 23]  # between step 1 and the final evaluation
    assert not late, late
    assert any(step == 0 for _, step in events)  # the listener does see the first compilation
