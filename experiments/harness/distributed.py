"""Multi-host set-up through ``jax.distributed`` and host-side copies of (global) arrays."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from experiments.harness.errors import UsageError


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join a multi-process JAX run when asked to; return whether one was joined.

    Each argument falls back to an environment variable: ``JAX_COORDINATOR_ADDRESS`` (which JAX
    itself reads), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``. With none of them set, nothing
    happens (a single-process run). With only the coordinator set, JAX's cluster auto-detection
    (SLURM, Open MPI, Cloud TPU, ...) supplies the rest. On the CPU the cross-process
    collectives use gloo, which must be selected before ``jax.distributed.initialize``.

    Must run before anything touches a JAX backend (e.g. ``jax.devices()``).
    """
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    count = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    pid = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if count is not None and count < 1:
        raise UsageError(f"--num-processes {count}: expected a positive number of processes")
    if pid is not None and (pid < 0 or (count is not None and pid >= count)):
        raise UsageError(f"--process-id {pid}: expected 0 <= id < {count} (--num-processes)")
    if address is None and (count is None or count == 1):
        if pid not in (None, 0):
            raise UsageError(f"--process-id {pid}: needs --coordinator-address and --num-processes")
        return False
    if address is None:
        raise UsageError(
            f"--num-processes {count}: needs --coordinator-address host:port (or "
            "JAX_COORDINATOR_ADDRESS)"
        )
    if ":" not in address:
        raise UsageError(f"--coordinator-address {address}: expected host:port")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, num_processes=count, process_id=pid)
    return True


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r}: expected an integer") from None


def is_primary() -> bool:
    """Whether this is process 0, which writes logs, summaries and images."""
    return jax.process_index() == 0


def local_copy(tree: Any, *, pmap: bool = False) -> Any:
    """One copy of a replicated tree on this process's first device.

    Works for single-device arrays, ``pmap``-replicated arrays (``pmap=True``: takes replica 0)
    and replicated global arrays of a multi-process run (takes the local shard). PRNG key arrays
    stay key arrays.
    """

    def one(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        if pmap:
            return x[0]
        if len(x.sharding.device_set) == 1:
            return x
        return x.addressable_data(0)

    return jax.tree.map(one, tree)


def to_numpy(tree: Any, *, pmap: bool = False) -> Any:
    """Host NumPy copy of :func:`local_copy` (PRNG keys become their raw key data)."""

    def one(x: Any) -> Any:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(one, local_copy(tree, pmap=pmap))


def tree_nbytes(tree: Any) -> int:
    """Bytes held by the arrays of a tree (one replica)."""
    total = 0
    for x in jax.tree.leaves(tree):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        total += int(np.prod(np.shape(x))) * np.dtype(x.dtype).itemsize
    return total
