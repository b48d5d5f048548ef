"""The settings of one training run, their validation and their compatibility on ``--resume``."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, ClassVar

from experiments.harness.errors import UsageError

PARALLEL_MODES = ("none", "pmap", "sharded")
SCHEDULES = ("constant", "cosine", "exponential")

# Settings that change what the run computes: a checkpoint resumes only under the same values
# (these, plus the task's own data settings, ``RunConfig.TASK_KEYS`` of its subclass).
# ``epochs`` may grow (extending a finished run); parallelism, logging and checkpoint cadence may
# change freely because they do not alter the trajectory's definition.
SEMANTIC_KEYS = (
    "task",
    "activation",
    "depth",
    "width",
    "optimizer",
    "opt_args",
    "learning_rate",
    "schedule",
    "final_lr",
    "decay_epochs",
    "batch_size",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The task-independent settings of a training run (see ``python -m experiments.image --help``).

    Each task subclasses it with its data settings (e.g. ``ImageConfig`` adds ``image`` and
    ``size``), names those that define the run in ``TASK_KEYS`` and checks them in
    :meth:`check`. ``learning_rate`` is the resolved value: the ``--lr`` flag, or the registry's
    reference value for the optimizer and activation. ``batch_size`` is resolved too (full batch
    for full-batch-only optimizers). ``steps``, when set, is the run's length in steps instead of
    ``epochs`` (tasks counted in iterations, as NeRF); like ``epochs`` it may grow on resume.
    """

    TASK_KEYS: ClassVar[tuple[str, ...]] = ()

    task: str = ""
    activation: str = "gaussian"
    depth: int | None = None
    width: int | None = None
    optimizer: str = "esgd"
    opt_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 0.15
    schedule: str = "constant"
    final_lr: float | None = None
    decay_epochs: float | None = None
    epochs: int = 200
    steps: int | None = None
    batch_size: int = 512
    seed: int = 0
    parallel: str = "none"
    out: str = "runs/run"
    resume: bool = False
    checkpoint_every: int = 1000
    log_every: int | None = None
    eval_every: int = 10
    timing_steps: int = 200
    progress: bool = True
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of all settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (older or newer harness)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Check the task's own settings; raise :class:`UsageError` on a bad one (override)."""


def check_positive(name: str, value: float | int | None, *, allow_none: bool = False) -> None:
    """Raise :class:`UsageError` naming ``--name`` unless ``value`` is positive."""
    if value is None and allow_none:
        return
    if value is None or not value > 0:
        raise UsageError(f"--{name.replace('_', '-')} {value}: expected a positive number")


def validate(config: RunConfig) -> None:
    """Check the settings that need no data; raise :class:`UsageError` on the first bad one."""
    check_positive("lr", config.learning_rate)
    check_positive("epochs", config.epochs)
    check_positive("steps", config.steps, allow_none=True)
    check_positive("batch_size", config.batch_size)
    check_positive("depth", config.depth, allow_none=True)
    check_positive("width", config.width, allow_none=True)
    check_positive("final_lr", config.final_lr, allow_none=True)
    check_positive("decay_epochs", config.decay_epochs, allow_none=True)
    check_positive("checkpoint_every", config.checkpoint_every)
    check_positive("log_every", config.log_every, allow_none=True)
    if config.eval_every < 0:
        raise UsageError(f"--eval-every {config.eval_every}: expected 0 (end only) or more epochs")
    if config.timing_steps < 0:
        raise UsageError(f"--timing-steps {config.timing_steps}: expected 0 (off) or more")
    if config.parallel not in PARALLEL_MODES:
        expected = ", ".join(PARALLEL_MODES)
        raise UsageError(f"--parallel {config.parallel!r}: expected one of {expected}")
    if config.schedule not in SCHEDULES:
        raise UsageError(f"--schedule {config.schedule!r}: expected one of {', '.join(SCHEDULES)}")
    config.check()


def incompatibilities(saved: dict[str, Any], config: RunConfig) -> list[str]:
    """Describe every semantic setting in which ``config`` differs from a saved run's config."""
    current = config.to_dict()
    out = []
    for key in (*SEMANTIC_KEYS, *type(config).TASK_KEYS):
        if key in saved and _normalise(saved[key]) != _normalise(current[key]):
            out.append(f"{key}: the run has {saved[key]!r}, got {current[key]!r}")
    return out


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value))


def read_saved_config(path: pathlib.Path) -> dict[str, Any]:
    """Read ``config.json`` of an existing run directory; :class:`UsageError` if unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--out {path.parent}: holds an unreadable {path.name} ({exc.__class__.__name__}); "
            "expected a run directory written by this harness or a new directory"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"--out {path.parent}: {path.name} is not a run config")
    return data
