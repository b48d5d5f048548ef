"""benchmarks.whole_run in a tiny configuration: what it reports adds up; no timing asserted."""

from __future__ import annotations

import pytest

from benchmarks import whole_run


def test_whole_run_reports_compile_warmup_and_rest(capsys) -> None:
    result = whole_run.main(["--steps", "12", "--first", "4", "--rounds", "1", "--depth", "2",
                             "--width", "8", "--only", "esgd warmup=10"])
    runs = result["runs"]
    assert list(runs) == ["adam", "esgd warmup=10"]
    for r in runs.values():
        assert r["whole_per_step_s"] == pytest.approx(
            (r["compile_s"] + r["first_s"] + r["rest_s"]) / 12)
        assert min(r["compile_s"], r["first_s"], r["rest_s"]) > 0
    assert runs["adam"]["ratio_to_adam"] == 1.0
    out = capsys.readouterr().out
    assert "| esgd warmup=10 |" in out and "first 4 steps" in out


def test_bad_first_is_refused() -> None:
    with pytest.raises(ValueError, match="first=12"):
        whole_run.measure(steps=12, first=12)
