"""The companion paper's patch split (issue 14): patches reassemble the image exactly, and the
vmapped per-patch L-BFGS fit trains every patch."""

import jax
import numpy as np
import pytest

from experiments.harness.errors import UsageError
from experiments.harness.metrics import psnr
from experiments.paper.companion import PatchFit, split_patches, stitch_patches
from experiments.tasks.field_factory import make_field
from experiments.tasks.image_data import pixel_coords


@pytest.mark.parametrize("grid", [1, 2, 4])
def test_stitching_per_patch_predictions_reassembles_the_image_exactly(grid):
    image = np.random.default_rng(0).random((8, 12, 3)).astype(np.float32)
    patches = split_patches(image, grid)
    assert patches.shape == (grid * grid, 8 // grid, 12 // grid, 3)
    # Patch k of the row-major grid is the block (k // grid, k % grid).
    ph, pw = 8 // grid, 12 // grid
    for k, patch in enumerate(patches):
        r, c = divmod(k, grid)
        np.testing.assert_array_equal(patch, image[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw])
    # Per-patch predictions come back as (pixels in pixel_coords order, channels) per patch.
    coords = pixel_coords(ph, pw)
    predictions = np.stack([p.reshape(-1, 3) for p in patches])
    assert predictions.shape[1] == coords.shape[0]
    np.testing.assert_array_equal(
        stitch_patches(predictions.reshape(-1, ph, pw, 3), grid), image)


def test_grid_that_does_not_divide_the_image_is_a_usage_error():
    with pytest.raises(UsageError, match="--grid 5"):
        split_patches(np.zeros((8, 8, 3)), 5)


def test_patch_fit_trains_every_patch_and_its_prediction_is_the_stitched_one():
    rng = np.random.default_rng(1)
    yy, xx = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    image = np.stack([np.sin(4 * yy), np.cos(3 * xx), yy * xx], -1).astype(np.float32)
    image += 0.01 * rng.standard_normal(image.shape).astype(np.float32)
    fit = PatchFit(image, 2, make_field("sine", depth=2, width=16))
    params, state = fit.init(0)
    first = None
    for _ in range(15):
        params, state, losses = fit.step(params, state)
        first = losses if first is None else first
    prediction = fit.predict(params)
    per_patch = np.mean((split_patches(prediction, 2) - split_patches(image, 2)) ** 2,
                        axis=(1, 2, 3))
    assert np.all(per_patch < 0.5 * np.asarray(first))  # every patch's fit improved
    # The stitched image's MSE is the mean of the (equal-sized) patches' MSEs.
    np.testing.assert_allclose(np.mean((prediction - image) ** 2), per_patch.mean(), rtol=1e-5)
    assert psnr(float(np.mean((prediction - image) ** 2))) > psnr(float(np.mean(first)))
    assert len(jax.tree.leaves(params)[0]) == 4  # one field per patch


def test_reproduction_sections_say_plainly_what_has_not_run(tmp_path):
    from experiments.paper import beyond, companion

    text = companion.reproduction_section(tmp_path)
    assert text.startswith("## ") and "Fig. 1: no finished run" in text
    assert "Patch split: no finished run" in text and "companion patches" in text
    text = beyond.reproduction_section(tmp_path)
    assert text.startswith("## ") and "No finished grid" in text
    assert "--seeds 0 1 2 3 4" in text  # the full protocol left to run


def test_patches_over_seeds_reuses_finished_seeds_and_its_section_reports_the_spread(tmp_path):
    import json

    from experiments.paper import companion

    out = tmp_path / "companion" / "patches"
    argv = ["patches", "--image", "", "--size", "16", "--grid", "2", "--patch-width", "8",
            "--patch-depth", "2", "--iterations", "10", "--eval-every", "5", "--adam-depth", "2",
            "--adam-width", "16", "--adam-epochs", "4", "--target-psnr", "5", "--seeds", "0",
            "1", "--out", str(out)]
    assert companion.main(argv) == 0
    result = json.loads((out / "patches.json").read_text())
    assert result["seeds"] == [0, 1] and [r["seed"] for r in result["runs"]] == [0, 1]
    # Different seeds start from different fields.
    assert (result["runs"][0]["lbfgs_rows"][0]["train_psnr"]
            != result["runs"][1]["lbfgs_rows"][0]["train_psnr"])
    first = (out / "seed0" / "result.json").stat().st_mtime_ns
    assert companion.main([*argv[:-3], "0", "1", "2", "--out", str(out)]) == 0
    assert (out / "seed0" / "result.json").stat().st_mtime_ns == first  # reused, not rerun
    assert json.loads((out / "patches.json").read_text())["seeds"] == [0, 1, 2]
    text = companion.reproduction_section(tmp_path / "companion")
    assert "Patch split, what ran (3 seeds" in text
    rows = [line for line in text.splitlines() if line.startswith(("| L-BFGS", "| Adam"))]
    assert len(rows) == 2 and all(row.endswith("/3 |") for row in rows)
    assert companion.main([*argv[:-4], "-1", "--out", str(out)]) == 2  # a negative seed
    # A finished seed with other settings is refused before any work, not silently reused.
    other = [a if a != "10" else "12" for a in argv]  # --iterations 12
    assert companion.main(other) == 2
    assert (out / "seed0" / "result.json").stat().st_mtime_ns == first


def test_fig1_verdicts_count_seeds_and_judge_against_the_companion_claim(tmp_path):
    from experiments.harness.report import RunResult
    from experiments.paper.companion import fig1_verdicts

    def run(act, opt, seed, reach_epoch, final, time_per_iter=0.5):
        out = tmp_path / f"{act}-{opt}" / f"seed{seed}"
        out.mkdir(parents=True)
        lines = ["step,epoch,time_s,train_psnr"] + [
            f"{e},{e},{e * time_per_iter},{final if e >= reach_epoch else 20.0}"
            for e in range(1, 11)]
        (out / "metrics.csv").write_text("\n".join(lines) + "\n")
        return RunResult(act, opt, out, {"metric": "psnr", "final_psnr": final,
                                         "config": {"seed": seed}})

    results = []
    for s in range(5):
        # sine: L-BFGS reaches 30 dB at epoch 2, Adam at 8 (seed 4: never), as the paper says.
        results += [run("sine", "lbfgs", s, 2, 40.0), run("sine", "adam", s, 8 if s < 4 else 99,
                                                           31.0 if s < 4 else 29.0)]
        # relu_pe: L-BFGS in fewer iterations on 3 of 5 seeds, against the paper's claim, but
        # its iterations cost 4x Adam's: Adam is ahead in time on every seed.
        results += [run("relu_pe", "lbfgs", s, 3 if s < 3 else 9, 33.0, time_per_iter=2.0),
                    run("relu_pe", "adam", s, 5, 32.0)]
    sine, relu = (next(v for v in fig1_verdicts(results, 30.0) if v.startswith(f"- {a}:"))
                  for a in ("sine", "relu_pe"))
    assert "fewer iterations than Adam on 5/5 seeds, L-BFGS ahead: agrees;" in sine
    assert "in less time on 5/5 seeds, L-BFGS ahead: agrees;" in sine
    assert "ended higher after the same iterations on 5/5" in sine
    assert "fewer iterations than Adam on 3/5 seeds, L-BFGS ahead: disagrees;" in relu
    assert "in less time on 0/5 seeds, Adam ahead: agrees;" in relu
    few = fig1_verdicts([r for r in results if r.seed < 2], 30.0)
    assert all("not judged, fewer than 5 seeds" in v for v in few if v)


def test_beyond_ranking_gives_spreads_and_clear_wins_over_adam(tmp_path):
    from experiments.harness.report import RunResult, ranking

    def run(opt, seed, final):
        return RunResult("sine", opt, tmp_path, {"metric": "psnr", "final_psnr": final,
                                                 "config": {"seed": seed}})

    results = [run("adam", s, 20.0 + s) for s in range(5)]            # 20 .. 24
    results += [run("muon", s, 30.0 + s) for s in range(5)]           # all above 24
    results += [run("esgd", s, 10.0 + 5 * s) for s in range(5)]       # 10 .. 30, median 20
    text = ranking(results, "PSNR in dB", ".1f", context="5 seeds")
    assert text.startswith("Ranking by median final PSNR in dB (min to max over seeds), 5 seeds:")
    line = next(x for x in text.splitlines() if x.startswith("- sine:"))
    assert line.startswith("- sine: muon 32.0 (30.0 to 34.0) > adam 22.0 (20.0 to 24.0) > "
                           "esgd 20.0 (10.0 to 30.0)")
    assert line.endswith("worst seed above adam's best: muon.")


def test_beyond_across_images_counts_best_medians_and_clear_wins(tmp_path):
    from experiments.harness.report import RunResult
    from experiments.paper.beyond import across_images

    def grid(muon_offset):
        def run(opt, seed, final):
            return RunResult("gaussian", opt, tmp_path, {"metric": "psnr", "final_psnr": final,
                                                         "config": {"seed": seed}})
        return ([run("adam", s, 20.0 + s) for s in range(5)]
                + [run("muon", s, muon_offset + s) for s in range(5)]
                + [run("esgd", s, 25.0 + 0.1 * s) for s in range(5)])

    # Image 1: muon 30-34 (best, clear of Adam's best 24); image 2: muon 22-26 (neither).
    lines = across_images([grid(30.0), grid(22.0)])
    assert lines[0] == "Across the 2 images (same settings):"
    assert lines[1] == ("- gaussian: best median: muon on 1/2, esgd on 1/2; worst seed above "
                        "Adam's best seed, images: esgd 2/2, muon 1/2.")


def test_beyond_reading_shows_only_for_the_grids_it_describes(tmp_path, monkeypatch):
    import json
    import shutil

    from experiments.paper import beyond

    def grid(name, size):
        for opt in ("adam", "esgd"):
            for seed in (0, 1):
                run = tmp_path / name / f"sine-{opt}" / f"seed{seed}"
                run.mkdir(parents=True)
                (run / "metrics.csv").write_text("step,epoch,time_s,loss\n1,1,0.1,0.5\n")
                (run / "summary.json").write_text(json.dumps({
                    "metric": "psnr", "final_psnr": 20.0 + seed, "epochs": 10, "steps": 10,
                    "config": {"seed": seed, "size": size, "depth": 3, "width": 64}}))
        (tmp_path / name / "report.md").write_text("# report\n")

    monkeypatch.setattr(beyond, "READ_GRIDS", {"a", "b"})
    monkeypatch.setattr(beyond, "READ_SETTING", (64, 3, 64, 10, [0, 1]))
    monkeypatch.setattr(beyond, "READING", ("Reading: the described run.",))
    grid("a", 64)
    grid("b", 64)
    text = beyond.reproduction_section(tmp_path)
    assert "Reading: the described run." in text and "Across the 2 images" in text
    grid("c", 64)  # a grid the reading does not describe
    assert "Reading: the described run." not in beyond.reproduction_section(tmp_path)
    shutil.rmtree(tmp_path / "c")
    grid("c", 32)
    shutil.rmtree(tmp_path / "b")  # the right names but another size
    monkeypatch.setattr(beyond, "READ_GRIDS", {"a", "c"})
    assert "Reading: the described run." not in beyond.reproduction_section(tmp_path)


def test_fig1_verdict_when_neither_optimizer_reaches_the_target(tmp_path):
    from experiments.harness.report import RunResult
    from experiments.paper.companion import fig1_verdicts

    results = []
    for seed in range(5):
        for opt, final in (("lbfgs", 23.0), ("adam", 21.0)):
            out = tmp_path / f"relu-{opt}" / f"seed{seed}"
            out.mkdir(parents=True)
            # L-BFGS: 2 s an iteration; Adam 1 s. At 2 s (Adam's end) L-BFGS has done one.
            dt = 2.0 if opt == "lbfgs" else 1.0
            (out / "metrics.csv").write_text(
                f"step,epoch,time_s,train_psnr\n1,1,{dt},20\n2,2,{2 * dt},{final}\n")
            results.append(RunResult("relu", opt, out, {"metric": "psnr", "final_psnr": final,
                                                         "config": {"seed": seed}}))
    (line,) = [v for v in fig1_verdicts(results, 30.0) if v]
    # A tie on every seed is not a win for Adam: the PSNR at the end of the shorter run
    # decides. In iterations L-BFGS is higher (23 vs 21 dB at iteration 2), against the claim;
    # in seconds Adam is (21 dB at 2 s against L-BFGS's 20), as the claim says.
    assert ("fewer iterations than Adam on 0/5 seeds (neither reached it on any seed: judged "
            "by the PSNR at the end of the shorter run in iterations, L-BFGS higher on 5/5), "
            "L-BFGS ahead: disagrees;") in line
    assert ("in less time on 0/5 seeds (neither reached it on any seed: judged by the PSNR at "
            "the end of the shorter run in seconds, L-BFGS higher on 0/5), Adam ahead: "
            "agrees;") in line
