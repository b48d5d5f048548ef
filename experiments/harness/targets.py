"""Targets a grid's optimizers race to, and where each run reaches one.

A *target* is the lowest median final training PSNR among a set of optimizers that learned
(:func:`target_of`), so that a diverged or stalled optimizer does not put it where every run
starts; :func:`common_target` takes every optimizer of a grid, :func:`pair_target` two of them.
:func:`reach` finds the first logged window of a run at or above a target (its step, epoch,
training seconds and optimizer seconds). The Fig. 5 section of ``docs/REPRODUCTION.md``
(:mod:`experiments.paper.fig5_section`), the demo's summary and the time-to-quality benchmark
read their races from here.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from experiments.harness.report import RunResult, cells, read_results

#: An optimizer "learned" when its median final training PSNR is at least this much above its
#: median first-epoch training PSNR (3 dB: the training MSE at least halved).
MIN_GAIN_DB = 3.0
#: The baseline: where a sane optimizer starts (its first epoch) bounds what counts as learning.
BASELINE = "adam"


def nan_float(x: Any) -> float:
    """``x`` as a float; NaN for a missing or non-numeric value."""
    return float(x) if isinstance(x, int | float) else math.nan


@dataclasses.dataclass(frozen=True)
class Run:
    """What the section reads of one finished run.

    Attributes:
      optimizer, seed: its cell and seed.
      final: full-image PSNR at the end (``summary.json``'s ``final_psnr``; NaN if diverged).
      rows: ``metrics.csv`` rows (``step``, ``epoch``, ``time_s``, ``loss``, ``train_psnr``).
      optimizer_step_s: optimizer time per step (``optimizer_time_per_step_s``), if measured.
      summary: the whole ``summary.json``.
    """

    optimizer: str
    seed: int
    final: float
    rows: tuple[dict[str, Any], ...]
    optimizer_step_s: float | None = None
    summary: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, r: RunResult) -> Run:
        s = r.summary
        return cls(r.optimizer, r.seed, nan_float(s.get("final_psnr")), tuple(r.rows),
                   s.get("optimizer_time_per_step_s"), s)

    def train_psnr(self, index: int) -> float:
        """The training PSNR of logged window ``index`` (-1: the last), NaN if none."""
        try:
            return nan_float(self.rows[index].get("train_psnr"))
        except IndexError:
            return math.nan


class Reach(NamedTuple):
    """The first logged window whose training PSNR reaches a target."""

    step: int
    epoch: float
    time_s: float
    optimizer_s: float | None


def reach(run: Run, target: float | None) -> Reach | None:
    """Where ``run``'s training PSNR (the PSNR of each window's mean mini-batch loss) first
    reaches ``target``; ``None`` if it never does (or there is no target)."""
    if target is None:
        return None
    for row in run.rows:
        value = nan_float(row.get("train_psnr"))
        if math.isfinite(value) and value >= target:
            step = int(row["step"])
            opt = step * run.optimizer_step_s if run.optimizer_step_s is not None else None
            return Reach(step, nan_float(row.get("epoch")), nan_float(row.get("time_s")), opt)
    return None


def median_worst(values: Sequence[float]) -> float:
    """The median with non-finite values (diverged seeds) counted as the worst, ``-inf``."""
    return statistics.median(v if math.isfinite(v) else -math.inf for v in values)


class Target(NamedTuple):
    """A target and how it was chosen.

    Attributes:
      value: the target training PSNR in dB (floored to 0.1 dB), ``None`` if there is none (no
        optimizer of the set learned, or, with ``all_must_learn``, one of them did not).
      setter: the optimizer whose median set it.
      medians: per optimizer of the set, the median final training PSNR over its seeds.
      excluded: per optimizer of the set left out of the rule, why.
      scope: ``"common"`` (every optimizer) or ``"pair"`` (the two a statement compares).
    """

    value: float | None
    setter: str | None
    medians: dict[str, float]
    excluded: dict[str, str]
    scope: str = "common"

    def judged_at(self) -> str:
        """How a statement judged with this target was judged, for its claim line."""
        if self.value is not None and self.setter is not None:
            which = {"pair": "the lower of the two optimizers' median final training PSNRs",
                     "baseline": "the baseline's median final training PSNR"}.get(
                self.scope,
                "the lowest median final training PSNR among the optimizers that learned")
            return (f"judged at the {self.scope} target, {self.value:g} dB: {which}, "
                    f"`{self.setter}`'s {self.medians[self.setter]:.2f} dB, floored")
        if self.scope == "pair" and self.excluded:
            why = " and ".join(f"`{o}`" for o in self.excluded) + " did not learn"
        else:
            why = "no optimizer learned"
        return f"judged by final PSNR, no {self.scope} target: {why}"


def _first_epoch(runs: Sequence[Run]) -> float:
    firsts = [r.train_psnr(0) for r in runs if math.isfinite(r.train_psnr(0))]
    return statistics.median(firsts) if firsts else math.nan


def target_of(by_opt: Mapping[str, Sequence[Run]], min_gain: float = MIN_GAIN_DB, *,
              all_must_learn: bool = False, scope: str = "common",
              start: float | None = None) -> Target:
    """The lowest median final training PSNR among the optimizers of ``by_opt`` that learned,
    floored to 0.1 dB; with ``all_must_learn``, no target unless every one of them learned.

    An optimizer learned when its median final training PSNR (a diverged seed counting as
    ``-inf``) is finite and at least ``min_gain`` dB above both its own median first-epoch
    training PSNR and ``start`` (the baseline's, see :func:`baseline_start`). One that diverged
    or stalled would otherwise set a target every run reaches in its first epoch; the ``start``
    bound also leaves out one that blew up in its first epoch and recovered part of the way (a
    gain over a first epoch far below where a sane optimizer starts is no learning). The floor
    keeps the target reached by at least half the seeds of the optimizer that sets it.
    """
    medians, excluded = {}, {}
    for opt, runs in by_opt.items():
        final = median_worst([r.train_psnr(-1) for r in runs])
        own = _first_epoch(runs)
        first = own if start is None or not math.isfinite(start) else max(own, start)
        medians[opt] = final
        if not math.isfinite(final):
            excluded[opt] = "diverged (median final training PSNR not finite)"
        elif not math.isfinite(first) or final - first < min_gain:
            gain = f"{final - first:+.1f} dB" if math.isfinite(first) else "unknown gain"
            over = ("its first epoch" if first == own else
                    f"`{BASELINE}`'s first epoch ({start:.2f} dB), above its own")
            excluded[opt] = (f"did not learn (median final training PSNR {final:.2f} dB, "
                             f"{gain} over {over}; the rule asks for {min_gain:g} dB)")
    eligible = {o: m for o, m in medians.items() if o not in excluded}
    if not eligible or (all_must_learn and excluded):
        return Target(None, None, medians, excluded, scope)
    setter = min(eligible, key=eligible.__getitem__)
    return Target(math.floor(eligible[setter] * 10) / 10, setter, medians, excluded, scope)


def baseline_start(by_opt: Mapping[str, Sequence[Run]]) -> float | None:
    """The baseline's (Adam's) median first-epoch training PSNR, where a sane optimizer starts;
    ``None`` without a baseline in the grid."""
    runs = by_opt.get(BASELINE)
    return _first_epoch(runs) if runs else None


def common_target(by_opt: Mapping[str, Sequence[Run]], min_gain: float = MIN_GAIN_DB) -> Target:
    """The target over every optimizer (:func:`target_of`): the table's and the plots'."""
    return target_of(by_opt, min_gain, start=baseline_start(by_opt))


def baseline_target(by_opt: Mapping[str, Sequence[Run]], baseline: str = BASELINE) -> Target:
    """The baseline's (Adam's) median final training PSNR, floored to 0.1 dB: the quality a
    user of the baseline has at the end of the run, the target of "how long until I have what
    Adam gives me". Unlike :func:`common_target`, an optimizer that ends low does not pull it
    down (with six optimizers, the weakest one that learned sets the common target, often in
    the first epoch). No target without the baseline or if it did not learn."""
    if baseline not in by_opt:
        return Target(None, None, {}, {}, "baseline")
    return target_of({baseline: by_opt[baseline]}, scope="baseline")


def pair_target(by_opt: Mapping[str, Sequence[Run]], a: str, b: str,
                min_gain: float = MIN_GAIN_DB) -> Target:
    """The target of a statement comparing ``a`` with ``b`` (:func:`target_of` over those two):
    the lower of their medians, and none if either did not learn."""
    return target_of({a: by_opt[a], b: by_opt[b]}, min_gain, all_must_learn=True, scope="pair",
                     start=baseline_start(by_opt))


class Placing(NamedTuple):
    """One optimizer in a race to a target: the median training seconds (and steps) to reach
    it over all its seeds, a seed that never reached it counting as never (so the median is
    ``None`` unless at least half the seeds reached it), the min-max over the seeds that did,
    and how many did."""

    optimizer: str
    seconds: float | None
    seconds_range: tuple[float, float] | None
    steps: float | None
    reached: int
    seeds: int

    @property
    def finished(self) -> bool:
        """Whether at least half its seeds reached the target (its median is then a fair
        time to quality)."""
        return self.seconds is not None


def race(by_opt: Mapping[str, Sequence[Run]], target: float | None) -> list[Placing]:
    """Every optimizer's time to ``target``, fastest first among those that
    :attr:`~Placing.finished`, then the others in their given order."""
    out = []
    for opt, runs in by_opt.items():
        reached = [reach(r, target) for r in runs]
        hits = [h for h in reached if h is not None]
        times = [h.time_s for h in hits]

        def median_or_none(values: list[float]) -> float | None:
            m = statistics.median(values) if values else math.inf
            return m if math.isfinite(m) else None

        out.append(Placing(
            opt, median_or_none([h.time_s if h else math.inf for h in reached]),
            (min(times), max(times)) if times else None,
            median_or_none([h.step if h else math.inf for h in reached]), len(hits), len(runs)))
    done = sorted((p for p in out if p.finished), key=lambda p: p.seconds)
    return done + [p for p in out if not p.finished]


def race_line(name: str, by_opt: Mapping[str, Sequence[Run]], baseline: str = BASELINE) -> str:
    """One line on who reached the grid's common target first, and how many times sooner than
    ``baseline`` (or that no target exists), e.g. ``wavelet: to 33.1 dB (...) esgd first ...``."""
    target = common_target(by_opt)
    if target.value is None:
        return f"{name}: no common target (no optimizer learned; compare the final PSNRs)"
    placings = race(by_opt, target.value)
    base = next((p for p in placings if p.optimizer == baseline), None)

    def where(p: Placing) -> str:
        if p.seconds is None:
            return f"{p.optimizer} not reached ({p.reached}/{p.seeds} seeds)"
        return f"{p.optimizer} {p.seconds:.2f} s ({p.reached}/{p.seeds} seeds)"

    first = placings[0]
    head = (f"{name}: to the common target {target.value:g} dB (lowest median final training "
            f"PSNR, set by {target.setter}), median training seconds: "
            + ", ".join(where(p) for p in placings) + ". ")
    if not first.finished:
        return head + "No optimizer reached it on half its seeds."
    if base is None or first.optimizer == baseline:
        return head + f"First: {first.optimizer}."
    if base.finished:
        return head + (f"First: {first.optimizer}, {base.seconds / first.seconds:.2f}x sooner "
                       f"than {baseline}.")
    return head + f"First: {first.optimizer}; {baseline} reached it on {base.reached}/" \
                  f"{base.seeds} seeds only."


class FieldRace(NamedTuple):
    """One field of a grid: its common target and every optimizer's race to it (fastest
    first), with the runs raced."""

    grid: str
    field: str
    target: Target
    placings: list[Placing]
    by_opt: dict[str, list[Run]]
    #: The same race to the baseline's final quality (:func:`baseline_target`).
    baseline_target: Target
    baseline_placings: list[Placing]


def field_races(grid: pathlib.Path) -> list[FieldRace]:
    """Per field (activation) of the compare grid in ``grid`` (``ACT-OPT/seedS`` runs), the
    race of its optimizers to their :func:`common_target`, in first-seen order."""
    by_field: dict[str, dict[str, list[Run]]] = {}
    for (act, opt), runs in cells(read_results(grid)).items():
        by_field.setdefault(act, {})[opt] = [Run.of(r) for r in runs]
    out = []
    for act, by_opt in by_field.items():
        target = common_target(by_opt)
        base = baseline_target(by_opt)
        out.append(FieldRace(grid.name, act, target, race(by_opt, target.value), by_opt,
                             base, race(by_opt, base.value)))
    return out
