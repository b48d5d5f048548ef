"""Test configuration shared by the whole suite.

Four host CPU devices are simulated for every test so pmap, shard_map and sharded ``jit`` can be
compared against a single device; the flag must be set before JAX is imported.
"""

import json
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Path of ``../shared/data``; skips the test, saying why, when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist (fresh clone)")
    return SHARED_DATA


def write_fake_run(root: pathlib.Path, image: str, act: str, opt: str, seed: int,
              psnrs: list[float], step_s: float, compile_s: float, lr: float) -> None:
    """A finished image-fit run as the harness writes it, under ``root/image/act-opt/seedS``:
    one metrics row per 10 steps at ``step_s`` seconds a step, ``psnrs`` its training PSNRs."""
    run = root / image / f"{act}-{opt}" / f"seed{seed}"
    run.mkdir(parents=True)
    rows = ["step,epoch,time_s,loss,train_psnr"]
    for i, p in enumerate(psnrs, 1):
        rows.append(f"{10 * i},{i},{10 * i * step_s},{10 ** (-p / 10)},{p}")
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "summary.json").write_text(json.dumps({
        "config": {"seed": seed, "activation": act, "optimizer": opt}, "final_psnr": psnrs[-1],
        "compile_time_s": compile_s, "learning_rate": lr, "epochs": len(psnrs),
        "steps": 10 * len(psnrs), "device": "cpu"}))
