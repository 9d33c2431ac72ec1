"""Studies: planning (variations x grid x seeds, errors with file:line before any run), the runner
(idempotent, diverged runs are results, failed runs recorded, --jobs), the table, the plots and the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cnnlab
from cnnlab.cli import main
from cnnlab.experiments.runner import BUSY, NOT_STARTED, _settle, prepare_study_dir, run_study
from cnnlab.experiments.study import load_study
from cnnlab.experiments.table import aggregate, crossings, first_crossing, formatted, study_rows, write_tables
from cnnlab.runs import RunDir
from cnnlab.runs import decide as action_for
from cnnlab.viz.report import parse_report, write_report
from tests.reliability.helpers import children, cli_here

TINY = """\
name: tiny
description: a tiny study for the tests
base:
  model: lenet5
  data: {name: digits, train_limit: 256}
  epochs: 2
  batch_size: 32
variations:
  relu: {model.activation: relu}
  adam: {optimizer: adam, lr: 0.001}
  diverge: {model: convnet, lr: 10}
"""


def write_study(directory: Path, text: str = TINY, name: str = "tiny.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def run_info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_plan_crosses_variations_grid_and_seeds(tmp_path: Path) -> None:
    text = TINY + "grid: {optim.lr: [0.1, 0.01], batch_size: [16]}\nseeds: [3, 4]\n"
    study = load_study(write_study(tmp_path, text), ["epochs=1"])
    assert study.variations == ["baseline", "relu", "adam", "diverge"]
    assert len(study.runs) == 4 * 2 * 2
    first = study.runs[0]
    assert first.name == "baseline__lr0.1__batch_size16__seed3" and first.seed == 3
    assert first.config.optim.lr == 0.1 and first.config.train.batch_size == 16 and first.config.train.epochs == 1
    adam = next(r for r in study.runs if r.variation == "adam")
    assert adam.config.optim.name == "adam" and adam.config.optim.lr == 0.1  # the grid applies to every variation
    relu = next(r for r in study.runs if r.variation == "relu")
    assert relu.config.model.options["activation"] == "relu" and relu.config.model.name == "lenet5"
    assert len({r.name for r in study.runs}) == len(study.runs)


@pytest.mark.parametrize("extra,message", [
    ("  typo: {model.actvation: relu}\n", "tiny.yaml:12 variation 'typo') is not an option of model 'lenet5'; did you mean 'model.activation'?"),
    ("  bad_value: {epochs: many}\n", "tiny.yaml:12 variation 'bad_value') must be int"),
    ("  bad/name: {epochs: 1}\n", "variation name 'bad/name'"),
    ("seeds: [a]\n", "seeds must be a list of integers"),
    ("grid: {lr: 0.1}\n", "grid 'lr' must be a non-empty list"),
    ("tags: [x]\n", "tiny.yaml:12: unknown study key 'tags'"),
])
def test_a_mistake_anywhere_stops_the_study_before_the_first_run(tmp_path, capsys, extra, message) -> None:
    path = write_study(tmp_path, TINY + extra)
    assert main(["study", "run", str(path), "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_study_runs_once_then_skips_and_tabulates(tmp_path: Path, capsys) -> None:
    path = write_study(tmp_path, TINY + "seeds: [0, 1]\n")
    out = tmp_path / "study"
    assert main(["study", "run", str(path), "--dir", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "8 runs (4 variations)" in printed and "diverged" in printed
    infos = {d.name: run_info(d) for d in out.iterdir() if (d / "run.json").is_file()}
    assert len(infos) == 8
    assert {infos[f"diverge__seed{s}"]["status"] for s in (0, 1)} == {"diverged"}  # a result, not a crash
    assert all(infos[n]["status"] == "completed" for n in infos if not n.startswith("diverge"))

    stamps = {n: (out / n / "run.json").stat().st_mtime_ns for n in infos}
    assert main(["study", "run", str(path), "--dir", str(out), "--quiet"]) == 0
    assert "8 of 8 runs already finished: skipped" in capsys.readouterr().out
    assert stamps == {n: (out / n / "run.json").stat().st_mtime_ns for n in infos}
    # the same directory with a changed config is refused, before anything runs
    assert main(["study", "run", str(path), "--dir", str(out), "--quiet", "epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "was made with another config than the study now plans (train.epochs: 2 -> 3)" in err and "new --dir" in err
    assert stamps == {n: (out / n / "run.json").stat().st_mtime_ns for n in infos}

    rows = study_rows(out)
    table = aggregate(rows)
    assert [e["variation"] for e in table] == ["baseline", "relu", "adam", "diverge"]
    baseline_accs = [r["test_acc"] for r in rows if r["variation"] == "baseline"]
    assert table[0]["test_acc"] == pytest.approx(sum(baseline_accs) / 2)
    assert table[0]["test_acc_std"] > 0 and table[0]["delta_test_acc"] == 0
    adam = table[2]
    assert adam["delta_test_acc"] == pytest.approx(adam["test_acc"] - table[0]["test_acc"])
    assert table[3]["status"] == "2 diverged" and table[3]["test_acc"] is None
    headers, cells = formatted(table)
    assert headers[:5] == ["variation", "vs", "Δ top-1 [95% CI]", "verdict", "checks"]
    top1 = headers.index("top-1")
    assert cells[3][top1] == "-" and cells[3][3] == "diverged" and cells[0][3] == "reference"
    assert table[1]["reference"] == table[2]["reference"] == "baseline" and table[2]["method"] == "paired t (2 seeds)"
    csv_path, md_path = write_tables(table, out)
    md = md_path.read_text().splitlines()
    assert md[0].startswith("| variation | vs | Δ top-1 [95% CI] | verdict | checks | runs | status | top-1")
    assert len(md) == 2 + 4
    assert "± " in md[2] and md[2].split(" | ")[2].strip(" |") == "+0.00"
    assert csv_path.read_text().startswith("variation,runs,status,test_acc,test_acc_std")

    assert main(["study", "plot", str(out), "--crossing", "0.9"]) == 0
    printed = capsys.readouterr().out
    for name in ("curves.png", "bars.png", "error_crossing.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reached = crossings(out, 0.9)
    assert set(reached) == {"baseline", "relu", "adam", "diverge"} and reached["diverge"] is None
    assert "diverge: 90% training error never reached" in printed
    assert main(["study", "plot", str(out), "--crossing", "25"]) == 2
    assert "--crossing must be an error rate between 0 and 1" in capsys.readouterr().err


def test_first_crossing_interpolates_between_the_epochs_around_the_line() -> None:
    assert first_crossing([0.5, 0.3, 0.2, 0.1], 0.25) == pytest.approx(2.5)  # 0.3 -> 0.2 crosses halfway
    assert first_crossing([0.2, 0.1], 0.25) == 0.0  # below after the first epoch: somewhere inside it
    assert first_crossing([0.5, None, 0.25], 0.25) == pytest.approx(3.0)
    assert first_crossing([0.5, 0.4], 0.25) is None


def test_report_is_self_contained_html(tmp_path: Path, capsys) -> None:
    out = tmp_path / "study"
    study = load_study(write_study(tmp_path, TINY.replace("  diverge: {model: convnet, lr: 10}\n", "")))
    run_study(study, out, quiet=True, log=lambda _: None)
    assert main(["report", str(out)]) == 0
    page = parse_report(out / "report.html")
    text = (out / "report.html").read_text()
    assert page["title"] == "cnnlab study tiny"
    assert page["images"] == 4 and "http" not in text and "<script" not in text  # nothing fetched from outside
    results = page["tables"][0]
    assert results[0][:4] == ["variation", "vs", "Δ top-1 [95% CI]", "verdict"] and [r[0] for r in results[1:]] == ["baseline", "relu", "adam"]
    per_class = page["tables"][1]
    assert per_class[0] == ["variation", *map(str, range(10))] and [r[0] for r in per_class[1:]] == ["baseline", "relu", "adam"]
    evaluated = json.loads((out / "adam" / "eval_test.json").read_text())  # the report evaluated the runs
    assert per_class[3][1:] == [f"{100 * evaluated['per_class'][str(c)]:.1f}%" for c in range(10)]

    assert main(["report", str(out / "baseline")]) == 0
    run_page = parse_report(out / "baseline" / "report.html")
    assert run_page["images"] == 2  # curves and confusion matrix
    per_class = run_page["tables"][-1]
    assert per_class[0] == ["class", "accuracy"] and len(per_class) == 11
    summary = dict((row[0], row[1]) for row in run_page["tables"][0][1:])
    assert summary["status"] == "completed" and summary["test top-1"].endswith("%")
    assert main(["report", str(tmp_path)]) == 2


TWO_RUNS = """\
name: two
base: {model: lenet5, data: {name: digits, train_limit: 128}, epochs: 1, batch_size: 32}
variations:
  relu: {model.activation: relu}
"""


def test_an_unreadable_record_is_one_row_of_the_table_and_a_newer_schema_is_never_resumed(tmp_path, capsys) -> None:
    """A run.json changed by hand (wrong types) or written by a newer cnnlab (schema cnnlab.run/99): `study
    table` and `report` show that run as unreadable, with the reason under the table, and the other runs as
    usual (exit 0); the run alone is refused naming the file and the field (exit 2); a newer schema is
    never resumed or run over: `train --resume` and `study run` exit 2 and leave the run's files as they were."""
    path = write_study(tmp_path, TWO_RUNS, "two.yaml")
    out = tmp_path / "study"
    assert main(["study", "run", str(path), "--dir", str(out), "--quiet"]) == 0
    capsys.readouterr()
    changed = {**run_info(out / "relu"), "test": "x", "epochs_completed": "two"}
    (out / "relu" / "run.json").write_text(json.dumps(changed))
    assert main(["study", "table", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^relu +baseline +- +- +1 +unreadable +- ", printed, re.MULTILINE), printed
    assert re.search(r"^baseline +\+0\.00 +reference +1 +completed +\d+\.\d\d%", printed, re.MULTILINE), printed
    note = (f"note: run relu is unreadable: {out / 'relu' / 'run.json'}: field 'epochs_completed' is \"two\" (text), "
            "expected a whole number; field 'test' is \"x\" (text), expected an object or null")
    assert note in printed, printed
    assert note.removeprefix("note: ") in (out / "table.md").read_text()
    assert main(["report", str(out)]) == 0
    page = parse_report(out / "report.html")
    assert [row[:7] for row in page["tables"][0][1:]] == [["baseline", "", "+0.00", "reference", "", "1", "completed"],
                                                         ["relu", "baseline", "-", "-", "", "1", "unreadable"]]
    assert "field &#x27;test&#x27; is" in (out / "report.html").read_text()
    capsys.readouterr()
    assert main(["report", str(out / "relu")]) == 2
    assert "relu/run.json: field 'epochs_completed' is \"two\" (text), expected" in capsys.readouterr().err

    newer = {**run_info(out / "baseline"), "schema": "cnnlab.run/99", "status": "interrupted"}
    newer["versions"]["cnnlab"] = "9.0.0"
    (out / "baseline" / "run.json").write_text(json.dumps(newer))
    (out / "relu" / "run.json").write_text(json.dumps({**changed, "test": None, "epochs_completed": 1}))
    files = {p: p.read_bytes() for p in (out / "baseline").rglob("*") if p.is_file() and p.name != ".lock"}
    assert main(["study", "table", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^baseline +- +reference +1 +unreadable ", printed, re.MULTILINE), printed
    assert "was written by cnnlab 9.0.0 in run schema 'cnnlab.run/99'" in printed
    for argv in (["train", "--resume", str(out / "baseline"), "--quiet", "epochs=2", "--allow-config-change"],
                 ["study", "run", str(path), "--dir", str(out), "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "was written by cnnlab 9.0.0 in run schema 'cnnlab.run/99'; this cnnlab" in err, err
        assert "knows the schemas up to 'cnnlab.run/2'" in err, err
    assert {p: p.read_bytes() for p in (out / "baseline").rglob("*") if p.is_file() and p.name != ".lock"} == files


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, TINY.replace("  diverge: {model: convnet, lr: 10}\n", "")))
    out = tmp_path / "study"
    run_study(study, out, quiet=True, log=lambda _: None)
    report = write_report(out)
    screenshot = tmp_path / "shot.png"
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and "<table>" in dom.stdout and "cnnlab study tiny" in dom.stdout
    shot = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
                           f"--screenshot={screenshot}", report.as_uri()], capture_output=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000  # the inline images drew something
    from PIL import Image

    pixels = Image.open(screenshot).convert("L")
    assert pixels.getextrema()[0] < 100  # not a blank page


def test_failed_runs_are_recorded_and_rerun_on_request(tmp_path: Path, monkeypatch) -> None:
    study = load_study(write_study(tmp_path, TINY.replace("  diverge: {model: convnet, lr: 10}\n", "")))
    out = tmp_path / "study"
    from cnnlab.train.trainer import Trainer

    real_fit = Trainer.fit

    def flaky(self):  # the relu variation's training crashes
        if self.config.model.options.get("activation") == "relu":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_fit(self)

    monkeypatch.setattr(Trainer, "fit", flaky)
    outcome = run_study(study, out, quiet=True, log=lambda _: None)
    assert outcome.statuses == {"baseline": "completed", "relu": "failed", "adam": "completed"}
    assert "illegal memory access" in run_info(out / "relu")["reason"]
    monkeypatch.setattr(Trainer, "fit", real_fit)
    assert run_study(study, out, quiet=True, log=lambda _: None).statuses == {}  # failed runs stay failed...
    again = run_study(study, out, rerun_failed=True, quiet=True, log=lambda _: None)
    assert again.statuses == {"relu": "completed"}  # ...until asked


def test_action_for_is_a_pure_decision() -> None:
    assert action_for(None, False, False) == "start"
    assert action_for("completed", True, False) == "skip"
    assert action_for("diverged", True, True) == "skip"
    assert action_for("interrupted", True, False) == "resume"
    assert action_for("running", True, False) == "resume"  # killed hard (SIGKILL): continue from the checkpoint
    assert action_for("running", False, False) == "start"
    assert action_for("failed", True, False) == "skip"
    assert action_for("failed", True, True) == "start"


def test_a_foreign_folder_is_refused_untouched_and_a_half_made_study_folder_is_taken(tmp_path: Path) -> None:
    """`--dir` naming the user's own folder: exit 2, and not even a lock file is left in it. A folder holding
    only a study's lock and a plan a killed (or a concurrent) `study run` was writing is a study folder being
    made: a second process starting at the same moment must take it, not refuse it as foreign."""
    study = load_study(write_study(tmp_path), [])
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(cnnlab.ConfigError, match="is not empty and is not a cnnlab study directory"):
        prepare_study_dir(study, foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]

    half = tmp_path / "half"
    half.mkdir()
    (half / ".lock").write_text("")
    (half / ".plan.json.k3j2.tmp").write_text('{"runs": [')  # its writer was killed mid-write
    prepare_study_dir(study, half)
    assert json.loads((half / "plan.json").read_text())["runs"] and not list(half.glob(".plan.json.*.tmp"))


SLOW_STUDY = """\
name: killable
base: {model: convnet, model.filters: [8, 16, 32], model.fc: [64], data: {name: digits, train_limit: 640},
       epochs: 2, batch_size: 32}
variations:
  long: {epochs: 12}
  short: {lr: 0.05}
"""
EPOCHS = {"baseline": 2, "long": 12, "short": 2}


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_killing_a_study_midway_then_rerunning_completes_it_without_repeating_runs(tmp_path: Path, jobs) -> None:
    """Ctrl-C (SIGINT to the process group) while `study run`'s first run has finished and the long one is
    mid-way (in the same process, or in a worker of --jobs 2, which SLURM's scancel also signals directly:
    SIGTERM to the worker at the same moment, besides the one its parent forwards): exit 130, the long run
    'interrupted' with a checkpoint; the same command again skips the finished run, resumes the interrupted
    one and runs the rest."""
    path = write_study(tmp_path, SLOW_STUDY, "killable.yaml")
    out = tmp_path / "study"
    command = [sys.executable, "-m", "cnnlab", "study", "run", str(path), "--dir", str(out), "--quiet",
               "--jobs", str(jobs)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)  # its own process group, as a terminal's foreground job
    # wait until baseline finished and `long` has a checkpoint with most of its epochs still to go
    deadline = time.time() + 240
    def finished() -> list[str]:
        return [d.name for d in out.glob("*") if (d / "run.json").is_file() and run_info(d)["status"] == "completed"]
    def long_mid_run() -> bool:
        return (out / "long" / "checkpoints" / "last.safetensors").is_file()
    while time.time() < deadline and not (finished() and long_mid_run()):
        time.sleep(0.02)
    # frozen (SIGSTOP) while the signals are sent, so that they land mid-run however late this process saw
    # the moment (long's 12 epochs take ~4 s: on a loaded machine it could otherwise end first)
    os.killpg(process.pid, signal.SIGSTOP)
    workers = children(process.pid)
    assert bool(workers) == (jobs > 1), workers  # the long run's worker at least (baseline's has ended)
    for worker in workers:
        os.kill(worker, signal.SIGSTOP)
    assert run_info(out / "long")["status"] == "running"
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground process group
    for worker in workers:  # (--jobs 2) and scancel signals every process of the job step
        os.kill(worker, signal.SIGTERM)
    for worker in workers:
        os.kill(worker, signal.SIGCONT)
    os.killpg(process.pid, signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    done_first = finished()
    assert done_first == ["baseline"], stdout + stderr
    assert run_info(out / "long")["status"] == "interrupted", run_info(out / "long")
    stamps = {name: (out / name / "run.json").stat().st_mtime_ns for name in done_first}

    again = cli_here(*command[3:], cwd=tmp_path)  # the same command, through cnnlab.cli.main in this process
    assert again.returncode == 0, again.output
    assert "1 of 3 runs already finished: skipped" in again.stdout
    infos = {name: run_info(out / name) for name in EPOCHS}
    assert {name: (info["status"], info["epochs_completed"]) for name, info in infos.items()} == {
        name: ("completed", epochs) for name, epochs in EPOCHS.items()}
    assert {name: (out / name / "run.json").stat().st_mtime_ns for name in done_first} == stamps  # not repeated
    assert infos["long"]["sessions"] == 2  # resumed from its checkpoint, not restarted
    assert "| baseline |" in (out / "table.md").read_text()


def test_a_worker_is_settled_by_its_run_and_its_exit(tmp_path: Path) -> None:
    """A --jobs worker's end, decided from its exit code and what its run wrote: a worker signalled while
    Python was starting (no run yet) did not fail, it never started; one that exited with no run did fail."""
    missing, written = RunDir(tmp_path / "missing"), RunDir(tmp_path / "written")
    written.path.mkdir()
    (written.path / "run.json").write_text(json.dumps({"status": "interrupted"}))
    assert _settle(missing, 75) == BUSY
    assert _settle(missing, -15) == NOT_STARTED and _settle(missing, 2) == "failed" and _settle(missing, 1) == "failed"
    assert _settle(written, -9) == "interrupted" and _settle(written, 130) == "interrupted"


def test_shards_of_a_job_array_fill_one_table(tmp_path: Path, capsys, monkeypatch) -> None:
    """`--shard i/n` runs only its runs, but the study directory describes the whole study: after every
    shard ran, the table has every run (each shard's plan.json does not replace the others')."""
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text("name: s\nbase: {model: lenet5, data: {name: digits, train_limit: 128}, epochs: 1, "
                              "batch_size: 32}\nvariations:\n  a: {}\n  b: {lr: 0.05}\n  c: {lr: 0.1}\n")
    assert main(["study", "run", "s.yaml", "--shard", "1/2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "study s: 2 of 3 runs (shard 1/2)" in out and re.search(r"^b\s+a\s+-\s+-\s+1\s+not run", out, flags=re.M)
    assert main(["study", "run", "s.yaml", "--shard", "2/2", "--quiet"]) == 0
    capsys.readouterr()
    rows = study_rows(Path("runs/s"))
    assert [(r["variation"], r["status"]) for r in rows] == [("a", "completed"), ("b", "completed"),
                                                              ("c", "completed")]
    assert all(RunDir(Path("runs/s") / r["run"]).record().sessions == 1 for r in rows)  # each run once
    assert main(["study", "run", "s.yaml", "--shard", "3/2"]) == 2
    assert "1 <= i <= n" in capsys.readouterr().err


def test_a_greedy_study_cannot_be_sharded() -> None:
    from cnnlab import api

    with pytest.raises(cnnlab.ConfigError, match="greedy study decides each stage on the one before"):
        api.plan_study(Path(__file__).resolve().parents[2] / "studies" / "eq2425_greedy.yaml", shard="1/2")


# ------------------------------------------------------------- nothing a study file says is dropped (issue 22)
EVERY_KIND = {"seed": 5, "device": "cpu", "data.train_limit": 77, "augment.enabled": False,
              "model.activation": "relu", "optim.lr": 0.05, "schedule.name": "step", "train.epochs": 3,
              "stop.criterion": "patience"}  # both top-level keys and a key of every section


def _settings_of(config) -> dict:
    return {"seed": config.seed, "device": config.device, "data.train_limit": config.data.train_limit,
            "augment.enabled": config.augment.enabled, "model.activation": config.model.options["activation"],
            "optim.lr": config.optim.lr, "schedule.name": config.schedule.name, "train.epochs": config.train.epochs,
            "stop.criterion": config.stop.criterion}


@pytest.mark.parametrize("place", ["variation", "grid", "zip", "stage"])
def test_every_key_a_config_takes_works_in_a_variation_grid_zip_and_stage(tmp_path: Path, place: str) -> None:
    """A variation's `seed: 5` was dropped (the run trained with seed 0, the baseline again)."""
    from cnnlab.experiments.greedy import _stage_specs

    flow = ", ".join(f"{key}: {value}" for key, value in EVERY_KIND.items())
    lists = ", ".join(f"{key}: [{value}]" for key, value in EVERY_KIND.items())
    body = {"variation": f"variations:\n  mine: {{{flow}}}\n", "grid": f"grid: {{{lists}}}\n",
            "zip": f"zip: {{{lists}}}\n", "stage": f"mode: greedy\nstages:\n  - first: {{keep: {{}}, mine: {{{flow}}}}}\n"}
    study = load_study(write_study(tmp_path, f"base: {{model: lenet5, data: digits}}\nseeds: [0, 1]\n{body[place]}"))
    if place == "stage":
        specs = _stage_specs(study, study.stages[0], [], {}, study.seeds)["mine"]
    else:
        specs = [spec for spec in study.runs if spec.variation == "mine" or place != "variation"]
    assert [spec.seed for spec in specs] == [5]  # the run's own seed replaces the study's seeds: one run
    assert _settings_of(specs[0].config) == {**EVERY_KIND, "augment.enabled": False}


def test_a_seed_is_the_study_seed_or_a_variation_own(tmp_path: Path) -> None:
    base = "base: {model: lenet5, data: digits}\n"
    study = load_study(write_study(tmp_path, base + "seeds: [0, 1]\nvariations:\n  lucky: {seed: 5}\n"))
    assert [(spec.name, spec.seed, spec.config.seed) for spec in study.runs] == [
        ("baseline__seed0", 0, 0), ("baseline__seed1", 1, 1), ("lucky__seed5", 5, 5)]
    # a seed in the base (or on the command line) is the study's seed when it has no seeds: ...
    study = load_study(write_study(tmp_path, base.replace("digits}", "digits, seed: 7}") + "variations: {a: {lr: 0.1}}\n"))
    assert {spec.config.seed for spec in study.runs} == {7}
    assert {spec.config.seed for spec in load_study(write_study(tmp_path, base), ["seed=3"]).runs} == {3}
    # ... and a contradiction when it has
    with pytest.raises(cnnlab.ConfigError, match="seed is set for the whole study twice: at study override 'seed=3' "
                                                 "and by seeds:"):
        load_study(write_study(tmp_path, base + "seeds: [0, 1]\n"), ["seed=3"])
    # a grid over seeds names its runs by the point, once
    study = load_study(write_study(tmp_path, base + "grid: {seed: [3, 4]}\n"))
    assert [(spec.name, spec.seed) for spec in study.runs] == [("seed3", 3), ("seed4", 4)]


def test_a_variation_seed_takes_effect_in_a_real_study_run(tmp_path: Path, capsys) -> None:
    """The weights of `lucky: {seed: 5}` are those of `cnnlab train seed=5`, not the baseline's."""
    from tests.reliability.helpers import same_weights, weights

    settings = "model: lenet5\ndata: {name: digits, train_limit: 96}\nepochs: 1\nbatch_size: 32\n"
    path = write_study(tmp_path, "base:\n" + "".join(f"  {line}\n" for line in settings.splitlines())
                       + "variations:\n  lucky: {seed: 5}\n")
    out = tmp_path / "out"
    assert main(["study", "run", str(path), "--dir", str(out), "--quiet"]) == 0
    (tmp_path / "run.yaml").write_text(settings + "seed: 5\n")
    assert main(["train", str(tmp_path / "run.yaml"), "--runs-dir", str(tmp_path / "runs"), "--name", "plain",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert run_info(out / "lucky")["seed"] == 5 and run_info(out / "baseline")["seed"] == 0
    assert "seed: 5" in (out / "lucky" / "config.yaml").read_text()
    assert same_weights(weights(out / "lucky"), weights(tmp_path / "runs" / "plain"))
    assert not same_weights(weights(out / "lucky"), weights(out / "baseline"))


@pytest.mark.parametrize("text,message", [
    ("variations:\n  a: {lr: 0.1}\n  b: {lr: 0.2}\n  a: {lr: 0.3}\n", "tiny.yaml:5: key 'a' appears twice in one mapping "
                                                                     "(first at line 3)"),
    ("variations:\n  1: {lr: 0.1}\n  '1': {lr: 0.2}\n", "the name '1' is given twice"),
    ("variations:\n  a: {lr: 0.1, optim: {lr: 0.2}}\n", "'optim.lr' is given twice"),
    ("grid: {lr: [0.1], optim.lr: [0.2]}\n", "'optim.lr' is given twice"),
    ("grid: {lr: [0.1]}\nzip: {lr: [0.2]}\n", "'optim.lr' is in both grid: and zip:"),
    ("grid: {model.filters: [[64, 128], [64128]]}\n", "would both be named 'filters64128'"),
    ("mode: greedy\nstages:\n  - s: {a: {lr: 0.1}, b: {}}\n  - s: {a: {lr: 0.2}, b: {}}\n", "two stages are named 's'"),
    ("mode: greedy\nstages:\n  - s: {1: {lr: 0.1}, '1': {}}\n", "stage 's': the name '1' is given twice"),
    ("base: {model: convnet}\nbase: {model: lenet5}\n", "tiny.yaml:2: key 'base' appears twice"),
])
def test_a_name_or_key_given_twice_stops_the_study(tmp_path: Path, capsys, text: str, message: str) -> None:
    """A repeated variation was merged into one (the last); two run names alike shared one directory."""
    path = write_study(tmp_path, "base: {model: convnet, data: digits}\n" + text if "base:" not in text else text)
    assert main(["study", "run", str(path), "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "out").exists()
