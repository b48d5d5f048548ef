"""The docstring examples of the public API run, as optax runs its own, so what users copy stays
true."""

import doctest
import importlib
import pkgutil

import jaxprecond_fields
import pytest

import jaxprecond

MODULES = sorted(
    [m.name for m in pkgutil.iter_modules(jaxprecond.__path__, prefix="jaxprecond.")]
    + [m.name for m in pkgutil.iter_modules(jaxprecond_fields.__path__,
                                            prefix="jaxprecond_fields.")]
)


def test_every_module_is_collected():
    assert {"jaxprecond.esgd", "jaxprecond.adahessian", "jaxprecond.masking",
            "jaxprecond.flax_utils", "jaxprecond.data_parallel",
            "jaxprecond_fields.registry"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):  # the module's globals, as `python -m doctest`
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) of {name} failed"
