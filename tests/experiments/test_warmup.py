"""experiments.paper.warmup: the warm-up study's tables and the rule's verdict, on made runs
whose races and finals are computed by hand."""

from __future__ import annotations

import pathlib

import pytest

from experiments.harness.errors import UsageError
from experiments.paper import warmup
from tests.conftest import write_fake_run

ADAM = [10, 13, 16, 18, 20]


def _grid(root: pathlib.Path, image: str, variant_psnrs: list[list[float]],
          variant_step_s: float) -> pathlib.Path:
    """Adam (ends at 20 dB, 0.1 s a step), the default (ends at 24 dB, 0.12 s a step) and
    ``esgd_clip_warmup10`` (its own curves and step time), 3 seeds each."""
    for seed in range(3):
        write_fake_run(root, image, "sine", "adam", seed, [p - 0.1 * seed for p in ADAM], 0.1,
                       1.0, 5e-5)
        write_fake_run(root, image, "sine", "esgd_clip", seed, [10, 16, 20, 22, 24], 0.12,
                       2.0, 0.15)
        write_fake_run(root, image, "sine", "esgd_clip_warmup10", seed,
                       variant_psnrs[seed], variant_step_s, 2.0, 0.15)
    return root / image


def test_section_and_verdict(tmp_path: pathlib.Path) -> None:
    # Faster per step, ends 0.3 dB lower: every part of the rule holds. Target: Adam's median
    # final (19.9 dB, floored): the default reaches it at step 30 (3.6 s), the variant at 30
    # (3.0 s): 0.83x.
    good = _grid(tmp_path, "a", [[10, 16, 20, 22, 23.7]] * 3, 0.1)
    lines = warmup.section([good])
    text = "\n".join(lines)
    assert "| sine | 19.9 | esgd_clip_warmup10 | 23.70 (23.70-23.70) | -0.30 | 3.0 | 3/3 | " \
           "0.83x | 0.60x |" in text
    assert "- `esgd_clip_warmup10`: final PSNR within 0.5 dB on 1/1; time to target no longer " \
           "on 1/1; no collapse on 1/1: meets the rule." in text

    # The same grid untimed: the time part is not judged, so nothing is decided.
    assert "not judged yet" in "\n".join(warmup.section([good], untimed=["a"]))

    # A collapsed seed (ends below Adam's worst, 19.8 dB) and 0.6 dB lower median.
    bad = _grid(tmp_path, "b", [[10, 16, 20, 22, 23.4], [10, 16, 20, 22, 23.4],
                                [10, 12, 14, 15, 15]], 0.1)
    judged = warmup.judge(warmup.field_races(bad), ["esgd_clip_warmup10"])
    assert judged["esgd_clip_warmup10"][("b", "sine")] == {
        "quality": False, "time": True, "no_collapse": False}
    verdict = warmup.section([good, bad])[-2]
    assert verdict.endswith("does not meet it.") and "(not on b sine)" in verdict


def test_write_needs_the_markers(tmp_path: pathlib.Path) -> None:
    grid = _grid(tmp_path / "runs", "a", [[10, 16, 20, 22, 23.7]] * 3, 0.1)
    doc = tmp_path / "R.md"
    doc.write_text(f"head\n{warmup.BEGIN}\nSTALE\n{warmup.END}\ntail\n")
    warmup.write([grid], doc)
    text = doc.read_text()
    assert "STALE" not in text and "meets the rule" in text and text.endswith("tail\n")
    doc.write_text("no markers")
    with pytest.raises(UsageError, match="warmup:begin"):
        warmup.write([grid], doc)
    assert warmup.main(["--roots", str(tmp_path / "missing"), "--output", str(doc)]) == 2
