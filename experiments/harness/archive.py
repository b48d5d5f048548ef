"""Archive the small outputs of finished runs, so that results outlive the machine that ran them.

``python -m experiments.harness.archive SRC DST [--commit]`` copies, for every finished run under
``SRC`` (a directory holding ``summary.json``, at any depth), exactly its ``summary.json``,
``metrics.csv`` and ``config.json`` to the same relative path under ``DST``, and the results a
grid command writes beside its runs (:data:`GRID_RESULTS`: a sweep's ``best_lrs.json``, a patch
split's ``patches.json``) wherever they lie under ``SRC``; checkpoints, TensorBoard events and
images stay behind. Each file is written to a temporary file beside its
destination and moved into place with ``os.replace`` (``summary.json`` last, so an archived run
never shows a summary without its log), and files already identical are skipped, so rerunning
it while a grid trains copies only what finished since. With ``--commit`` the archive is then
committed: ``git add DST`` and ``git commit -- DST`` (only ``DST``, whatever else is staged),
and only when ``DST`` holds changes; a commit that finds ``.git/index.lock`` (another commit in
progress) is retried a few times. A missing ``SRC`` is an error (exit code 2).

The paper sections render from the archive (e.g. ``docs/reproduction/runs/fig5``), not from the
live ``runs/`` directory::

    python -m experiments.harness.archive runs/fig5 docs/reproduction/runs/fig5 --commit
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from experiments.harness.errors import UsageError

#: The files of a finished run that are archived, in the order they are written.
FILES = ("metrics.csv", "config.json", "summary.json")
#: Results a grid command writes beside its runs, archived wherever they lie under the source:
#: ``benchmarks.tuned_3d`` / ``time_to_quality`` sweeps' ``best_lrs.json`` and the patch splits'
#: ``patches.json`` (``experiments.paper.companion patches``, ``signals video-patches``), which
#: their report sections render from.
GRID_RESULTS = ("best_lrs.json", "patches.json")
#: Directories of a run that never hold a run and are not searched.
SKIP_DIRS = frozenset({"checkpoints", "tensorboard"})
#: How often, and how long apart, a git command is retried while the index is locked.
LOCK_RETRIES = 10
LOCK_SLEEP_S = 0.5


def _json_files(src: pathlib.Path, names: Sequence[str], kind: type = object
                ) -> list[pathlib.Path]:
    """The files named one of ``names`` under ``src`` that hold readable JSON of type ``kind``
    (one being written is skipped until it is whole), sorted; checkpoint and TensorBoard
    directories are not searched."""
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in names:
            if name in files:
                path = pathlib.Path(root) / name
                try:
                    ok = isinstance(json.loads(path.read_text()), kind)
                except (OSError, ValueError):
                    ok = False
                if ok:
                    found.append(path)
    return sorted(found)


def finished_runs(src: pathlib.Path) -> list[pathlib.Path]:
    """The run directories under ``src`` (``src`` itself included) whose ``summary.json`` is a
    readable JSON object, sorted; checkpoint and TensorBoard directories are not searched."""
    return sorted(p.parent for p in _json_files(src, ("summary.json",), dict))


def grid_results(src: pathlib.Path) -> list[pathlib.Path]:
    """The :data:`GRID_RESULTS` files under ``src`` that are readable JSON, sorted."""
    return _json_files(src, GRID_RESULTS)


def _copy(src: pathlib.Path, dst: pathlib.Path) -> bool:
    """Copy ``src`` to ``dst`` atomically unless ``dst`` already holds the same bytes; returns
    whether it wrote."""
    if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            out.write(inp.read())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return True


def archive(src: pathlib.Path | str, dst: pathlib.Path | str) -> list[pathlib.Path]:
    """Copy ``summary.json``, ``metrics.csv`` and ``config.json`` (those present) of every
    finished run under ``src``, and every :data:`GRID_RESULTS` file, to the same relative path
    under ``dst``.

    Returns:
      The destination files written, in order (files already identical are skipped and not
      listed).

    Raises:
      UsageError: ``src`` is not a directory, or ``dst`` lies inside it.
    """
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    if not src.is_dir():
        what = "not a directory" if src.exists() else "no such directory"
        raise UsageError(f"archive source {src}: {what}; expected a grid or run directory "
                         "holding finished runs (*/summary.json)")
    if dst.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"archive destination {dst} lies inside the source {src}; expected a "
                         "directory outside it")
    written = []
    for run in finished_runs(src):
        target = dst / run.relative_to(src)
        for name in FILES:
            if (run / name).is_file() and _copy(run / name, target / name):
                written.append(target / name)
    for result in grid_results(src):
        if _copy(result, dst / result.relative_to(src)):
            written.append(dst / result.relative_to(src))
    return written


# --- committing the archive --------------------------------------------------------------------


def _git(args: Sequence[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd``, waiting and retrying while another process holds the index
    lock; raises :class:`UsageError` with git's message when it fails otherwise."""
    lock = None
    for attempt in range(LOCK_RETRIES + 1):
        if lock is None:
            probe = subprocess.run(["git", "rev-parse", "--git-path", "index.lock"], cwd=cwd,
                                   capture_output=True, text=True)
            if probe.returncode == 0:
                lock = cwd / probe.stdout.strip()
        if lock is not None and lock.exists() and attempt < LOCK_RETRIES:
            time.sleep(LOCK_SLEEP_S)
            continue
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
        if done.returncode == 0:
            return done
        if "index.lock" in done.stderr:
            if attempt < LOCK_RETRIES:
                time.sleep(LOCK_SLEEP_S)
                continue
            raise UsageError(f"git {' '.join(args)} failed in {cwd}: {lock or 'index.lock'} "
                             f"still exists after {LOCK_RETRIES} retries (another git process "
                             "running, or a stale lock to remove)")
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
        first = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))),
                     lines[-1] if lines else f"exit code {done.returncode}")
        raise UsageError(f"git {' '.join(args)} failed in {cwd}: {first}")
    raise AssertionError("unreachable")  # pragma: no cover


def _runs_of(paths: Sequence[str]) -> list[str]:
    """The run directories (relative to the archive) of changed file paths."""
    return sorted({str(pathlib.PurePosixPath(p).parent) for p in paths})


def describe(runs: Sequence[str], limit: int = 6) -> str:
    """A short list of run directories: ``gaussian-adam/seed0-4, gaussian-esgd/seed0``."""
    seeds: dict[str, list[str]] = {}
    for run in runs:
        parent, _, leaf = run.rpartition("/")
        if leaf.startswith("seed") and leaf[4:].isdigit():
            seeds.setdefault(parent, []).append(leaf[4:])
        else:
            seeds.setdefault(run, [])
    parts = []
    for cell, found in seeds.items():
        nums = sorted(int(s) for s in found)
        if not nums:
            parts.append(cell or ".")
        elif nums == list(range(nums[0], nums[-1] + 1)) and len(nums) > 1:
            parts.append(f"{cell}/seed{nums[0]}-{nums[-1]}")
        else:
            parts.append(f"{cell}/seed" + ",".join(map(str, nums)))
    more = len(parts) - limit
    return ", ".join(parts[:limit]) + (f" and {more} more" if more > 0 else "")


def commit(dst: pathlib.Path | str, grid: str) -> str | None:
    """Commit ``dst`` (and nothing else) in the git repository holding it, when it has changes.

    Returns:
      The commit message, or ``None`` when ``dst`` had nothing to commit.
    """
    dst = pathlib.Path(dst).resolve()
    if not dst.is_dir():
        raise UsageError(f"archive destination {dst}: no such directory; nothing to commit")
    top = pathlib.Path(_git(["rev-parse", "--show-toplevel"], dst).stdout.strip())
    rel = os.path.relpath(dst, top)
    if subprocess.run(["git", "check-ignore", "-q", rel], cwd=top).returncode == 0:
        raise UsageError(f"archive destination {rel} is ignored by git (.gitignore); expected "
                         f"a tracked directory (add a line '!{rel}/' to .gitignore)")
    _git(["add", "--", rel], top)
    changed = _git(["diff", "--cached", "--name-only", "-z", "--", rel],
                   top).stdout.split("\0")
    changed = [c for c in changed if c]
    if not changed:
        return None
    runs = _runs_of([os.path.relpath(top / p, dst) for p in changed])
    message = (f"runs: archive {len(runs)} finished run{'s' if len(runs) != 1 else ''} of {grid} "
               f"({describe(runs)})")
    _git(["commit", "-q", "-m", message, "--", rel], top)
    return message


def parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    from experiments.harness.cli import OneLineParser

    p = OneLineParser(prog="python -m experiments.harness.archive", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", metavar="SRC", help="grid or run directory (e.g. runs/fig5)")
    p.add_argument("dst", metavar="DST",
                   help="archive directory (e.g. docs/reproduction/runs/fig5)")
    p.add_argument("--commit", action="store_true",
                   help="then git add DST and git commit -- DST when it changed")
    return p


def run(argv: Sequence[str] | None) -> int:
    """Archive, then commit with ``--commit``; returns 0."""
    a = parser().parse_args(argv)
    src, dst = pathlib.Path(a.src), pathlib.Path(a.dst)
    written = archive(src, dst)
    runs = _runs_of([os.path.relpath(p, dst) for p in written])
    print(f"archived {len(written)} files of {len(runs)} runs from {src} to {dst} "
          f"({len(finished_runs(src))} finished runs in {src})")
    if a.commit:
        message = commit(dst, src.resolve().name)
        print(f"committed: {message}" if message else f"nothing to commit in {dst}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2, with one line on stderr, for bad input)."""
    from experiments.harness.cli import run_main

    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
