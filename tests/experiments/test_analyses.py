"""The analysis scripts (issue 5) on tiny configurations: outputs exist and are sane."""

from __future__ import annotations

import csv
import json
import math
import pathlib

import numpy as np
import pytest

from experiments.paper import condition, reproduction, sparsity

TINY_RUN = ("--size", "8", "--depth", "2", "--width", "8", "--batch-size", "16",
            "--epochs", "1", "--no-progress")


@pytest.fixture(scope="module")
def condition_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("condition")
    condition.run(steps=3, points=16, width=4, out=str(out))
    return out


@pytest.fixture(scope="module")
def sparsity_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("sparsity")
    assert sparsity.main([*TINY_RUN, "--activations", "gaussian", "relu",
                          "--probe-batch", "16", "--out", str(out)]) == 0
    return out


def test_condition_outputs(condition_run: pathlib.Path) -> None:
    rows = condition.read_csv(condition_run / "condition.csv")
    assert [r["descent"] for r in rows] == [d for d in condition.DESCENTS for _ in range(4)]
    for r in rows:
        assert all(math.isfinite(v) for k, v in r.items() if k != "descent")
        for key in ("kappa_hessian", "kappa_equilibration", "kappa_jacobi",
                    "kappa_range_hessian"):
            assert r[key] >= 1.0
        assert r["kappa_range_hessian"] <= r["kappa_hessian"]
    first = rows[0]
    assert first["step"] == 0
    assert first["kappa_equilibration"] < first["kappa_hessian"]
    summary = json.loads((condition_run / "summary.json").read_text())
    assert summary["settings"]["num_params"] == 1 * 4 + 4 + 4 * 4 + 4 + 4 + 1
    # Each descent starts from the same point; a 1/L step lowers the loss.
    assert len({summary[d]["first"]["loss"] for d in condition.DESCENTS}) == 1
    for d in condition.DESCENTS:
        assert summary[d]["last"]["loss"] < summary[d]["first"]["loss"]
    assert (condition_run / "condition.png").stat().st_size > 0


def test_condition_step_is_preconditioned_gradient() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    h = a @ a.T + np.eye(5)
    g = rng.normal(size=5)
    update, diag = condition.descent_step(1.0, g, h, "jacobi", 0.0, 1.0, None)
    d = np.abs(np.diag(h))
    p = h / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]
    eta = 1.0 / np.abs(np.linalg.eigvalsh(p)).max()
    np.testing.assert_allclose(update, -eta * g / d, rtol=1e-10)
    np.testing.assert_allclose(diag["kappa_hessian"], np.linalg.cond(h), rtol=1e-8)


def test_sparsity_outputs(sparsity_run: pathlib.Path) -> None:
    with (sparsity_run / "sparsity.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["activation"] for r in rows} == {"gaussian", "relu"}
    # initialisation and one evaluation epoch, 4 leaves (2 dense layers) per activation
    assert len(rows) == 2 * 2 * 4
    assert {int(r["epoch"]) for r in rows} == {0, 1}
    assert all(0.0 <= float(r["fraction"]) <= 1.0 for r in rows)
    summary = json.loads((sparsity_run / "summary.json").read_text())
    means = {a: v["mean"] for a, v in summary["activations"].items()}
    assert all(0.0 <= m <= 1.0 for m in means.values())
    assert (sparsity_run / "sparsity.png").stat().st_size > 0
    assert (sparsity_run / "relu" / "summary.json").is_file()


def _fake_run(path: pathlib.Path, loss: float, psnr: float, epochs: int = 10,
              seed: int = 0) -> None:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({
        "final_loss": loss, "final_psnr": psnr, "epochs": epochs, "learning_rate": 0.1,
        "time_per_step_s": 0.01, "config": {"seed": seed}}))
    with (path / "metrics.csv").open("w") as f:
        f.write("step,epoch,time_s,loss,train_psnr,eval_psnr\n")
        f.write(f"1280,{epochs},1.0,{loss},{-10 * math.log10(loss)},{psnr}\n")


def test_reproduction_page(tmp_path: pathlib.Path, condition_run: pathlib.Path,
                           sparsity_run: pathlib.Path) -> None:
    lion = tmp_path / "lion"
    for field in reproduction.PAPER_FINAL_MSE:
        for seed in range(5):  # ESGD ahead on 4 of 5 seeds; seed 4 collapses
            bad = seed == 4
            _fake_run(lion / f"{field}-adam" / f"seed{seed}", 1e-3, 27.0 + 0.1 * seed,
                      seed=seed)
            _fake_run(lion / f"{field}-esgd" / f"seed{seed}", 5e-2 if bad else 5e-4,
                      20.0 if bad else 29.0, seed=seed)
            _fake_run(lion / f"{field}-esgd_reference" / f"seed{seed}", 7e-4, 28.0, seed=seed)
    avs = tmp_path / "avs"
    _fake_run(avs / "gaussian-adam", 1e-3, 27.0)
    _fake_run(avs / "gaussian-sgd", 1e-2, 20.0)
    extra = tmp_path / "extra"
    _fake_run(extra / "sine-esgd-lr0.3", 4e-4, 30.0)
    out = tmp_path / "docs" / "REPRODUCTION.md"
    assert reproduction.main(["--lion", str(lion), "--condition", str(condition_run),
                              "--sparsity", str(sparsity_run), "--adam-vs-sgd", str(avs),
                              "--extra", str(extra), "--output", str(out)]) == 0
    text = out.read_text()
    assert "29.36" in text and "26.61" in text
    assert ("median 29.00 vs 27.20 dB, ESGD ahead on 4/5 seeds): **reproduced**" in text)
    assert "4/5 > adam" in text  # the table's win count
    # One seed is never a verdict.
    assert "Adam lower on 1/1 seeds): not judged (1 seed; a verdict needs 5)" in text
    assert "relu_pe: Adam reaches the lower training MSE" in text
    assert "not reproduced" in text  # relu_pe: ESGD wins in the fake runs
    assert "Fig. 3a gaussian: Adam reaches a lower loss than SGD" in text
    assert "| sine-esgd-lr0.3 |" in text and "Follow-up runs" in text
    # Every section rendered went to its own fragment, the page is assembled from them.
    sections = out.parent / "reproduction" / "sections"
    assert sorted(p.stem for p in sections.glob("*.md")) == sorted(
        ["adam_vs_sgd", "condition", "extra", "lion", "sparsity"])
    assert "**reproduced**" in (sections / "lion.md").read_text()
    missing = text.split("Sections not generated yet: ")[1].split("\n")[0]
    assert missing.startswith("fig5 (") and "; occupancy (" in missing
    assets = out.parent / "reproduction"
    assert (assets / "condition.png").is_file()
    for png in assets.glob("*.png"):
        assert png.stat().st_size < reproduction.MAX_ASSET_BYTES
        assert f"reproduction/{png.name}" in text


def test_reproduction_with_a_missing_run_directory(tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "R.md"
    missing = tmp_path / "none"
    assert reproduction.main(["--lion", str(missing), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--lion {missing}: no such directory" in err
    assert not out.exists()


def test_adam_vs_sgd_tiny(tmp_path: pathlib.Path) -> None:
    from experiments.paper import adam_vs_sgd

    out = tmp_path / "avs"
    assert adam_vs_sgd.main([*TINY_RUN, "--activations", "relu", "--out", str(out),
                             "--timing-steps", "0"]) == 0
    for opt in ("adam", "sgd"):
        summary = json.loads((out / f"relu-{opt}" / "summary.json").read_text())
        assert math.isfinite(summary["final_loss"]) and summary["epochs"] == 1
    assert (out / "report.md").is_file() and (out / "loss_vs_steps.png").is_file()


def test_lion_tiny(tmp_path: pathlib.Path, shared_data: pathlib.Path) -> None:
    from experiments import optimizers
    from experiments.paper import lion

    out = tmp_path / "lion"
    assert lion.main([*TINY_RUN, "--activations", "gaussian", "--optimizers",
                      "esgd_reference", "--image", str(shared_data / lion.LION.split("data/")[1]),
                      "--out", str(out), "--timing-steps", "0"]) == 0
    summary = json.loads((out / "gaussian-esgd_reference" / "summary.json").read_text())
    assert math.isfinite(summary["final_psnr"])
    assert summary["config"]["learning_rate"] == optimizers.get("esgd").lr_for("gaussian")
    assert (out / "report.md").is_file()
