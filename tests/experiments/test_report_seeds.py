"""Seed aggregation in comparison reports, on hand-made run directories (no training)."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

from experiments import compare
from experiments.harness.plots import seed_band
from experiments.harness.report import RunResult, cells, spread, table, wins, write_report


def make_run(root: pathlib.Path, activation: str, optimizer: str, seed: int, final: float,
             train_psnr: list[float]) -> RunResult:
    """A run directory with the files a report reads: summary.json and metrics.csv."""
    out = root / f"{activation}-{optimizer}" / f"seed{seed}"
    out.mkdir(parents=True)
    summary = {"metric": "psnr", "metric_label": "PSNR", "metric_unit": "dB",
               "final_psnr": final, "learning_rate": 0.1, "time_per_step_s": 0.002,
               "optimizer_time_per_step_s": 0.001, "optimizer_state_bytes": 2048,
               "config": {"seed": seed, "optimizer": optimizer, "activation": activation}}
    (out / "summary.json").write_text(json.dumps(summary))
    lines = ["step,epoch,time_s,loss,train_psnr,eval_psnr"]
    for i, p in enumerate(train_psnr, start=1):
        lines.append(f"{10 * i},{i},{0.5 * i},{10 ** (-p / 10)},{p},")
    (out / "metrics.csv").write_text("\n".join(lines) + "\n")
    return RunResult(activation, optimizer, out, summary)


@pytest.fixture
def grid(tmp_path: pathlib.Path) -> list[RunResult]:
    esgd = [30.0, 22.0, 31.0, 29.0, float("nan")]  # seed 4 diverged
    adam = [27.0, 27.5, 26.5, 28.0, 27.2]
    results = []
    for seed, (e, a) in enumerate(zip(esgd, adam, strict=True)):
        results.append(make_run(tmp_path, "wavelet", "esgd", seed, e, [10, 20 + seed, e]))
        results.append(make_run(tmp_path, "wavelet", "adam", seed, a, [12, 18, a]))
    return results


def test_cells_median_spread_and_wins(grid: list[RunResult]) -> None:
    grouped = cells(grid)
    assert list(grouped) == [("wavelet", "esgd"), ("wavelet", "adam")]
    assert [r.seed for r in grouped[("wavelet", "esgd")]] == [0, 1, 2, 3, 4]
    med, lo, hi = spread([r.final for r in grouped[("wavelet", "adam")]])
    assert (med, lo, hi) == (27.2, 26.5, 28.0)
    med, lo, hi = spread([r.final for r in grouped[("wavelet", "esgd")]])
    assert med == 29.0 and lo == -math.inf and hi == 31.0  # a diverged seed is the worst
    # ESGD beats Adam on seeds 0, 2 and 3; loses on 1 and on the diverged seed 4.
    assert wins(grouped[("wavelet", "esgd")], grouped[("wavelet", "adam")]) == (3, 5)
    assert wins(grouped[("wavelet", "adam")], grouped[("wavelet", "esgd")]) == (2, 5)


def test_wins_pair_runs_by_seed_not_by_position(tmp_path: pathlib.Path) -> None:
    a = [make_run(tmp_path, "sine", "esgd", s, v, [v]) for s, v in ((3, 20.0), (1, 30.0))]
    b = [make_run(tmp_path, "sine", "adam", s, v, [v]) for s, v in ((1, 25.0), (2, 10.0))]
    assert wins(a, b) == (1, 1)  # only seed 1 is shared: 30 > 25


def test_table_rows_give_median_min_max_wins_and_targets(grid: list[RunResult]) -> None:
    rows = {r["optimizer"]: r for r in table(grid, 25.0)}
    esgd, adam = rows["esgd"], rows["adam"]
    assert esgd["seeds"] == "5" and esgd["final PSNR (dB) median"] == "29.00"
    assert esgd["min to max"] == "— to 31.00" and adam["min to max"] == "26.50 to 28.00"
    assert esgd["vs adam"] == "3/5 > adam" and adam["vs adam"] == "—"
    # ESGD's third logged epoch reaches 25 dB on seeds 0, 2, 3 (finals 30, 31, 29); Adam's on
    # all five; both at epoch 3 in the hand-made logs, 1.5 s.
    assert esgd["epochs to 25 dB"] == "3 (3/5)" and adam["epochs to 25 dB"] == "3 (5/5)"
    assert adam["seconds to 25 dB"] == "1.50 (5/5)"
    assert table(grid, 40.0)[0]["epochs to 40 dB"] == "not reached"


def test_report_and_band_plots(grid: list[RunResult], tmp_path: pathlib.Path) -> None:
    report = write_report(tmp_path, grid, target=25.0, title="t", settings={"image": "x"})
    text = report.read_text()
    assert "3/5 > adam" in text and "median" in text and "band" in text
    for name in ("loss_vs_steps", "loss_vs_time", "psnr_vs_epoch", "psnr_vs_time"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and f"({name}.png)" in text
    assert text.count("seed ") >= 10  # every run is listed with its seed


def test_seed_band_is_median_and_min_max_per_logged_row(grid: list[RunResult]) -> None:
    esgd = [r.rows for r in cells(grid)[("wavelet", "esgd")]]
    xs, mid, lo, hi = seed_band(esgd, "epoch", "train_psnr")
    np.testing.assert_array_equal(xs, [1, 2, 3])
    np.testing.assert_array_equal(mid, [10, 22, 29.5])  # NaN of the diverged seed is skipped
    np.testing.assert_array_equal(lo, [10, 20, 22])
    np.testing.assert_array_equal(hi, [10, 24, 31])
    assert seed_band([[{"epoch": 1.0}]], "epoch", "train_psnr") is None


def test_grid_configs_with_seeds_give_one_run_directory_per_seed(tmp_path: pathlib.Path) -> None:
    args = compare.parser().parse_args(["--optimizers", "esgd", "adam", "--activations", "sine",
                                        "--seeds", "0", "3", "--out", str(tmp_path)])
    configs = compare.grid_configs(args)
    assert [(c.optimizer, c.seed) for c in configs] == [
        ("esgd", 0), ("esgd", 3), ("adam", 0), ("adam", 3)]
    assert configs[1].out == str(tmp_path / "sine-esgd" / "seed3")
    single = compare.grid_configs(compare.parser().parse_args(["--seed", "7",
                                                                "--out", str(tmp_path)]))
    assert [(c.out, c.seed) for c in single] == [(str(tmp_path / "gaussian-esgd"), 7),
                                                 (str(tmp_path / "gaussian-adam"), 7)]


def test_every_run_of_a_plot_has_its_own_look() -> None:
    from experiments.harness.plots import run_styles

    labels = [f"opt{i}" for i in range(30)]
    styles = run_styles(labels)
    assert len(set(styles.values())) == 30
    assert styles["opt0"] == ("C0", "-") and styles["opt10"] == ("C0", "--")


def test_panels_with_their_own_lines_share_one_legend_of_runs(tmp_path: pathlib.Path) -> None:
    """Several panels, each with marked targets (the time-to-quality plots): every panel draws,
    and the runs keep their look on every panel."""
    from experiments.harness.plots import PlotSpec, comparison_plots

    def seeds(offset: float) -> list[list[dict[str, float]]]:
        return [[{"step": 10 * i, "train_psnr": offset + i + s} for i in range(1, 6)]
                for s in range(3)]

    runs = [(g, o, seeds(k)) for g in ("sine", "gaussian") for k, o in enumerate(("adam", "esgd"))]
    paths = comparison_plots(
        tmp_path, runs, plots=[PlotSpec("psnr", "step", "train_psnr", "step", "PSNR")],
        hlines={"sine": {"common target": 12.0, "Adam's final": 14.0}, "gaussian": 13.0})
    assert paths["psnr"].stat().st_size > 0


def test_a_collapsed_seed_psnr_band_is_clipped_below_the_medians() -> None:
    from experiments.harness.plots import _pyplot, clip_low_bands

    plt = _pyplot()
    _, ax = plt.subplots()
    xs = np.arange(10)
    ax.plot(xs, np.linspace(10, 30, 10))
    ax.fill_between(xs, np.where(xs == 3, -300.0, 8.0), np.full(10, 32.0))  # one seed collapsed
    assert ax.get_ylim()[0] < -250
    assert clip_low_bands(ax, 10.0, 30.0)
    assert ax.get_ylim()[0] == pytest.approx(5.0)  # a quarter of the 20 dB span below 10
    assert any("clipped" in t.get_text() for t in ax.texts)
    _, calm = plt.subplots()
    calm.plot(xs, np.linspace(10, 30, 10))
    calm.fill_between(xs, np.full(10, 8.0), np.full(10, 32.0))
    before = calm.get_ylim()
    assert not clip_low_bands(calm, 10.0, 30.0) and calm.get_ylim() == before
    plt.close("all")


def test_a_diverged_seed_band_is_clipped_near_the_medians() -> None:
    from experiments.harness.plots import _pyplot, clip_bands

    plt = _pyplot()
    fig, ax = plt.subplots()
    ax.set_yscale("log")
    xs = np.arange(10)
    ax.plot(xs, np.full(10, 0.5))
    ax.fill_between(xs, np.full(10, 0.1), np.where(xs == 5, 1e21, 1.0))  # one seed blew up
    assert ax.get_ylim()[1] > 1e20
    assert clip_bands(ax, 0.5)
    assert ax.get_ylim()[1] == pytest.approx(5.0)
    assert any("clipped" in t.get_text() for t in ax.texts)
    # A panel whose bands stay near the medians is left alone.
    _, calm = plt.subplots()
    calm.set_yscale("log")
    calm.plot(xs, np.full(10, 0.5))
    calm.fill_between(xs, np.full(10, 0.3), np.full(10, 0.9))
    before = calm.get_ylim()
    assert not clip_bands(calm, 0.5) and calm.get_ylim() == before
    plt.close("all")
