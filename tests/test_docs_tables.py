"""Every table the documentation shows as today's output has today's columns (issues 32, 33): a page whose saved
output (a docs-results session that `make test` does not rerun, or a notebook's saved cells) shows a study table
in an older format than the code prints fails here, so `make docs-results` is run again before such a page
reaches a reader. The one exception is a session whose stamp tells the reader it is not regenerated yet
("Output pasted from an earlier cnnlab; not yet regenerated"): that page says what it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnlab.experiments.table import formatted

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")])


# a fenced block and the stamp line under it that says its output is older than the code
OLD_BLOCK = re.compile(r"^( *)```[a-z]*\n.*?^\1```\n\1<small class=\"docs-stamp\">[^\n]*not yet regenerated[^\n]*\n",
                       re.S | re.M)


def _text(page: Path) -> str:
    """A page's text without the sessions stamped as not regenerated; for a notebook, its saved outputs too
    (what the site shows)."""
    if page.suffix != ".ipynb":
        return OLD_BLOCK.sub("", page.read_text())
    cells = json.loads(page.read_text())["cells"]
    parts = []
    for cell in cells:
        parts.append("".join(cell.get("source", [])))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", [])))
            data = output.get("data", {})
            parts.append("".join(data.get("text/plain", [])) + "".join(data.get("text/html", [])))
    return "\n".join(parts)


def _today() -> list[str]:
    """The leading columns a study table has today: the row, vs, Δ, verdict, checks, runs, status."""
    entry = {"variation": "a", "runs": 1, "status": "completed", **{k: None for k in (
        "test_acc", "test_top5", "best_val_acc", "best_epoch", "train_seconds", "images_per_second", "parameters")}}
    return formatted([entry])[0][:7]


def _study_headers(text: str) -> list[list[str]]:
    """The header cells of every study table printed in `text` (terminal, markdown or HTML)."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"variation\s{2,}", stripped) and "status" in stripped:
            found.append(re.split(r"\s{2,}", stripped))
        elif stripped.startswith("| variation |") and "status" in stripped:
            found.append([cell.strip() for cell in stripped.strip("|").split("|")])
    for table in re.findall(r"<thead><tr>(.*?)</tr></thead>", text):
        cells = re.findall(r"<th>(.*?)</th>", table)
        if cells[:1] == ["variation"] and "status" in cells:
            found.append(cells)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_study_table_in_the_docs_has_todays_columns(page: Path) -> None:
    today = _today()
    for headers in _study_headers(_text(page)):
        leading = [today[0], today[1], headers[2] if len(headers) > 2 else "", *today[3:]]
        assert headers[:7] == leading and headers[2].startswith("Δ "), (
            f"{page.relative_to(DOCS)} shows a study table with the columns {headers[:7]}; today's start with "
            f"{today}: run `make docs-results PAGES={page.relative_to(DOCS.parent)}` again")


def test_the_compare_optimizers_table_in_the_docs_has_todays_columns() -> None:
    for page in PAGES:
        for line in _text(page).splitlines():
            if re.match(r"\s*optimizer\s{2,}", line) and "status" in line:
                assert re.split(r"\s{2,}", line.strip())[:4] == ["optimizer", "vs", "Δ test [95% CI]", "verdict"], (
                    f"{page.relative_to(DOCS)}: an old compare-optimizers table: run make docs-results again")


def test_a_session_stamped_as_not_regenerated_is_the_only_exception() -> None:
    table = "```\n$ cnnlab study table runs/x\nvariation  runs  status  top-1\nbaseline  1  completed  50%\n```\n"
    old = table + '<small class="docs-stamp">Output pasted from an earlier cnnlab; not yet regenerated.</small>\n'
    current = table + '<small class="docs-stamp">Output of cnnlab 0.1.0, 2026-12-07.</small>\n'
    assert _study_headers(OLD_BLOCK.sub("", old)) == []
    assert _study_headers(OLD_BLOCK.sub("", current)) == [["variation", "runs", "status", "top-1"]]


def test_the_check_finds_an_old_table() -> None:
    old = "variation  runs  status  top-1  Δ top-1 [95% CI]  verdict  checks\nbaseline  1  completed  50%  +0.00"
    assert _study_headers(old) == [["variation", "runs", "status", "top-1", "Δ top-1 [95% CI]", "verdict", "checks"]]
    assert _study_headers(old)[0][:7] != _today()
