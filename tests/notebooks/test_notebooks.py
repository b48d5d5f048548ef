"""The notebooks in ``notebooks/``: committed without outputs, reproducible from ``build.py``, and
executed top to bottom in their tiny configuration (``JAXPRECOND_NOTEBOOK_TINY=1``).

The kernel is this interpreter (``sys.executable``) through a kernelspec written to a temporary
folder, so the notebooks import the installed project whatever ``python`` the default
``python3`` kernelspec would resolve to. It inherits this process's environment: the CPU
platform and the four simulated host devices of ``tests/conftest.py``, so notebook 03 shards
across and pmaps over four devices.
"""

import json
import subprocess
import sys

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
EXPECTED = (
    "01_esgd_vs_adam_image.ipynb",
    "02_activation_matters.ipynb",
    "03_use_in_your_pipeline.ipynb",
)
KERNEL_NAME = "jaxprecond-test"
# Each tiny notebook takes well under a minute on a 2-core CPU; this only stops a hung cell.
CELL_TIMEOUT_S = 300


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def test_the_notebooks_are_all_there():
    assert tuple(sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_valid_and_cleared(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} has outputs; clear them"
            assert cell.execution_count is None, f"{name}: cell {i} has an execution count"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "REPO_URL" in code[0] and "import jaxprecond" in code[0], "first cell installs"
    assert "TINY =" in code[1] and "JAXPRECOND_NOTEBOOK_TINY" in code[1], "second cell: TINY"
    assert sum("TINY =" in c for c in code) == 1, "exactly one cell sets TINY"


def test_build_script_reproduces_the_committed_notebooks(tmp_path):
    subprocess.run(
        [sys.executable, str(NOTEBOOK_DIR / "build.py"), "--out", str(tmp_path)],
        check=True, capture_output=True,
    )
    for name in EXPECTED:
        assert (tmp_path / name).read_text() == (NOTEBOOK_DIR / name).read_text(), (
            f"{name} differs from what notebooks/build.py generates; run it and commit"
        )


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec that runs this very interpreter."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jaxprecond tests",
        "language": "python",
    }))
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_in_the_tiny_configuration(name, kernel_specs, monkeypatch):
    monkeypatch.setenv("JAXPRECOND_NOTEBOOK_TINY", "1")
    nb = _read(name)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    outputs = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.outputs if out.get("output_type") == "stream"
    )
    assert "configuration: tiny" in outputs
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert not errors
