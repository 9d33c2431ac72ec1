"""`cnnlab report STUDY_DIR|RUN_DIR`: one self-contained HTML page (images inlined as base64, styles
inline, no script, no CDN), so it can be mailed, archived or opened offline and still show everything:
config, table, curves, confusion matrix and per-class accuracy."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..errors import CnnlabError, command_line
from ..experiments.table import SCORED
from ..io import atomic_write_text
from ..runs import RunDir, RunRecord
from ..runs.identity import run_metrics

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.status-completed { color: #1a7f37; } .status-diverged, .status-failed { color: #cf222e; }
.note { color: #666; font-size: 0.9em; }
"""


def _image(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, sections: list[str]) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n")


def run_report(run_dir: Path) -> str:
    # read through RunRecord: a run.json changed by hand, or of a newer schema, is a ConfigError naming the
    # file and field, not a TypeError from a format below
    record = RunRecord.load(run_dir / "run.json")
    info = record.to_dict() if record is not None else {}
    status = info.get("status", "unknown")
    damage = config_damage(run_dir)  # a damaged config.yaml: said as such, its text never shown as the config
    test = info.get("test") or {}
    facts = [["status", status], ["reason", info.get("reason", "")],
             ["test top-1", _percent(test.get("acc"))], ["test top-5", _percent(test.get("top5"))],
             ["best epoch", info.get("best_epoch")], ["train seconds", f"{info.get('train_seconds', 0):.1f}"],
             ["images/s", f"{info.get('images_per_second', 0):,.0f}"],
             ["parameters", f"{info['parameters']:,}" if info.get("parameters") is not None else "-"],
             ["device", info.get("device")], ["precision", info.get("precision")], ["seed", info.get("seed")],
             ["versions", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())]]
    if damage:
        facts.insert(1, ["damaged", damage])
    stop = info.get("early_stop") or {}
    if stop.get("fired"):
        facts.append(["early stop", f"{stop.get('criterion')} after epoch {stop.get('epoch')}: {stop.get('why', '')}"])
    if (info.get("freeze") or {}).get("frozen") is not None:
        facts.append(["frozen", f"{info['freeze'].get('mode')}: {info['freeze']['frozen']:,} parameters"])
    for change in record.config_changes if record is not None else []:  # resumes with --allow-config-change
        if isinstance(change, dict):
            facts.append([f"changed from epoch {change.get('epoch')}", "; ".join(map(str, change.get("changes", [])))])
    shown = f"{status}, damaged" if damage else status
    sections = [f"<h2>Summary</h2><p class='status-{html.escape(status)}'>{html.escape(shown)}</p>",
                _table(["", ""], facts), *_checks_section(info)]
    rows = run_metrics(run_dir, record)
    if rows:
        keys = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "train_seconds"]
        sections += ["<h2>Training</h2>", _image(run_dir / "plots" / "curves.png", "training curves"),
                     _table(keys, [[_fmt(r.get(k)) for k in keys] for r in rows])]
    report, problem = read_eval(run_dir, record)
    if report is not None:
        per_class = [[name, "-" if acc is None else f"{100 * acc:.2f}%"] for name, acc in report["per_class"].items()]
        sections += ["<h2>Test set</h2>", _image(run_dir / "plots" / "confusion_test.png", "confusion matrix"),
                     _table(["class", "accuracy"], per_class)]
    else:
        sections.append(f"<p class='note'>No test evaluation: {html.escape(problem or _why_no_eval(record, damage))}"
                        "</p>")
    if damage:
        sections += ["<h2>Config</h2>", f"<p class='note'>config.yaml is damaged: {html.escape(damage)}</p>"]
    else:
        sections += ["<h2>Config</h2>", f"<pre>{html.escape((run_dir / 'config.yaml').read_text())}</pre>"]
    return _page(f"cnnlab run {run_dir.name}", sections)


def config_damage(run_dir: Path) -> str | None:
    """Why the run's config.yaml cannot be read (config.saved.read_config's message), or None."""
    try:
        RunDir(run_dir).read_config()
    except CnnlabError as exc:
        return str(exc).splitlines()[0]
    return None


def _why_no_eval(record: RunRecord | None, damage: str | None) -> str:
    if record is None or not record.status.scored:
        return "the run did not finish"
    if damage:
        return "the run finished, but its config.yaml is damaged, so it cannot be evaluated again"
    return "the run finished, but its data is not here to evaluate it"


def _checks_section(info: dict[str, Any]) -> list[str]:
    """The checks made when the run started (train/checks.py) and the lr finder's choice, if any."""
    rows = []
    for name, found in (info.get("checks") or {}).items():
        if isinstance(found, dict):
            rows.append([name.replace("_", " "), found.get("status", ""), found.get("summary", "")])
        else:  # 'skipped': why the checks could not run
            rows.append(["checks", name, str(found)])
    found = info.get("lr_find")
    if isinstance(found, dict) and "lr" in found:  # numbers shown as numbers only (run.json may be edited)
        rows.append(["lr find", "ok", f"optim.lr={_fmt(found['lr'])}: {found.get('how', '')}; steepest descent "
                                      f"at {_fmt(found.get('steepest_lr'))} ({found.get('png', '')})"])
    return ["<h2>Checks</h2>", _table(["check", "status", "finding"], rows)] if rows else []


def read_eval(run_dir: Path, record: RunRecord | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """The run's test evaluation (eval_test.json: per-class accuracy, confusion matrix), if it was made
    (`cnnlab report` makes it first for finished runs: api.report), with None and why when the file is there but
    damaged, or another run's (its run id)."""
    path = run_dir / "eval_test.json"
    if not path.is_file():
        return None, None
    again = command_line("cnnlab", "eval", run_dir)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return None, f"{path} is damaged ({str(exc)[:80]}); delete it and run `{again}` again"
    if not isinstance(report, dict) or not isinstance(report.get("per_class"), dict) or not all(
            value is None or isinstance(value, (int, float)) for value in report["per_class"].values()) or \
            not isinstance(report.get("acc"), (int, float)):
        return None, f"{path} is not an evaluation cnnlab wrote; delete it and run `{again}` again"
    mine = record.run_id if record is not None else None
    if mine is not None and report.get("run_id") not in (None, mine):
        return None, (f"{path} is another run's evaluation (run id {report.get('run_id')}); delete it and run "
                      f"`{again}` again")
    return report, None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def study_report(directory: Path) -> str:
    from ..experiments.study import read_plan
    from ..experiments.table import build_table, formatted, study_rows
    from .study import plot_study

    plan = read_plan(directory)
    rows = study_rows(directory)
    curves, bars, forest = plot_study(directory)
    table, notes = build_table(directory)
    headers, cells = formatted(table, plan.get("metric", "test_acc"), plan.get("reference"))
    runs = [[r["run"], r["status"], _fmt(r["test_acc"]), _fmt(r["train_seconds"])] for r in rows]
    study_file = directory / "study.yaml"
    sections = [f"<p>{html.escape(plan.get('description') or '')}</p>", "<h2>Results</h2>", _table(headers, cells),
                "<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>",
                _image(forest, "the verdicts: each row's Δ with its interval against its reference"),
                _image(bars, "final metric per variation"), _image(curves, "curves of every variation"),
                *_per_class_sections(directory, rows),
                "<h2>Runs</h2>", _table(["run", "status", "test top-1", "train seconds"], runs)]
    if study_file.is_file():
        # the copy of the study file, shown as text whatever it holds (a damaged one as its bytes allow)
        sections += ["<h2>Study file</h2>", f"<pre>{html.escape(study_file.read_text(errors='replace'))}</pre>"]
    return _page(f"cnnlab study {plan['name']}", sections)


def _per_class_sections(directory: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Per-class test accuracy of each variation (its first finished run) and the confusion matrix of the
    best one."""
    firsts: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["status"] in SCORED and row["variation"] not in firsts:
            firsts[row["variation"]] = row
    reports = {name: read_eval(directory / row["run"])[0] for name, row in firsts.items()}
    found = {name: r for name, r in reports.items() if r is not None}
    if not found:
        return []
    classes = list(next(iter(found.values()))["per_class"])
    table = [[name, *("-" if r["per_class"].get(c) is None else f"{100 * r['per_class'][c]:.1f}%" for c in classes)]
             for name, r in found.items()]
    best = max(found, key=lambda name: found[name]["acc"])
    confusion = directory / firsts[best]["run"] / "plots" / "confusion_test.png"
    return ["<h2>Per-class test accuracy</h2>", _table(["variation", *classes], table),
            f"<h2>Confusion matrix of the best variation ({html.escape(best)})</h2>",
            _image(confusion, f"confusion matrix of {best}")]


def write_report(directory: str | Path) -> Path:
    directory = Path(directory)
    text = study_report(directory) if (directory / "plan.json").is_file() else run_report(directory)
    out = directory / "report.html"
    atomic_write_text(out, text)
    return out


def parse_report(path: Path) -> dict[str, Any]:
    """What a report holds, for tests: its title, tables (as rows of cells) and image count."""
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.title, self.images, self._cell, self._in_title = "", 0, None, False

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self._cell = ""
            elif tag == "img" and dict(attrs).get("src", "").startswith("data:image/png;base64,"):
                self.images += 1
            elif tag == "title":
                self._in_title = True

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append(self._cell)
                self._cell = None
            elif tag == "title":
                self._in_title = False

        def handle_data(self, data):
            if self._cell is not None:
                self._cell += data
            if self._in_title:
                self.title += data

    reader = Reader()
    reader.feed(path.read_text())
    return {"title": reader.title, "tables": reader.tables, "images": reader.images}
