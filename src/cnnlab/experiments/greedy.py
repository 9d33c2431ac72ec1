"""A greedy, cumulative search: "at each test is chosen the one that gives the best accuracy" (the EQ2425
Project 3 report, section 5). Each stage trains its alternatives on top of the best configuration so far,
picks the winner on *validation* accuracy (the test set never chooses anything), and carries it forward.

    mode: greedy
    base: {model: convnet, ...}
    stages:
      - filters: {keep: {}, wide: {model.filters: [64, 128, 256]}}
      - extra_fc: {keep: {}, fc_128: {model.fc: [512, 128]}}

Keep, and the winner's curse. The previous winner was chosen for having the highest validation accuracy on
its seeds, so those runs' numbers are lucky by selection: reused as the next stage's `keep`, every alternative
looks worse against them than it is (simulated under the null, experiments/calibration.py: 3.8% of rows called
worse and 1.2% better for a claimed 2.5% each, with 3 seeds and 3 stages). So with two or more seeds (`greedy:
{keep: auto}`, or `keep: retrain`) each stage trains all its alternatives, keep included, on seeds of its own
(stage k: the study's seeds + (k - 1) * (largest seed + 1)): nothing in a stage was chosen on its own numbers, so
its verdicts and its choice are fair. `keep: reuse` (the default with one seed, where no verdict is given)
carries the winner's runs forward, one run per stage cheaper, and then a stage judged against a reused keep
shows its Δ but no verdict word. `require: better` needs seeds and a retrained keep.

An alternative whose configuration equals one already trained in the study (with keep reused, `keep: {}` is
the previous winner itself) reuses that run instead of training it again. A diverged or failed alternative is
never chosen; ties go to the alternative listed first. Runs are ordinary study runs: resumable, shared by
cooperating processes through their locks, `--jobs`-parallel within a stage. greedy.json records every
stage, every alternative's validation and test accuracy, the choice, and the final configuration.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import config_hash, resolve
from ..config.layers import Layer
from ..io import atomic_write_json
from ..log import get as get_logger
from ..runs import RunDir
from ..runs.predictions import read_predictions
from ..train import read_metrics
from . import reference as published
from .runner import StudyOutcome, check_data, prepare_study_dir, refuse_changed_runs, run_specs
from .study import RunSpec, Stage, Study, run_name, run_seeds, write_plan
from .verdicts import judge

LOG = get_logger(__name__)


@dataclass
class GreedyResult:
    directory: Path
    stages: list[dict[str, Any]]
    final: dict[str, Any] | None
    interrupted: bool = False


def run_greedy(study: Study, directory: str | Path, jobs: int = 1, rerun_failed: bool = False,
               quiet: bool = False, log: Callable[[str], None] = LOG.info) -> GreedyResult:
    """Run the stages in turn. Every alternative's data (on the base) is checked before the first stage trains,
    as a plain study checks every run; each stage's runs again, on the winners so far, before they train.
    `study` is left as it is: the runs each stage adds go into a copy (and plan.json)."""
    directory = Path(directory)

    def stages_at(keys: tuple[str, ...]) -> str:  # where check_data's messages point: the study's stages
        return study.where(("stages",)) if study.where else "study"

    check_data(_alternatives_on_base(study), stages_at)
    study = dataclasses.replace(study, runs=list(study.runs))
    prepare_study_dir(study, directory)
    chosen: list[Layer] = []
    known: dict[str, str] = {}  # config hash -> run name, so 'keep' reuses the previous winner's run
    stages: list[dict[str, Any]] = []
    for number, stage in enumerate(study.stages, start=1):
        candidates = _stage_specs(study, stage, chosen, known, stage_seeds(study, number))
        earlier = {spec.name for spec in study.runs}
        new = _new_runs(candidates, set(earlier))
        check_data(new, stages_at)
        study.runs.extend(new)
        refuse_changed_runs(new, directory)
        write_plan(study, directory)
        log(f"stage {number}/{len(study.stages)} {stage.name}: {', '.join(candidates)}")
        outcome: StudyOutcome = run_specs(new, directory, jobs, rerun_failed, quiet, log)
        if outcome.interrupted:
            return _finish(directory, stages, None, interrupted=True)
        rows = {alt: _score(directory, specs) for alt, specs in candidates.items()}
        _judge_stage(rows, candidates, directory, earlier)
        winner = choose(rows, study.require)
        if winner is None:
            stages.append({"stage": stage.name, "alternatives": rows, "chosen": None})
            log(f"stage {stage.name}: every alternative diverged or failed; the search stops here")
            return _finish(directory, stages, None)
        chosen.append(stage.alternatives[winner])
        stages.append({"stage": stage.name, "alternatives": rows, "chosen": winner})
        log(f"stage {stage.name}: chose {winner} (val top-1 {100 * rows[winner]['val_acc']:.2f}%)")
    last = stages[-1]
    final = {"stage": last["stage"], "alternative": last["chosen"], **last["alternatives"][last["chosen"]],
             "choices": [s["chosen"] for s in stages]}
    return _finish(directory, stages, final)


def _new_runs(candidates: dict[str, list[RunSpec]], planned: set[str]) -> list[RunSpec]:
    """The stage's runs not planned before, each once (an alternative equal to another shares its run)."""
    new = []
    for spec in (spec for specs in candidates.values() for spec in specs):
        if spec.name not in planned:
            planned.add(spec.name)
            new.append(spec)
    return new


def _alternatives_on_base(study: Study) -> list[RunSpec]:
    """Every alternative of every stage applied to the base alone (the winners before it are not known yet)."""
    return [RunSpec(f"{stage.name}__{alt}", f"{stage.name}:{alt}", seed, {},
                    resolve(study.base, layer, {"seed": (seed, "seeds")}))
            for stage in study.stages for alt, layer in stage.alternatives.items() for seed in study.seeds[:1]]


def keep_retrained(study: Study) -> bool:
    """Whether each stage trains keep again on seeds of its own (see the module's docstring)."""
    return study.keep == "retrain" or (study.keep == "auto" and len(study.seeds) >= 2)


def stage_seeds(study: Study, number: int) -> list[int]:
    """The seeds of stage `number` (1 is the first): the study's, shifted past every earlier stage's when keep is
    retrained, so that no stage's runs share a seed (and with it the luck that chose its keep) with another's."""
    if not keep_retrained(study):
        return list(study.seeds)
    stride = max(study.seeds) + 1
    return [seed + (number - 1) * stride for seed in study.seeds]


def judged_stage(reference_runs: set[str], earlier_runs: set[str]) -> bool:
    """Whether a stage's alternatives get verdict words: not when its reference's runs were trained in an earlier
    stage (a reused keep, chosen on those very numbers: the winner's curse); a pure decision."""
    return not reference_runs & earlier_runs


def _stage_specs(study: Study, stage: Stage, chosen: list[Layer], known: dict[str, str],
                 seeds_of_stage: list[int]) -> dict[str, list[RunSpec]]:
    candidates: dict[str, list[RunSpec]] = {}
    for alt, layer in stage.alternatives.items():
        specs = []
        seeds, origin = run_seeds(seeds_of_stage, "seeds", *chosen, layer)  # an alternative's own seed: its only one
        for seed in seeds:
            config = resolve(study.base, *chosen, layer, {"seed": (seed, origin)})
            digest = config_hash(config)
            name = known.setdefault(digest, run_name(f"{stage.name}__{alt}", {}, seed, len(study.seeds) > 1))
            specs.append(RunSpec(name, f"{stage.name}:{alt}", seed, {}, config))
        candidates[alt] = specs
    return candidates


def _score(directory: Path, specs: list[RunSpec]) -> dict[str, Any]:
    """An alternative's validation and test accuracy, averaged over its seeds, both of the weights each run
    carries forward (its last epoch's, or its best's with train.restore_best): what is chosen is what is
    carried. Usable only when every seed completed (or stopped early)."""
    statuses = [RunDir(directory / spec.name).status() for spec in specs]
    usable = all(status is not None and status.scored for status in statuses)
    val, test = [], []
    for spec in specs:
        accuracy = _carried_val_acc(directory / spec.name) if usable else None
        record = RunDir(directory / spec.name).record() if usable else None
        if accuracy is not None:
            val.append(accuracy)
        if record is not None and record.test:
            test.append(record.test["acc"])
    return {"runs": [spec.name for spec in specs], "status": ", ".join(sorted({str(s) for s in statuses})),
            "val_acc": statistics.fmean(val) if usable and len(val) == len(specs) else None,
            "test_acc": statistics.fmean(test) if usable and len(test) == len(specs) else None}


def _carried_val_acc(run_dir: Path) -> float | None:
    """The validation top-1 of the weights the run's test score used (its per-image results); for a run from
    before they were kept, the last epoch's (the weights a run without restore_best carries)."""
    scored = read_predictions(run_dir).get("val")
    if scored is not None and len(scored.label):
        return float(scored.correct.mean())
    rows = [r for r in read_metrics(run_dir / "metrics.csv") if r.get("val_acc") is not None]
    return rows[-1]["val_acc"] if rows else None


def _judge_stage(rows: dict[str, dict[str, Any]], candidates: dict[str, list[RunSpec]], directory: Path,
                 earlier_runs: set[str]) -> None:
    """Each alternative's verdict against the stage's `keep` (or its first alternative) on validation, into its row:
    paired over seeds (one seed: `1 seed`, experiments/verdicts.py); no word against a reused keep."""
    reference = "keep" if "keep" in rows else next(iter(rows))
    groups = {alt: [{"seed": spec.seed, "status": str(RunDir(directory / spec.name).status()),
                     "scored_val_acc": _carried_val_acc(directory / spec.name), "path": str(directory / spec.name)}
                    for spec in specs] for alt, specs in candidates.items()}
    verdicts = judge(groups, {alt: reference for alt in groups if alt != reference}, "scored_val_acc")
    words = judged_stage({spec.name for spec in candidates[reference]}, earlier_runs)
    for alt, verdict in verdicts.items():
        comparison = verdict.comparison
        rows[alt]["verdict"] = verdict.cell if words or alt == reference else "-"
        rows[alt]["delta_val"] = [comparison.delta, comparison.low, comparison.high] if comparison else None


def choose(rows: Mapping[str, Mapping[str, Any]], require: str = "best") -> str | None:
    """The alternative with the highest validation accuracy (ties: the first listed); a pure decision.
    Alternatives without one (diverged, failed, no validation split) are never chosen. With `require`
    'better' (the study's `greedy: {require: better}`), `keep` stays unless an alternative's verdict
    against it is `better`."""
    candidates = [alt for alt, row in rows.items() if row["val_acc"] is not None]
    if require == "better" and "keep" in candidates:
        candidates = ["keep", *(alt for alt in candidates if rows[alt].get("verdict") == "better")]
        if len(candidates) == 1:
            return "keep"
        candidates = candidates[1:]
    return max(candidates, key=lambda alt: (rows[alt]["val_acc"], -list(rows).index(alt)), default=None)


def _finish(directory: Path, stages: list[dict[str, Any]], final: dict[str, Any] | None,
            interrupted: bool = False) -> GreedyResult:
    atomic_write_json(directory / "greedy.json", {"stages": stages, "final": final, "interrupted": interrupted})
    return GreedyResult(directory, stages, final, interrupted)


def greedy_table(directory: Path, reference: Any = None) -> tuple[list[str], list[list[str]]]:
    """Every stage and alternative (val and test top-1, status, the choice), then the final configuration; then
    the study file's published numbers (experiments/reference.py), keyed by `stage:alternative`, by alternative,
    or `final`."""
    import json

    record = json.loads((Path(directory) / "greedy.json").read_text())
    columns = published.columns(reference)
    headers = ["stage", "alternative", "val top-1", "test top-1", "status", "Δ val vs keep [95% CI]", "verdict",
               "chosen", *(column.header for column in columns)]
    rows = []
    for stage in record["stages"]:
        for alt, row in stage["alternatives"].items():
            rows.append([stage["stage"], alt, _pct(row["val_acc"]), _pct(row["test_acc"]), row["status"],
                         _interval(row.get("delta_val")), row.get("verdict", "-"),
                         "*" if alt == stage["chosen"] else "",
                         *(column.cell(f"{stage['stage']}:{alt}", alt) for column in columns)])
    final = record["final"]
    if final is not None:
        rows.append(["final", " + ".join(final["choices"]), _pct(final["val_acc"]), _pct(final["test_acc"]),
                     final["status"], "", "", "", *(column.cell("final") for column in columns)])
    return headers, rows


def greedy_notes(require: str, keep: str, seeds: int) -> list[str]:
    """How the greedy table's choices were made (printed under it)."""
    rule = ("keep stays unless an alternative is 'better' on validation, then the best of those"
            if require == "better" else "the highest mean validation top-1")
    retrained = keep == "retrain" or (keep == "auto" and seeds >= 2)
    carried = ("keep is trained again on each stage's own seeds, so no stage is judged on the numbers that chose "
               "its keep" if retrained else "keep is the previous winner's runs, reused: a stage judged against them "
               "shows Δ but no verdict word (they were chosen for being the best on these very numbers)")
    return [f"each stage chose {rule}; val and test top-1 are of the weights each run carries forward (its last "
            "epoch, or its best with train.restore_best), the mean over seeds; the verdict is against the stage's "
            f"keep on validation (paired over seeds; one seed gives no verdict: '1 seed'); {carried}"]


def _interval(values: list[float | None] | None) -> str:
    if not values:
        return "-"
    delta, low, high = values
    if delta is None:
        return "-"
    if low is None or high is None:
        return f"{100 * delta:+.2f} [no spread]"
    return f"{100 * delta:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
