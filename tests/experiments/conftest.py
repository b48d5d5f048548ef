"""Helpers for the harness tests: tiny image runs (16x16 pixels, a 2x16 field, batch 32).

The persistent compilation cache is switched on while this directory's tests run (and restored
after) so the many short runs that compile the same train step pay the compilation once; tests
that check for recompilation watch tracing events, which a cache hit does not hide.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence

import jax
import numpy as np
import pytest

TINY = ("--size", "16", "--depth", "2", "--width", "16", "--batch-size", "32",
        "--timing-steps", "3", "--eval-every", "1", "--no-progress")
# ESGD with a short warm-up and refresh period, so a 16-step run refreshes on and off schedule.
ESGD = ("--optimizer", "esgd", "--activation", "gaussian",
        "--opt-arg", "warmup=3", "--opt-arg", "update_interval=5")


@pytest.fixture(scope="package", autouse=True)
def compilation_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    from jax._src import compilation_cache as cache

    path = tmp_path_factory.mktemp("jax-cache")
    previous = (jax.config.jax_compilation_cache_dir,
                jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    cache.reset_cache()
    yield path
    jax.config.update("jax_compilation_cache_dir", previous[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", previous[1])
    cache.reset_cache()


def tiny_args(out: pathlib.Path, *extra: str, esgd: bool = True) -> list[str]:
    """CLI arguments of a tiny image run writing to ``out``."""
    return [*TINY, *(ESGD if esgd else ()), "--out", str(out), *extra]


def flat_leaves(tree: object) -> list[np.ndarray]:
    """Leaves of a restored checkpoint tree as NumPy arrays (PRNG keys as key data)."""
    out = []
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out.append(np.asarray(leaf))
    return out


def assert_trees_equal(a: object, b: object) -> None:
    """Bitwise equality of two checkpoint trees."""
    la, lb = flat_leaves(a), flat_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def run_cli(argv: Sequence[str]) -> int:
    """``python -m experiments.image ARGV`` in this process; returns the exit code."""
    from experiments.tasks.image import main

    try:
        return main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


def run_until_sigterm(run, config, step: int) -> int:
    """``run(config, on_log=...)`` under the CLI's signal handling, sending this process SIGTERM
    once the row of ``step`` is logged; returns the exit code (``128 + SIGTERM`` expected)."""
    import os
    import signal

    from experiments.harness import cli

    def terminate(row: dict) -> None:
        if row["step"] == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return cli.run_main(lambda _: run(config, on_log=terminate) and 0, None)


@pytest.fixture(scope="package")
def esgd_reference(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """An uninterrupted 2-epoch (16-step) ESGD run through the CLI, shared by the comparisons."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert run_cli(tiny_args(out, "--epochs", "2")) == 0
    return out
