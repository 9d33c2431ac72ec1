"""Reports say what they know (issue 34, 4): a damaged config.yaml makes `report` show the run as damaged, with
the reason, never the damaged text as its config nor "did not finish" for a completed run; an export's
description carries the run's status, the epoch of its weights and whether it diverged, and a diverged run is
exported only with --allow-diverged (exit 2 without it, naming the flag; a warning with it). Before: the report
showed an alias bomb as "Config" and said the completed run "did not finish"; export of a diverged run exited 0
and said nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import cnnlab
from tests.helpers import FAST
from tests.reliability.helpers import cli, cli_here

DAMAGED_CONFIGS = {
    "alias bomb": "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)),
    "python tag": "seed: !!python/object/apply:os.system ['echo owned']\n",
    "empty": "",
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    return cnnlab.train(None, FAST, runs_dir=root, name="done", quiet=True).run_dir


@pytest.mark.parametrize("damage", DAMAGED_CONFIGS)
def test_report_of_a_run_with_a_damaged_config_shows_it_damaged_with_the_reason(finished: Path, tmp_path: Path,
                                                                               damage: str) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "done", ignore=shutil.ignore_patterns(".lock")))
    (run / "config.yaml").write_text(DAMAGED_CONFIGS[damage])
    result = cli_here("report", str(run), cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.output, result.output
    page = (run / "report.html").read_text()
    assert "completed, damaged</p>" in page and "<td>damaged</td><td>" in page
    assert f"<td>damaged</td><td>{run / 'config.yaml'}" in page  # the reason, naming the file
    assert "config.yaml is damaged: " in page and "<pre>" not in page.split("<h2>Config</h2>")[1]
    assert "did not finish" not in page
    assert "the run finished, but its config.yaml is damaged, so it cannot be evaluated again" in page
    assert "owned" not in result.output


def test_a_diverged_run_is_exported_only_when_allowed_and_its_description_says_so(tmp_path: Path) -> None:
    """lr 0.05 in epoch 1, x10,000 from epoch 2 on: diverged in epoch 2, the epoch-1 checkpoint kept."""
    diverged = cnnlab.train(None, [*FAST, "epochs=3", "lr=0.05", "schedule=step", "schedule.step_size=1",
                                   "schedule.gamma=1e4"], runs_dir=tmp_path, name="hot", quiet=True)
    assert diverged.status == "diverged"
    refused = cli("export", str(diverged.run_dir), "--format", "onnx", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.output
    assert f"error: run '{diverged.run_dir}' diverged (" in refused.stderr and "--allow-diverged" in refused.stderr
    assert not (diverged.run_dir / "export").exists()
    allowed = cli_here("export", str(diverged.run_dir), "--format", "onnx", "--allow-diverged", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.output
    assert "warning: run" in allowed.stdout and "diverged" in allowed.stdout
    source = json.loads((diverged.run_dir / "export" / "model.onnx.json").read_text())["source"]
    assert source["status"] == "diverged" and source["diverged"] is True and source["epoch"] == 1
    assert source["run_id"] == json.loads((diverged.run_dir / "run.json").read_text())["run_id"]


def test_an_exports_description_carries_a_completed_runs_status_and_epoch(finished: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "done", ignore=shutil.ignore_patterns(".lock")))
    assert cli_here("export", str(run), "--format", "onnx", cwd=tmp_path).returncode == 0
    source = json.loads((run / "export" / "model.onnx.json").read_text())["source"]
    assert (source["status"], source["diverged"], source["epoch"], source["epochs_completed"]) == \
        ("completed", False, 2, 2)
