"""The companion's L-BFGS claims on audio and video (issue 22, parts 2 and 3): the section on
hand-made archives whose answers are known, its seed-by-seed judging, the driver's checks and a
tiny real grid through it, and the frame-block split (one implementation for image patches and
video blocks)."""

from __future__ import annotations

import csv
import json
import pathlib

import jax
import numpy as np
import pytest

from experiments.paper import reproduction, signals
from experiments.tasks import patches


def _write_run(root: pathlib.Path, signal: str, field: str, opt: str, seed: int,
               train: list[float], dt: float) -> None:
    """A finished full-batch run: one logged row per iteration, ``dt`` seconds each."""
    run = root / signal / f"{field}-{opt}" / f"seed{seed}"
    run.mkdir(parents=True)
    with open(run / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["step", "epoch", "time_s", "loss", "train_psnr"])
        w.writeheader()
        for i, p in enumerate(train):
            w.writerow({"step": i + 1, "epoch": i + 1, "time_s": dt * (i + 1),
                        "loss": 10 ** (-p / 10), "train_psnr": p})
    (run / "summary.json").write_text(json.dumps({
        "metric": "psnr", "final_psnr": train[-1], "epochs": len(train), "steps": len(train),
        "config": {"activation": field, "optimizer": opt, "seed": seed, "depth": 5,
                   "width": 256, "audio": f"clips/{signal}.wav"},
    }))


def _grid(root: pathlib.Path) -> None:
    """Front_Center only. sine: L-BFGS reaches the common target (35 dB, Adam's median; ESGD
    did not learn, Muon's median is 36) at iteration 2 on every seed, Adam at 3; L-BFGS's
    iterations take 0.2 s (1.0 s on seed 4), Adam's 0.5 s: L-BFGS first in time on 4/5.
    relu_pe: target 30 (L-BFGS's median); both reach it at iteration 3, L-BFGS at 1 s an
    iteration, Adam at 0.5 s: Adam first on 5/5. gaussian: 4 seeds only."""
    for s in range(5):
        _write_run(root, "Front_Center", "sine", "lbfgs", s, [20, 36, 40],
                   1.0 if s == 4 else 0.2)
        _write_run(root, "Front_Center", "sine", "adam", s, [20, 25, 35], 0.5)
        _write_run(root, "Front_Center", "sine", "esgd", s, [20, 21, 22], 0.4)
        _write_run(root, "Front_Center", "sine", "muon", s, [20, 28, 36], 0.5)
        _write_run(root, "Front_Center", "relu_pe", "lbfgs", s, [20, 24, 30], 1.0)
        _write_run(root, "Front_Center", "relu_pe", "adam", s, [20, 28, 33], 0.5)
        if s < 4:
            _write_run(root, "Front_Center", "gaussian", "lbfgs", s, [20, 30, 40], 0.1)
            _write_run(root, "Front_Center", "gaussian", "adam", s, [20, 25, 30], 0.5)


def _claim(claims: list[str], signal: str, field: str) -> str:
    return next(c for c in claims if c.startswith(f"- Companion, {signal}, {field}:"))


def test_section_races_each_field_to_its_common_target_and_judges_seed_by_seed(
        tmp_path: pathlib.Path) -> None:
    _grid(tmp_path)
    lines, claims = signals.reproduction_section(tmp_path)
    text = "\n".join(lines)
    assert "curvature_aware_coordinate_networks_intro.txt" in text
    assert "sine, common target 35 dB (set by adam):" in text
    assert "| lbfgs | 5 | 40.00 (40.00-40.00) | 0.4 (0.4-2.0) | 2 (2-2) | 5/5 |" in text
    assert "| adam | 5 | 35.00 (35.00-35.00) | 1.5 (1.5-1.5) | 3 (3-3) | 5/5 |" in text
    assert "| esgd | 5 | 22.00 (22.00-22.00) | not reached | not reached | 0/5 |" in text
    assert "| muon | 5 | 36.00 (36.00-36.00) | 1.5 (1.5-1.5) | 3 (3-3) | 5/5 |" in text
    assert "relu_pe, common target 30 dB (set by lbfgs):" in text
    sine = _claim(claims, "Front_Center", "sine")
    assert "L-BFGS in less time on 4/5 seeds, Adam on 1/5" in sine
    assert "fewer iterations on 5/5" in sine and sine.endswith("**reproduced**")
    relu = _claim(claims, "Front_Center", "relu_pe")
    assert "Adam reaches the target in less time than L-BFGS" in relu
    assert "L-BFGS in less time on 0/5 seeds, Adam on 5/5" in relu
    assert relu.endswith("**reproduced**")
    # Why, from the same runs: time to the target = iterations to it x seconds per iteration.
    assert ("on the 5 seeds where both got there, L-BFGS needed 0.67x (0.67-0.67x) Adam's "
            "iterations at 0.40x (0.40-2.00x) its seconds per iteration") in text
    assert "0.27x (0.27-1.33x) its time." in text  # seed 4's slow iterations: 2.0 s / 1.5 s
    assert "1.00x (1.00-1.00x) Adam's iterations at 2.00x (2.00-2.00x)" in text  # relu_pe
    # The signals that did not run are said to be so, each field of each.
    for name in ("Side_Left", "bikes"):
        assert all(_claim(claims, name, f).endswith("not run yet") for f in signals.ACTIVATIONS)
    assert "### bikes" in text and "Not run yet." in text
    assert "Frame-block split on video" in text and "video-patches" in text


def test_a_claim_is_judged_only_on_five_seeds_and_the_ordering_can_fail(
        tmp_path: pathlib.Path) -> None:
    _grid(tmp_path)
    _, claims = signals.reproduction_section(tmp_path)
    assert _claim(claims, "Front_Center", "gaussian").endswith(
        "not judged (4 seeds; a verdict needs 5)")
    # Slow L-BFGS iterations on every seed turn the sine ordering around.
    for s in range(5):
        metrics = tmp_path / "Front_Center" / "sine-lbfgs" / f"seed{s}" / "metrics.csv"
        rows = list(csv.DictReader(metrics.open()))
        for r in rows:
            r["time_s"] = str(float(r["step"]) * 2.0)
        with metrics.open("w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    _, claims = signals.reproduction_section(tmp_path)
    sine = _claim(claims, "Front_Center", "sine")
    assert "L-BFGS in less time on 0/5 seeds, Adam on 5/5" in sine
    assert sine.endswith("**not reproduced**")


def test_why_names_a_stall_apart_from_the_cost_of_an_iteration(tmp_path: pathlib.Path) -> None:
    """L-BFGS stalls at 30 dB on seeds 3 and 4, below Adam's 35 (the common target): those
    seeds are a stall, not a cost, and the iteration ratios come from seeds 0-2 alone."""
    for s in range(5):
        _write_run(tmp_path, "Front_Center", "sine", "lbfgs", s,
                   [20, 36, 40] if s < 3 else [20, 29, 30], 0.2)
        _write_run(tmp_path, "Front_Center", "sine", "adam", s, [20, 25, 35], 0.5)
    lines, _ = signals.reproduction_section(tmp_path)
    (why,) = [line for line in lines if line.startswith("Why")]
    assert "on the 3 seeds where both got there, L-BFGS needed 0.67x (0.67-0.67x)" in why
    assert ("L-BFGS never got there on 2/5 seeds (final training PSNR 30.00 (30.00-30.00) dB "
            "against the target 35): it stalls") in why


def test_a_missing_signal_is_named_before_any_training(tmp_path: pathlib.Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    missing = str(tmp_path / "nope.wav")
    code = signals.main(["--signals", "chirp", missing, "--out", str(tmp_path / "out")])
    assert code == 2
    assert missing in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert signals.main(["--signals", "chirp", "--task", "image"]) == 2  # set by the driver


def test_the_driver_trains_a_full_batch_grid_per_signal_and_the_page_renders_it(
        tmp_path: pathlib.Path) -> None:
    out = tmp_path / "grids"
    code = signals.main(["--signals", "chirp", "made-video", "--audio-duration", "0.02",
                         "--audio-rate", "4000", "--video-frames", "2", "--video-size", "4x6",
                         "--activations", "sine", "--optimizers", "lbfgs", "adam", "--seeds",
                         "0", "--depth", "2", "--width", "8", "--epochs", "2", "--no-progress",
                         "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["chirp", "made-video"]
    for name, examples in (("chirp", 80), ("made-video", 2 * 4 * 6)):
        for opt in ("lbfgs", "adam"):
            summary = json.loads((out / name / f"sine-{opt}" / "seed0" / "summary.json")
                                 .read_text())
            assert summary["config"]["batch_size"] == examples  # full batch for every optimizer
            assert summary["steps"] == 2
    section = reproduction.SECTIONS["signals"]
    assert section.has_results(out)
    lines, claims = section.render(out, tmp_path / "assets")
    assert "### chirp" in lines and "### made-video" in lines
    assert _claim(claims, "chirp", "sine").endswith("not judged (1 seed; a verdict needs 5)")
    assert _claim(claims, "chirp", "gaussian").endswith("not run yet")


@pytest.mark.parametrize("grid", [(1, 1, 1), (2, 1, 3), (4, 2, 1)])
def test_stitching_inverts_splitting_and_blocks_are_the_grid_cells(grid) -> None:
    video = np.random.default_rng(0).random((4, 6, 9, 3)).astype(np.float32)
    blocks = patches.split_blocks(video, grid)
    b = tuple(n // g for n, g in zip(video.shape[:3], grid, strict=True))
    assert blocks.shape == (np.prod(grid), *b, 3)
    # Block k of the row-major grid is the cell (k // (g1 g2), (k // g2) % g1, k % g2).
    for k, block in enumerate(blocks):
        i, j, m = np.unravel_index(k, grid)
        np.testing.assert_array_equal(
            block, video[i * b[0]:(i + 1) * b[0], j * b[1]:(j + 1) * b[1], m * b[2]:(m + 1) * b[2]])
    np.testing.assert_array_equal(patches.stitch_blocks(blocks, grid), video)


def test_block_coordinates_are_the_tasks_own_grids() -> None:
    from experiments.tasks.image_data import pixel_coords
    from experiments.tasks.video_data import video_coords

    np.testing.assert_array_equal(patches.grid_coords((3, 5)), pixel_coords(3, 5))
    np.testing.assert_array_equal(patches.grid_coords((2, 3, 5)), video_coords(2, 3, 5))


def test_vmapped_block_fit_is_each_block_fitted_alone() -> None:
    from experiments.tasks.field_factory import make_field
    from experiments.tasks.video_data import made_video

    video = made_video(range(4), 4, 6)
    model = make_field("sine", depth=2, width=8)
    fit = patches.BlockFit(video, (2, 1, 1), model)
    params0, state = fit.init(0)
    params = params0
    for _ in range(4):
        params, state, losses = fit.step(params, state)
    together = np.asarray(fit._predict(params))
    for k, block in enumerate(patches.split_blocks(video, (2, 1, 1))):
        alone = patches.BlockFit(block, (1, 1, 1), model)
        p = jax.tree.map(lambda x, k=k: x[k:k + 1], params0)
        s = alone.init_state(p)
        for _ in range(4):
            p, s, loss = alone.step(p, s)
        np.testing.assert_allclose(np.asarray(loss)[0], np.asarray(losses)[k], rtol=1e-4)
        np.testing.assert_allclose(np.asarray(alone._predict(p))[0], together[k], rtol=1e-4,
                                   atol=1e-5)


def test_video_patches_writes_the_split_result_and_the_section_renders_it(
        tmp_path: pathlib.Path) -> None:
    out = tmp_path / "signals" / "video_patches"
    argv = ["video-patches", "--video", "", "--frames", "2", "--size", "4x4", "--blocks", "2",
            "1", "2", "--patch-depth", "2", "--patch-width", "8", "--iterations", "4",
            "--eval-every", "2", "--adam-depth", "2", "--adam-width", "8", "--adam-epochs", "3",
            "--target-psnr", "5", "--seeds", "0", "1", "--out", str(out)]
    assert signals.main(argv) == 0
    result = json.loads((out / "patches.json").read_text())
    assert result["seeds"] == [0, 1] and result["blocks"] == [2, 1, 2]
    assert [len(r["lbfgs_rows"]) for r in result["runs"]] == [2, 2]
    assert (out / "patches_psnr_vs_time.png").is_file()
    lines, _ = signals.reproduction_section(tmp_path / "signals")
    text = "\n".join(lines)
    assert "2x1x2 (time x rows x columns) blocks" in text
    rows = [ln for ln in lines if ln.startswith(("| L-BFGS, frame-block", "| Adam, one field"))]
    assert len(rows) == 2 and all(r.endswith("/2 |") for r in rows)
    bad = [a if a != "2" or i != 8 else "3" for i, a in enumerate(argv)]  # --blocks 3 1 2
    assert signals.main([*bad[:-1], str(tmp_path / "other")]) == 2


def test_what_ran_names_the_default_field_when_no_size_was_given(
        tmp_path: pathlib.Path) -> None:
    # The driver without --depth/--width writes None into the config: the harness's 5x256.
    _grid(tmp_path)
    for path in (tmp_path / "Front_Center").glob("*/seed*/summary.json"):
        summary = json.loads(path.read_text())
        summary["config"].update(depth=None, width=None)
        path.write_text(json.dumps(summary))
    lines, _ = signals.reproduction_section(tmp_path)
    assert "What ran: clips/Front_Center.wav; depth 5, width 256, 3 iterations." in lines


def test_probe_section_sets_each_change_beside_the_main_grid(tmp_path: pathlib.Path) -> None:
    # Main grid as _grid. Probes: L-BFGS with 100 pairs reaches 35 dB (Adam's median, the
    # common target) at iteration 2 in 0.6 s; on the 3x64 field L-BFGS (0.1 s an iteration)
    # and Adam (0.2 s) both reach the common 33 dB at iteration 3: L-BFGS first in time on 5/5.
    _grid(tmp_path)
    probes = tmp_path / signals.PROBE_DIR
    for s in range(5):
        _write_run(probes / "memory100", "Front_Center", "sine", "lbfgs", s, [20, 38, 41], 0.3)
        _write_run(probes / "small", "Front_Center", "sine", "lbfgs", s, [20, 30, 33], 0.1)
        _write_run(probes / "small", "Front_Center", "sine", "adam", s, [20, 32, 34], 0.2)
    # A clip with one probe only and no main grid: its table alone, no size probe.
    _write_run(probes / "memory100", "Side_Left", "sine", "lbfgs", 0, [20, 30], 0.1)
    lines, claims = signals.reproduction_section(tmp_path)
    text = "\n".join(lines)
    assert "### Why L-BFGS loses on a sine field here: probes" in lines
    assert "Side_Left, L-BFGS keeping 100" in text and "Side_Left, a 3x64" not in text
    assert f"### {signals.PROBE_DIR}" not in lines  # not a signal
    assert not any(signals.PROBE_DIR in c for c in claims)
    memory = lines.index(next(ln for ln in lines if ln.startswith("Front_Center, L-BFGS keeping")))
    assert lines[memory].endswith("instead of optax's 10; depth 5, width 256; common target 35 dB:")
    table = lines[memory + 2:memory + 7]
    assert table[2:] == ["| lbfgs (memory 10) | 5 | 40.00 (40.00-40.00) | 0.4 (0.4-2.0) | 2 (2-2) "
                         "| 5/5 |",
                         "| lbfgs (memory 100) | 5 | 41.00 (41.00-41.00) | 0.6 (0.6-0.6) | 2 (2-2) "
                         "| 5/5 |",
                         "| adam | 5 | 35.00 (35.00-35.00) | 1.5 (1.5-1.5) | 3 (3-3) | 5/5 |"]
    assert "a 3x64 field instead of 5x256" in text and "common target 33 dB:" in text
    assert "| lbfgs | 5 | 33.00 (33.00-33.00) | 0.3 (0.3-0.3) | 3 (3-3) | 5/5 |" in lines
    assert ("On the 3x64 field (ours, to the common target 33 dB: L-BFGS in less time on 5/5 "
            "seeds, Adam on 0/5; L-BFGS in fewer iterations on 0/5).") in lines
    # The probes render before the frame-block split, and only when they ran.
    assert lines.index("### Why L-BFGS loses on a sine field here: probes") < lines.index(
        "### Frame-block split on video (part 3)")
    other = tmp_path / "other"
    _grid(other)
    assert "### Why L-BFGS loses on a sine field here: probes" not in \
        signals.reproduction_section(other)[0]


def test_the_probe_driver_trains_each_change_on_the_full_batch(tmp_path: pathlib.Path,
                                                              capsys) -> None:
    out = tmp_path / "probe"
    assert signals.main(["lbfgs-probe", "--signals", "chirp", "--audio-duration", "0.02",
                         "--audio-rate", "4000", "--seeds", "0", "--epochs", "2",
                         "--no-progress", "--out", str(out)]) == 0
    memory = json.loads((out / "memory100" / "chirp" / "sine-lbfgs" / "seed0" / "summary.json")
                        .read_text())["config"]
    assert memory["opt_args"] == {"memory_size": signals.PROBE_MEMORY}
    assert memory["batch_size"] == 80 and memory["depth"] is None
    assert sorted(p.name for p in (out / "small" / "chirp").glob("sine-*")) == [
        "sine-adam", "sine-lbfgs"]
    for opt in ("adam", "lbfgs"):
        config = json.loads((out / "small" / "chirp" / f"sine-{opt}" / "seed0" / "summary.json")
                            .read_text())["config"]
        assert (config["depth"], config["width"], config["batch_size"]) == (3, 64, 80)
    # The probe owns the field size and the optimizer options.
    assert signals.main(["lbfgs-probe", "--signals", "chirp", "--depth", "4", "--out",
                         str(tmp_path / "bad")]) == 2
    assert "--depth" in capsys.readouterr().err and not (tmp_path / "bad").exists()
