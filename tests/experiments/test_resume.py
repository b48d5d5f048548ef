"""Resuming equals an uninterrupted run, bit for bit (ESGD: curvature state and probe keys must
survive the checkpoint), whether the run is extended or was stopped by a signal mid-epoch."""

import json
import signal

import jax
import numpy as np

from experiments import optimizers
from experiments.harness.checkpoint import read_checkpoint
from experiments.harness.metrics import read_metrics
from experiments.tasks import image
from tests.experiments.conftest import assert_trees_equal, run_cli, run_until_sigterm, tiny_args


def _final(out):
    state, meta = read_checkpoint(out)
    return state, meta


def test_one_epoch_resumed_to_two_equals_two_epochs(tmp_path, esgd_reference):
    out = tmp_path / "run"
    assert run_cli(tiny_args(out, "--epochs", "1")) == 0
    first = json.loads((out / "summary.json").read_text())
    assert first["steps"] == 8
    assert run_cli(tiny_args(out, "--epochs", "2", "--resume")) == 0
    state, meta = _final(out)
    ref_state, ref_meta = _final(esgd_reference)
    assert meta["step"] == ref_meta["step"] == 16
    assert_trees_equal(state, ref_state)
    assert meta["data_order"] == ref_meta["data_order"]
    losses = [r["loss"] for r in read_metrics(out / "metrics.csv")]
    ref_losses = [r["loss"] for r in read_metrics(esgd_reference / "metrics.csv")]
    assert losses == ref_losses
    summary = json.loads((out / "summary.json").read_text())
    reference = json.loads((esgd_reference / "summary.json").read_text())
    assert summary["resumed_from_step"] == 8
    assert summary["final_psnr"] == reference["final_psnr"]
    # The run's compile time is its first segment's, carried by the checkpoint.
    assert summary["compile_time_s"] == first["compile_time_s"] > 0


def test_resuming_a_finished_run_reuses_it_untouched(tmp_path):
    """A grid rerun with --resume must not re-summarize finished runs: that used to drop the
    compile time (``null``) and re-time the optimizer on whatever else the machine was doing."""
    out = tmp_path / "run"
    assert run_cli(tiny_args(out, "--epochs", "1")) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert json.loads(files["summary.json"])["compile_time_s"] > 0
    assert run_cli(tiny_args(out, "--epochs", "1", "--resume")) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


def test_sigterm_saves_a_checkpoint_and_resume_matches(tmp_path, esgd_reference):
    out = tmp_path / "run"
    args = image.parser("t").parse_args(
        tiny_args(out, "--epochs", "2", "--log-every", "3"))
    config = image.make_config(args)

    code = run_until_sigterm(image.run, config, step=3)
    assert code == 128 + signal.SIGTERM
    assert not (out / "summary.json").exists()
    _, meta = _final(out)
    assert 3 <= meta["step"] < 8  # stopped mid-epoch, right after the signal
    assert run_cli(tiny_args(out, "--epochs", "2", "--resume")) == 0
    state, meta = _final(out)
    ref_state, _ = _final(esgd_reference)
    assert meta["step"] == 16
    assert_trees_equal(state, ref_state)


def test_checkpoint_holds_advanced_probe_keys_and_counts(esgd_reference):
    """Guards the comparisons above: the saved ESGD state is a trained one, not a fresh one."""
    state, _ = _final(esgd_reference)
    saved = dict(_walk(state["opt_state"]))
    fresh_tx = optimizers.build("esgd", 0.15, seed=0, warmup=3, update_interval=5)
    fresh = dict(_walk(fresh_tx.init(state["params"])))
    keys = [k for k in saved if k.endswith("key")]
    assert keys, f"no PRNG key in the saved optimizer state: {sorted(saved)}"
    for k in keys:
        fresh_key = fresh[k]
        if jax.dtypes.issubdtype(fresh_key.dtype, jax.dtypes.prng_key):
            fresh_key = jax.random.key_data(fresh_key)
        assert not np.array_equal(np.asarray(saved[k]), np.asarray(fresh_key))
    counts = [int(np.asarray(v)) for k, v in saved.items() if k.endswith("/count")]
    assert counts and max(counts) == 16


def _walk(tree, prefix=""):
    """(path, leaf) pairs of nested dicts/lists/tuples/NamedTuples."""
    if hasattr(tree, "_asdict"):
        tree = tree._asdict()
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _walk(v, f"{prefix}/{k}")
    elif isinstance(tree, list | tuple):
        for i, v in enumerate(tree):
            yield from _walk(v, f"{prefix}/{i}")
    elif tree is not None:
        yield prefix, tree
