"""`--until-decided` in-process on tiny runs (experiments/decided.py): the design written before the first run,
seeds added a round at a time to the open rows and their reference only, the log of each round, and a second
call that finds everything done. Fast enough for mutation testing (docs/mutation.md); the CLI's version, with a
resume and a refused --max-seeds, is tests/experiments/test_verdicts.py's long test."""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.experiments.decided import run_until_decided, wants_seed
from cnnlab.experiments.study import load_study
from cnnlab.experiments.verdicts import VerdictOptions

STUDY = """name: ud
base: {model: lenet5, data: {name: digits, train_limit: 64}, epochs: 1, batch_size: 32}
variations:
  baseline: {}
  same: {batch_size: 32}
%s
seeds: [0]
"""
OTHER = "  other: {data.split_seed: 1}  # a null: only which images are trained on changes"


def _seeds(directory: Path) -> dict[str, list[int]]:
    seeds: dict[str, list[int]] = {}
    for meta in json.loads((directory / "plan.json").read_text())["runs"]:
        seeds.setdefault(meta["variation"], []).append(meta["seed"])
    return seeds


def test_until_decided_runs_rounds_for_open_rows_under_the_design_it_wrote_first(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(STUDY % OTHER)
    study = load_study(tmp_path / "s.yaml")
    lines: list[str] = []
    out = tmp_path / "out"
    run_until_decided(study, out, quiet=True, log=lines.append, max_seeds=3, options=VerdictOptions(),
                      boundary="pocock")
    plan = json.loads((out / "plan.json").read_text())
    assert plan["sequential"] == {"max_seeds": 3, "boundary": "pocock", "first_look": 2}
    seeds = _seeds(out)
    assert seeds["same"] == [0]  # identical to its reference at once: decided, no more seeds
    assert seeds["other"] == [0, 1, 2] and sorted(seeds["baseline"]) == [0, 1, 2]  # its reference got them too
    assert [meta.get("added", False) for meta in plan["runs"] if meta["variation"] == "other"] == [False, True, True]
    rounds = [line for line in lines if line.startswith("until decided, round")]
    assert rounds == ["until decided, round 2: 2 more runs (baseline__seed1, other__seed1)",
                      "until decided, round 3: 2 more runs (baseline__seed2, other__seed2)"]
    assert [line for line in lines if line.startswith("until decided:")] == [
        "until decided: other still within noise at --max-seeds 3 after 3 round(s)"]
    # run again: nothing is trained, the same plan, the same design
    again: list[str] = []
    run_until_decided(load_study(tmp_path / "s.yaml"), out, quiet=True, log=again.append, max_seeds=3,
                      boundary="pocock")
    assert json.loads((out / "plan.json").read_text())["runs"] == plan["runs"]
    assert not any(line.startswith("until decided, round") for line in again)
    assert "until decided: other still within noise at --max-seeds 3 after 1 round(s)" in again


def test_a_decided_study_says_so_and_a_shard_runs_the_rest_of_the_planned_seeds(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text((STUDY % "").replace("seeds: [0]", "seeds: [0, 1]"))
    study = load_study(tmp_path / "s.yaml")
    study.only = frozenset({study.runs[0].name})  # `--shard 1/4`: this process's share is one run
    lines: list[str] = []
    out = tmp_path / "out"
    outcome = run_until_decided(study, out, quiet=True, log=lines.append, max_seeds=4)
    assert not outcome.interrupted
    assert all((out / spec.name / "run.json").is_file() for spec in study.runs[:4])  # every planned run, not one
    assert lines[-1] == "until decided: every row is decided after 1 round(s)"  # 'same' is identical at once


def test_a_stop_request_ends_the_rounds(tmp_path: Path) -> None:
    import signal

    from cnnlab.train import STOP

    (tmp_path / "s.yaml").write_text(STUDY % OTHER)
    lines: list[str] = []

    def log(line: str) -> None:  # a Ctrl-C as the second round starts
        lines.append(line)
        if line.startswith("until decided, round 2"):
            STOP.signal = signal.SIGINT

    with STOP.watching():
        outcome = run_until_decided(load_study(tmp_path / "s.yaml"), tmp_path / "out", quiet=True, log=log,
                                    max_seeds=3)
    assert outcome.interrupted and not any(line.startswith("until decided, round 3") for line in lines)
    assert not any(line.startswith("until decided:") for line in lines)


def test_the_planned_seeds_set_the_design_when_they_are_more_than_max_seeds(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text((STUDY % "").replace("seeds: [0]", "seeds: [0, 1, 2]"))
    out = tmp_path / "out"
    run_until_decided(load_study(tmp_path / "s.yaml"), out, quiet=True, log=lambda line: None, max_seeds=2)
    assert json.loads((out / "plan.json").read_text())["sequential"]["max_seeds"] == 3


def test_wants_seed_is_the_open_rows_below_the_limit() -> None:
    words = ["within noise", "1 seed", "better", "equivalent", "within noise", "identical", "diverged"]
    assert wants_seed(words, [2, 1, 2, 2, 5, 1, 1], 5).tolist() == [True, True, False, False, False, False, False]


def test_every_round_passes_the_callers_jobs_rerun_failed_quiet_log_and_options_on(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """The runner gets what `study run --until-decided` was given, in every call (the planned seeds, a shard's
    rest, each added round), and the rounds judge with the caller's alpha and min-effect (mutation run 5: the
    arguments lost or shifted in those calls survived every other test)."""
    from cnnlab.experiments import decided
    from cnnlab.experiments.runner import StudyOutcome

    calls: list[tuple] = []

    def recorded(name):
        def run(first, directory, jobs, rerun_failed, quiet, log):
            calls.append((name, jobs, rerun_failed, quiet, log))
            return StudyOutcome(directory=Path(directory), statuses={}, skipped=[])
        return run

    tables: list[VerdictOptions] = []
    rounds = iter([[{"variation": "baseline", "verdict": "reference", "reference": None},
                    {"variation": "other", "verdict": "within noise", "reference": "baseline"}]] * 2 + [[]])

    def table(directory, options=VerdictOptions()):
        tables.append(options)
        return next(rounds), []

    monkeypatch.setattr(decided, "run_study", recorded("study"))
    monkeypatch.setattr(decided, "run_specs", recorded("specs"))
    monkeypatch.setattr(decided, "build_table", table)
    (tmp_path / "s.yaml").write_text(STUDY % OTHER)
    study = load_study(tmp_path / "s.yaml")
    study.only = frozenset({"baseline__seed0"})  # a shard: the rest of the planned seeds run too
    options = VerdictOptions(alpha=0.1, min_effect=0.01)
    lines: list[str] = []
    run_until_decided(study, tmp_path / "out", jobs=3, rerun_failed=True, quiet=True, log=lines.append, max_seeds=3,
                      options=options)
    assert [name for name, *_ in calls] == ["study", "specs", "specs", "specs"]
    assert all(call[1:] == (3, True, True, lines.append) for call in calls), calls
    assert tables and all(used is options for used in tables)
