"""``python -m benchmarks.gpu --tiny`` on the CPU: every stage runs, the results file and the page
rendered from it hold what they should, and each vmapped lion seed is its sequential run.

The script runs once, in a subprocess (as ``bash benchmarks/gpu.sh`` runs it), with XLA's CPU
backend optimisations off: the run is almost all compilation (the NeRF ESGD step alone takes
~30 s to compile at full optimisation on 2 shared cores, ~10 s without), and optimisation levels
change no result this checks. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

XLA_FAST = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
STAGES = ("image_step", "occupancy_step", "lion_vmapped", "nerf_step", "lion_sequential")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("gpu")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": XLA_FAST, "OUT": str(out / "out")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--tiny", "--results", str(out / "results.json"),
         "--doc", str(out / "GPU.md")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text()), (out / "GPU.md").read_text()


def _runs(results: dict[str, Any], stage: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["activation"], r["optimizer"]): r
            for r in results["stages"][stage]["result"]["runs"]}


def test_every_stage_ran_and_was_recorded(tiny_run) -> None:
    _, results, _ = tiny_run
    assert results["tiny"] is True and results["finished"] is True
    env = results["environment"]
    assert env["platform"] == "cpu" and env["devices"] and env["jax"] and env["jaxlib"]
    assert env["matmul_precision"] == "highest"
    assert list(results["stages"]) == list(STAGES)
    assert {name: s["status"] for name, s in results["stages"].items()} == dict.fromkeys(
        STAGES, "done")

    image = results["stages"]["image_step"]["result"]
    assert set(image["step_s"]) == {"adam", "esgd", "kfac"}
    assert image["ratio"]["adam"] == 1.0 and image["skipped"] == []
    assert set(image["warmup_s"]) == {"esgd"} and image["hvp_over_grad"] > 0
    for name in ("occupancy_step", "nerf_step"):
        r = results["stages"][name]["result"]
        assert set(r["step_s"]) == {"adam", "esgd_hvp", "esgd_plain"}
        assert all(t > 0 for t in r["step_s"].values()) and r["esgd_amortised_s"] > 0

    lion = results["config"]["lion"]
    for stage in ("lion_vmapped", "lion_sequential"):
        runs = _runs(results, stage)
        assert set(runs) == {("gaussian", "adam"), ("gaussian", "esgd")}
        for run in runs.values():
            assert run["status"] == "complete"
            assert [s["seed"] for s in run["per_seed"]] == list(range(lion["seeds"]))
            assert all(s["epochs_done"] == lion["epochs"] for s in run["per_seed"])
            assert all(len(s["epoch_mse"]) == lion["epochs"] for s in run["per_seed"])
    # The registry's rates; the tiny run shortens ESGD's refresh schedule only.
    assert _runs(results, "lion_vmapped")[("gaussian", "esgd")]["learning_rate"] == 0.15
    assert _runs(results, "lion_vmapped")[("gaussian", "adam")]["learning_rate"] == 1e-4


def test_vmapped_seeds_are_the_sequential_runs(tiny_run) -> None:
    """Per seed, the vmapped run's loss after every epoch and its final PSNR are the sequential
    run's. Tolerance: float32 (unit roundoff 6e-8) products batched over seeds may sum in another
    order; over the 32 steps of ESGD at lr 0.15 we see relative differences up to ~3e-7, so 1e-4
    leaves a wide margin while a mixed-up seed, shuffle or probe key (seeds differ by 10-50%
    here, checked below) could not pass."""
    _, results, _ = tiny_run
    vmapped, sequential = _runs(results, "lion_vmapped"), _runs(results, "lion_sequential")
    for key, vm in vmapped.items():
        seq = sequential[key]
        # ESGD's refresh flag was every seed's own on every step; Adam has none.
        assert vm["schedules_agreed"] is (True if key[1] == "esgd" else None)
        for a, b in zip(vm["per_seed"], seq["per_seed"], strict=True):
            assert a["seed"] == b["seed"]
            assert a["epoch_mse"] == pytest.approx(b["epoch_mse"], rel=1e-4)
            assert a["final_psnr"] == pytest.approx(b["final_psnr"], abs=1e-3)
        first, second = (s["final_train_mse"] for s in seq["per_seed"][:2])
        assert abs(first - second) > 1e-3 * abs(first), "seeds 0 and 1 gave the same run"


def test_page_rendered_from_the_results(tiny_run) -> None:
    out, results, doc = tiny_run
    from benchmarks import gpu

    assert doc == gpu.render(results, out / "results.json")
    assert "Tiny configuration" in doc and results["environment"]["device_kind"] in doc
    for title in ("## Image step time", "## Occupancy step time", "## NeRF step time",
                  "## The lion on 2 seeds, 2 epochs", "### Sequential vs vmapped"):
        assert title in doc
    assert "not run yet" not in doc
    # $OUT gets copies of both.
    assert (out / "out" / "results.json").read_text() == (out / "results.json").read_text()
    assert (out / "out" / "GPU.md").read_text() == doc


def test_committed_page_is_what_the_script_renders() -> None:
    """docs/GPU.md is rendered from docs/gpu/results.json, or is the not-yet-run page."""
    from benchmarks import gpu

    results = json.loads(gpu.RESULTS.read_text()) if gpu.RESULTS.is_file() else None
    assert gpu.DOC.read_text() == gpu.render(results, gpu.RESULTS)
    if results is None:
        assert "No GPU has been lent" in gpu.DOC.read_text()
    script = (REPO_ROOT / "benchmarks" / "gpu.sh").read_text()
    assert "timeout" in script and "-m benchmarks.gpu" in script
    subprocess.run(["bash", "-n", str(REPO_ROOT / "benchmarks" / "gpu.sh")], check=True)


def test_vmapped_refresh_stays_a_cond() -> None:
    """Mapped over seeds with the shared refresh flag, ESGD's refresh is a ``cond`` (no HVP on
    other steps); a plain ``jax.vmap`` of the same epoch turns it into a ``select`` (traced only,
    nothing compiled)."""
    import jax
    import numpy as np

    from benchmarks import lion_seeds

    run = lion_seeds.SeedRun("gaussian", "esgd", (0, 1), epochs=1, size=8, depth=2, width=8,
                             batch=16)
    image = np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    runner = lion_seeds._Runner(lion_seeds.make_task(image, run, "random"), run)
    params = lion_seeds._stack(runner.params0)
    state = lion_seeds._stack(runner.states0)
    idx = np.stack([runner.indices(k, 0) for k in range(2)])
    args = (params, state, idx, runner.coords, runner.pixels)
    shared = str(jax.make_jaxpr(runner._vmapped_epoch)(*args))
    plain = str(jax.make_jaxpr(jax.vmap(runner._epoch, in_axes=(0, 0, 0, None, None)))(*args))
    assert "cond[" in shared
    assert "cond[" not in plain and "select_n" in plain
