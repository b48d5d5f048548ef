"""The warm-up length study of ``docs/ROBUSTNESS.md`` (issue 21): does ESGD need its 50 warm-up
refreshes (an HVP each) once the clip is in place?

``python -m experiments.paper.warmup --roots docs/robustness/runs/warmup_image_*`` rewrites the
block between :data:`BEGIN` and :data:`END` of ``docs/ROBUSTNESS.md`` from the archived grids
(each a ``python -m experiments.paper.robustness --optimizers adam esgd_clip esgd_clip_warmup20
esgd_clip_warmup10`` grid on one image). Per image and field it gives every optimizer's final
PSNR (median and min-max over seeds) and its race to the field's common target
(:func:`experiments.harness.targets.field_races`), then judges each shorter warm-up against the
default by :data:`RULE`, a rule written down after image_000's grid and before the other grids ran.

The grids run through the comparison harness: 256x256, 5x256 fields, batch 512, 10 epochs, the
registry rates, 5 seeds; ``--log-every 32`` gives the race a window every 32 steps (a grid logged
once an epoch, like image_000's, races at epoch resolution).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import statistics
import sys
from collections.abc import Sequence

from experiments.harness.errors import UsageError
from experiments.harness.targets import FieldRace, Run, field_races

BEGIN, END = "<!-- warmup:begin -->", "<!-- warmup:end -->"
#: Grids whose clocks ran while the machine ran other jobs (image_000's grid shared it with the
#: test suite for about half its runs): their times are shown, not judged.
UNTIMED = ("warmup_image_000",)
DEFAULT = "esgd_clip"
BASELINE = "adam"
#: How close a shorter warm-up's median final PSNR must stay to the default's, in dB.
MAX_LOSS_DB = 0.5
RULE = (
    f"A shorter warm-up replaces the default (`{DEFAULT}`, 50 refreshes) only if, on every image "
    f"and field of the choice, (a) its median final PSNR is within {MAX_LOSS_DB:g} dB of the "
    "default's, (b) its median time to the field's common target is no longer than the "
    "default's, and (c) none of its seeds ends below Adam's worst seed (no collapse); and then "
    "only after the same holds on images not used in the choice.")


def _final(runs: Sequence[Run]) -> list[float]:
    return [r.final if math.isfinite(r.final) else -math.inf for r in runs]


def _span(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _seconds(race: FieldRace, opt: str) -> float | None:
    return next((p.seconds for p in race.placings if p.optimizer == opt), None)


Judged = dict[str, dict[tuple[str, str], dict[str, bool]]]


def judge(races: Sequence[FieldRace], variants: Sequence[str],
          untimed: Sequence[str] = ()) -> Judged:
    """Each variant against :data:`DEFAULT` on every (image, field) of ``races``: ``{variant:
    {(image, field): {"quality": bool, "time": bool, "no_collapse": bool}}}``, without
    ``"time"`` for the grids named in ``untimed`` (their clocks ran under other load)."""
    out: Judged = {}
    for race in races:
        if DEFAULT not in race.by_opt:
            continue
        base_final = statistics.median(_final(race.by_opt[DEFAULT]))
        base_s = _seconds(race, DEFAULT)
        adam_worst = (min(_final(race.by_opt[BASELINE])) if BASELINE in race.by_opt
                      else -math.inf)
        for v in variants:
            if v not in race.by_opt:
                continue
            finals = _final(race.by_opt[v])
            s = _seconds(race, v)
            parts = {"quality": statistics.median(finals) >= base_final - MAX_LOSS_DB,
                     "time": s is not None and (base_s is None or s <= base_s),
                     "no_collapse": min(finals) >= adam_worst}
            if race.grid in untimed:
                del parts["time"]
            out.setdefault(v, {})[(race.grid, race.field)] = parts
    return out


def section(roots: Sequence[pathlib.Path], untimed: Sequence[str] = ()) -> list[str]:
    """The generated block: per image a table, then the verdict of :data:`RULE` (its time part
    left out for the grids named in ``untimed``)."""
    races = [r for root in roots for r in field_races(root)]
    if not races:
        return [f"No finished runs in {', '.join(f'`{r}`' for r in roots)}.", ""]
    lines = [f"Rule (written after image_000's grid, before the others ran): {RULE}", ""]
    variants: list[str] = []
    for grid in dict.fromkeys(r.grid for r in races):
        lines += [f"### {grid}", "", *([
            "Its clock ran while the machine also ran other jobs: the time columns are shown "
            "but not judged.", ""] if grid in untimed else []),
                  "| field | common target (dB) | optimizer | final PSNR: median (min-max) | "
                  "vs default (dB) | median s to target | seeds reached | time / default's | "
                  "time / Adam's |", "|---|---|---|---|---|---|---|---|---|"]
        for race in (r for r in races if r.grid == grid):
            base = statistics.median(_final(race.by_opt[DEFAULT])) if DEFAULT in race.by_opt \
                else None
            for p in race.placings:
                finals = _final(race.by_opt[p.optimizer])
                if p.optimizer not in (BASELINE, DEFAULT) and p.optimizer not in variants:
                    variants.append(p.optimizer)
                diff = ("—" if base is None or p.optimizer == DEFAULT
                        else f"{statistics.median(finals) - base:+.2f}")
                ratio = {o: (f"{p.seconds / s:.2f}x" if p.seconds is not None and s else "—")
                         for o in (DEFAULT, BASELINE) for s in [_seconds(race, o)]}
                target = "—" if race.target.value is None else f"{race.target.value:g}"
                lines.append(
                    f"| {race.field} | {target} | {p.optimizer} | {_span(finals)} | {diff} | "
                    + ("not reached" if p.seconds is None else f"{p.seconds:.1f}")
                    + f" | {p.reached}/{p.seeds} | {ratio[DEFAULT]} | {ratio[BASELINE]} |")
        lines.append("")
    judged = judge(races, variants, untimed)
    lines += ["Verdict of the rule on these images:", ""]
    for v in variants:
        cells = judged.get(v, {})
        parts = {k: [c for c, ok in cells.items() if k in ok and not ok[k]]
                 for k in ("quality", "time", "no_collapse")}
        counted = {k: sum(k in ok for ok in cells.values()) for k in parts}
        words = {"quality": f"final PSNR within {MAX_LOSS_DB:g} dB",
                 "time": "time to target no longer", "no_collapse": "no collapse"}
        detail = "; ".join(
            f"{words[k]} on {counted[k] - len(bad)}/{counted[k]}"
            + (f" (not on {', '.join(f'{g} {f}' for g, f in bad)})" if bad else "")
            for k, bad in parts.items())
        ok = all(counted.values()) and not any(parts.values())
        verdict = ("meets the rule" if ok else "does not meet it" if any(parts.values())
                   else "not judged yet (a part of the rule has no timed grid)")
        lines.append(f"- `{v}`: {detail}: {verdict}.")
    lines.append("")
    return lines


def write(roots: Sequence[pathlib.Path], output: pathlib.Path,
          untimed: Sequence[str] = ()) -> None:
    """Rewrite the block between :data:`BEGIN` and :data:`END` of ``output``."""
    text = output.read_text()
    if BEGIN not in text or END not in text:
        raise UsageError(f"--output {output}: expected the lines {BEGIN!r} and {END!r} around "
                         "the warm-up block")
    head, rest = text.split(BEGIN, 1)
    output.write_text(head + BEGIN + "\n" + "\n".join(section(roots, untimed)) + END
                      + rest.split(END, 1)[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from experiments.harness import cli

    def run(args: Sequence[str]) -> int:
        p = argparse.ArgumentParser(prog="python -m experiments.paper.warmup")
        p.add_argument("--roots", nargs="+", type=pathlib.Path, required=True)
        p.add_argument("--output", type=pathlib.Path, default=pathlib.Path("docs/ROBUSTNESS.md"))
        p.add_argument("--untimed", nargs="*", default=list(UNTIMED), metavar="GRID",
                       help="grids whose clocks ran under other load (times not judged)")
        a = p.parse_args(args)
        bad = [str(r) for r in a.roots if not r.is_dir()]
        if bad:
            raise UsageError(f"--roots {' '.join(bad)}: not a directory; expected warm-up grids")
        write(a.roots, a.output, a.untimed)
        print(f"wrote {a.output}")
        return 0

    return cli.run_main(run, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
