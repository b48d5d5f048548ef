"""Issue 11's bar check and the ROBUSTNESS.md writer, on hand-made run directories."""

from __future__ import annotations

import math
import pathlib

from experiments.harness.report import bar_check, markdown_table, read_results, table
from experiments.paper import robustness
from tests.experiments.test_report_seeds import make_run

ADAM = [27.0, 27.5, 26.5, 28.0, 27.2]  # worst 26.5, spread 1.5


def _grid(root: pathlib.Path, **cands: list[float]) -> None:
    for seed, a in enumerate(ADAM):
        make_run(root, "sine", "adam", seed, a, [20.0, a])
    for name, values in cands.items():
        for seed, v in enumerate(values):
            make_run(root, "sine", name, seed, v, [20.0, v])


def test_bar_check_each_condition(tmp_path: pathlib.Path) -> None:
    _grid(tmp_path,
          esgd_ok=[29.0, 30.0, 28.5, 29.5, 30.5],      # median 29.5, worst 28.5, spread 2.0
          esgd_low=[26.0, 27.1, 27.0, 27.1, 26.9],     # median 27.0 < 27.2
          esgd_worst=[30.0, 30.0, 30.0, 30.0, 25.4],   # 25.4 < 26.5 - 1, spread 4.6
          esgd_wide=[31.0, 30.0, 28.5, 29.0, 27.6],    # spread 3.4 > 2 x 1.5, worst fine
          esgd_nan=[30.0, 30.0, 30.0, 30.0, math.nan])
    checks = {c.activation + "/" + name: c for name in
              ("esgd_ok", "esgd_low", "esgd_worst", "esgd_wide", "esgd_nan")
              for c in bar_check(read_results(tmp_path), name)}
    ok = checks["sine/esgd_ok"]
    assert ok.passed and ok.candidate == (29.5, 28.5, 30.5) and ok.baseline == (27.2, 26.5, 28.0)
    low = checks["sine/esgd_low"]
    assert (low.median, low.worst, low.spread) == (False, True, True)
    worst = checks["sine/esgd_worst"]
    assert (worst.median, worst.worst, worst.spread) == (True, False, False)
    wide = checks["sine/esgd_wide"]
    assert (wide.median, wide.worst, wide.spread) == (True, True, False)
    nan = checks["sine/esgd_nan"]
    assert not nan.worst and not nan.spread and not nan.passed


def test_table_has_one_header_when_cells_have_different_seed_counts(tmp_path) -> None:
    for seed, a in enumerate(ADAM):
        make_run(tmp_path, "sine", "adam", seed, a, [a])
    make_run(tmp_path, "sine", "esgd", 0, 29.0, [29.0])  # one seed finished so far
    rows = table(read_results(tmp_path), 25.0)
    assert len({tuple(r) for r in rows}) == 1
    assert "29.00" in markdown_table(rows)


def test_write_doc_replaces_only_the_generated_part(tmp_path: pathlib.Path) -> None:
    grid = tmp_path / "grid"
    _grid(grid, esgd_clip=[29.0, 30.0, 28.5, 29.5, 30.5], esgd=[30.0, 22.0, 31.0, 29.0, 28.0])
    doc = tmp_path / "docs" / "ROBUSTNESS.md"
    doc.parent.mkdir()
    doc.write_text("# prose before\n\n" + robustness.BEGIN + "\nold\n" + robustness.END
                   + "\n\nprose after\n")
    text = robustness.write_doc([grid], doc)
    assert text.startswith("# prose before") and text.rstrip().endswith("prose after")
    assert "old" not in text
    generated = text.split(robustness.BEGIN)[1].split(robustness.END)[0]
    # The bar table: esgd_clip passes all three, esgd (a 22 dB seed) fails worst and spread.
    clip_row = next(line for line in generated.splitlines() if "| esgd_clip" in line
                    and "median:" in line)
    assert "median:yes worst:yes spread:yes" in clip_row
    esgd_row = next(line for line in generated.splitlines() if "| esgd " in line
                    and "median:" in line)
    assert "worst:no spread:no" in esgd_row
    assert (doc.parent / "robustness" / "seeds_astronaut_(bundled).png").exists()
    again = robustness.write_doc([grid], doc)  # idempotent
    assert again == text


def test_warmup_variants_refresh_as_many_times_as_named() -> None:
    """The issue-21 variants keep the clip and cut the warm-up: 20 (or 10) refreshes, then none
    until the first periodic one (step warmup + 99)."""
    import jax
    import jax.numpy as jnp

    from experiments import optimizers
    from jaxprecond.curvature import _curvature_states

    robustness.register_variants()
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    obj = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0, 9.0]) * p["w"] ** 2)
    for name, warmup in (("esgd_clip_warmup20", 20), ("esgd_clip_warmup10", 10)):
        tx = optimizers.build(name, 0.15)
        state = tx.init(params)
        step = jax.jit(lambda p, s, tx=tx: tx.update(jax.grad(obj)(p), s, p, obj_fn=obj))
        for _ in range(warmup + 30):
            _, state = step(params, state)
        curv = _curvature_states(state)
        assert len(curv) == 1 and int(curv[0].hvp_count) == warmup, name
        # The clip of the default stays: no update entry exceeds lr (0.15) in size.
        updates, _ = step(params, state)
        assert float(jnp.max(jnp.abs(updates["w"]))) <= 0.15 + 1e-6
