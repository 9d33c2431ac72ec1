"""cnnlab in Jupyter, through a real kernel (nbclient + ipykernel, the kernel registered from this Python):
the tutorial notebooks run without a failing cell; `cnnlab.train` shows one progress display redrawn in
place (its final state: every epoch and the status) and its result as an HTML table; a study table shows
as an HTML table with its verdicts; the kernel's interrupt stops a run with a checkpoint and
`cnnlab.train(resume=...)` in the next cell finishes it."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_core.utils import run_sync  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

from tools import docs_notebooks  # noqa: E402


def outputs(cell: dict, kind: str) -> list[dict]:
    return [o for o in cell["outputs"] if o["output_type"] == kind]


@pytest.mark.slow
@pytest.mark.parametrize("path", docs_notebooks.NOTEBOOKS, ids=[p.stem for p in docs_notebooks.NOTEBOOKS])
def test_a_tutorial_notebook_runs(path: Path, tmp_path: Path) -> None:
    notebook = docs_notebooks.execute(path, tmp_path)  # a failing cell raises CellExecutionError
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in outputs(cell, "error")]
    assert not errors
    if path.stem == "ablation-notebook":  # the study table, as HTML, with its verdict column
        shown = [o["data"]["text/html"] for cell in notebook.cells if cell.cell_type == "code"
                 for o in outputs(cell, "execute_result") if "cnnlab-table" in o["data"].get("text/html", "")]
        assert shown and "<th>verdict</th>" in shown[0] and "better" in shown[0] and "reference" in shown[0]


@pytest.mark.slow
def test_train_in_a_notebook_shows_live_progress_and_an_html_result(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[
        new_code_cell("import cnnlab"),
        new_code_cell('result = cnnlab.train(data="digits", epochs=3, name="nb")\nresult'),
    ])
    docs_notebooks.client(notebook, tmp_path).execute()
    cell = notebook.cells[1]
    displays = outputs(cell, "display_data")
    assert len(displays) == 1, "one display, redrawn in place, not one output per update"
    final = displays[0]["data"]
    assert "cnnlab-progress" in final["text/html"] and "<td>3/3</td>" in final["text/html"]
    assert "completed: trained 3 epochs" in final["text/html"]
    lines = final["text/plain"].splitlines()
    assert [line.split("  ")[0] for line in lines[:3]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert lines[-1] == "completed: trained 3 epochs"
    streams = "".join(o["text"] for o in outputs(cell, "stream"))
    assert "epoch 1/3" not in streams, "the console's epoch lines are replaced by the display"
    assert "data: digits" not in streams  # the library's messages print only when asked (cnnlab.show_messages())
    result = outputs(cell, "execute_result")[0]["data"]["text/html"]
    assert "cnnlab-table" in result and "test top-1" in result and "completed" in result


@pytest.mark.slow
def test_interrupting_the_kernel_stops_a_run_that_the_next_cell_resumes(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[
        new_code_cell("import cnnlab"),
        new_code_cell('result = cnnlab.train(model="lenet5", data="digits", epochs=20, name="nb")\n'
                      "print(result.status.value, result.record.epochs_completed)"),
        new_code_cell("resumed = cnnlab.train(resume=result.run_dir)\n"
                      "print(resumed.status.value, resumed.record.epochs_completed, resumed.record.sessions)"),
    ])
    client = docs_notebooks.client(notebook, tmp_path)
    metrics = tmp_path / "runs" / "nb" / "metrics.csv"
    with client.setup_kernel():
        client.execute_cell(notebook.cells[0], 0)
        running = threading.Thread(target=client.execute_cell, args=(notebook.cells[1], 1))
        running.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
            time.sleep(0.1)  # until the first epoch is in metrics.csv
        run_sync(client.km.interrupt_kernel)()  # the kernel's interrupt button
        running.join(300)
        client.execute_cell(notebook.cells[2], 2)
    stopped = "".join(o["text"] for o in outputs(notebook.cells[1], "stream")).split()
    assert stopped[-2] == "interrupted" and 1 <= int(stopped[-1]) < 20
    assert not outputs(notebook.cells[1], "error"), "an interrupt is a result, not a KeyboardInterrupt"
    finished = "".join(o["text"] for o in outputs(notebook.cells[2], "stream")).split()
    assert finished[-3:] == ["completed", "20", "2"]


def test_the_notebook_extra_brings_jupyterlab_and_the_docs_say_how_to_open_the_notebooks() -> None:
    import re
    import subprocess

    extra = re.search(r"^notebook = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert extra and '"jupyterlab>=' in extra.group(1) and '"pandas>=' in extra.group(1)  # pandas: History.to_pandas
    for page in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        text = page.read_text()
        assert "pip install -e '.[notebook]'" in text and "jupyter lab docs/tutorials" in text, page
    assert list((ROOT / "docs" / "tutorials").glob("*.ipynb"))  # what it opens
    lab = Path(sys.executable).parent / "jupyter-lab"
    done = subprocess.run([str(lab), "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip()[0].isdigit(), done.stderr
