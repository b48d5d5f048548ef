"""``python -m experiments.paper.reproduction``: one fragment per section, partial reruns keep the
others, the page is assembled from every fragment in a fixed order."""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from experiments.paper import reproduction

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fake_run(path: pathlib.Path, loss: float, psnr: float, seed: int = 0) -> None:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({
        "final_loss": loss, "final_psnr": psnr, "epochs": 10, "learning_rate": 0.1,
        "time_per_step_s": 0.01, "config": {"seed": seed}}))
    with (path / "metrics.csv").open("w") as f:
        f.write("step,epoch,time_s,loss,train_psnr,eval_psnr\n")
        f.write(f"1280,10,1.0,{loss},{-10 * math.log10(loss)},{psnr}\n")


def _fragment(sections: pathlib.Path, name: str, heading: str, claims: list[str]) -> str:
    path = reproduction.write_fragment(sections / f"{name}.md", name, "hand-made",
                                       [f"## {heading}", "", f"Body of {name}.", ""], claims)
    return path.read_text()


@pytest.fixture()
def page(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, dict[str, str]]:
    """A page location with hand-made condition and lion fragments (lion written first)."""
    out = tmp_path / "docs" / "REPRODUCTION.md"
    sections = out.parent / "reproduction" / "sections"
    texts = {"lion": _fragment(sections, "lion", "Lion", ["- lion claim: **reproduced**"]),
             "condition": _fragment(sections, "condition", "Condition",
                                    ["- condition claim A", "  - its sub-claim"])}
    return out, sections, texts


def _avs_grid(root: pathlib.Path) -> pathlib.Path:
    _fake_run(root / "gaussian-adam", 1e-3, 27.0)
    _fake_run(root / "gaussian-sgd", 1e-2, 20.0)
    return root


def test_assembling_without_flags_keeps_every_fragment(page) -> None:
    out, sections, texts = page
    assert reproduction.main(["--output", str(out)]) == 0
    text = out.read_text()
    # Claims and sections in the fixed order, whatever order the fragments were written in.
    claims = text[text.index("## Claims"):text.index("## Condition")]
    assert claims.split("\n")[2:5] == ["- condition claim A", "  - its sub-claim",
                                       "- lion claim: **reproduced**"]
    assert text.index("## Condition") < text.index("## Lion") < text.index("## Likely reasons")
    assert "Body of condition." in text and "Body of lion." in text
    assert "<!--" not in text  # the fragments' comments stay in the fragments
    # The sections without a fragment are named in one line, with their commands.
    missing = next(line for line in text.split("\n") if line.startswith("Sections not generated"))
    for name in ("adam_vs_sgd", "sparsity", "extra", "occupancy", "nerf", "beyond", "companion"):
        assert f" {name} (`" in missing
        assert reproduction.SECTIONS[name].regenerate() in missing
    assert "`python -m experiments.paper.occupancy --" in missing
    assert "condition (`" not in missing and "lion (`" not in missing
    for name, before in texts.items():
        assert (sections / f"{name}.md").read_text() == before


def test_rerunning_one_section_replaces_just_its_fragment(page, tmp_path) -> None:
    out, sections, texts = page
    old = _fragment(sections, "adam_vs_sgd", "Old Adam vs SGD", ["- stale claim"])
    assert reproduction.main(["--adam-vs-sgd", str(_avs_grid(tmp_path / "avs")),
                              "--output", str(out)]) == 0
    new = (sections / "adam_vs_sgd.md").read_text()
    assert new != old and "Old Adam vs SGD" not in new and "stale claim" not in new
    assert f"rendered from `{tmp_path / 'avs'}`" in new
    fragment = reproduction.read_fragment(sections / "adam_vs_sgd.md")
    assert fragment.body.startswith("## Adam vs SGD (paper Fig. 3a)")
    assert [c.split(" (")[0] for c in fragment.claims] == [
        "- Fig. 3a gaussian: Adam reaches a lower loss than SGD"]
    for name, before in texts.items():
        assert (sections / f"{name}.md").read_text() == before
    text = out.read_text()
    assert "stale claim" not in text and "Body of lion." in text and "Body of condition." in text
    assert (text.index("- condition claim A") < text.index("- Fig. 3a gaussian")
            < text.index("- lion claim"))
    assert text.index("## Condition") < text.index("## Adam vs SGD") < text.index("## Lion")


def test_rerunning_a_new_section_adds_it(page, tmp_path) -> None:
    out, sections, _ = page
    grid = tmp_path / "nerf" / "lego-cpu"
    for opt in ("esgd", "adam"):
        run = grid / f"gaussian-{opt}" / "seed0"
        run.mkdir(parents=True)
        run.joinpath("metrics.csv").write_text("step,train_psnr\n10,20.0\n20,21.0\n")
        run.joinpath("summary.json").write_text(json.dumps({
            "final_psnr": 20.0, "steps": 20, "time_per_step_s": 0.1,
            "optimizer_time_per_step_s": 0.01,
            "config": {"activation": "gaussian", "optimizer": opt, "seed": 0,
                       "learning_rate": 1.0, "schedule": "constant", "steps": 20}}))
    assert reproduction.main(["--nerf", str(tmp_path / "nerf"), "--output", str(out)]) == 0
    assert reproduction.read_fragment(sections / "nerf.md").body.startswith("## NeRF")
    text = out.read_text()
    assert "### Ours: `lego-cpu`" in text and text.index("## Lion") < text.index("## NeRF")
    missing = next(line for line in text.split("\n") if line.startswith("Sections not generated"))
    assert "nerf (`" not in missing and "occupancy (`" in missing


def test_a_missing_directory_is_an_error_before_any_work(page, tmp_path, capsys) -> None:
    out, sections, texts = page
    missing = tmp_path / "gone" / "lion"
    code = reproduction.main(["--adam-vs-sgd", str(_avs_grid(tmp_path / "avs")),
                              "--lion", str(missing), "--output", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: --lion {missing}: no such directory; expected")
    assert not out.exists() and not (sections / "adam_vs_sgd.md").exists()
    for name, before in texts.items():
        assert (sections / f"{name}.md").read_text() == before


def test_a_directory_without_results_keeps_the_fragment(page, tmp_path, capsys) -> None:
    out, sections, texts = page
    (tmp_path / "empty").mkdir()
    assert reproduction.main(["--lion", str(tmp_path / "empty"), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: --lion {tmp_path / 'empty'}: no results (expected the (archived) grid of" in err
    assert "keeping" in err
    assert (sections / "lion.md").read_text() == texts["lion"]
    assert "Body of lion." in out.read_text()


def test_an_unclosed_claims_block_is_an_error(page, capsys) -> None:
    out, sections, _ = page
    (sections / "extra.md").write_text("<!-- claims -->\n- a claim\n\n## Extra\n")
    assert reproduction.main(["--output", str(out)]) == 2
    assert "extra.md: '<!-- claims -->' is never closed" in capsys.readouterr().err
    assert not out.exists()


def test_the_committed_page_is_assembled_from_the_committed_fragments(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "REPRODUCTION.md"
    assert reproduction.main(["--sections", "docs/reproduction/sections",
                              "--output", str(out)]) == 0
    assert out.read_text() == (REPO_ROOT / "docs" / "REPRODUCTION.md").read_text()


def test_sections_draw_their_plots_from_an_archive_without_pngs(tmp_path) -> None:
    # An archive holds summary.json and metrics.csv only: the lion and Adam-vs-SGD sections
    # draw the comparison plots themselves instead of silently dropping them.
    lion = tmp_path / "lion"
    for seed in range(2):
        for opt, loss in (("adam", 2e-3), ("esgd", 1e-3)):
            _fake_run(lion / f"wavelet-{opt}" / f"seed{seed}", loss, 25.0, seed=seed)
    assets = tmp_path / "assets"
    lines, _ = reproduction.lion_section(lion, assets)
    assert not list(lion.glob("*.png"))
    assert any("lion_loss_vs_steps.png" in line for line in lines)
    assert (assets / "lion_loss_vs_steps.png").is_file()
    avs_lines, _ = reproduction.adam_sgd_section(_avs_grid(tmp_path / "avs"), assets)
    assert any("adam_vs_sgd.png" in line for line in avs_lines)
    assert (assets / "adam_vs_sgd.png").is_file()


def test_a_partial_lion_grid_says_which_claims_are_not_run_yet(tmp_path) -> None:
    # A grid still running (only Adam's wavelet runs archived) keeps every claim on the page,
    # marked as not run yet, instead of silently dropping them.
    lion = tmp_path / "lion"
    for seed in range(5):
        _fake_run(lion / "wavelet-adam" / f"seed{seed}", 2e-3, 27.0, seed=seed)
    _, claims = reproduction.lion_section(lion, tmp_path / "assets")
    text = "\n".join(claims)
    assert "ESGD beats Adam at epoch 10 (paper 29.36 vs 26.61 dB): not run yet (wavelet runs: " \
           "0 of `esgd`, 5 of `adam`)" in text
    for field in ("gaussian", "sine", "wavelet", "relu_pe"):
        assert f"- {field}: " in text and "not run yet" in text.split(f"- {field}: ")[1]


def _run_with_evals(path: pathlib.Path, seed: int, at10: float, final: float) -> None:
    """A 200-epoch run whose full-image PSNR is ``at10`` at epoch 10 and ``final`` at the end."""
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({
        "final_loss": 1e-3, "final_psnr": final, "epochs": 200, "config": {"seed": seed}}))
    with (path / "metrics.csv").open("w") as f:
        f.write("step,epoch,time_s,loss,train_psnr,eval_psnr\n")
        f.write(f"1280,10,1.0,0.01,20.0,{at10}\n")
        f.write(f"25600,200,20.0,0.001,30.0,{final}\n")


def test_the_lion_section_says_where_the_epoch_10_ordering_holds_or_flips(tmp_path) -> None:
    lion = tmp_path / "lion"
    for s in range(5):
        # gaussian: ESGD ahead at 10 and at 200 (holds); sine: ESGD ahead at 10, Adam at 200.
        _run_with_evals(lion / "gaussian-adam" / f"seed{s}", s, 23.0 + s, 34.0 + s)
        _run_with_evals(lion / "gaussian-esgd" / f"seed{s}", s, 25.0 + s, 36.0 + s)
        _run_with_evals(lion / "sine-adam" / f"seed{s}", s, 24.0, 40.0)
    for s in range(3):  # a cell still running: 3 seeds
        _run_with_evals(lion / "sine-esgd" / f"seed{s}", s, 28.0, 37.0)
        _run_with_evals(lion / "wavelet-adam" / f"seed{s}", s, 27.0, 35.0)  # no ESGD yet
    lines, _ = reproduction.lion_section(lion, tmp_path / "assets")
    rows = {ln.split("|")[1].strip(): ln for ln in lines if ln.startswith(("| gaussian |",
                                                                            "| sine |",
                                                                            "| wavelet |"))
            and "@10" not in ln and ln.count("|") == 9}
    # Medians over seeds 0-4 (the middle seed, 2).
    assert rows["gaussian"] == ("| gaussian | 25.00 (5) | 36.00 (5) | 27.00 (5) | 38.00 (5) "
                                "| esgd | esgd | holds |")
    assert rows["sine"] == ("| sine | 24.00 (5) | 40.00 (5) | 28.00 (3) | 37.00 (3) "
                            "| esgd | adam | flips |")
    # One optimizer alone has no ordering.
    assert rows["wavelet"].endswith("| — (0) | — (0) | — | — | — |")
