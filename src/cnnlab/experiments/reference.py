"""A study file's `reference:`: published numbers printed beside the measured ones by `study table` (the
one-change table, the greedy table and the tuned table alike), so a reproduction and its publication stand
side by side.

    reference:
      source: the paper's table 3
      top1: {baseline: 33.59}                      # accuracy in %, as the table's top-1
      top5_error: {baseline: 17.0}                 # an error rate in %, as the paper gives it
      best_epoch: {"finetune lr=0.01 step_size=30": 52}   # one row of a grid: its row label

Or a list of such blocks, each with its own `source:` and a short `label:` added to its headers, when the
numbers come from different test sets (AlexNet's ILSVRC-2010 and ILSVRC-2012 figures). A column is keyed
by a variation (every row of it, whatever its grid point), by a row label (`variation k=v ...`, as the
table prints it; it wins over the variation), and in a greedy study by an alternative, `stage:alternative`,
or `final`. Numbers are kept as published: an error rate is never turned into an accuracy."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

# study-file key -> (header, kind): 'pct' a percentage in [0, 100], 'count' a number printed whole, 'ratio' a
# multiple ('6x')
KINDS: dict[str, tuple[str, str]] = {
    "top1": ("report top-1", "pct"), "top5": ("report top-5", "pct"),
    "top1_error": ("report top-1 error", "pct"), "top5_error": ("report top-5 error", "pct"),
    "best_val": ("report best val", "pct"), "best_epoch": ("report best ep.", "count"),
    "epochs": ("report epochs", "count"), "final_epochs": ("report final epochs", "count"),
    "seconds": ("report s", "count"), "images_per_second": ("report img/s", "count"),
    "parameters": ("report params", "count"),
    # the epochs a row needed to reach a training-error level, as a multiple of the fastest row's (AlexNet's
    # figure 1: ReLU reached 25% six times faster than tanh); printed beside the measured one by
    # `study plot --crossing`
    "crossing_ratio": ("report crossing ratio", "ratio"),
}
BLOCK_KEYS = ("source", "label", *KINDS)


@dataclass(frozen=True)
class Column:
    key: str  # the study file's key (top5_error)
    label: str  # the block's label ('' for none)
    values: Mapping[str, float]  # row label / variation / alternative -> the published number
    source: str = ""  # the block's source: where the numbers were published

    @property
    def header(self) -> str:
        return KINDS[self.key][0] + (f" ({self.label})" if self.label else "")

    @property
    def field(self) -> str:
        """The column's name in table.csv: report_top1, or report_top5_error_ILSVRC-2010_test with a label."""
        return f"report_{self.key}" + (f"_{re.sub(r'[^A-Za-z0-9.-]+', '_', self.label)}" if self.label else "")

    def value(self, *names: str) -> float | None:
        """The number for the first of `names` (most specific first) the reference gives."""
        return next((self.values[name] for name in names if name in self.values), None)

    def cell(self, *names: str) -> str:
        return self.text(self.value(*names))

    def text(self, value: float | None) -> str:
        """A number as the table prints it: '17.00%' (as published: an error rate stays one), '5,108'."""
        kind = KINDS[self.key][1]
        if value is None:
            return "-"
        return f"{value:.2f}%" if kind == "pct" else f"{value:g}x" if kind == "ratio" else f"{value:,.0f}"


def row_label(variation: str, grid: Mapping[str, Any]) -> str:
    """A table row's label: its variation and grid point ('finetune lr=0.01 step_size=30')."""
    point = " ".join(f"{key.split('.')[-1]}={value}" for key, value in grid.items())
    return f"{variation} {point}".strip()


def blocks(reference: Any) -> list[Mapping[str, Any]]:
    """The reference's blocks: none, one (a mapping, as most study files and older plan.json files hold it), or
    a list of them."""
    if not reference:
        return []
    return [reference] if isinstance(reference, Mapping) else list(reference)


def columns(reference: Any) -> list[Column]:
    """Every column the reference gives numbers for, block by block, in KINDS' order within a block."""
    return [Column(key, str(block.get("label") or ""), block[key], str(block.get("source") or ""))
            for block in blocks(reference) for key in KINDS if block.get(key)]


def check(reference: Any, names: Iterable[str], where: str) -> Any:
    """The study file's `reference:` checked: known keys, numbers, percentages within 0..100, and every row it
    names one the study has (`names`: its variations and row labels, or a greedy study's alternatives); it is
    returned as given (plan.json keeps it so)."""
    if reference is None:
        return {}
    known = set(names)
    listed = reference if isinstance(reference, list) else [reference]
    for block in listed:
        if not isinstance(block, Mapping) or not set(block) <= set(BLOCK_KEYS):
            unknown = sorted(set(block) - set(BLOCK_KEYS)) if isinstance(block, Mapping) else []
            said = f"'{unknown[0]}' is not a reference key; " if unknown else ""
            raise ConfigError(f"{where}: {said}reference is a mapping (or a list of them) of source: TEXT, "
                              f"label: TEXT and {', '.join(KINDS)}: {{row: number}}")
        for key in KINDS:
            _check_column(key, block.get(key) or {}, known, where)
    if isinstance(reference, list) and len({str(b.get("label") or "") for b in reference}) < len(reference):
        raise ConfigError(f"{where}: each block of a reference list needs its own label: (its headers show it)")
    return reference


def _check_column(key: str, values: Any, known: set[str], where: str) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: reference {key} maps rows to numbers, e.g. {{baseline: 33.59}}")
    unknown = sorted(str(name) for name in values if str(name) not in known)
    if unknown:
        raise ConfigError(f"{where}: reference {key} names '{unknown[0]}', which is not a row of this study; "
                          f"rows: {', '.join(sorted(known))}")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: reference {key} values must be numbers ({name}: {value!r})")
        if KINDS[key][1] != "pct" and value < 0 or KINDS[key][1] == "pct" and not 0 <= value <= 100:
            raise ConfigError(f"{where}: reference {key} is a percentage between 0 and 100 ({name}: {value}); "
                              "write 37.5 for 37.5%" if KINDS[key][1] == "pct" else
                              f"{where}: reference {key} cannot be negative ({name}: {value})")


def notes(reference: Any) -> list[str]:
    """The lines under a table that say where its report columns come from and what they measure."""
    out = []
    for block in blocks(reference):
        keys = [key for key in KINDS if block.get(key)]
        if not keys:
            continue
        label = f" ({block['label']})" if block.get("label") else ""
        meaning = []
        if any(key.endswith("_error") for key in keys):
            meaning.append("'error' columns are error rates in % (100 - accuracy), as published")
        if any(KINDS[key][1] == "pct" and not key.endswith("_error") for key in keys):
            meaning.append("the other % columns are accuracies")
        out.append(f"report columns{label}: {block.get('source') or 'published numbers'}"
                   + (f"; {'; '.join(meaning)}" if meaning else ""))
    return out
