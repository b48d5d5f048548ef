"""The comparison grid and the README demo, in a tiny configuration."""

import json

from experiments import compare, demo
from experiments.harness.report import time_to_target

TINY_GRID = ["--size", "16", "--depth", "2", "--width", "16", "--batch-size", "32",
             "--timing-steps", "3", "--eval-every", "1", "--no-progress"]
ESGD_OPTIONS = ["--opt-arg", "esgd.warmup=3", "--opt-arg", "esgd.update_interval=5"]


def test_grid_writes_the_report_table_and_plots(tmp_path, capsys, esgd_reference):
    out = tmp_path / "grid"
    argv = ["--optimizers", "esgd", "adam", "--activations", "gaussian", "--epochs", "2",
            "--target-psnr", "8", "--out", str(out), *TINY_GRID, *ESGD_OPTIONS]
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    report = (out / "report.md").read_text()
    for optimizer in ("esgd", "adam"):
        summary = json.loads((out / f"gaussian-{optimizer}" / "summary.json").read_text())
        assert summary["config"]["optimizer"] == optimizer and summary["steps"] == 16
    assert json.loads((out / "gaussian-adam" / "summary.json").read_text())["config"][
        "opt_args"] == {}  # the esgd.* options reach ESGD only
    for plot in ("loss_vs_steps.png", "loss_vs_time.png", "psnr_vs_epoch.png",
                 "psnr_vs_time.png"):
        assert (out / plot).is_file() and f"({plot})" in report
    assert "final PSNR (dB)" in printed and "epochs to 8 dB" in printed
    assert str(out / "report.md") in printed and str(out / "loss_vs_steps.png") in printed
    # The ESGD run is the reference run; it passes 8 dB in epoch 1, Adam at 1e-4 never does.
    reference = json.loads((esgd_reference / "summary.json").read_text())
    esgd_row = next(line for line in report.splitlines() if line.startswith("| gaussian   | esgd"))
    adam_row = next(line for line in report.splitlines() if line.startswith("| gaussian   | adam"))
    assert f"{reference['final_psnr']:.2f}" in esgd_row
    assert "not reached" not in esgd_row and "not reached" in adam_row
    # With --resume the finished grid is reused, not refused.
    assert compare.main([*argv, "--resume", "--timing-steps", "0"]) == 0


def test_demo_runs_esgd_and_adam_on_wavelet_and_gaussian(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(compare, "main", lambda argv: seen.append(list(argv)) or 0)
    assert demo.main(["--out", str(tmp_path / "demo")]) == 0
    (argv,) = seen
    flags = " ".join(argv)
    assert "--optimizers esgd adam" in flags and "--activations wavelet gaussian" in flags
    assert "--resume" in argv and "--task image" in flags
    assert "--size 128" in flags and "--epochs 30" in flags
    assert "ESGD vs Adam" in capsys.readouterr().out


def test_grid_checks_every_run_directory_before_training(tmp_path, capsys):
    out = tmp_path / "grid"
    (out / "gaussian-adam").mkdir(parents=True)
    (out / "gaussian-adam" / "config.json").write_text(json.dumps({"config": {"seed": 7}}))
    code = compare.main(["--optimizers", "esgd", "adam", "--activations", "gaussian",
                         "--out", str(out), *TINY_GRID])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert str(out / "gaussian-adam") in err
    assert not (out / "gaussian-esgd").exists()  # nothing trained


def test_unknown_names_in_the_grid_are_usage_errors(tmp_path, capsys):
    code = compare.main(["--optimizers", "esgd", "rmsprop", "--out", str(tmp_path), *TINY_GRID])
    assert code == 2 and "rmsprop" in capsys.readouterr().err
    code = compare.main(["--task", "sdf", "--out", str(tmp_path), *TINY_GRID])
    assert code == 2 and "sdf" in capsys.readouterr().err


def test_time_to_target_reads_the_first_row_reaching_it():
    rows = [{"epoch": 1.0, "time_s": 0.5, "train_psnr": 10.0},
            {"epoch": 2.0, "time_s": 1.0, "train_psnr": 20.5},
            {"epoch": 3.0, "time_s": 1.5, "train_psnr": 25.0}]
    assert time_to_target(rows, 20.0) == (2.0, 1.0)
    assert time_to_target(rows, 30.0) is None
