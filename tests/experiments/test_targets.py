"""The race to a common target (experiments.harness.targets) and the demo's summary of it, on
hand-made runs whose answers are known."""

from __future__ import annotations

import csv
import json
import pathlib

from experiments import compare, demo
from experiments.harness import targets


def _run(opt: str, seed: int, psnrs: list[float], step_s: float) -> targets.Run:
    rows = tuple({"step": 100 * (i + 1), "epoch": float(i + 1), "time_s": 100 * (i + 1) * step_s,
                  "train_psnr": p} for i, p in enumerate(psnrs))
    return targets.Run(opt, seed, psnrs[-1], rows)


def test_the_race_orders_by_median_seconds_to_the_common_target() -> None:
    by_opt = {
        # Adam ends at 24.0-24.4 dB: the common target is its median, 24.2, floored: 24.2.
        "adam": [_run("adam", s, [14.0, 20.0, 24.0 + 0.1 * s], 0.01) for s in range(5)],
        # ESGD passes 24.2 at its second log on every seed, at twice Adam's cost per step.
        "esgd": [_run("esgd", s, [18.0, 25.0, 27.0], 0.02) for s in range(5)],
        # A stalled optimizer: left out of the target, never reaches it.
        "sgd": [_run("sgd", s, [14.0, 14.5, 15.0], 0.005) for s in range(5)],
    }
    target = targets.common_target(by_opt)
    assert (target.value, target.setter) == (24.2, "adam")
    placings = targets.race(by_opt, target.value)
    assert [p.optimizer for p in placings] == ["adam", "esgd", "sgd"]
    adam, esgd, sgd = placings
    assert esgd.seconds == 4.0 and esgd.steps == 200 and esgd.reached == 5
    # Adam reaches 24.2 dB only on seeds 2, 3, 4, at its third log (3 s).
    assert adam.seconds == 3.0 and adam.reached == 3 and adam.finished
    assert sgd.reached == 0 and not sgd.finished and sgd.seconds is None
    line = targets.race_line("gaussian", by_opt)
    assert "to the common target 24.2 dB" in line and "set by adam" in line
    assert "adam 3.00 s (3/5 seeds), esgd 4.00 s (5/5 seeds), sgd not reached (0/5" in line
    # Adam's 3.00 s on the seeds that reached beats ESGD's 4.00 s: Adam is first.
    assert line.endswith("First: adam.")


def test_the_race_line_gives_the_factor_over_adam_and_says_when_nobody_learned() -> None:
    by_opt = {"adam": [_run("adam", s, [14.0, 20.0, 24.0], 0.02) for s in range(5)],
              "esgd": [_run("esgd", s, [18.0, 25.0, 27.0], 0.01) for s in range(5)]}
    # Target 24.0: Adam at 6 s, ESGD at 2 s.
    assert targets.race_line("wavelet", by_opt).endswith("First: esgd, 3.00x sooner than adam.")
    stalled = {o: [_run(o, s, [14.0, 14.2, 14.4], 0.01) for s in range(3)]
               for o in ("adam", "esgd")}
    assert "no common target" in targets.race_line("sine", stalled)


def _write(out: pathlib.Path, field: str, opt: str, seed: int, psnrs: list[float],
           step_s: float) -> None:
    run = out / f"{field}-{opt}" / f"seed{seed}"
    run.mkdir(parents=True)
    with open(run / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["step", "epoch", "time_s", "loss", "train_psnr"])
        w.writeheader()
        for i, p in enumerate(psnrs):
            w.writerow({"step": 100 * (i + 1), "epoch": i + 1, "time_s": 100 * (i + 1) * step_s,
                        "loss": 10 ** (-p / 10), "train_psnr": p})
    (run / "summary.json").write_text(json.dumps(
        {"final_psnr": psnrs[-1], "config": {"activation": field, "optimizer": opt,
                                             "seed": seed}}))


def test_the_demo_ends_with_the_race_per_field(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "demo"

    def fake_compare(argv):
        for s in range(5):
            _write(out, "wavelet", "adam", s, [14.0, 20.0, 24.0], 0.02)
            _write(out, "wavelet", "esgd", s, [18.0, 25.0, 27.0], 0.01)
        return 0

    monkeypatch.setattr(compare, "main", fake_compare)
    assert demo.main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("wavelet: to the common target 24 dB")
    assert printed[-1].endswith("First: esgd, 3.00x sooner than adam.")
