"""`cnnlab study table`: one row per variation (and grid point), every metric as mean +- std over its
seeds, and the difference to the baseline row. Read from the run directories only."""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from ..errors import CnnlabError
from ..io import atomic_write_text
from ..runs import RunDir, RunRecord, Status
from ..train import read_metrics
from .study import REFERENCE_COLUMNS, read_plan

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
    except CnnlabError as exc:
        return {**_empty_row(meta), "status": UNREADABLE, "problem": str(exc)}
    rows = read_metrics(run.metrics_path) if run.metrics_path.is_file() else []
    val = [r["val_acc"] for r in rows if r.get("val_acc") is not None]
    test = record.test or {}
    return {
        **_empty_row(meta), "status": str(status) if status is not None else "not run", "test_acc": test.get("acc"),
        "test_top5": test.get("top5"), "test_loss": test.get("loss"), "best_val_acc": max(val) if val else None,
        "best_epoch": record.best_epoch, "epochs": record.epochs_completed if status is not None else None,
        "train_seconds": record.train_seconds if status is not None else None,
        "images_per_second": record.images_per_second if status is not None else None,
        "parameters": record.parameters,
    }


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


def label(row: dict[str, Any]) -> str:
    grid = " ".join(f"{k.split('.')[-1]}={v}" for k, v in row["grid"].items())
    return f"{row['variation']} {grid}".strip()


def aggregate(rows: list[dict[str, Any]], metric: str = "test_acc") -> list[dict[str, Any]]:
    """Rows grouped by variation and grid point, in plan order, with mean/std of each metric over the
    seeds that finished (a diverged run contributes its status, not its numbers) and the change of
    the metric against the baseline."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    table = []
    for name, members in groups.items():
        entry: dict[str, Any] = {"variation": name, "runs": len(members), "status": _statuses(members)}
        usable = [m for m in members if m["status"] in SCORED]
        for key, _, _ in COLUMNS:
            values = [m[key] for m in usable if m[key] is not None]
            entry[key] = statistics.fmean(values) if values else None
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        table.append(entry)
    baseline = next((e for e in table if e["variation"].split(" ")[0] == "baseline"), table[0] if table else None)
    for entry in table:
        have = baseline is not None and entry[metric] is not None and baseline[metric] is not None
        entry[f"delta_{metric}"] = entry[metric] - baseline[metric] if have else None
    return table


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


def add_reference(table: list[dict[str, Any]], reference: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The published numbers of the study file's `reference:` beside each variation (report_top1 in %,
    report_seconds), so the reproduction and the publication stand side by side."""
    if not reference:
        return table
    for entry in table:
        variation = entry["variation"].split(" ")[0]
        for column in REFERENCE_COLUMNS:
            entry[f"report_{column}"] = (reference.get(column) or {}).get(variation)
    return table


def formatted(table: list[dict[str, Any]], metric: str = "test_acc") -> tuple[list[str], list[list[str]]]:
    names = {key: header for key, header, _ in COLUMNS}
    referenced = [column for column in REFERENCE_COLUMNS if any(f"report_{column}" in entry for entry in table)]
    headers = ["variation", "runs", "status", *names.values(), f"Δ {names.get(metric, metric)}",
               *(REFERENCE_COLUMNS[column] for column in referenced)]
    rows = []
    for entry in table:
        cells = [entry["variation"], str(entry["runs"]), entry["status"]]
        cells += [_cell(entry[k], entry.get(f"{k}_std"), kind) for k, _, kind in COLUMNS]
        delta = entry[f"delta_{metric}"]
        cells.append("-" if delta is None else f"{100 * delta:+.2f}" if metric.endswith("acc") or "top" in metric
                     else f"{delta:+.3g}")
        for column in referenced:
            value = entry.get(f"report_{column}")
            cells.append("-" if value is None else f"{value:.2f}%" if column == "top1" else f"{value:,.0f}")
        rows.append(cells)
    return headers, rows


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def write_tables(table: list[dict[str, Any]], directory: Path, metric: str = "test_acc",
                 notes: list[str] = ()) -> tuple[Path, Path]:
    """table.csv and table.md; `notes` (the unreadable runs, `problems`) go under the markdown table."""
    csv_path, md_path = directory / "table.csv", directory / "table.md"
    fields = list(dict.fromkeys(key for entry in table for key in entry)) if table else ["variation"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fields)
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(csv_path, text.getvalue())
    atomic_write_text(md_path, markdown(*formatted(table, metric)) + "".join(f"\n{note}\n" for note in notes))
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
    curves: dict[str, list[list[float]]] = {}
    for row in study_rows(directory):
        path = Path(directory) / row["run"] / "metrics.csv"
        if path.is_file():
            curves.setdefault(row["variation"], []).append([r.get(key) for r in read_metrics(path)])
    out = {}
    for variation, series in curves.items():
        length = min(map(len, series))
        mean = [None if any(s[i] is None for s in series) else 1 - statistics.fmean(s[i] for s in series)
                for i in range(length)]
        out[variation] = first_crossing(mean, level)
    return out
