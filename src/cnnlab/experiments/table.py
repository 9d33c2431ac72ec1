"""`cnnlab study table`: one row per variation (and grid point), every metric as mean +- std over its
seeds, the difference to its reference row (the baseline, or the row its `compare_to:` names) with a 95%
interval and a verdict (experiments/verdicts.py), and the checks that say whether a number can be believed
(at chance, still learning). Read from the run directories only."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CnnlabError, ConfigError
from ..evaluate.sequential import Design
from ..evaluate.stats import ONE_SEED
from ..io import atomic_write_text
from ..runs import RunDir, RunRecord, Status
from ..runs.identity import run_metrics
from ..train import read_metrics
from . import reference as published
from .study import read_plan
from .verdicts import RowVerdict, VerdictOptions, judge, ranking_note

SCORED = (Status.COMPLETED, Status.STOPPED_EARLY)  # runs whose numbers count in a table
UNREADABLE = "unreadable"  # the status of a row whose run.json could not be read
# (key, header, kind): kind 'pct' prints x100 with %, 'float' 3 significant digits, 'int' whole numbers
COLUMNS = (
    ("test_acc", "top-1", "pct"), ("test_top5", "top-5", "pct"), ("best_val_acc", "best val", "pct"),
    ("best_epoch", "best ep.", "float"), ("train_seconds", "train s", "float"),
    ("images_per_second", "img/s", "int"), ("parameters", "params", "int"),
)


def run_row(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one run (None where the run has none). A run whose run.json cannot be read (changed by
    hand, damaged, or written by a newer cnnlab) is a row of status 'unreadable' with the reason in
    `problem`: one bad file never hides the rest of a study's table."""
    run = RunDir(run_dir)
    try:
        record = (run.record() if run.exists() else None) or RunRecord()
        status = run.status() if run.exists() and run.info_path.is_file() else None
        rows = run_metrics(run_dir, record)  # checked against run.json: another run's curves are no row's
    except CnnlabError as exc:
        return {**_empty_row(meta), "status": UNREADABLE, "problem": str(exc)}
    val = [r["val_acc"] for r in rows if r.get("val_acc") is not None]
    test = record.test or {}
    return {
        **_empty_row(meta), "path": str(run_dir), "test_count": test.get("count"), "val_curve": _curve(rows),
        "curve_kind": "validation" if any(r.get("val_acc") is not None for r in rows) else "training",
        "num_classes": len((record.data or {}).get("classes") or ()) or None,
        "status": str(status) if status is not None else "not run", "test_acc": test.get("acc"),
        "test_top5": test.get("top5"), "test_loss": test.get("loss"), "best_val_acc": max(val) if val else None,
        "best_epoch": record.best_epoch, "epochs": record.epochs_completed if status is not None else None,
        "train_seconds": record.train_seconds if status is not None else None,
        "images_per_second": record.images_per_second if status is not None else None,
        "parameters": record.parameters,
    }


def _curve(rows: list[dict[str, Any]]) -> list[float | None]:
    """The accuracy curve the checks read: validation, or training accuracy for a run without a validation split
    (the report file trains on all its images); the row's `curve_kind` says which."""
    if any(r.get("val_acc") is not None for r in rows):
        return [r.get("val_acc") for r in rows]
    return [r.get("train_acc") for r in rows]


def _empty_row(meta: dict[str, Any]) -> dict[str, Any]:
    numbers = ("test_acc", "test_top5", "test_loss", "best_val_acc", "best_epoch", "epochs", "train_seconds",
               "images_per_second", "parameters")
    return {"run": meta["name"], "variation": meta["variation"], "seed": meta["seed"], "grid": meta.get("grid", {}),
            **dict.fromkeys(numbers)}


def problems(rows: list[dict[str, Any]]) -> list[str]:
    """One note per unreadable run, to print under the table: its name and why."""
    return [f"run {row['run']} is {UNREADABLE}: {row['problem']}" for row in rows if row.get("problem")]


def study_rows(directory: str | Path) -> list[dict[str, Any]]:
    directory = Path(directory)
    return [run_row(directory / meta["name"], meta) for meta in read_plan(directory)["runs"]]


def build_table(directory: str | Path, options: VerdictOptions = VerdictOptions(),
                seeds: Sequence[int] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """A study's rows (aggregated, judged against their references, with the published numbers beside them)
    and the notes printed under the table; `seeds`: only those seeds' runs."""
    plan = read_plan(Path(directory))
    rows = [row for row in study_rows(directory) if seeds is None or row["seed"] in seeds]
    if seeds is not None and not rows:
        raise ConfigError(f"'{directory}' has no run of seeds {', '.join(map(str, seeds))}: its seeds are "
                          f"{', '.join(map(str, sorted({r['seed'] for r in study_rows(directory)})))}")
    design = sequential_design(plan)
    table = aggregate(rows, plan.get("metric", "test_acc"), plan.get("compare_to"), options, design)
    notes = problems(rows) + table_notes(rows, table, options, design, plan) + published.notes(plan.get("reference"))
    return add_reference(table, plan.get("reference")), notes


def sequential_design(plan: dict[str, Any]) -> Design | None:
    """The group-sequential design plan.json records for a study whose seeds were added until decided."""
    found = plan.get("sequential")
    if not isinstance(found, dict):
        return None
    try:
        return Design(int(found["max_seeds"]), str(found.get("boundary", "obrien-fleming")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"plan.json's sequential design is damaged ({exc}): run the study again with "
                          "--until-decided and the same --max-seeds") from None


def label(row: dict[str, Any]) -> str:
    return published.row_label(row["variation"], row["grid"])


def grouped(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Runs grouped by row label (variation and grid point), in plan order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    return groups


def references(groups: dict[str, list[dict[str, Any]]],
               compare_to: dict[str, str] | None = None) -> dict[str, str | None]:
    """Each row's reference row: the variation `compare_to` names for it, else the baseline (the variation
    'baseline', else the first), at the same grid point when the reference has it. A reference of itself is None."""
    compare_to = compare_to or {}
    firsts = {members[0]["variation"]: name for name, members in reversed(groups.items())}
    order = [members[0]["variation"] for members in groups.values()]  # plan order
    baseline = "baseline" if "baseline" in firsts else (order[0] if order else None)
    out: dict[str, str | None] = {}
    for name, members in groups.items():
        variation, grid = members[0]["variation"], members[0].get("grid", {})
        target = compare_to.get(variation, baseline)
        same_point = label({"variation": target, "grid": grid})
        chosen = same_point if same_point in groups else firsts.get(target)
        out[name] = None if chosen in (None, name) else chosen
    return out


def aggregate(rows: list[dict[str, Any]], metric: str = "test_acc", compare_to: dict[str, str] | None = None,
              options: VerdictOptions = VerdictOptions(), design: Design | None = None) -> list[dict[str, Any]]:
    """Rows grouped by variation and grid point, in plan order, with mean/std of each metric over the
    seeds that finished (a diverged run contributes its status, not its numbers), the change of the metric
    against the row's reference, and its verdict."""
    groups = grouped(rows)
    reference_of = references(groups, compare_to)
    verdicts = judge(groups, reference_of, metric, options, design)
    table = []
    for name, members in groups.items():
        entry: dict[str, Any] = {"variation": name, "runs": len(members), "status": _statuses(members)}
        usable = [m for m in members if m["status"] in SCORED]
        for key, _, _ in COLUMNS:
            values = [m[key] for m in usable if m[key] is not None]
            entry[key] = statistics.fmean(values) if values else None
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        entry.update(verdict_fields(verdicts[name]))
        entry["confidence"] = 1 - options.alpha
        table.append(entry)
    by_name = {entry["variation"]: entry for entry in table}
    for entry in table:
        comparison = verdicts[entry["variation"]].comparison
        if comparison is not None:  # over the seeds both rows have, as its interval
            entry[f"delta_{metric}"] = comparison.delta
            continue
        reference = by_name.get(entry["reference"] or "", entry)  # a reference row's Δ is 0 against itself
        have = reference is not None and entry[metric] is not None and reference[metric] is not None
        entry[f"delta_{metric}"] = entry[metric] - reference[metric] if have else None
    return table


def judge_runs(runs: dict[str, Path | None], reference: str, metric: str = "test_acc",
               options: VerdictOptions = VerdictOptions()) -> dict[str, dict[str, Any]]:
    """Verdict fields for one run per row (a comparison of optimizers, a tuned study's retrained runs) against
    the row `reference`: McNemar's exact test on the runs' per-image test results, Holm across the rows."""
    # one run a row: the two trained models are compared image by image, whatever their seeds (seed 0 pairs them)
    groups = {name: [run_row(path, {"name": name, "variation": name, "seed": 0})] if path is not None else []
              for name, path in runs.items()}
    verdicts = judge(groups, {name: reference for name in groups if name != reference}, metric, options)
    return {name: {**verdict_fields(verdict), f"delta_{metric}": verdict.comparison.delta if verdict.comparison
                   else 0.0 if name == reference else None} for name, verdict in verdicts.items()}


def verdict_fields(verdict: RowVerdict) -> dict[str, Any]:
    """A row's verdict as flat table fields (table.csv keeps them all)."""
    comparison = verdict.comparison
    checks = [name for name, on in (("at chance", verdict.at_chance), ("still learning", verdict.still_learning)) if on]
    return {
        "reference": verdict.reference, "verdict": verdict.word, "verdict_cell": verdict.cell,
        "checks": ", ".join(checks), "delta_low": comparison.low if comparison else None,
        "delta_high": comparison.high if comparison else None, "p_holm": verdict.adjusted_p,
        "method": comparison.method if comparison else None, "seeds_compared": verdict.seeds,
        "discordant": list(comparison.discordant) if comparison and comparison.discordant else None,
        "verdict_note": verdict.note,
    }


def table_notes(rows: list[dict[str, Any]], table: list[dict[str, Any]], options: VerdictOptions,
                design: Design | None = None, plan: dict[str, Any] | None = None) -> list[str]:
    """The lines printed under a table: how its verdicts were reached, and what they do not cover."""
    how = (f"{design.describe(options.alpha)}: its {options.confidence} interval covers every look at once"
           if design is not None else f"paired t over the seeds both rows finished, {options.confidence} interval")
    notes = [f"verdict: Δ against the row in 'vs' ({how}); better/worse at alpha {options.alpha:g} after Holm's "
             f"correction over the rows, equivalent when the interval lies inside ±{100 * options.min_effect:g} "
             "points; one seed gives no verdict ('1 seed')"]
    if design is not None and (plan or {}).get("sequential", {}).get("chosen_after_a_plain_run"):
        notes.append("the sequential design was chosen after a plain run of this study: a table printed before it "
                     "tested its first seeds at the full alpha, outside the design")
    if design is not None and any(entry["runs"] > design.max_seeds for entry in table):
        notes.append(f"rows with more than the design's {design.max_seeds} seeds (added by hand) are judged on their "
                     f"first {design.max_seeds}")
    if plan is not None and plan.get("implicit_baseline"):
        notes.append("'baseline' is the study's base config unchanged: cnnlab added it as the reference because "
                     "every variation of the file changes something")
    rows_of: dict[str, list[str]] = {}
    for entry in table:
        if entry.get("verdict_note"):
            rows_of.setdefault(entry["verdict_note"], []).append(entry["variation"])
    notes += [f"{', '.join(names)}: {note}" for note, names in rows_of.items()]
    one_seed = [entry for entry in table if entry.get("verdict") == ONE_SEED]
    if one_seed:
        differ = [e["variation"] for e in one_seed if e.get("p_holm") is not None and e["p_holm"] < options.alpha]
        named = f": {', '.join(differ)}" if differ else ""
        notes.append(f"McNemar's exact test, after Holm, finds {len(differ)} of the {len(one_seed)} one-seed rows' "
                     f"networks different from their reference's on these images{named}; that is about the trained "
                     "networks, not the configurations (another seed may reverse it)")
        notes.append("for a verdict over seeds: cnnlab study run STUDY.yaml --seeds 0,1,2 (or --until-decided)")
    ranking = ranking_note(grouped(rows))
    return notes + ([ranking] if ranking else [])


def _statuses(members: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for member in members:
        counts[member["status"]] = counts.get(member["status"], 0) + 1
    return ", ".join(f"{n} {s}" if len(members) > 1 else s for s, n in counts.items())


def _cell(value: Any, std: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        text = f"{100 * value:.2f}%"
        return f"{text} ± {100 * std:.2f}" if std is not None else text
    if kind == "int":
        return f"{value:,.0f}"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} ± {std:.2g}" if std is not None else text


def add_reference(table: list[dict[str, Any]], reference: Any) -> list[dict[str, Any]]:
    """The published numbers of the study file's `reference:` beside each row (experiments/reference.py): the
    number for its row label, else for its variation; only the columns the study gives (no column of dashes)."""
    for column in published.columns(reference):
        for entry in table:
            entry[column.field] = column.value(entry["variation"], entry["variation"].split(" ")[0])
    return table


def formatted(table: list[dict[str, Any]], metric: str = "test_acc",
              reference: Any = None) -> tuple[list[str], list[list[str]]]:
    """Headers and printed cells: the row, what it is compared with, Δ with its interval and the verdict first
    (what a reader takes away), then the numbers; the report columns are those of `reference` (the study's), or
    without it those of its unlabelled columns that `add_reference` put into the rows."""
    names = {key: header for key, header, _ in COLUMNS}
    referenced = published.columns(reference) if reference else [
        published.Column(key, "", {}) for key in published.KINDS if any(f"report_{key}" in entry for entry in table)]
    confidence = next((entry["confidence"] for entry in table if entry.get("confidence") is not None), 0.95)
    headers = ["variation", "vs", f"Δ {names.get(metric, metric)} [{100 * confidence:g}% CI]", "verdict", "checks",
               "runs", "status", *names.values(), *(column.header for column in referenced)]
    rows = []
    for entry in table:
        cells = [entry["variation"], entry.get("reference") or "", delta_cell(entry, metric),
                 entry.get("verdict_cell") or entry.get("verdict") or "-", entry.get("checks") or "",
                 str(entry["runs"]), entry["status"]]
        cells += [_cell(entry[k], entry.get(f"{k}_std"), kind) for k, _, kind in COLUMNS]
        cells += [column.text(entry.get(column.field)) for column in referenced]
        rows.append(cells)
    return headers, rows


def delta_cell(entry: dict[str, Any], metric: str) -> str:
    delta = entry.get(f"delta_{metric}")
    if delta is None:
        return "-"
    scale, form = (100, "+.2f") if metric.endswith("acc") or "top" in metric else (1, "+.3g")
    text = f"{scale * delta:{form}}"
    if entry.get("delta_low") is not None:
        text += f" [{scale * entry['delta_low']:{form}}, {scale * entry['delta_high']:{form}}]"
    elif entry.get("method") and entry.get("reference"):  # compared, yet no interval: every seed moved alike
        text += " [no spread]"
    return text


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def write_tables(table: list[dict[str, Any]], directory: Path, metric: str = "test_acc",
                 notes: Sequence[str] = (), reference: Any = None, stem: str = "table") -> tuple[Path, Path]:
    """table.csv and table.md (or `stem`.csv/.md); `notes` (the unreadable runs, `problems`) go under the markdown
    table."""
    csv_path, md_path = directory / f"{stem}.csv", directory / f"{stem}.md"
    fields = list(dict.fromkeys(key for entry in table for key in entry)) if table else ["variation"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fields)
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(csv_path, text.getvalue())
    atomic_write_text(md_path, markdown(*formatted(table, metric, reference)) + "".join(f"\n- {note}" for note in notes)
                      + ("\n" if notes else ""))
    return csv_path, md_path


def first_crossing(errors: list[float | None], level: float) -> float | None:
    """The epoch at which an error curve (one value per epoch, epoch 1 first) first reaches `level`,
    interpolated linearly between the two epochs around it (AlexNet figure 1 reads its 25% crossings off
    such curves); None if it never does; 0.0 if it is below already after the first epoch (the crossing
    happened somewhere inside epoch 1, which one value per epoch cannot place)."""
    previous = None
    for epoch, error in enumerate(errors, start=1):
        if error is not None and error <= level:
            if epoch == 1:
                return 0.0
            if previous is None or previous == error:
                return float(epoch)
            return epoch - 1 + (previous - level) / (previous - error)
        previous = error
    return None


def crossings(directory: str | Path, level: float, key: str = "train_acc") -> dict[str, float | None]:
    """Per variation (mean over its seeds' curves) the epoch its error 1 - `key` first reaches `level`."""
    curves: dict[str, list[list[float | None]]] = {}
    for row in study_rows(directory):
        path = Path(directory) / row["run"] / "metrics.csv"
        if path.is_file() and row["status"] != UNREADABLE:
            curves.setdefault(row["variation"], []).append([r.get(key) for r in read_metrics(path)])
    out = {}
    for variation, series in curves.items():
        length = min(map(len, series))
        mean = [None if any(s[i] is None for s in series) else 1 - statistics.fmean(s[i] or 0.0 for s in series)
                for i in range(length)]
        out[variation] = first_crossing(mean, level)
    return out
