"""orbax-checkpoint persistence of a run: params, optimizer state (with its PRNG keys), step and
data-order state, under ``OUT/checkpoints/<step>/``."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from experiments.harness.errors import CheckpointError

FORMAT = 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:200]


class Checkpointer:
    """Saves and restores ``{'params', 'opt_state'}`` plus a JSON ``meta`` dict.

    Every process of a multi-process run must call :meth:`save` and :meth:`restore` together
    (orbax coordinates the writes; replicated arrays are written once). Saving is asynchronous:
    the arrays are copied off the devices before :meth:`save` returns and written in the
    background; :meth:`wait` blocks until the files are complete.
    """

    def __init__(self, directory: pathlib.Path, *, max_to_keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        try:
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
                item_handlers={"state": ocp.StandardCheckpointHandler(),
                               "meta": ocp.JsonCheckpointHandler()},
            )
        except Exception as exc:  # noqa: BLE001 - any failure reads as an unusable directory
            raise CheckpointError(
                f"checkpoint directory {self.directory} is unusable ({_first_line(exc)})"
            ) from None

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or ``None``."""
        try:
            return self._manager.latest_step()
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"cannot read checkpoints in {self.directory} ({_first_line(exc)})"
            ) from None

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Save ``state`` (a pytree of arrays) and ``meta`` as checkpoint ``step``."""
        if step in self._manager.all_steps():
            return
        meta = {**meta, "format": FORMAT, "step": step}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restore checkpoint ``step`` (default: latest) into the structure of ``template``.

        ``template`` is a pytree of arrays (or ``jax.ShapeDtypeStruct``) shaped like the state
        this run would create; the restored arrays take its shardings.

        Raises:
          CheckpointError: no checkpoint, unreadable files, or a state that does not fit the
            template (another model or optimizer); the message names the directory.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
            state, meta = restored["state"], dict(restored["meta"])
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"cannot restore the checkpoint at step {step} in {self.directory} "
                f"({_first_line(exc)}); expected one written by this harness for the same run"
            ) from None
        if meta.get("format") != FORMAT or meta.get("step") != step:
            raise CheckpointError(
                f"checkpoint at step {step} in {self.directory} has unknown format "
                f"{meta.get('format')!r}; expected {FORMAT}"
            )
        _check_like(state, abstract, self.directory)
        return state, meta

    def wait(self) -> None:
        """Block until every pending save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def _check_like(state: Any, abstract: Any, directory: pathlib.Path) -> None:
    if jax.tree.structure(state) != jax.tree.structure(abstract):
        raise CheckpointError(f"checkpoint in {directory} holds a differently structured state")
    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(abstract), strict=True):
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"checkpoint in {directory} holds an array {got.shape} {got.dtype} where the run "
                f"expects {want.shape} {want.dtype}"
            )


def read_checkpoint(directory: pathlib.Path, step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Read a run's checkpoint without a template: ``(state, meta)`` with ``state`` as nested
    dicts/lists of arrays on this process's first device (``{'params': ..., 'opt_state': ...}``;
    PRNG keys as raw key data), for analysis and tests. Works whatever the devices and processes
    that wrote it.

    ``directory`` is the run's ``--out`` or its ``checkpoints/`` folder.
    """
    directory = pathlib.Path(directory)
    if (directory / "checkpoints").is_dir():
        directory = directory / "checkpoints"
    manager = Checkpointer(directory)
    try:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {manager.directory}")
        try:
            metadata = manager._manager.item_metadata(step)["state"]
            metadata = getattr(metadata, "tree", metadata)
            device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            abstract = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), metadata
            )
            restored = manager._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"cannot read the checkpoint at step {step} in {manager.directory} "
                f"({_first_line(exc)})"
            ) from None
        return restored["state"], dict(restored["meta"])
    finally:
        manager.close()
