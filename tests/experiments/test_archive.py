"""``python -m experiments.harness.archive``: only the three small files of finished runs are
copied, atomically and only when changed; ``--commit`` commits the archive and nothing else."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from experiments.harness import archive


def _run(path: pathlib.Path, *, finished: bool, psnr: float = 20.0) -> None:
    """A run directory as the harness leaves it (checkpoints, TensorBoard, PNGs)."""
    (path / "checkpoints" / "128").mkdir(parents=True)
    (path / "checkpoints" / "128" / "state").write_bytes(b"\0" * 64)
    (path / "tensorboard").mkdir()
    (path / "tensorboard" / "events.out.tfevents.1").write_bytes(b"ev")
    (path / "reconstruction.png").write_bytes(b"png")
    (path / "config.json").write_text(json.dumps({"config": {"seed": 0}}))
    (path / "metrics.csv").write_text("step,epoch,time_s,loss,train_psnr\n128,1,0.5,0.01,20\n")
    if finished:
        (path / "summary.json").write_text(json.dumps({"final_psnr": psnr}))


@pytest.fixture()
def grid(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "runs" / "fig5"
    for seed in (0, 1):
        _run(root / "gaussian-adam" / f"seed{seed}", finished=True)
    _run(root / "gaussian-esgd" / "seed0", finished=True)
    _run(root / "gaussian-esgd" / "seed1", finished=False)  # still training
    (root / "gaussian-esgd" / "seed2").mkdir(parents=True)  # being written: broken summary
    (root / "gaussian-esgd" / "seed2" / "summary.json").write_text("{")
    (root / "report.md").write_text("report")
    return root


def _files(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_only_the_three_files_of_finished_runs_are_copied(grid, tmp_path) -> None:
    dst = tmp_path / "docs" / "runs" / "fig5"
    written = archive.archive(grid, dst)
    expected = [f"gaussian-{o}/seed{s}/{f}" for o, s in (("adam", 0), ("adam", 1), ("esgd", 0))
                for f in ("config.json", "metrics.csv", "summary.json")]
    assert _files(dst) == expected
    assert sorted(str(p.relative_to(dst)) for p in written) == expected
    for name in expected:
        assert (dst / name).read_bytes() == (grid / name).read_bytes()
    # summary.json last within a run, so an archived run never has a summary without its log
    assert [p.name for p in written[:3]] == ["metrics.csv", "config.json", "summary.json"]
    assert not list(dst.rglob("*.tmp"))
    # A rerun copies nothing; a changed file (a resumed run) is copied again, alone.
    assert archive.archive(grid, dst) == []
    (grid / "gaussian-esgd" / "seed1" / "summary.json").write_text(json.dumps({"final_psnr": 1}))
    (grid / "gaussian-adam" / "seed0" / "metrics.csv").write_text("step\n256\n")
    again = archive.archive(grid, dst)
    assert sorted(str(p.relative_to(dst)) for p in again) == [
        "gaussian-adam/seed0/metrics.csv", "gaussian-esgd/seed1/config.json",
        "gaussian-esgd/seed1/metrics.csv", "gaussian-esgd/seed1/summary.json"]
    assert (dst / "gaussian-adam/seed0/metrics.csv").read_text() == "step\n256\n"


def test_grid_results_are_archived_beside_the_runs(grid, tmp_path) -> None:
    # A sweep's best_lrs.json and a patch split's patches.json: the sections render from them.
    (grid / "best_lrs.json").write_text(json.dumps({"best_lrs": {"adam": {"gaussian": 1e-3}}}))
    (grid / "patches").mkdir()
    (grid / "patches" / "patches.json").write_text(json.dumps({"runs": []}))
    (grid / "patches" / "seed0").mkdir()
    (grid / "patches" / "seed0" / "patches.json").write_text("{")  # being written: not yet
    (grid / "gaussian-adam" / "seed0" / "checkpoints" / "patches.json").write_text("{}")
    dst = tmp_path / "docs" / "runs" / "fig5"
    written = [str(p.relative_to(dst)) for p in archive.archive(grid, dst)]
    assert written[-2:] == ["best_lrs.json", "patches/patches.json"]
    assert (dst / "best_lrs.json").read_bytes() == (grid / "best_lrs.json").read_bytes()
    assert not (dst / "patches" / "seed0").exists()
    assert not (dst / "gaussian-adam" / "seed0" / "checkpoints").exists()
    assert archive.archive(grid, dst) == []  # unchanged: nothing copied again
    (grid / "patches" / "seed0" / "patches.json").write_text("{}")
    assert [str(p.relative_to(dst)) for p in archive.archive(grid, dst)] == [
        "patches/seed0/patches.json"]


def test_a_missing_source_is_an_error(tmp_path, capsys) -> None:
    assert archive.main([str(tmp_path / "gone"), str(tmp_path / "dst")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"archive source {tmp_path / 'gone'}: no such directory" in err
    assert not (tmp_path / "dst").exists()
    (tmp_path / "src").mkdir()
    assert archive.main([str(tmp_path / "src"), str(tmp_path / "src" / "archive")]) == 2
    assert "lies inside the source" in capsys.readouterr().err


def _git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def test_commit_commits_only_the_archive(grid, tmp_path, capsys, monkeypatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "test")
    _git(repo, "config", "user.email", "test@example.com")
    (repo / ".gitignore").write_text("runs/\n!docs/reproduction/runs/\n")
    (repo / "other.txt").write_text("v1\n")
    _git(repo, "add", ".gitignore", "other.txt")
    _git(repo, "commit", "-q", "-m", "init")
    (repo / "other.txt").write_text("v2\n")
    _git(repo, "add", "other.txt")  # someone else's staged change: must stay uncommitted
    (repo / "untracked.txt").write_text("x\n")
    dst = repo / "docs" / "reproduction" / "runs" / "fig5"
    monkeypatch.chdir(repo)

    assert archive.main([str(grid), "docs/reproduction/runs/fig5", "--commit"]) == 0
    out = capsys.readouterr().out
    assert "archived 9 files of 3 runs" in out
    log = _git(repo, "log", "--format=%s")
    assert log.split("\n")[0] == ("runs: archive 3 finished runs of fig5 "
                                  "(gaussian-adam/seed0-1, gaussian-esgd/seed0)")
    committed = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted(
        f"docs/reproduction/runs/fig5/{f}" for f in _files(dst))
    status = _git(repo, "status", "--porcelain")
    assert "M  other.txt" in status and "?? untracked.txt" in status
    assert "docs/" not in status

    # Nothing changed: no commit.
    assert archive.main([str(grid), str(dst), "--commit"]) == 0
    assert "nothing to commit" in capsys.readouterr().out
    assert len(_git(repo, "log", "--format=%s").split("\n")) == len(log.split("\n"))

    # One more run finished: a commit with just it.
    (grid / "gaussian-esgd" / "seed1" / "summary.json").write_text(json.dumps({"final_psnr": 1}))
    assert archive.main([str(grid), str(dst), "--commit"]) == 0
    assert _git(repo, "log", "-1", "--format=%s").strip() == (
        "runs: archive 1 finished run of fig5 (gaussian-esgd/seed1)")
    assert "M  other.txt" in _git(repo, "status", "--porcelain")


def test_commit_waits_for_the_index_lock(tmp_path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    (repo / "a").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "test")
    _git(repo, "config", "user.email", "test@example.com")
    (repo / "a" / "f.txt").write_text("x")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    sleeps = []

    def sleep(s: float) -> None:  # another commit finishes after two waits
        sleeps.append(s)
        if len(sleeps) == 2:
            lock.unlink()

    monkeypatch.setattr(archive.time, "sleep", sleep)
    assert archive.commit(repo / "a", "grid") == "runs: archive 1 finished run of grid (.)"
    assert len(sleeps) == 2
    monkeypatch.setattr(archive, "LOCK_RETRIES", 1)
    (repo / "a" / "f.txt").write_text("y")
    lock.write_text("")
    monkeypatch.setattr(archive.time, "sleep", lambda s: None)
    with pytest.raises(archive.UsageError, match="index.lock"):
        archive.commit(repo / "a", "grid")


def test_an_ignored_destination_is_an_error(tmp_path) -> None:
    repo = tmp_path / "repo"
    (repo / "runs" / "x").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("runs/\n")
    (repo / "runs" / "x" / "f").write_text("x")
    with pytest.raises(archive.UsageError, match="ignored by git"):
        archive.commit(repo / "runs" / "x", "grid")
