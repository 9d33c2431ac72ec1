"""`cnnlab study run --until-decided`: seeds are added only where they are needed to reach a verdict.

After the planned seeds have run, every row whose verdict is `within noise` gets one more seed, and so does
its reference row (a paired interval needs the seed on both sides), one round at a time, until each row is
decided (better, worse, equivalent) or has `max_seeds` seeds. Rows that are already decided, diverged or
failed get no more runs: on a CPU budget the seeds go where the question is still open.

The rounds are derived from the finished runs only, so the command run again (after Ctrl-C, a crash, on
another machine sharing the folder) makes the same decisions, skips the runs that are done and resumes the
one that was interrupted. With `--shard`, a process runs its share of the planned seeds first and then every
run of a round that nobody has taken (each run still once, by its lock): a round's verdicts need all of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..evaluate.stats import ONE_SEED
from .runner import StudyOutcome, run_specs, run_study
from .study import RunSpec, Study, write_plan
from .table import build_table, label
from .verdicts import VerdictOptions

OPEN = ("within noise", ONE_SEED)  # the words that another seed may change


def wants_seed(words: np.ndarray, seeds: np.ndarray, max_seeds: int) -> np.ndarray:
    """Which rows get one more seed (a pure decision, vectorised: experiments/calibration.py simulates thousands of
    studies through it): those still open with fewer than `max_seeds` seeds."""
    return np.isin(np.asarray(words), OPEN) & (np.asarray(seeds) < max_seeds)


def next_round(study: Study, verdicts: dict[str, str], reference_of: dict[str, str | None],
               max_seeds: int) -> list[RunSpec]:
    """The runs of the next round (a pure decision on the verdicts): for each undecided row with fewer than
    `max_seeds` seeds, the next seed not yet run, on the row and on its reference."""
    rows: dict[str, list[RunSpec]] = {}
    for spec in study.runs:
        rows.setdefault(label({"variation": spec.variation, "grid": spec.grid}), []).append(spec)
    wanted: dict[str, set[int]] = {}
    names = [name for name in verdicts if name in rows]
    extend = wants_seed(np.array([verdicts[name] for name in names]),
                        np.array([len(rows[name]) for name in names]), max_seeds)
    for name in (name for name, more in zip(names, extend) if more):
        reference = reference_of.get(name)
        have = {spec.seed for spec in rows[name]}
        seed = next(s for s in _seed_sequence(study) if s not in have)
        wanted.setdefault(name, set()).add(seed)
        if reference in rows and seed not in {spec.seed for spec in rows[reference]}:
            wanted.setdefault(reference, set()).add(seed)
    return [rows[name][0].with_seed(seed) for name in rows for seed in sorted(wanted.get(name, ()))]


def _seed_sequence(study: Study) -> Iterator[int]:
    """The study's seeds in order, then the integers after the largest of them."""
    yield from study.seeds
    seed = max(study.seeds) + 1
    while True:
        yield seed
        seed += 1


def run_until_decided(study: Study, directory: str | Path, jobs: int = 1, rerun_failed: bool = False,
                      quiet: bool = False, log: Callable[[str], None] = print, max_seeds: int = 5,
                      options: VerdictOptions = VerdictOptions(), boundary: str = "obrien-fleming") -> StudyOutcome:
    """Run the planned seeds, then rounds of added seeds. The group-sequential design (evaluate/sequential.py: looks
    at 2 .. N seeds, N = --max-seeds or the planned seeds if more) is written to plan.json before the first run,
    and every table of the study reads it from there."""
    directory = Path(directory)
    per_row = Counter(label({"variation": spec.variation, "grid": spec.grid}) for spec in study.runs)
    planned = max(per_row.values(), default=1)
    study.sequential = {"max_seeds": max(max_seeds, planned, 2), "boundary": boundary, "first_look": 2}
    outcome = run_study(study, directory, jobs, rerun_failed, quiet, log)
    if not outcome.interrupted and study.only is not None:  # a shard: the rest of the planned seeds, too
        outcome = run_specs(study.runs, directory, jobs, rerun_failed, quiet, log)
    number = 1
    while not outcome.interrupted:
        table, _ = build_table(directory, options)
        verdicts = {entry["variation"]: entry["verdict"] for entry in table}
        added = next_round(study, verdicts, {e["variation"]: e["reference"] for e in table}, max_seeds)
        if not added:
            undecided = [name for name, word in verdicts.items() if word in OPEN]
            said = (f"{', '.join(undecided)} still within noise at --max-seeds {max_seeds}" if undecided
                    else "every row is decided")
            log(f"until decided: {said} after {number} round(s)")
            break
        number += 1
        known = {spec.name for spec in study.runs}
        study.runs.extend(spec for spec in added if spec.name not in known)
        write_plan(study, directory)
        log(f"until decided, round {number}: {len(added)} more runs ({', '.join(spec.name for spec in added)})")
        outcome = run_specs(added, directory, jobs, rerun_failed, quiet, log)
    return outcome
