"""What ``pip install`` of this project puts in site-packages: namespaced names only.

``fields`` and ``experiments`` are folders of this repository (and importable from its root), but
both names are taken on PyPI, so installing them top-level would shadow a user's package. These
tests read ``pyproject.toml`` and run setuptools' own expansion of its package configuration
(``packages.find`` included), without building or installing anything.
"""

import ast
import subprocess
import sys
import tomllib
import warnings

import pytest
from setuptools.config.pyprojecttoml import expand_configuration

from tests.conftest import REPO_ROOT

#: The only top-level names the distribution may install.
ALLOWED_TOP_LEVEL = {"jaxprecond", "jaxprecond_fields"}


def _setuptools_config(pyproject_text: str) -> dict:
    """``[tool.setuptools]`` of ``pyproject_text`` as setuptools expands it for this repository."""
    config = tomllib.loads(pyproject_text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools' "beta" and deprecation notices
        config = expand_configuration(config, root_dir=REPO_ROOT)
    return config.get("tool", {}).get("setuptools", {})


def installed_top_level(pyproject_text: str) -> set[str]:
    """The top-level importable names a wheel built from ``pyproject_text`` would contain."""
    cfg = _setuptools_config(pyproject_text)
    packages, modules = cfg.get("packages"), cfg.get("py-modules")
    assert packages is not None or modules is not None, (
        "pyproject.toml lists no packages: setuptools would auto-discover every top-level folder "
        "(fields, experiments, benchmarks, ...); list them under [tool.setuptools]"
    )
    return {name.split(".")[0] for name in [*(packages or []), *(modules or [])]}


def _package_folder(package: str, package_dir: dict[str, str]):
    """The source folder setuptools builds ``package`` from (longest ``package-dir`` prefix)."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in package_dir:
            return REPO_ROOT / package_dir[prefix] / "/".join(parts[i:])
    return REPO_ROOT / package_dir.get("", ".") / "/".join(parts)


def test_only_namespaced_top_level_names_are_installed():
    names = installed_top_level((REPO_ROOT / "pyproject.toml").read_text())
    assert names == ALLOWED_TOP_LEVEL, (
        f"pip install would put {sorted(names)} in site-packages, "
        f"expected exactly {sorted(ALLOWED_TOP_LEVEL)}"
    )


@pytest.mark.parametrize("include", [
    '["jaxprecond*", "fields*", "experiments*"]',  # the configuration this test replaced
    '["jaxprecond*", "fields*"]',
])
def test_the_check_rejects_generic_top_level_names(include):
    old = f'[tool.setuptools.packages.find]\ninclude = {include}\n'
    assert installed_top_level(old) - ALLOWED_TOP_LEVEL


def test_listed_packages_are_the_folders_with_all_their_subpackages():
    cfg = _setuptools_config((REPO_ROOT / "pyproject.toml").read_text())
    packages = set(cfg["packages"])
    package_dir = cfg.get("package-dir", {})
    for package in packages:
        folder = _package_folder(package, package_dir)
        assert (folder / "__init__.py").is_file(), f"{package}: {folder} is not a package"
        for init in folder.rglob("__init__.py"):
            sub = init.parent.relative_to(folder).parts
            if sub and "__pycache__" not in sub:
                name = ".".join((package, *sub))
                assert name in packages, f"{name} ({init.parent}) is not in pyproject's packages"


def test_fields_imports_itself_relatively():
    """``fields/`` installs as ``jaxprecond_fields``, where ``from fields...`` would fail."""
    for path in sorted((REPO_ROOT / "fields").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                bad = (node.module or "").split(".")[0] == "fields"
            elif isinstance(node, ast.Import):
                bad = any(a.name.split(".")[0] == "fields" for a in node.names)
            else:
                continue
            assert not bad, f"{path.name}:{node.lineno} imports `fields` absolutely"


def test_fields_folder_works_under_its_installed_name(tmp_path):
    """Loads ``fields/`` as ``jaxprecond_fields`` in a fresh interpreter away from the repo root."""
    code = (
        "import importlib.util, sys\n"
        f"folder = {str(REPO_ROOT / 'fields')!r}\n"
        "spec = importlib.util.spec_from_file_location(\n"
        "    'jaxprecond_fields', folder + '/__init__.py', submodule_search_locations=[folder])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['jaxprecond_fields'] = module\n"
        "spec.loader.exec_module(module)\n"
        "assert 'fields' not in sys.modules\n"
        "print(type(module.make('gaussian')).__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "jaxprecond_fields.field"
