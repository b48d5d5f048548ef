"""Every bad input ends with exit code 2 and one line naming the value, before any training."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.experiments.conftest import run_cli, tiny_args


def _expect_usage_error(capsys, argv, *needles):
    code = run_cli(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


@pytest.fixture
def files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 77).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    return {"text": text, "truncated": truncated, "missing": tmp_path / "missing.jpg"}


@pytest.mark.parametrize("flags,needles", [
    (["--optimizer", "nadamw"], ["nadamw", "esgd"]),
    (["--activation", "tanh"], ["tanh", "gaussian"]),
    (["--lr", "0"], ["--lr 0", "positive"]),
    (["--lr", "-0.1"], ["--lr -0.1", "positive"]),
    (["--epochs", "0"], ["--epochs 0", "positive"]),
    (["--epochs", "-2"], ["--epochs -2", "positive"]),
    (["--batch-size", "0"], ["--batch-size 0", "positive"]),
    (["--batch-size", "257"], ["--batch-size 257", "256"]),
    (["--epochs", "two"], ["--epochs", "two"]),
    (["--parallel", "tpu"], ["tpu", "pmap"]),
    (["--schedule", "linear"], ["linear", "cosine"]),
    (["--opt-arg", "warmup"], ["warmup", "KEY=VALUE"]),
    (["--opt-arg", "esgd.no_such_option=1"], ["no_such_option"]),
    (["--opt-arg", "no_such_option=1"], ["no_such_option"]),
    (["--size", "0"], ["--size 0"]),
])
def test_bad_flags(tmp_path, capsys, flags, needles):
    out = tmp_path / "run"
    _expect_usage_error(capsys, [*tiny_args(out), *flags], *needles)
    assert not (out / "metrics.csv").exists()


@pytest.mark.parametrize("kind,needle", [
    ("missing", "no such file"), ("text", "not an image"), ("truncated", "expected"),
])
def test_bad_images(tmp_path, capsys, files, kind, needle):
    out = tmp_path / "run"
    _expect_usage_error(capsys, [*tiny_args(out), "--image", str(files[kind])],
                        str(files[kind]), needle)
    assert not out.exists()


def test_out_dir_holding_a_run_needs_resume_and_the_same_settings(capsys, esgd_reference):
    before = (esgd_reference / "metrics.csv").read_text()
    _expect_usage_error(capsys, tiny_args(esgd_reference, "--epochs", "2"),
                        str(esgd_reference), "--resume")
    _expect_usage_error(capsys, tiny_args(esgd_reference, "--epochs", "2", "--resume",
                                          "--seed", "1"),
                        str(esgd_reference), "different run", "seed")
    # (without ESGD's --opt-args, which Adam does not take and which are checked first)
    _expect_usage_error(capsys, tiny_args(esgd_reference, "--epochs", "2", "--resume",
                                          "--optimizer", "adam", esgd=False),
                        str(esgd_reference), "optimizer")
    _expect_usage_error(capsys, tiny_args(esgd_reference, "--epochs", "1", "--resume"),
                        "--epochs 1", "at least 2")
    assert (esgd_reference / "metrics.csv").read_text() == before


def _copy_run(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_unreadable_checkpoint_names_the_directory(tmp_path, capsys, esgd_reference):
    run = _copy_run(esgd_reference, tmp_path / "run")
    for path in (run / "checkpoints").rglob("*"):
        if path.is_file() and path.suffix not in (".json",) and "meta" not in path.parts:
            path.write_bytes(b"\x00garbage")
    err = _expect_usage_error(capsys, tiny_args(run, "--epochs", "3", "--resume"),
                              str(run / "checkpoints"))
    assert "checkpoint" in err


def test_incompatible_checkpoint_names_the_directory(tmp_path, capsys, esgd_reference):
    run = _copy_run(esgd_reference, tmp_path / "run")
    saved = json.loads((run / "config.json").read_text())
    saved["config"]["width"] = 32  # pretend the run was wider than its checkpoint
    (run / "config.json").write_text(json.dumps(saved))
    err = _expect_usage_error(capsys, [*tiny_args(run, "--epochs", "3", "--resume"),
                                       "--width", "32"],
                              str(run / "checkpoints"))
    assert "checkpoint" in err
