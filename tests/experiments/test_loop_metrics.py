"""What the loop logs besides the loss: per-window extremes of step metrics and the loss jump."""

from __future__ import annotations

import math

import numpy as np

from experiments.harness.loop import loss_jump, window_extremes
from experiments.harness.metrics import read_metrics
from tests.experiments.conftest import run_cli, tiny_args


def test_loss_jump_is_the_largest_step_to_step_ratio_across_windows() -> None:
    jump, last = loss_jump(np.array([1.0, 0.5, 4.0, 2.0]), None)
    assert jump == 8.0 and last == 2.0  # 0.5 -> 4.0
    jump, last = loss_jump(np.array([20.0, 10.0]), last)  # 2.0 -> 20.0 crosses the windows
    assert jump == 10.0 and last == 10.0
    jump, last = loss_jump(np.array([]), 3.0)
    assert math.isnan(jump) and last == 3.0
    jump, _ = loss_jump(np.array([1.0, np.inf, 0.5]), None)  # non-finite losses are left out
    assert jump == 0.5


def test_window_extremes_take_the_max_of_finite_step_metrics() -> None:
    window = [{"loss": 1.0, "finite": True, "max_update": 2.0, "frac": 0.1},
              {"loss": 9.0, "finite": False, "max_update": np.inf, "frac": 0.3},
              {"loss": 0.5, "finite": True, "max_update": 5.0, "frac": 0.2}]
    assert window_extremes(window) == {"max_update": 5.0, "frac": 0.3}
    assert window_extremes([{"loss": 1.0, "finite": True}]) == {}


def test_curvature_runs_log_loss_jump_and_diagnostics_and_first_order_runs_do_not(tmp_path) -> None:
    assert run_cli(tiny_args(tmp_path / "esgd", "--epochs", "2")) == 0
    rows = read_metrics(tmp_path / "esgd" / "metrics.csv")
    assert all(r["loss_jump"] is not None and r["loss_jump"] > 0 for r in rows)
    # The curvature diagnostics of the step: the window's largest update and tiny-root share.
    assert all(r["max_update"] > 0 for r in rows)
    assert all(0 <= r["small_curvature_fraction"] <= 1 for r in rows)
    assert run_cli(tiny_args(tmp_path / "adam", "--epochs", "1", "--optimizer", "adam",
                             esgd=False)) == 0
    header = (tmp_path / "adam" / "metrics.csv").read_text().splitlines()[0]
    assert "loss_jump" not in header and "max_update" not in header
