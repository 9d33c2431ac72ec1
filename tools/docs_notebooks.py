"""The tutorial notebooks (docs/tutorials/*-notebook.ipynb), executed in a real Jupyter kernel.

`kernel(folder)` registers a kernel that runs this Python (the project's venv, with cnnlab importable), so a
notebook runs against the code under test, not whatever `python3` kernel the machine has. The tests
(tests/test_notebooks.py) execute each notebook in a fresh folder and fail on any cell that fails;
`make docs-results` (`python tools/docs_notebooks.py`) executes them and saves their outputs into the
notebooks, which the site then shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))
KERNEL = "cnnlab-docs"
JUPYTER_PATH = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]  # as the process started
PYTHONPATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def kernel(folder: Path) -> str:
    """Register a kernel running this interpreter under `folder` and point Jupyter at it (JUPYTER_PATH);
    its name. The kernel sees cnnlab from this checkout's src/ and one torch thread per core it may use."""
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL, prefix=str(folder), display_name="cnnlab (docs)")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(folder / "share" / "jupyter"), *JUPYTER_PATH])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *PYTHONPATH])
    return KERNEL


def client(notebook: nbformat.NotebookNode, folder: Path, timeout: int = 600) -> NotebookClient:
    """A client that runs `notebook` in `folder` (its working directory: runs/ goes there)."""
    return NotebookClient(notebook, timeout=timeout, kernel_name=kernel(folder / ".kernel"),
                          resources={"metadata": {"path": str(folder)}})


def execute(path: Path, folder: Path) -> nbformat.NotebookNode:
    """Run every cell of the notebook at `path` in `folder`; raises CellExecutionError on a failing cell."""
    notebook = nbformat.read(path, as_version=4)
    client(notebook, folder).execute()
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description="execute the tutorial notebooks and save their outputs")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: every tutorial one)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "docs-results" / "notebooks")
    args = parser.parse_args()
    for path in [p.resolve() for p in args.notebooks] or NOTEBOOKS:
        folder = args.work / path.stem
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"executing {path.relative_to(ROOT)}", flush=True)
        notebook = execute(path, folder)
        for cell in notebook.cells:  # the kernel's own warnings are no part of the tutorial
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
        nbformat.write(notebook, path)
    sys.exit(0)


if __name__ == "__main__":
    main()
