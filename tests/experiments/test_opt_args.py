"""``--opt-arg`` options are checked against the optimizer's signature and converted to its
parameter types before any work: a bad one ends with exit code 2 and one line naming it."""

import pytest

from experiments import compare
from experiments.harness.errors import UsageError
from experiments.optimizers import registry
from tests.experiments.conftest import TINY, run_cli


def _no_work(monkeypatch):
    """Make loading the data or training fail loudly: a bad option must stop the run first."""
    import experiments.harness.train as train_module
    import experiments.tasks.image as image_module

    def forbidden(*args, **kwargs):
        raise RuntimeError("work started despite a bad --opt-arg")

    monkeypatch.setattr(image_module, "load_image", forbidden)
    monkeypatch.setattr(train_module, "train", forbidden)


def _argv(out, optimizer, *opt_args):
    flags = [flag for item in opt_args for flag in ("--opt-arg", item)]
    return [*TINY, "--optimizer", optimizer, "--out", str(out), *flags]


@pytest.mark.parametrize("optimizer,opt_args,needles", [
    ("esgd", ["clip=banana"],
     ["--opt-arg clip='banana'", "expected a number or None", "'esgd'", "clip: float | None"]),
    ("esgd", ["esgd.clip=banana"], ["--opt-arg esgd.clip='banana'", "a number or None"]),
    ("esgd", ["no_such_option=1"],
     ["no_such_option", "'esgd'", "expected one of", "clip", "bias_correction", "n_probes"]),
    ("esgd", ["esgd.no_such_option=1"], ["esgd.no_such_option", "expected one of"]),
    ("esgd", ["bias_correction=nonsense"],
     ["bias_correction='nonsense'", "'per_refresh'", "'reference'"]),
    ("esgd", ["n_probes=2.5"], ["n_probes='2.5'", "an integer or None"]),
    ("esgd", ["warmup=many"], ["warmup='many'", "an integer", "warmup: int"]),
    ("esgd", ["clip=-1"], ["--opt-arg clip=-1", "rejected by optimizer 'esgd'", "clip"]),
    ("esgd", ["learning_rate=0.1"], ["learning_rate", "--lr"]),
    ("esgd", ["seed=3"], ["seed", "--seed"]),
    ("esgd", ["esdg.clip=2"], ["esdg.clip=2", "'esdg'", "esgd"]),
    ("esgd_reference", ["clip=banana"], ["clip='banana'", "'esgd_reference'"]),
    ("adam", ["clip=1"], ["clip", "'adam'", "b1"]),
    ("adam", ["nesterov=maybe"], ["nesterov='maybe'", "true or false"]),
    ("shampoo", ["graft=adam"], ["graft='adam'", "'none'", "'sgd'"]),
    ("sophia_h", ["n_probes=two"], ["n_probes='two'", "an integer"]),
    ("sophia_h", ["no_such_option=1"], ["no_such_option", "'sophia_h'"]),
    ("muon", ["partition=everything"], ["partition='everything'", "'hidden'", "'all_2d'"]),
])
def test_bad_opt_arg_is_refused_before_any_work(tmp_path, capsys, monkeypatch, optimizer,
                                               opt_args, needles):
    _no_work(monkeypatch)
    out = tmp_path / "run"
    code = run_cli(_argv(out, optimizer, *opt_args))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: --opt-arg ") and "\n" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    assert not out.exists()


@pytest.mark.parametrize("optimizer,opt_args,expected", [
    ("esgd", ["clip=none"], {"clip": None}),
    ("esgd", ["clip=None"], {"clip": None}),
    ("esgd", ["clip=0.5"], {"clip": 0.5}),
    ("esgd", ["clip=2"], {"clip": 2.0}),
    ("esgd", ["esgd.clip=2", "adam.b1=0.5"], {"clip": 2.0}),
    ("esgd", ["clip=3", "esgd.clip=2"], {"clip": 2.0}),
    ("esgd", ["n_probes=4", "warmup_probes=8", "warmup=3", "update_interval=5"],
     {"n_probes": 4, "warmup_probes": 8, "warmup": 3, "update_interval": 5}),
    ("esgd", ["n_probes=none"], {"n_probes": None}),
    ("esgd", ["bias_correction=reference", "probe=gaussian"],
     {"bias_correction": "reference", "probe": "gaussian"}),
    ("esgd", ["mu_dtype=bfloat16"], {"mu_dtype": "bfloat16"}),
    ("esgd_reference", ["clip=0.5"], {"clip": 0.5}),
    ("adam", ["b1=0.8", "nesterov=true"], {"b1": 0.8, "nesterov": True}),
    ("shampoo", ["graft=none", "momentum=none", "block_size=64"],
     {"graft": "none", "momentum": None, "block_size": 64}),
    ("preconditioned_sgd", ["accumulate=false"], {"accumulate": False}),
    ("sophia_h", ["update_interval=3", "n_probes=2"], {"update_interval": 3, "n_probes": 2}),
    ("muon", ["partition=all_2d", "ns_steps=3"], {"partition": "all_2d", "ns_steps": 3}),
])
def test_valid_opt_args_reach_the_run_converted(tmp_path, monkeypatch, optimizer, opt_args,
                                                expected):
    import experiments.tasks.image as image_module

    seen = []
    monkeypatch.setattr(image_module, "run", lambda config, **kw: seen.append(config) or {})
    assert run_cli(_argv(tmp_path / "run", optimizer, *opt_args)) == 0
    (config,) = seen
    assert config.opt_args == expected
    for key, value in expected.items():
        assert type(config.opt_args[key]) is type(value), (key, config.opt_args[key])


def test_a_grid_checks_every_optimizer_before_training_any(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    out = tmp_path / "grid"
    argv = ["--optimizers", "esgd", "adam", "--activations", "gaussian", "--epochs", "1",
            "--out", str(out), *TINY, "--opt-arg", "clip=0.5"]
    assert compare.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "clip" in err and "'adam'" in err and "\n" not in err
    assert not out.exists()


def test_options_are_checked_against_the_builder_signature():
    check = registry.check_options
    assert check("esgd", {"clip": "none", "n_probes": "4"}) == {"clip": None, "n_probes": 4}
    # Values already typed (a config built in code) pass through unchanged.
    assert check("esgd", {"clip": None, "warmup": 3}) == {"clip": None, "warmup": 3}
    with pytest.raises(UsageError, match=r"clip='banana': expected a number or None \("
                                         r"optimizer 'esgd', parameter clip: float \| None\)"):
        check("esgd", {"clip": "banana"})
    # A builder without annotations falls back on its defaults' types.
    spec = registry.OptimizerSpec(
        "test_plain", lambda lr, *, seed=0, axis_name=None, steps=10, scale=1.0, name="x": None,
        {"*": 1.0})
    registry.register(spec)
    try:
        assert check("test_plain", {"steps": "3", "scale": "2", "name": "y"}) == {
            "steps": 3, "scale": 2.0, "name": "y"}
        with pytest.raises(UsageError, match="steps='3.5': expected an integer"):
            check("test_plain", {"steps": "3.5"})
        with pytest.raises(UsageError, match="expected one of steps, scale, name"):
            check("test_plain", {"other": "1"})
    finally:
        registry.REGISTRY.pop("test_plain", None)


def _unresolvable(lr, *, seed=0, axis_name=None, clip: "float | None" = 1.0,
                  mode: "Literal['a', 'none']" = "a", thing: "Missing" = 3):  # noqa: F821
    return None


def test_annotations_that_do_not_resolve_are_read_from_their_text():
    registry.register(registry.OptimizerSpec("test_text", _unresolvable, {"*": 1.0}))
    try:
        check = registry.check_options
        assert check("test_text", {"clip": "none", "mode": "none", "thing": "4"}) == {
            "clip": None, "mode": "none", "thing": 4}
        with pytest.raises(UsageError, match=r"mode='c': expected one of 'a', 'none'"):
            check("test_text", {"mode": "c"})
        with pytest.raises(UsageError, match=r"clip='x': expected a number or None"):
            check("test_text", {"clip": "x"})
    finally:
        registry.REGISTRY.pop("test_text", None)
