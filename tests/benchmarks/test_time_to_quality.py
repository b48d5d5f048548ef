"""benchmarks.time_to_quality in a tiny configuration: the grids it trains, the learning-rate
sweep's choice, the table's race, and its errors. No timing is asserted."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from benchmarks import time_to_quality as ttq
from experiments import optimizers

TINY = ["--activations", "gaussian", "--size", "8", "--depth", "2", "--width", "8",
        "--batch-size", "16", "--timing-steps", "0", "--no-progress"]


@pytest.fixture
def images(tmp_path: pathlib.Path) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_run_sweep_and_table(tmp_path: pathlib.Path, images: list[str], capsys) -> None:
    out = tmp_path / "registry"
    assert ttq.main(["run", "--images", images[0], "--optimizers", "adam", "esgd", "--out",
                     str(out), "--epochs", "2", "--seeds", "0", "1", *TINY]) == 0
    assert len(list(out.glob("a/gaussian-*/seed*/summary.json"))) == 4
    lines = ttq.table([out])
    rows = [ln for ln in lines if ln.startswith("| a | gaussian |")]
    assert {r.split("|")[4].strip() for r in rows} == {"adam", "esgd"}
    adam = next(r for r in rows if "| adam |" in r)
    assert float(adam.split("|")[5]) == optimizers.get("adam").lr_for("gaussian")
    cells = adam.split("|")
    # Adam's own time over Adam's: 1.00x whenever it reached the target.
    assert cells[9].strip() in ("1.00x", "—")
    assert "Length: 2 epochs" in "\n".join(lines)

    # The sweep trains each factor of the registry rate on its own images, then picks.
    sweep = tmp_path / "sweep"
    assert ttq.main(["sweep", "--images", images[1], "--optimizers", "adam", "--factors", "1",
                     "100", "--out", str(sweep), "--epochs", "1", "--seeds", "0", *TINY]) == 0
    best = json.loads((sweep / "best_lrs.json").read_text())
    base = optimizers.get("adam").lr_for("gaussian")
    tried = best["median_final_psnr"]["adam"]["gaussian"]
    assert sorted(float(k) for k in tried) == pytest.approx([base, 100 * base])
    chosen = best["best_lrs"]["adam"]["gaussian"]
    assert tried[f"{chosen:g}"] == max(tried.values())

    # ... and run --lrs trains at the chosen rate.
    tuned = tmp_path / "tuned"
    assert ttq.main(["run", "--images", images[0], "--optimizers", "adam", "--lrs",
                     str(sweep / "best_lrs.json"), "--out", str(tuned), "--epochs", "1",
                     "--seeds", "0", *TINY]) == 0
    summary = json.loads(next(tuned.glob("a/gaussian-adam/seed0/summary.json")).read_text())
    assert summary["learning_rate"] == pytest.approx(chosen)
    capsys.readouterr()


def test_errors_name_the_bad_value(tmp_path: pathlib.Path, capsys) -> None:
    assert ttq.main(["run", "--images", str(tmp_path / "nope.png"), "--out",
                     str(tmp_path / "o")]) == 2
    assert "nope.png" in capsys.readouterr().err and not (tmp_path / "o").exists()
    bad = tmp_path / "lrs.json"
    bad.write_text(json.dumps({"adam": 0.1}))
    assert ttq.main(["run", "--images", "skimage:astronaut", "--lrs", str(bad)]) == 2
    assert "lrs.json" in capsys.readouterr().err
    assert ttq.main(["sweep", "--images", "skimage:astronaut", "--factors", "0"]) == 2
    assert "--factors" in capsys.readouterr().err
    assert ttq.main(["bogus"]) == 2
    assert "expected a subcommand" in capsys.readouterr().err
