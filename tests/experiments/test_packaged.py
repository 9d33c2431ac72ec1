"""The studies that come with cnnlab (issue 33, item 2): listed, shown and run by name from any folder, every
file of studies/ among them; a path still works and an existing file wins over a packaged name."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab.api as api
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.experiments.packaged import describe, folder, names, study_file
from cnnlab.experiments.study import load_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_every_file_of_the_studies_folder_is_a_packaged_study() -> None:
    assert folder().resolve() == STUDIES.resolve()  # this checkout's folder, as the installed package data
    assert names() == sorted(path.stem for path in STUDIES.glob("*.yaml"))
    assert "eq2425_report" in names() and "search_digits" in names()


def test_the_list_counts_the_runs_the_planner_plans() -> None:
    """The list reads files without planning them (a study whose weights file is missing still lists); its run
    counts are the planner's wherever the planner can plan here."""
    planned = 0
    for name in names():
        entry = describe(folder() / f"{name}.yaml")
        assert entry.source != "-" and entry.asks != "-", name  # every packaged study names its seed document
        if entry.command != "study run":
            continue
        try:
            study = load_study(folder() / f"{name}.yaml")
        except CnnlabError:
            continue  # (weights or pretrained runs that are not here)
        if study.mode == "greedy":
            assert entry.runs.startswith("up to ")
            continue
        assert entry.runs == str(len(study.runs)), name
        epochs = {spec.config.train.epochs for spec in study.runs}
        assert entry.budget.startswith(f"{entry.runs} x {max(epochs)} epochs, {study.runs[0].config.data.name}")
        planned += 1
    assert planned >= 8


def test_study_list_show_and_run_by_name_from_another_folder(tmp_path: Path) -> None:
    listed = run_cli("study", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["name", "seed", "document", "what", "it", "asks", "runs", "budget"]
    report = next(line for line in lines if line.startswith("eq2425_report "))
    assert "EQ2425 Project 3 report" in report and " 10 " in report and "10 x 300 epochs, cifar10" in report
    assert {line.split()[0] for line in lines[1:] if line and not line[0].isspace()} >= set(names())

    shown = run_cli("study", "show", "bf16_cpu", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout == (STUDIES / "bf16_cpu.yaml").read_text()
    # copy and edit: the shown file runs as a file of one's own (its name: bf16_cpu, its runs: fewer)
    Path(tmp_path / "mine.yaml").write_text(shown.stdout.replace("seeds: [0, 1, 2]", "seeds: [0]"))
    small = ["data.name=digits", "data.train_limit=128", "epochs=1", "batch_size=32", "--quiet"]
    mine = run_cli("study", "run", "mine.yaml", *small, "--dir", "runs/mine", cwd=tmp_path)
    assert mine.returncode == 0, mine.stderr
    assert "study bf16_cpu: 2 runs (2 variations) into runs/mine" in mine.stdout

    by_name = run_cli("study", "run", "bf16_cpu", *small, "--seeds", "0", cwd=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert "study bf16_cpu: 2 runs (2 variations) into runs/bf16_cpu" in by_name.stdout
    assert (tmp_path / "runs" / "bf16_cpu" / "plan.json").is_file() and (tmp_path / "runs/bf16_cpu/table.md").is_file()


def test_a_clone_path_outside_the_clone_names_the_packaged_study(tmp_path: Path) -> None:
    missing = run_cli("study", "run", "studies/eq2425_report.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "study file 'studies/eq2425_report.yaml' does not exist" in missing.stderr
    offered = missing.stderr.split("it comes with cnnlab: `")[1].split("`")[0]
    assert shlex.split(offered) == ["cnnlab", "study", "run", "eq2425_report"]
    typo = run_cli("study", "show", "eq2425_reprt", cwd=tmp_path)
    assert typo.returncode == 2 and "did you mean the packaged study 'eq2425_report'?" in typo.stderr
    assert "cnnlab study list" in typo.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


def test_a_file_that_exists_wins_over_a_packaged_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bf16_cpu.yaml").write_text("name: local\nbase: {data: digits}\nvariations: {a: {}}\n")
    assert study_file("bf16_cpu.yaml") == Path("bf16_cpu.yaml")  # the file here, as typed
    assert study_file("bf16_cpu") == folder() / "bf16_cpu.yaml"  # a bare name: the packaged one
    assert api.plan_study("bf16_cpu.yaml").name == "local"
    assert api.study_text("eq2425_report").startswith("# The ten columns of the EQ2425")
    with pytest.raises(ConfigError, match="does not exist"):
        study_file("sub/bf16_cpu")  # a path is a path: never a packaged name
