"""HTML tables for notebooks (`_repr_html_`): a Jupyter front end shows an object's `_repr_html_()` instead
of its repr. Every cell is escaped; the tables carry a class (`cnnlab-table`) for styling."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# every cell padded and kept on one line: a front end without table styles (the docs site's notebook pages) ran
# neighbouring cells together ("9.89% ± 0.2050.70% ± 0.79"); after the table, so the table is still the output's start
STYLE = ("<style>.cnnlab-table th, .cnnlab-table td {padding: 0.15em 0.7em; text-align: left; white-space: nowrap}"
         "</style>")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "",
          notes: Sequence[str] = ()) -> str:
    """A table with a header row; `notes` become lines under it (a study table's verdict notes)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    under = "".join(f"<div><small>{html.escape(note)}</small></div>" for note in notes)
    table_html = f'<table class="cnnlab-table">{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return table_html + STYLE + under


def fields(values: Mapping[str, Any], caption: str = "") -> str:
    """A two-column table of names and values, None values left out."""
    rows = [(name, value) for name, value in values.items() if value is not None]
    return table(["", ""], rows, caption).replace("<thead><tr><th></th><th></th></tr></thead>", "")


def image(path: Any, alt: str) -> str:
    """A PNG file inline (base64), so a notebook's output keeps the picture when the file moves."""
    import base64
    from pathlib import Path

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<div><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width: 100%"></div>'


def percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}%"
